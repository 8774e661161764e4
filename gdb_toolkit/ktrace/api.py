"""Python API for live kernel tracing (no gdb import): spawn the bcc worker,
wait until it is armed, stream its events, stop it.

    from gdb_toolkit.ktrace.api import TraceSpec, start, trace
    session = start(TraceSpec("acct_stack_growth", pid=1234, ret=True, args=["size"]))
    print(session.armed.attach_method, session.armed.traced_function, session.armed.note)
    for ev in session.events():        # ends at count/timeout/stop()
        print(ev.task, ev.args, ev.retval)
    result = trace(TraceSpec("thp_get_unmapped_area", pid=1234, count=1, timeout=10))
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.ktrace.protocol import (Armed, ProtocolError, TraceEvent, armed_from, decode,
                                         event_from)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_PYTHON = "/usr/bin/python3"
WORKER_ENV = "GDB_TOOLKIT_KTRACE_WORKER"     # override the worker command (tests: a fake worker)
ARM_TIMEOUT = float(os.environ.get("GDB_TOOLKIT_KTRACE_ARM_TIMEOUT", "600"))

__all__ = ["TraceSpec", "TraceSession", "TraceResult", "TraceEvent", "Armed", "start", "trace"]


@dataclass
class TraceSpec:
    function: str                        # kernel function, or tracepoint:CAT:NAME
    pid: int | None = None               # only this process (tgid); None = every process
    ret: bool = False                    # also the return value (kretprobe/kretfunc/sys_exit)
    args: list[str] = field(default_factory=list)       # ["size", "start=vma->vm_start", "arg1"]
    stack: bool = False                  # symbolized kernel stack per event
    count: int | None = None             # stop after N events
    timeout: float | None = None         # stop after S seconds (from armed)
    fallbacks: list | None = None        # None = the known ones; [] = none; ["FUNC", "tracepoint:C:N"]
    capture: list[str] = field(default_factory=list)    # task_struct fields read at event time
    method: str | None = None            # force kprobe | kfunc | tracepoint
    include_self: bool = False           # with pid=None: also trace the caller and the worker
    caller_name: str = "the caller"      # how notes name the calling process ('gdb')

    def to_wire(self) -> dict:
        from gdb_toolkit.common.render import to_jsonable

        return to_jsonable(self)


@dataclass
class TraceResult:
    attach_method: str
    traced_function: str
    note: str
    events: list[TraceEvent] = field(default_factory=list)
    armed: Armed | None = None
    end_reason: str = ""


def worker_argv() -> list[str]:
    override = os.environ.get(WORKER_ENV)
    if override:
        import shlex
        return shlex.split(override)
    return [SYSTEM_PYTHON, "-m", "gdb_toolkit.ktrace.worker"]


class TraceSession:
    """A running worker.  ``armed`` is set once attached (start() waits for it)."""

    def __init__(self, spec: TraceSpec, argv: list[str] | None = None):
        self.spec = spec
        self.armed: Armed | None = None
        self.end: dict | None = None
        self.error: ToolkitError | None = None
        self.stderr_tail: list[str] = []
        self._q: "queue.Queue" = queue.Queue()
        self._events: list[TraceEvent] = []
        self._armed_evt = threading.Event()
        self._done = threading.Event()
        self.on_event = None            # optional callback(TraceEvent), called in the reader thread
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(argv or worker_argv(), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env=env, cwd=REPO, start_new_session=True, bufsize=1)
        except OSError as exc:
            raise ToolkitError(f"cannot start the ktrace worker ({exc})",
                               f"install python3 at {SYSTEM_PYTHON} with python3-bpfcc") from None
        wire = spec.to_wire()
        wire["parent_pid"] = os.getpid()
        if spec.pid is None and not spec.include_self:
            # every event makes the worker write and the caller read a pipe: tracing them
            # would be a feedback loop (read(2), vfs_read, pipe_read, ...)
            wire["exclude"] = {"pid": os.getpid(), "name": spec.caller_name}
        import json
        self.proc.stdin.write(json.dumps(wire) + "\n")
        self.proc.stdin.flush()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- reader threads --------------------------------------------------------------------------
    def _read_stdout(self):
        try:
            for line in self.proc.stdout:
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = decode(line)
                except ProtocolError as exc:
                    self.stderr_tail.append(str(exc))
                    continue
                kind = msg["type"]
                if kind == "armed":
                    self.armed = armed_from(msg)
                    self._armed_evt.set()
                elif kind == "event":
                    ev = event_from(msg)
                    self._events.append(ev)
                    self._q.put(ev)
                    if self.on_event:
                        try:
                            self.on_event(ev)
                        except Exception:
                            pass
                elif kind == "error":
                    cause = msg.get("cause", "ktrace worker failed")
                    if "compile" in cause:
                        time.sleep(0.2)     # let the stderr reader catch the compiler's words
                        errs = [l for l in self.stderr_tail if "error:" in l]
                        if errs:
                            cause += f" ({errs[0].strip()})"
                    self.error = ToolkitError(cause, msg.get("fix") or None)
                elif kind == "end":
                    self.end = msg
        finally:
            if self.error is None and self.end is None:
                self.proc.wait()
                tail = "; ".join(self.stderr_tail[-3:])
                self.error = ToolkitError(f"the ktrace worker died (exit status {self.proc.returncode})"
                                          + (f": {tail}" if tail else ""),
                                          "run toolkit doctor; GDB_TOOLKIT_DEBUG=1 shows the worker's errors")
            self._done.set()
            self._armed_evt.set()
            self._q.put(None)

    def _read_stderr(self):
        for line in self.proc.stderr:
            line = line.rstrip()
            if line:
                self.stderr_tail = (self.stderr_tail + [line])[-20:]
                if os.environ.get("GDB_TOOLKIT_DEBUG"):
                    sys.stderr.write(f"[ktrace worker] {line}\n")

    # -- public ----------------------------------------------------------------------------------
    def wait_armed(self, timeout: float | None = ARM_TIMEOUT, interrupted=None) -> Armed:
        """Block until armed; raise the worker's error.  *interrupted* is polled (Ctrl-C checks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._armed_evt.wait(0.05):
            if interrupted and interrupted():
                self.stop()
                raise KeyboardInterrupt
            if deadline and time.monotonic() > deadline:
                self.stop()
                raise ToolkitError(f"the ktrace worker was not armed after {timeout:.0f}s",
                                   "bcc compiles slowly on emulated CPUs: raise "
                                   "GDB_TOOLKIT_KTRACE_ARM_TIMEOUT")
        if self.armed is None:
            self._done.wait(5)
            raise self.error or ToolkitError("the ktrace worker ended before it was armed")
        return self.armed

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    @property
    def collected(self) -> list[TraceEvent]:
        return list(self._events)

    def poll(self) -> list[TraceEvent]:
        """Events received since the last poll/events() call, without blocking."""
        out = []
        while True:
            try:
                ev = self._q.get_nowait()
            except queue.Empty:
                return out
            if ev is None:
                self._q.put(None)
                return out
            out.append(ev)

    def events(self, timeout: float | None = None):
        """Iterate events until the worker ends (count, timeout, stop()) or *timeout* idle seconds."""
        while True:
            try:
                ev = self._q.get(timeout=timeout)
            except queue.Empty:
                return
            if ev is None:
                self._q.put(None)
                return
            yield ev

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def settle(self, quiet: float = 0.3, limit: float = 2.0) -> None:
        """Give in-flight events time to arrive (perf buffer poll + pipe) after the
        traced program stopped or ended: return once no new event came for *quiet*
        seconds, the worker ended, or *limit* seconds passed."""
        start = time.monotonic()
        seen, last_change = len(self._events), time.monotonic()
        while self.running and time.monotonic() - start < limit:
            time.sleep(0.05)
            n = len(self._events)
            if n != seen:
                seen, last_change = n, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break

    def stop(self, grace: float = 10.0) -> dict | None:
        """Ask the worker to detach (SIGINT) and wait; SIGKILL if it hangs (the kernel then
        drops its perf-event probes when the fds close)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
            if not self._done.wait(grace):
                try:
                    self.proc.kill()
                except ProcessLookupError:
                    pass
        self._done.wait(grace)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for s in (self.proc.stdin,):
            try:
                s.close()
            except Exception:
                pass
        return self.end

    def result(self) -> TraceResult:
        a = self.armed
        return TraceResult(a.attach_method if a else "", a.traced_function if a else "",
                           a.note if a else "", self.collected, a,
                           (self.end or {}).get("reason", ""))


def validate(spec: TraceSpec) -> None:
    """Everything that can be checked without the kernel, before any (root) worker starts."""
    import math

    from gdb_toolkit.ktrace.argexpr import parse_args_spec, parse_path
    from gdb_toolkit.ktrace.plan import METHODS, MAX_VALUES, split_target

    split_target(spec.function)
    if spec.count is not None and spec.count <= 0:
        raise ToolkitError("--count must be positive", "give --count 1 or more")
    if spec.timeout is not None and not (spec.timeout > 0 and math.isfinite(spec.timeout)):
        raise ToolkitError("--timeout must be positive", "give seconds, e.g. --timeout 10")
    if spec.pid is not None and spec.pid <= 0:
        raise ToolkitError(f"--pid {spec.pid} is not a process id", "give a running process's pid")
    if spec.method is not None and spec.method not in METHODS:
        raise ToolkitError(f"unknown attach method {spec.method!r}", f"use one of {', '.join(METHODS)}")
    n = len(parse_args_spec(spec.args)) + len([parse_path(c) for c in spec.capture])
    if n > MAX_VALUES:
        raise ToolkitError(f"too many values ({n})", f"ask for at most {MAX_VALUES}")


def start(spec: TraceSpec, argv: list[str] | None = None, wait: bool = True) -> TraceSession:
    """Spawn the worker for *spec*; by default return once armed (raises its error)."""
    validate(spec)
    session = TraceSession(spec, argv)
    if wait:
        try:
            session.wait_armed()
        except BaseException:
            session.stop()
            raise
    return session


def trace(spec: TraceSpec, argv: list[str] | None = None) -> TraceResult:
    """Arm, collect until count/timeout, and return everything.  Needs count or timeout."""
    if spec.count is None and spec.timeout is None:
        raise ToolkitError("trace() needs count or timeout", "set TraceSpec(count=N) or timeout=S")
    session = start(spec, argv)
    try:
        session.wait()
    finally:
        session.stop()
    if session.error and not session.collected:
        raise session.error
    return session.result()
