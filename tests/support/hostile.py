"""Hostile-input harness for real gdb (issue 11): run toolkit commands on crafted files, cores,
FIFOs and names inside ``gdb -nx -batch`` and check that gdb survived it.

    run = run_hostile(["got"], program=crafted_elf)
    assert_survived(run, max_rss_mb=500, max_seconds=30)

``run_hostile`` appends ``echo GTK-ALIVE`` after the commands (it prints only if gdb is still
running its command list), measures the child's peak RSS from ``wait4``'s rusage (gdb and the
helpers it waited for), caps gdb's address space (RLIMIT_AS, default 8 GiB, so a runaway
allocation fails instead of swapping the machine: gdb then dies with "virtual memory exhausted",
which the check reports), and kills gdb's whole process group with SIGKILL at the timeout (a
gdb blocked on a FIFO ignores SIGINT and SIGTERM).
"""
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from tests.support.gdbrun import GdbResult, gdb_argv

ALIVE = "GTK-ALIVE"
ERR_MARK = "GTK-LAST-COMMAND"


@dataclass
class HostileRun:
    result: GdbResult
    alive: bool                  # the echo after the commands printed
    timed_out: bool              # killed at the timeout (blocked or too slow)
    peak_rss_mb: float           # ru_maxrss of gdb (and children it waited for)
    seconds: float
    commands: list = field(default_factory=list)

    @property
    def error_lines(self) -> list[str]:
        """stderr lines of the last command that are not gdb's routine chatter."""
        skip = ("warning: Error disabling address space randomization",
                "Using host libthread_db", "[Thread debugging using libthread_db",
                "warning: File \"", "To enable execution of this file", "add-auto-load-safe-path",
                "line to your configuration", "For more information about this security protection",
                "info \"(gdb)Auto-loading safe path\"", "set auto-load safe-path /",
                "\"Auto-loading safe path\" section", "of file", "Mark the file", "safe-path")
        stderr = self.result.stderr
        if ERR_MARK in stderr:
            stderr = stderr.split(ERR_MARK + "\n", 1)[-1]
        return [ln for ln in stderr.splitlines()
                if ln.strip() and not any(s in ln for s in skip)
                and not ln.startswith(("BFD: ", "warning: ", "  in "))
                and not re.match(r"\d+\t", ln)]          # gdb's source line at a stop

    @property
    def last_output(self) -> str:
        """stdout and stderr of the last command only (after the markers)."""
        return "".join(part.split(ERR_MARK + "\n", 1)[-1]
                       for part in (self.result.stdout, self.result.stderr))

    def describe(self) -> str:
        return (f"commands={self.commands} alive={self.alive} timed_out={self.timed_out} "
                f"rss={self.peak_rss_mb:.0f}MB t={self.seconds:.1f}s\n--- stdout\n"
                f"{self.result.stdout[-4000:]}\n--- stderr\n{self.result.stderr[-4000:]}")


# argv: limit, fd for the peak RSS, then gdb's argv.  Limits apply to gdb and its children; the
# launcher ends the way gdb ended (the same exit code or the same signal).
_LAUNCHER = """
import os, resource, signal, sys
limit, fd, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
pid = os.fork()
if pid == 0:
    os.close(fd)
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(fd, str(usage.ru_maxrss).encode())
os.close(fd)
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
"""


def run_hostile(commands: list[str], program=None, args=(), core=None, pid=None, timeout: float = 60,
                env: dict | None = None, cwd=None, address_space_mb: int = 8192,
                pre: list[str] = ()) -> HostileRun:
    """Run *commands* in batch gdb with the toolkit sourced, then the liveness echo."""
    # the command under test is the last one; a marker on stderr before it lets error_lines
    # count only its errors (not gdb's own messages while setting up: run, loading a library)
    marked = list(commands[:-1]) + [f"python import sys; sys.stderr.write('{ERR_MARK}\\n'); sys.stderr.flush()",
                                    f"echo {ERR_MARK}\\n", commands[-1]] if commands else []
    argv = gdb_argv([*marked, f"echo {ALIVE}\\n"], program, args, core, pid, True, pre)
    res, timed_out, peak_kib, seconds = run_measured(argv, env=env, cwd=cwd, timeout=timeout,
                                                     address_space_mb=address_space_mb)
    return HostileRun(res, ALIVE in res.stdout, timed_out, peak_kib / 1024.0, seconds, list(commands))


def run_measured(argv, env: dict | None = None, cwd=None, timeout: float = 60,
                 address_space_mb: int = 8192) -> tuple[GdbResult, bool, int, float]:
    """Run *argv* (gdb) in its own session with RLIMIT_AS and no core dumps; return
    (result, timed out, gdb's peak RSS in KiB, seconds).  Killed with its group at *timeout*."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("TERM", "dumb")
    limit = address_space_mb << 20
    # gdb is started by a small launcher, not forked from pytest: a child forked from this
    # process starts with pytest's resident pages (hundreds of MB late in a run), and the kernel
    # keeps that high-water mark in ru_maxrss across exec.  The launcher reports gdb's own.
    rss_read, rss_write = os.pipe()
    launcher = ["/usr/bin/python3", "-I", "-S", "-c", _LAUNCHER, str(limit), str(rss_write)]
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(launcher + [os.fsencode(a) if isinstance(a, bytes) else a for a in argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                                pass_fds=(rss_write,), start_new_session=True)
    finally:
        os.close(rss_write)
    out: dict = {}

    def drain(name, stream):
        out[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s), daemon=True)
               for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    with os.fdopen(rss_read, "rb") as f:
        reported = f.read().strip()
    peak_kib = int(reported) if reported.isdigit() else usage.ru_maxrss
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        os.killpg(proc.pid, signal.SIGKILL)        # helpers gdb left behind
    except ProcessLookupError:
        pass
    for r in readers:
        r.join(10)
    seconds = time.monotonic() - t0
    res = GdbResult(out.get("stdout", b"").decode("utf-8", "replace"),
                    out.get("stderr", b"").decode("utf-8", "replace"), proc.returncode)
    return res, timed_out.is_set(), peak_kib, seconds


def assert_survived(run: HostileRun, max_rss_mb: float = 500, max_seconds: float | None = None,
                    expect: str | None = None, gdb_stop_lines: bool = False) -> None:
    """gdb alive, not killed, no traceback / internal error, the error one line (run one
    toolkit command per run_hostile; gdb's own BFD/warning lines are not counted), bounded
    RSS and time; *expect*: a substring the error (or output) must contain (so the test knows
    the command refused for the right reason, not something earlier); *gdb_stop_lines*: the
    command continues the program, so gdb's own stop report may print a hostile name."""
    d = run.describe()
    assert not run.timed_out, f"gdb blocked or ran past the timeout: {d}"
    assert run.alive, f"gdb did not survive: {d}"
    out = run.result.output
    assert "Traceback" not in out and "internal error" not in out, d
    assert "virtual memory exhausted" not in out and "MemoryError" not in out, d
    # TERM=dumb and no tty: the toolkit prints no escape sequence, so one in the last command's
    # output came from a name in the input reaching the terminal raw (gdb's own messages while
    # loading a hostile core are gdb's business and come before the marker)
    last = run.last_output
    if gdb_stop_lines:           # gdb's own stop report ("Breakpoint 1, f () at FILE:LINE" and
        last = "\n".join(ln for ln in last.splitlines()     # the source line) names files raw
                         if not re.match(r"(Temporary )?[Bb]reakpoint \d+, |\d+\t", ln))
    assert "\x1b" not in last, f"an escape sequence reached the output: {d!r}"
    assert run.peak_rss_mb < max_rss_mb, f"peak RSS {run.peak_rss_mb:.0f} MB >= {max_rss_mb}: {d}"
    if max_seconds is not None:
        assert run.seconds < max_seconds, f"took {run.seconds:.1f}s >= {max_seconds}: {d}"
    assert len(run.error_lines) <= 1, f"the error is not one line: {run.error_lines}\n{d}"
    if expect is not None:
        assert expect in out, f"expected {expect!r} in the output: {d}"
