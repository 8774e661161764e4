"""gdb side of ``stack-diagnose --kernel``: what to re-run (argv, cwd, env, limits)."""
import os
import re
import shlex

import gdb

from gdb_toolkit.common.errors import ToolkitError


def require_kernel_tracing() -> None:
    from gdb_toolkit.stack.kernel_rerun import kprobes_available

    ok, why = kprobes_available()
    if not ok:
        raise ToolkitError(f"stack-diagnose --kernel: {why}",
                           "run it as root on a kernel with CONFIG_KPROBES=y (see 'toolkit "
                           "doctor'), or drop --kernel for the user-space diagnosis")


def program_to_rerun(kind: str, pid: int | None):
    """(argv, cwd, env) of the diagnosed process."""
    if kind == "live" and pid:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = [a.decode(errors="surrogateescape") for a in fh.read().split(b"\0") if a]
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = dict(e.decode(errors="surrogateescape").split("=", 1)
                           for e in fh.read().split(b"\0") if b"=" in e)
        except OSError as exc:
            raise ToolkitError(f"cannot read process {pid}'s command line ({exc})",
                               "diagnose while the process is still stopped") from None
        exe = gdb.current_progspace().filename
        if exe and argv and not os.path.isabs(argv[0]):
            argv[0] = exe
        return argv, cwd, env
    text = gdb.execute("info proc", to_string=True)
    m = re.search(r"exe = '([^']*)'", text) or re.search(r"cmdline = '([^']*)'", text)
    exe = gdb.current_progspace().filename
    if not m or not exe:
        raise ToolkitError("the core file does not say how the program was started",
                           "load the program with the core: gdb PROGRAM CORE")
    argv = shlex.split(m.group(1))
    argv[0] = exe
    return argv, os.getcwd(), None


def kernel_view(d, kind: str):
    from gdb_toolkit.common.render import to_jsonable
    from gdb_toolkit.stack.kernel_rerun import rerun

    argv, cwd, env = program_to_rerun(kind, d.thread["pid"])
    limits = (d.rlimit_soft, d.rlimit_hard)
    view = rerun(argv, cwd, env, limits, d.growth_requested)
    return to_jsonable(view)
