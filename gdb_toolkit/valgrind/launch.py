"""Starting a program under valgrind with vgdb, and making sense of vgdb failures.

No gdb here: the gdb layer calls these with plain values.
"""
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.valgrind.vgdb_processes import fifo_for

FORCED_OPTIONS = ("--tool=memcheck", "--vgdb=yes", "--vgdb-error=0")


def split_user_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``PROGRAM ARGS... -- VALGRIND-OPTIONS`` -> (program part, valgrind options)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def split_program_args(argv: list[str], value_options: set[str]) -> tuple[list[str], list[str]]:
    """vg-start's own options and PROGRAM -> (those, PROGRAM's ARGS taken verbatim).

    Everything after PROGRAM belongs to it (``-p 8080`` too), except a final
    ``--json``, which is vg-start's.  *value_options* take the next word as value.
    """
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("-") and tok != "-":
            i += 2 if tok in value_options else 1
            continue
        head, rest = argv[:i + 1], argv[i + 1:]
        if rest and rest[-1] == "--json":
            head, rest = head + ["--json"], rest[:-1]
        return head, rest
    return argv, []


def resolve_program(program: str, cwd: str | None = None) -> str:
    if os.sep in program:
        path = os.path.abspath(os.path.join(cwd or os.getcwd(), program))
    else:
        path = shutil.which(program) or os.path.abspath(os.path.join(cwd or os.getcwd(), program))
    if not os.path.isfile(path):
        raise ToolkitError(f"program {program!r} not found", "give the path of an executable")
    if not os.access(path, os.X_OK):
        raise ToolkitError(f"{path} is not executable", "chmod +x it or give another program")
    return path


def valgrind_argv(valgrind: str, program: str, args: list[str], user_options: list[str],
                  log_file: str) -> list[str]:
    """The command line: forced vgdb options, our log file, then the user's options."""
    for opt in user_options:
        if not opt.startswith("-"):
            raise ToolkitError(f"valgrind option {opt!r} does not start with '-'",
                               "put program arguments before '--' and valgrind options after it")
        if opt.startswith(("--vgdb=", "--vgdb-error=")) and opt not in FORCED_OPTIONS:
            raise ToolkitError(f"{opt} would stop vg-start from connecting",
                               "leave --vgdb and --vgdb-error to vg-start")
    has_log = any(o.startswith(("--log-file=", "--log-fd=", "--log-socket=")) for o in user_options)
    tool = [o for o in user_options if o.startswith("--tool=")]
    if tool and tool[0] != "--tool=memcheck":
        raise ToolkitError(f"{tool[0]}: the vg-* commands need memcheck", "drop --tool")
    opts = [o for o in user_options if not o.startswith("--tool=")]
    return [valgrind, *FORCED_OPTIONS, *([] if has_log else [f"--log-file={log_file}"]), *opts,
            program, *args]


def set_parent_death_signal() -> None:
    """preexec_fn: valgrind gets SIGKILL if gdb dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except Exception:
        pass


def log_tail(path: str | None, lines: int = 6) -> str:
    if not path:
        return ""
    try:
        with open(path, errors="replace") as fh:
            text = fh.read().splitlines()
    except OSError:
        return ""
    keep = [ln for ln in text if ln.strip() and not ln.rstrip().endswith("==")]
    return " | ".join(keep[-lines:])


def wait_for_fifo(proc: subprocess.Popen, directory: str, timeout: float, log_file: str) -> str:
    """Wait until valgrind (proc) has created its vgdb FIFO; return its path."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        path = fifo_for(proc.pid, directory)
        if path:
            return path
        if proc.poll() is not None:
            raise ToolkitError(f"valgrind exited with status {proc.returncode} before its gdbserver "
                               f"started: {log_tail(log_file) or 'no log'}",
                               "check the program and the valgrind options (log: " + log_file + ")")
        if time.monotonic() > deadline:
            raise ToolkitError(f"valgrind (pid {proc.pid}) created no vgdb FIFO in {directory} "
                               f"within {timeout:.0f}s", "check TMPDIR and the valgrind log " + log_file)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def explain_vgdb_failure(stderr_text: str, pid: int) -> ToolkitError:
    """A one-line error from vgdb's stderr when 'target remote | vgdb' failed."""
    text = " ".join(ln for ln in stderr_text.split("\n")
                    if ln.strip() and not ln.startswith("relaying data between"))
    text = " ".join(text.split())
    low = text.lower()
    if "ptrace" in low and ("not permitted" in low or "eperm" in low or "permission" in low):
        return ToolkitError(
            f"vgdb cannot ptrace valgrind process {pid} (ptrace denied: {text[:160]})",
            "allow ptrace: run gdb as the same user with /proc/sys/kernel/yama/ptrace_scope set to 0 "
            "(sysctl kernel.yama.ptrace_scope=0), or as root with CAP_SYS_PTRACE; without ptrace, "
            "vgdb can only connect while the program is not blocked in a system call")
    if "did not handle a command" in low:
        return ToolkitError(f"valgrind process {pid} did not answer vgdb ({text[:160]})",
                            "it may be blocked in a system call with ptrace unavailable to vgdb, or "
                            "stopped; let it run (or allow ptrace) and retry")
    if "no such process" in low or "invalid pid" in low or "check for pid" in low:
        return ToolkitError(f"valgrind process {pid} is gone ({text[:160]})",
                            "start it again with vg-start, or list live ones with vg-attach")
    return ToolkitError(f"cannot connect to valgrind process {pid} through vgdb"
                        + (f": {text[:200]}" if text else ""),
                        "check that the process runs with --vgdb=yes and that vgdb is installed")


@dataclass
class StartReport:
    valgrind_pid: int
    program: str
    arguments: list[str]
    valgrind_command: list[str]
    log_file: str                # valgrind's own messages
    program_stdin: str
    program_stdout: str          # "gdb's terminal (inherited)" or a path
    vgdb_log: str                # vgdb's stderr
    stopped_at: str              # gdb's description of where the program stopped
    ran_to_main: bool
    seconds: float               # from spawning valgrind to the stop reported
    note: str | None = None      # --main did not get to main: why (a memcheck error stop, ...)


def probe_vgdb(vgdb: str, pid: int, timeout: float = 3.0) -> None:
    """Ask valgrind *pid* a harmless monitor question through a standalone vgdb.

    Done before gdb's ``target remote`` when attaching: if vgdb cannot reach the
    process (ptrace denied while it is blocked in a system call, pid gone) this
    fails in *timeout* seconds with vgdb's own words, instead of gdb retrying
    its remote protocol for half a minute.
    """
    cmd = [vgdb, f"--pid={pid}", f"--cmd-time-out={max(1, int(timeout))}", "v.info", "n_errs_found"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise explain_vgdb_failure(str(exc), pid) from None
    if proc.returncode != 0 or "n_errs_found" not in proc.stdout:
        raise explain_vgdb_failure(proc.stderr + proc.stdout, pid)
