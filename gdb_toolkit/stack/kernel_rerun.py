"""``stack-diagnose --kernel``: re-run the faulting program under a bcc probe on the
kernel's stack-growth check and summarise what the kernel itself saw.  No gdb import.

Who runs it: never root on someone else's behalf.  gdb's root re-runs a program owned by
another user as that user (its uid, gid and groups, dropped before exec) and refuses to run
an executable another user could have replaced as root; an unprivileged caller re-runs only
its own programs.  The environment is the process's own minus every loader and interpreter
variable (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, GCONV_PATH, GLIBC_TUNABLES, ...), and the
report says what was dropped.

The probe is gdb_toolkit.ktrace's worker (a separate /usr/bin/python3 process with bcc):
``acct_stack_growth(vma, size, grow)``, or -- where it is inlined, as on Debian 6.1 --
its caller ``expand_downwards(vma, address)`` with size = vma->vm_end - address, then
``expand_stack``; the worker says which one it attached.  The program is started paused
(``sh -c 'read; exec PROGRAM'``) so the probe is armed, filtered by its pid, before the
program runs a single instruction.
"""
import errno
import os
import signal
import subprocess

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, json_keys, record

PROBED = "acct_stack_growth"


@record
class RerunSpec:
    """What to re-run, where, with what, as whom."""
    argv: list[str]
    cwd: str
    env: dict[str, str]
    uid: int
    gid: int
    groups: list[int]
    source: str                     # where argv/env/owner came from
    notes: list[str] = field(default_factory=list)


@record
class RunAs:
    uid: int
    gid: int
    groups: list[int]
    drop: bool                      # change credentials before exec (root re-running a user's)
    text: str                       # "uid 1000 (alice)"


@record
class KernelEvent:
    function: str
    size: int | None
    retval: int | None
    errno_name: str | None
    comm: str


@record
class KernelView:
    requested_function: str
    traced_function: str
    attach_method: str
    attach_note: str                # what the worker said about the function it attached
    argv: list[str]
    pid: int
    exit: str
    growth_calls: int
    refused: list[KernelEvent]
    largest_granted: int | None
    user_growth: int | None
    comparison: str
    skipped: list[str] = field(default_factory=list)
    run_as: str = ""                # the credentials the re-run had
    dropped_env: list[str] = field(default_factory=list)   # loader variables not passed on
    source: str = ""
    notes: list[str] = field(default_factory=list)


# JSON key (contract v5, docs/json.md): counts end in `_count`
json_keys(KernelView, {"growth_calls": "growth_call_count", "largest_granted": "largest_granted_bytes",
                        "user_growth": "user_growth_bytes"})


def sanitize_env(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment minus loader/interpreter variables, PATH without relative entries."""
    from gdb_toolkit.common.helper_process import is_forbidden, safe_path_value

    kept, dropped = {}, []
    for k, v in env.items():
        if is_forbidden(k):
            dropped.append(k)
        else:
            kept[k] = v
    if "PATH" in kept:
        kept["PATH"] = safe_path_value(kept["PATH"])
    return kept, sorted(dropped)


def _user(uid: int) -> str:
    import pwd

    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def run_as(spec: RerunSpec, exe_stat, caller_uid: int) -> RunAs:
    """As whom to re-run *spec*, or a ToolkitError saying why not."""
    import stat as st

    if caller_uid != 0:
        if spec.uid != caller_uid:
            raise ToolkitError(f"stack-diagnose --kernel would re-run a program of {_user(spec.uid)}, not yours",
                               "diagnose without --kernel, or ask its owner or root")
        return RunAs(caller_uid, os.getgid(), os.getgroups(), False, _user(caller_uid))
    if spec.uid != 0:
        return RunAs(spec.uid, spec.gid, list(spec.groups), True, _user(spec.uid) + f", gid {spec.gid}")
    # root's own program, re-run as root: only if no one else could have replaced it
    if exe_stat.st_uid != 0 or exe_stat.st_mode & (st.S_IWGRP | st.S_IWOTH):
        raise ToolkitError(f"stack-diagnose --kernel would run {escape(spec.argv[0])} as root, but the file is "
                           f"{'owned by ' + _user(exe_stat.st_uid) if exe_stat.st_uid else 'writable by others'}",
                           "copy it somewhere only root can write and run it from there yourself")
    return RunAs(0, 0, [], False, "uid 0 (root), the process's owner")


def escape(name: str) -> str:
    from gdb_toolkit.common.names import escape_name

    return escape_name(name)


def kprobes_available() -> tuple[bool, str]:
    """(usable, why not): root, and kprobes via tracefs or the perf kprobe PMU."""
    if os.environ.get("GDB_TOOLKIT_KTRACE_WORKER"):
        return True, ""                       # a substitute worker decides for itself
    if os.geteuid() != 0:
        return False, "--kernel needs root (bcc loads BPF programs)"
    tracefs = [d for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
               if os.path.exists(os.path.join(d, "kprobe_events"))]
    mountable = False
    try:
        with open("/proc/filesystems") as fh:
            mountable = "tracefs" in fh.read()
    except OSError:
        pass
    if not tracefs and not os.path.exists("/sys/bus/event_source/devices/kprobe"):
        import platform

        if not (mountable and _config_kprobes() == "y"):
            return False, (f"kernel {platform.release()} offers no kprobes (no kprobe_events in "
                           "tracefs and no perf kprobe PMU)")
    return True, ""


def _config_kprobes() -> str | None:
    import platform

    try:
        with open(f"/boot/config-{platform.release()}") as fh:
            for line in fh:
                if line.startswith("CONFIG_KPROBES="):
                    return line.strip().split("=", 1)[1]
    except OSError:
        return None
    return None


def _errno_name(rv: int | None) -> str | None:
    if rv is None or rv >= 0:
        return None
    return "-" + errno.errorcode.get(-rv, str(-rv))


def summarise(events, armed_function: str, attach_method: str, note: str, argv, pid: int,
              exit_text: str, user_growth: int | None, skipped=()) -> KernelView:
    """Pure: the worker's events -> what the kernel granted and refused."""
    evs = [KernelEvent(e.function or armed_function, _int(e.args.get("size")), e.retval,
                       _errno_name(e.retval), e.comm) for e in events]
    refused = [e for e in evs if e.retval is not None and e.retval < 0]
    granted = [e.size for e in evs if e.retval == 0 and e.size is not None]
    largest = max(granted) if granted else None
    if refused and refused[-1].size is not None and user_growth:
        k = refused[-1].size
        diff = k - user_growth
        comparison = (f"kernel: {refused[-1].function} size {k} -> {refused[-1].errno_name}; "
                      f"user space: growth {user_growth} (difference {diff:+d} B -- the re-run has "
                      "its own stack contents and layout)")
    elif refused:
        comparison = f"kernel refused growth {len(refused)} time(s) ({refused[-1].errno_name})"
    else:
        comparison = ("the kernel refused no stack growth in the re-run -- the fault did not "
                      "reproduce, or was not a growth failure")
    return KernelView(PROBED, armed_function, attach_method, note, list(argv), pid, exit_text,
                      len(evs), refused, largest, user_growth, comparison, list(skipped))


def _int(v):
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _exit_text(rc: int | None) -> str:
    if rc is None:
        return "still running (killed after the timeout)"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def rerun(spec: RerunSpec, rlimit_stack: tuple | None, user_growth: int | None,
          timeout: float = 60.0) -> KernelView:
    """Start *spec* paused, arm the probe on its pid, let it run to its end, summarise."""
    from gdb_toolkit.common.names import encode_name
    from gdb_toolkit.ktrace.api import TraceSpec, start

    exe = spec.argv[0]
    try:
        exe_stat = os.stat(encode_name(exe))
    except OSError as exc:
        raise ToolkitError(f"cannot re-run {escape(exe)}: {exc.strerror}",
                           "check the program still exists") from None
    who = run_as(spec, exe_stat, os.geteuid())
    env, dropped = sanitize_env(spec.env)

    def prepare():
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if rlimit_stack is not None:
            inf = resource.RLIM_INFINITY
            soft, hard = rlimit_stack
            hard = inf if hard is None else hard
            soft = inf if soft is None else soft
            try:
                resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
            except (ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_STACK, (soft, resource.getrlimit(
                    resource.RLIMIT_STACK)[1]))
        if who.drop:                                 # root -> the program's owner, for good
            os.setgroups(who.groups)
            os.setgid(who.gid)
            os.setuid(who.uid)
            if os.getuid() != who.uid or os.geteuid() != who.uid:
                os._exit(126)

    try:
        child = subprocess.Popen(
            ["/bin/sh", "-c", 'read _ && exec "$@"', "sh", *[encode_name(a) for a in spec.argv]],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=encode_name(spec.cwd), env={encode_name(k): encode_name(v) for k, v in env.items()},
            preexec_fn=prepare, start_new_session=True)
    except OSError as exc:
        raise ToolkitError(f"cannot re-run {escape(exe)}: {exc.strerror or exc}",
                           "check the program and its working directory still exist") from None
    session = None
    try:
        session = start(TraceSpec(PROBED, pid=child.pid, ret=True, args=["size"],
                                  timeout=timeout + 30))
        child.stdin.write(b"\n")
        child.stdin.close()
        try:
            rc = child.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        session.settle(limit=3.0)
    finally:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait(10)
        if session is not None:
            session.stop()
    if session.error and not session.collected and session.armed is None:
        raise session.error
    a = session.armed
    view = summarise(session.collected, a.traced_function if a else PROBED,
                     a.attach_method if a else "", a.note if a else "",
                     [escape(x) for x in spec.argv], child.pid, _exit_text(rc), user_growth,
                     a.skipped if a else [])
    view.run_as, view.dropped_env, view.source = who.text, dropped, spec.source
    view.notes = list(spec.notes)
    return view
