"""Starting a program under valgrind with vgdb, and making sense of vgdb failures.

No gdb here: the gdb layer calls these with plain values.
"""
import os
import re
import stat
import time

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import record
from gdb_toolkit.valgrind.vgdb_processes import fifo_for

FORCED_OPTIONS = ("--tool=memcheck", "--vgdb=yes", "--vgdb-error=0")
LOG_OPTIONS = ("--log-file=", "--log-fd=", "--log-socket=")


def split_start_args(argv: list[str], value_options: set[str]) -> tuple[list[str], str | None,
                                                                      list[str], list[str]]:
    """vg-start's words -> (its own options, PROGRAM or None, PROGRAM's ARGS, VALGRIND-OPTIONS).

    The rule (the one of valgrind, strace, env): options before PROGRAM are vg-start's (a
    ``--`` there ends them, so PROGRAM may start with ``-``); every word after PROGRAM is
    PROGRAM's, taken verbatim (``-p 8080``, ``--json``, ``--help`` too), up to a ``--`` after
    which come valgrind's options.  *value_options* take the next word as their value.
    """
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            ours, rest = argv[:i], argv[i + 1:]
            break
        if tok.startswith("-") and tok != "-":
            i += 2 if tok in value_options else 1
            continue
        ours, rest = argv[:i], argv[i:]
        break
    else:
        return argv, None, [], []
    if not rest:
        return ours, None, [], []
    program, after = rest[0], rest[1:]
    if "--" in after:
        j = after.index("--")
        return ours, program, after[:j], after[j + 1:]
    return ours, program, after, []


def resolve_program(program: str, cwd: str | None = None) -> str:
    if not program.strip():     # '' joined to the working directory read as "is a directory"
        raise ToolkitError("no program given (an empty name)",
                           "give the path of an executable, e.g. vg-start ./prog")
    if os.sep in program:
        path = os.path.abspath(os.path.join(cwd or os.getcwd(), program))
    else:
        from gdb_toolkit.common.helper_process import which     # shutil.which without shutil

        path = which(program) or os.path.abspath(os.path.join(cwd or os.getcwd(), program))
    try:
        st = os.stat(path)
    except OSError:
        raise ToolkitError(f"program {program!r} not found", "give the path of an executable") from None
    if not stat.S_ISREG(st.st_mode):
        from gdb_toolkit.common.safe_open import describe_mode

        raise ToolkitError(f"program {program!r} is {describe_mode(st.st_mode)}, not a program file",
                           "give the path of an executable")
    if not os.access(path, os.X_OK):
        raise ToolkitError(f"{path} is not executable", "chmod +x it or give another program")
    return path


def option_value(options: list[str], name: str) -> str | None:
    """The value of the last ``--name=value`` in *options* (valgrind: the last one wins)."""
    found = None
    for o in options:
        if o.startswith(name + "="):
            found = o[len(name) + 1:]
    return found


def valgrind_argv(valgrind: str, program: str, args: list[str], user_options: list[str],
                  log_file: str) -> list[str]:
    """The command line: memcheck, vgdb on, our log file, then the user's options.

    The user may choose ``--vgdb=full`` (precise stops, slower) and
    ``--vgdb-error=N`` (stop at the Nth error instead of at every one); only
    ``--vgdb=no`` is refused (there would be no gdbserver to connect to)."""
    for opt in user_options:
        if not opt.startswith("-"):
            raise ToolkitError(f"valgrind option {opt!r} does not start with '-'",
                               "put program arguments before '--' and valgrind options after it")
    vgdb = option_value(user_options, "--vgdb")
    if vgdb is not None and vgdb not in ("yes", "full"):
        raise ToolkitError(f"--vgdb={vgdb} would stop vg-start from connecting (no gdbserver)",
                           "use --vgdb=yes (the default) or --vgdb=full")
    err = option_value(user_options, "--vgdb-error")
    if err is not None and not err.isdigit():
        raise ToolkitError(f"--vgdb-error={err}: not a number of errors", "e.g. --vgdb-error=10")
    has_log = any(o.startswith(LOG_OPTIONS) for o in user_options)
    tool = [o for o in user_options if o.startswith("--tool=")]
    if tool and tool[-1] != "--tool=memcheck":
        raise ToolkitError(f"{tool[-1]}: the vg-* commands need memcheck", "drop --tool")
    opts = [o for o in user_options if not o.startswith("--tool=")]
    forced = ["--tool=memcheck", "--vgdb=yes" if vgdb is None else f"--vgdb={vgdb}",
              "--vgdb-error=0" if err is None else f"--vgdb-error={err}"]
    opts = [o for o in opts if not o.startswith(("--vgdb=", "--vgdb-error="))]
    # valgrind counts every loss record a leak search prints as an error shown, and under its
    # default --error-limit=yes it records no error at all once 1,000 were shown: a few
    # vg-leaks/vg-watch checks of a server would switch its error reporting off for good
    limit = [] if option_value(user_options, "--error-limit") is not None else ["--error-limit=no"]
    return [valgrind, *forced, *([] if has_log else [f"--log-file={log_file}"]), *limit, *opts,
            program, *args]


def log_pattern(user_options: list[str], log_template: str | None) -> str | None:
    """valgrind's log file name pattern (with %p: one file per process, children too), or
    None when the log goes to a descriptor or a socket."""
    for o in reversed(user_options):
        if o.startswith(("--log-fd=", "--log-socket=")):
            return None
        if o.startswith("--log-file="):
            return o.split("=", 1)[1]
    return log_template


def log_destination(user_options: list[str], log_template: str, pid: int) -> tuple[str | None, str]:
    """(the log file valgrind writes, if one; a description for the report)."""
    for o in reversed(user_options):
        if o.startswith("--log-fd="):
            fd = o.split("=", 1)[1]
            std = {"1": "the program's stdout", "2": "the program's stderr"}.get(fd, f"file descriptor {fd}")
            return None, f"fd {fd} ({std})"
        if o.startswith("--log-socket="):
            return None, f"socket {o.split('=', 1)[1]}"
        if o.startswith("--log-file="):
            path = o.split("=", 1)[1].replace("%p", str(pid))
            return path, path
    path = log_template.replace("%p", str(pid))
    return path, path


def open_program_stream(path: str, write: bool):
    """Open --stdin/--stdout/--tty for the program: a regular file, or a terminal/char
    device (/dev/null, /dev/pts/N).  A FIFO is refused: opening it blocks gdb until the
    other end appears (and gdb then ignores Ctrl-C)."""
    import stat as st

    if write:       # never through a link or into a file someone else planted in /tmp
        from gdb_toolkit.common.safe_open import open_output

        fd = open_output(path, "program output file", append=True,
                         fix="give a regular file, /dev/null, or a terminal (--tty)", allow_devices=True)
        return os.fdopen(fd, "ab")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        from gdb_toolkit.common.names import escape_name
        from gdb_toolkit.common.safe_open import describe_mode

        if exc.errno == 6:      # ENXIO: a FIFO without a reader (for writing), a socket, a tty-less /dev/tty
            try:
                mode = os.stat(path).st_mode
            except OSError:
                mode = 0
            if st.S_ISFIFO(mode):
                raise ToolkitError(f"{escape_name(path)} is a FIFO: the program's output cannot go to it",
                                   "give a regular file or a terminal (--tty)") from None
            if st.S_ISSOCK(mode):
                raise ToolkitError(f"{escape_name(path)} is a socket, not a file or a terminal",
                                   "give a regular file, /dev/null, or a terminal (--tty)") from None
            raise ToolkitError(f"cannot open {escape_name(path)}: {describe_mode(mode) if mode else 'it'} "
                               "has no device behind it (/dev/tty: gdb has no controlling terminal)",
                               "give a regular file, /dev/null, or a terminal (--tty /dev/pts/N)") from None
        raise ToolkitError(f"cannot open {escape_name(path)}: {exc.strerror}", "give another file") from None
    mode = os.fstat(fd).st_mode
    if not (st.S_ISREG(mode) or st.S_ISCHR(mode)):
        os.close(fd)
        if st.S_ISFIFO(mode):
            raise ToolkitError(f"{path} is a FIFO: opening it would block gdb until another process "
                               "opens the other end", "give a regular file, /dev/null, or a terminal (--tty)")
        kind = ("a directory" if st.S_ISDIR(mode) else "a socket" if st.S_ISSOCK(mode)
                else "a block device" if st.S_ISBLK(mode) else "not a regular file")
        raise ToolkitError(f"{path} is {kind}, not a file or a terminal",
                           "give a regular file, /dev/null, or a terminal (--tty)")
    if st.S_ISREG(mode) and os.major(os.fstat(fd).st_dev) == 0:
        from gdb_toolkit.common.safe_open import refuse_kernel_stream

        try:        # /proc/kmsg as stdin: the program would wait on, and eat, the kernel's log
            refuse_kernel_stream(fd, os.fstat(fd), "--stdin file", path)
            _refuse_gdbs_own_proc(fd, path)
        except ToolkitError:
            os.close(fd)
            raise
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _refuse_gdbs_own_proc(fd: int, path: str) -> None:
    """--stdin /proc/self/environ (or /proc/self/mem): gdb opens it, so "self" is gdb -- the
    program would read gdb's environment or memory (as root), not its own."""
    from gdb_toolkit.common.names import escape_name

    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return
    mine = f"/proc/{os.getpid()}/"
    if real.startswith(mine) or real.startswith(f"/proc/{os.getpid()}/task/"):
        raise ToolkitError(f"--stdin {escape_name(path)} is gdb's own {escape_name(real)}: gdb opens "
                           f"it, so /proc/self there is gdb (pid {os.getpid()}), not the program",
                           "give a regular file, or save what you want from the program's /proc "
                           "first") from None


def set_parent_death_signal() -> None:
    """preexec_fn: valgrind gets SIGKILL if gdb dies (Linux prctl PR_SET_PDEATHSIG).  Only
    where setpriv cannot do it (``start_valgrind``'s fallback)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except Exception:
        pass


_SETPRIV: list = []         # [path or None], once per gdb


def setpriv_pdeathsig() -> str | None:
    """util-linux's setpriv if it has ``--pdeathsig`` (2.33 and later), else None.  Looked
    up on the system PATH (never a relative or user directory) and recognised by the option
    name in the program itself (asking ``setpriv --help`` would start a process)."""
    if not _SETPRIV:
        from gdb_toolkit.common.helper_process import SAFE_PATH, which

        path = which("setpriv", path=SAFE_PATH)
        try:
            with open(path, "rb") as fh:
                found = path if b"pdeathsig" in fh.read(1 << 22) else None
        except (OSError, TypeError):
            found = None
        _SETPRIV.append(found)
    return _SETPRIV[0]


class Spawned:
    """The valgrind ``start_valgrind`` spawned: what vg-start uses of ``subprocess.Popen``
    (``pid``, ``returncode``, ``poll()``, ``wait(timeout)``), with Popen's meanings: a signal's
    negative number, 0 when the status is lost (ECHILD: reaped elsewhere)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None

    def _reap(self, timeout: float) -> int | None:
        if self.returncode is None:
            from gdb_toolkit.common.helper_process import wait_pid

            self.returncode = wait_pid(self.pid, timeout)
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(0)

    def wait(self, timeout: float | None = None) -> int:
        rc = self._reap(float("inf") if timeout is None else timeout)
        if rc is None:
            raise TimeoutError(f"valgrind {self.pid} still running after {timeout}s")
        return rc


def start_valgrind(argv: list[str], stdin_fd: int, stdout_fd: int | None):
    """Start *argv* as ``subprocess.Popen(argv, stdin=, stdout=, stderr=stdout,
    start_new_session=True, close_fds=True)`` does, with a parent-death SIGKILL (valgrind dies
    with gdb): ``os.posix_spawn`` of ``setpriv --pdeathsig KILL -- argv`` (setpriv execs
    valgrind: same pid; ``helper_process.spawn_isolated``: every descriptor but 0-2 closed,
    SIGPIPE/SIGXFSZ at their defaults as Popen's restore_signals).  Without a suitable setpriv, Popen itself with a prctl in
    preexec_fn.  posix_spawn needs no subprocess import (locale, signal, threading, selectors:
    ~5 ms of vg-start's first call) and runs no Python between fork and exec (a fork of
    multi-threaded gdb running Python, importing ctypes in the child, was not fork-safe)."""
    setpriv = setpriv_pdeathsig()
    if setpriv is None:
        import subprocess

        return subprocess.Popen(argv, stdin=stdin_fd, stdout=stdout_fd, stderr=stdout_fd,
                                start_new_session=True, close_fds=True,
                                preexec_fn=set_parent_death_signal)
    from gdb_toolkit.common.helper_process import spawn_isolated

    # the user's environment and directory (valgrind runs their program), not a helper's
    return Spawned(spawn_isolated([setpriv, "--pdeathsig", "KILL", "--", *argv], env=os.environ,
                                  cwd=None, stdin=stdin_fd, stdout=stdout_fd, stderr=stdout_fd))


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


#: how far a file's ctime (the kernel's coarse clock, a tick behind) may lag time.time_ns()
CLOCK_SLACK_NS = 100_000_000


def wait_for_fifo(proc: "Spawned | subprocess.Popen", directory: str, timeout: float, log_file: str | None,
                  prefix: str | None = None, keep_log: bool = True,
                  started_ns: int | None = None) -> str:
    """Wait until valgrind (proc) has created its vgdb FIFO; return its path.

    *started_ns*: ``time.time_ns()`` just before valgrind was started.  A FIFO older than that
    is another valgrind's that had this pid and was killed (SIGKILL leaves the FIFOs; pids
    wrap at pid_max): valgrind unlinks and re-creates it at its start, and a vgdb that opened
    the old one waits on it until gdb gives up ("Interrupted system call").
    *keep_log*: the log outlives a failure (the user's --log), so the error may name it."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    where = f" (log: {log_file})" if log_file and keep_log else ""
    while True:
        path = fifo_for(proc.pid, directory, prefix)
        if path and (started_ns is None or _changed_since(path, started_ns - CLOCK_SLACK_NS)):
            return path
        if proc.poll() is not None:
            tail = log_tail(log_file)
            if no_space(directory) or no_space(os.path.dirname(log_file or "") or None):
                raise ToolkitError(f"no space left on the file system of {directory}: valgrind exited "
                                   f"(status {proc.returncode}) before its gdbserver started "
                                   f"({tail or 'no log'})", "free space there, or point TMPDIR elsewhere")
            raise ToolkitError(f"valgrind exited with status {proc.returncode} before its gdbserver "
                               f"started: {tail or 'no log'}",
                               "check the program and the valgrind options" + where)
        if time.monotonic() > deadline:
            raise ToolkitError(f"valgrind (pid {proc.pid}) created no vgdb FIFO in {directory} "
                               f"within {timeout:.0f}s: {log_tail(log_file) or 'no log'}",
                               "check TMPDIR, --vgdb-prefix and the valgrind messages" + where)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _changed_since(path: str, ns: int) -> bool:
    """True when *path* exists and its inode changed (was created) at or after *ns*."""
    try:
        return os.stat(path).st_ctime_ns >= ns
    except OSError:
        return False


def no_space(directory: str | None) -> bool:
    """True when *directory*'s file system has no block (or no inode) left for us."""
    if not directory:
        return False
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail == 0 or (st.f_files > 0 and st.f_favail == 0)


def vgdb_said(stderr_text: str, limit: int = 4) -> str:
    """vgdb's stderr as one line: each distinct line once, whole, in order (at most *limit*).

    vgdb repeats its retry message ("error attach main pid N") many times; cutting the text
    at a fixed width split a pid in half, so whole lines are kept and repeats dropped.
    """
    seen: list[str] = []
    for line in stderr_text.split("\n"):
        line = " ".join(line.split())
        if line and not line.startswith("relaying data between") and line not in seen:
            seen.append(line)
    more = len(seen) - limit
    return "; ".join(seen[:limit]) + (f"; ... ({more} more lines)" if more > 0 else "")


def explain_vgdb_failure(stderr_text: str, pid: int) -> ToolkitError:
    """A one-line error from vgdb's stderr when 'target remote | vgdb' failed."""
    text = vgdb_said(stderr_text)
    low = " ".join(stderr_text.split()).lower()
    if "ptrace" in low and ("not permitted" in low or "eperm" in low or "permission" in low):
        return ToolkitError(
            f"vgdb cannot ptrace valgrind process {pid} (ptrace denied: {text})",
            "allow ptrace: run gdb as the same user with /proc/sys/kernel/yama/ptrace_scope set to 0 "
            "(sysctl kernel.yama.ptrace_scope=0), or as root with CAP_SYS_PTRACE; without ptrace, "
            "vgdb can only connect while the program is not blocked in a system call")
    lock = re.search(r"vgdb pid (\d+) already speaks with valgrind pid (\d+)", low)
    if "cannot acquire lock" in low or lock:
        holder = describe_lock_holder(int(lock.group(1))) if lock else "another vgdb"
        return ToolkitError(f"valgrind process {pid} already has a debugger: {holder} is connected to it "
                            "and valgrind serves one at a time",
                            "disconnect that one first ('detach' or 'disconnect' in that gdb, or quit it)"
                            + (f"; or end it: kill {lock.group(1)}" if lock else ""))
    if "did not handle a command" in low:
        return ToolkitError(f"valgrind process {pid} did not answer vgdb ({text})",
                            "it may be blocked in a system call with ptrace unavailable to vgdb, or "
                            "stopped; let it run (or allow ptrace) and retry")
    if "no such process" in low or "invalid pid" in low or "check for pid" in low:
        return ToolkitError(f"valgrind process {pid} is gone ({text})",
                            "start it again with vg-start, or list live ones with vg-attach")
    return ToolkitError(f"cannot connect to valgrind process {pid} through vgdb"
                        + (f": {text}" if text else ""),
                        "check that the process runs with --vgdb=yes and that vgdb is installed")


def describe_lock_holder(vgdb_pid: int, proc: str = "/proc") -> str:
    """``vgdb pid 123 (started by gdb pid 120, user alice)`` for the vgdb holding valgrind's lock."""
    from gdb_toolkit.valgrind.vgdb_processes import display_name

    text = f"vgdb pid {vgdb_pid}"
    try:
        with open(f"{proc}/{vgdb_pid}/stat", "rb") as fh:
            ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        with open(f"{proc}/{ppid}/comm", "rb") as fh:
            comm = display_name(fh.read().strip())
        uid = os.stat(f"{proc}/{ppid}").st_uid
        try:
            import pwd

            user = pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            user = str(uid)
        text += f" (started by {comm} pid {ppid}, user {user})"
    except (OSError, IndexError, ValueError):
        pass
    return text


@record
class StartReport:
    pid: int                     # the real valgrind pid (gdb's inferior pid over vgdb is a placeholder)
    program: str
    arguments: list[str]
    valgrind_command: list[str]
    log_file: str | None         # valgrind's own messages (None: --log-fd/--log-socket)
    log: str                     # where valgrind's messages go, in words
    program_stdin: str
    program_stdout: str          # "gdb's terminal (inherited)" or a path
    stopped_at: str              # gdb's description of where the program stopped
    ran_to_main: bool
    seconds: float               # from spawning valgrind to the stop reported
    notes: list[str]             # e.g. --main did not get to main: why (a memcheck error stop, ...)


def vgdb_env() -> dict:
    """A standalone vgdb's environment: the helper allow-list (TMPDIR locates valgrind's FIFOs)
    without gdb's loader variables (issue 11: helpers never load LD_PRELOAD & co)."""
    from gdb_toolkit.common.helper_process import helper_env

    return helper_env(keep=("VALGRIND_LIB",))


def probe_vgdb(vgdb: str, pid: int, prefix: str | None = None, timeout: float = 3.0) -> None:
    """Ask valgrind *pid* a harmless monitor question through a standalone vgdb.

    Done before gdb's ``target remote`` when attaching: if vgdb cannot reach the
    process (ptrace denied while it is blocked in a system call, pid gone) this
    fails in *timeout* seconds with vgdb's own words, instead of gdb retrying
    its remote protocol for half a minute.
    """
    import subprocess       # here, not at the top: vg-start's argv splitting imports this module

    cmd = [vgdb, *([f"--vgdb-prefix={prefix}"] if prefix else []), f"--pid={pid}",
           f"--cmd-time-out={max(1, int(timeout))}", "v.info", "n_errs_found"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5,
                              stdin=subprocess.DEVNULL, env=vgdb_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise explain_vgdb_failure(str(exc), pid) from None
    if proc.returncode != 0 or "n_errs_found" not in proc.stdout:
        raise explain_vgdb_failure(proc.stderr + proc.stdout, pid)
