"""gdb side of ``stack-diagnose --kernel``: what to re-run (argv, cwd, environment, owner)."""
import os

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import decode_name, escape_name
from gdb_toolkit.stack.kernel_rerun import RerunSpec


def require_kernel_tracing() -> None:
    from gdb_toolkit.stack.kernel_rerun import kprobes_available

    ok, why = kprobes_available()
    if not ok:
        raise ToolkitError(f"stack-diagnose --kernel: {why}",
                           "run it as root on a kernel with CONFIG_KPROBES=y (see 'toolkit "
                           "doctor'), or drop --kernel for the user-space diagnosis")


def _proc_bytes(pid: int, name: str, limit: int = 4 << 20) -> bytes:
    from gdb_toolkit.common.safe_open import open_regular

    with open_regular(f"/proc/{pid}/{name}", f"/proc/{pid}/{name}") as f:
        return f.read_all(limit)


def _status_ids(pid: int) -> tuple[int, int, list[int]]:
    """(real uid, real gid, supplementary groups) from /proc/PID/status."""
    uid = gid = None
    groups: list[int] = []
    for line in _proc_bytes(pid, "status", 1 << 20).decode("utf-8", "replace").splitlines():
        key, _, val = line.partition(":")
        if key == "Uid":
            uid = int(val.split()[0])
        elif key == "Gid":
            gid = int(val.split()[0])
        elif key == "Groups":
            groups = [int(g) for g in val.split()]
    if uid is None or gid is None:
        raise ToolkitError(f"cannot read process {pid}'s owner from /proc/{pid}/status",
                           "diagnose while the process is still stopped")
    return uid, gid, groups


def _live_spec(pid: int) -> RerunSpec:
    try:
        argv = [decode_name(a) for a in _proc_bytes(pid, "cmdline").split(b"\0")[:-1]]
        env = {}
        for e in _proc_bytes(pid, "environ").split(b"\0"):
            k, sep, v = decode_name(e).partition("=")
            if sep:
                env.setdefault(k, v)
        cwd = decode_name(os.readlink(f"/proc/{pid}/cwd".encode()))
        exe = decode_name(os.readlink(f"/proc/{pid}/exe".encode()))
    except OSError as exc:
        raise ToolkitError(f"cannot read process {pid}'s command line ({exc.strerror})",
                           "diagnose while the process is still stopped") from None
    uid, gid, groups = _status_ids(pid)
    if not argv:
        raise ToolkitError(f"process {pid} has an empty command line", "re-run it yourself")
    return RerunSpec([exe, *argv[1:]], cwd, env, uid, gid, groups,
                     f"/proc/{pid}/cmdline, environ, cwd, exe and status")


def _core_spec() -> RerunSpec:
    from gdb_toolkit.gdbsupport import safe_gdb
    from gdb_toolkit.stack import initial_stack
    from gdb_toolkit.stack.gdb_facts import _core_info, _read

    info, _path = _core_info()
    exe = safe_gdb.progspace_filename()
    if not exe:
        raise ToolkitError("the core file does not say which program to re-run",
                           "load the program with the core: gdb PROGRAM CORE")
    ps = info.psinfo
    if ps is None:
        raise ToolkitError("the core has no NT_PRPSINFO note (no owner, no command line)",
                           "re-run the program yourself")
    hint = info.auxv.get(31)                       # AT_EXECFN: a string at the stack's top
    m = next((m for m in info.mappings if hint is not None and m.start <= hint < m.end), None)
    found = initial_stack.find(_read, info.auxv_raw, m.end, m.start) if m is not None else None
    notes = []
    if found is not None:
        argv, env = found.argv, found.env
        how = "the argv and environment on the core's initial stack"
    else:
        argv, env = ps.psargs.split(" "), {}
        how = "the core's NT_PRPSINFO (80 bytes, spaces between arguments)"
        notes.append("the command line is pr_psargs (truncated to 80 bytes, quoting lost) and "
                     "the environment is empty: the initial stack was not found in the core")
    notes.append(f"the core does not record the working directory: re-run in gdb's "
                 f"({escape_name(os.getcwd())})")
    groups = []
    try:
        import pwd

        groups = os.getgrouplist(pwd.getpwuid(ps.uid).pw_name, ps.gid)
    except (KeyError, OSError):
        groups = [ps.gid]
    spec = RerunSpec([exe, *argv[1:]], os.getcwd(), env, ps.uid, ps.gid, groups,
                     f"{how}; owner from NT_PRPSINFO")
    spec.notes = notes
    return spec


def program_to_rerun(kind: str, pid: int | None) -> RerunSpec:
    if kind == "live" and pid:
        return _live_spec(pid)
    return _core_spec()


def _core_limit(d) -> tuple[int, int | None]:
    """A limit consistent with a core's refused growth: gdb's own if it lies between the
    stack's size and the refused growth, else the stack's size."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    grown = d.stack.end - d.stack.start if d.stack is not None else 8 << 20
    growth = d.growth_requested or (grown + 1)
    if soft != resource.RLIM_INFINITY and grown <= soft < growth:
        return soft, None
    return grown, None


def kernel_view(d, kind: str):
    from gdb_toolkit.common.render import to_jsonable
    from gdb_toolkit.stack.kernel_rerun import rerun

    spec = program_to_rerun(kind, d.thread["pid"])
    limits = (d.rlimit_soft, d.rlimit_hard)
    if d.rlimit_soft is None and "not recorded" in d.sources.get("RLIMIT_STACK", ""):
        limits = _core_limit(d)
        spec.notes.append(f"re-run with RLIMIT_STACK {limits[0] // 1024} KiB: within what the "
                          "core shows the program had (give --rlimit KIB to choose)")
    view = rerun(spec, limits, d.growth_requested)
    return to_jsonable(view)
