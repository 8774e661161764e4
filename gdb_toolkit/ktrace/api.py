"""Python API for live kernel tracing (no gdb import): plan, hand the programs to the worker,
wait until it is armed, stream its events, stop it.

    from gdb_toolkit.ktrace.api import TraceSpec, start, trace
    session = start(TraceSpec("acct_stack_growth", pid=1234, ret=True, args=["size"]))
    print(session.armed.attach_method, session.armed.traced_function, session.armed.note)
    for ev in session.events():        # ends at count/timeout/stop()
        print(ev.task, ev.args, ev.retval)
    result = trace(TraceSpec("thp_get_unmapped_area", pid=1234, count=1, timeout=10))

Every argument is checked and every value resolved here (prepare.py) before a worker is
involved.  The worker (worker.py: root, isolated) stays warm for the rest of the process's
life, between traces holding nothing in the kernel, so the next trace skips its start-up; it
leaves after ``GDB_TOOLKIT_KTRACE_IDLE`` seconds (600) without work, and with this process.
"""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, record
from gdb_toolkit.ktrace.protocol import (Armed, ProtocolError, TraceEvent, armed_from, decode,
                                         event_from)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER_FILE = os.path.join(REPO, "gdb_toolkit", "ktrace", "worker.py")
SYSTEM_PYTHON = "/usr/bin/python3"
WORKER_ENV = "GDB_TOOLKIT_KTRACE_WORKER"     # override the worker command (tests: a fake worker)
ARM_TIMEOUT = float(os.environ.get("GDB_TOOLKIT_KTRACE_ARM_TIMEOUT", "600"))
#: events a session keeps (the last ones; each costs ~2 KiB in Python): a function hit 100k
#: times a second would otherwise grow gdb by hundreds of MiB a second.  The rest are counted.
MAX_KEPT = 10000
KEEP_ENV = "GDB_TOOLKIT_KTRACE_KEEP"


def max_kept() -> int:
    try:
        return max(1, int(os.environ.get(KEEP_ENV, MAX_KEPT)))
    except ValueError:
        return MAX_KEPT

__all__ = ["TraceSpec", "TraceSession", "TraceResult", "TraceEvent", "Armed", "start", "trace",
           "validate", "shutdown"]


@record
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


@record
class TraceResult:
    attach_method: str
    traced_function: str
    note: str
    events: list[TraceEvent] = field(default_factory=list)
    armed: Armed | None = None
    end_reason: str = ""
    received: int = 0                    # every event received: more than events when the
    #                                      memory bound (MAX_KEPT) kept only the last ones


# -- the worker process -------------------------------------------------------------------------------
def worker_argv() -> list[str]:
    override = os.environ.get(WORKER_ENV)
    if override:
        import shlex
        return shlex.split(override)
    # -I: no cwd or script dir on sys.path, PYTHON* ignored (the worker runs as root);
    # -S: no site-packages scan at start-up (seconds on a slow machine's root file system):
    # the worker imports only the standard library, and adds the site directories itself in
    # the rare case it needs bcc
    return [SYSTEM_PYTHON, "-I", "-S", WORKER_FILE, "--parent", str(os.getpid())]


def worker_env() -> dict:
    """The worker's environment: common/helper_process's allow-list plus the toolkit's own
    GDB_TOOLKIT_* settings; LD_*/PYTHON* and the like never reach this root process."""
    from gdb_toolkit.common.helper_process import helper_env
    return helper_env(keep=[k for k in os.environ if k.startswith("GDB_TOOLKIT_")])


class Worker:
    """One worker process; it serves one trace at a time, then waits for the next request."""

    def __init__(self, argv: list[str] | None = None):
        self.argv = argv or worker_argv()
        self.session: "TraceSession | None" = None
        self.served = 0
        self.stderr_tail: list[str] = []
        self.gone = threading.Event()
        self._lock = threading.Lock()
        try:
            from gdb_toolkit.common.helper_process import popen_helper
            # cwd /, own session, no inherited fds (popen_helper's defaults)
            self.proc = popen_helper(self.argv, env=worker_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)
        except OSError as exc:
            raise ToolkitError(f"cannot start the ktrace worker ({exc})",
                               f"install python3 at {SYSTEM_PYTHON} with python3-bpfcc") from None
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return not self.gone.is_set() and self.proc.poll() is None

    def send(self, msg: dict) -> bool:
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def _read_stdout(self):
        try:
            for line in self.proc.stdout:
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = decode(line)
                except ProtocolError as exc:
                    self.stderr_tail = (self.stderr_tail + [str(exc)])[-20:]
                    continue
                if msg["type"] == "bye":
                    self.gone.set()
                    continue
                with self._lock:
                    session = self.session
                if session is not None:
                    session._on_message(msg)
        except (OSError, ValueError):
            pass
        finally:
            self.gone.set()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            with self._lock:
                session = self.session
            if session is not None:
                session._on_worker_gone(self)

    def _read_stderr(self):
        try:
            for line in self.proc.stderr:
                line = line.rstrip()
                if line:
                    self.stderr_tail = (self.stderr_tail + [line])[-20:]
                    if os.environ.get("GDB_TOOLKIT_DEBUG"):
                        sys.stderr.write(f"[ktrace worker] {line}\n")
        except (OSError, ValueError):
            pass

    def kill(self) -> None:
        """SIGKILL (the kernel then drops its perf-event probes when the fds close)."""
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass

    def close(self, grace: float = 5.0) -> None:
        try:
            self.proc.stdin.close()           # EOF: the worker leaves
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(grace)


_pool_lock = threading.Lock()
_idle: list[Worker] = []


def _take_worker() -> Worker:
    """The warm idle worker when there is one (same command), else a new one."""
    argv = worker_argv()
    with _pool_lock:
        while _idle:
            w = _idle.pop()
            if w.alive and w.argv == argv:
                return w
            w.close(1)
    return Worker(argv)


def _release(worker: Worker) -> None:
    with _pool_lock:
        if worker.alive and not _idle:
            _idle.append(worker)
            return
    worker.close()


def shutdown() -> None:
    """Let the idle worker go now (it would leave by itself after the idle time)."""
    with _pool_lock:
        workers = list(_idle)
        _idle.clear()
    for w in workers:
        w.close()


# -- one trace --------------------------------------------------------------------------------------
class TraceSession:
    """A trace served by a worker.  ``armed`` is set once attached (start() waits for it)."""

    def __init__(self, spec: TraceSpec, prepared, worker: Worker):
        self.spec = spec
        self.prepared = prepared
        self.armed: Armed | None = None
        self.end: dict | None = None
        self.error: ToolkitError | None = None
        import collections

        self._q: "queue.Queue" = queue.Queue()
        self.keep = max_kept()
        self._events: "collections.deque[TraceEvent]" = collections.deque(maxlen=self.keep)
        self.received = 0               # every event the worker sent (kept or not)
        self._armed_evt = threading.Event()
        self._done = threading.Event()
        self._answered = False
        self._released = False
        self._flushed: set = set()
        self._flush_id = 0
        self.on_event = None            # optional callback(TraceEvent), called in the reader thread
        self.started = time.monotonic()
        self._attach(worker)

    def _attach(self, worker: Worker) -> None:
        self.worker = worker
        self.proc = worker.proc
        self.warm = worker.served > 0
        with worker._lock:
            worker.session = self
        if not worker.send(self._request(worker.pid)):
            self._on_worker_gone(worker)

    def _request(self, worker_pid: int) -> dict:
        spec, prep = self.spec, self.prepared
        from gdb_toolkit.ktrace.pidns import caller_namespace

        exclude = ()
        notes = list(prep.notes) if prep else []
        # pids are the caller's: in a child pid namespace the programs filter and report them
        # through that namespace, never as the kernel's global numbers (another process's)
        ns = caller_namespace()
        if ns is not None:
            notes.append(f"{spec.caller_name} is in a child pid namespace (pid:[{ns.ino}]): pids are "
                         "that namespace's, not the kernel's global ones"
                         + ("; a task outside it shows pid 0" if spec.pid is None else ""))
        if spec.pid is None and not spec.include_self:
            # every event makes the worker write and the caller read a pipe: tracing them
            # would be a feedback loop (read(2), vfs_read, pipe_read, ...)
            exclude = (os.getpid(), worker_pid)
            notes.append(f"not traced: {spec.caller_name} (pid {os.getpid()}) and the ktrace worker "
                         f"(pid {worker_pid}), all their threads: they read and write the events' pipe")
        return {"type": "trace", **spec.to_wire(), "parent_pid": os.getpid(),
                "exclude": {"pids": list(exclude)},
                "attempts": [a.wire(exclude, ns) for a in prep.attempts] if prep else [],
                "skipped": list(prep.skipped) if prep else [], "notes": notes,
                "tracefs": prep.tracefs if prep else None}

    # -- called from the worker's reader thread --------------------------------------------------
    def _on_message(self, msg: dict) -> None:
        kind = msg["type"]
        self._answered = True
        if kind == "armed":
            self.armed = armed_from(msg)
            self._armed_evt.set()
        elif kind == "event":
            ev = event_from(msg)
            self.received += 1
            self._events.append(ev)             # the oldest falls out past self.keep
            if self._q.qsize() >= self.keep:    # nobody reads the stream: bounded the same way
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    pass
            self._q.put(ev)
            if self.on_event:
                try:
                    self.on_event(ev)
                except Exception:
                    pass
        elif kind == "flushed":
            self._flushed.add(msg.get("id"))
        elif kind == "note":
            if self.armed is not None:
                self.armed.notes.append(str(msg.get("text", "")))
        elif kind == "error":
            cause = msg.get("cause", "ktrace worker failed")
            if "compile" in cause:
                time.sleep(0.2)     # let the stderr reader catch the compiler's words
                errs = [l for l in self.worker.stderr_tail if "error:" in l]
                if errs:
                    cause += f" ({errs[0].strip()})"
            self.error = ToolkitError(cause, msg.get("fix") or None)
        elif kind == "end":
            self.end = msg
            self.worker.served += 1
            self._finish()

    def _on_worker_gone(self, worker: Worker) -> None:
        if worker is not self.worker or self._done.is_set():
            return
        if self.error is None and self.end is None:
            rc = worker.proc.poll()
            tail = "; ".join(worker.stderr_tail[-3:])
            self.error = ToolkitError(f"the ktrace worker died (exit status {rc})"
                                      + (f": {tail}" if tail else ""),
                                      "run toolkit doctor; GDB_TOOLKIT_DEBUG=1 shows the worker's errors")
        self._finish()

    def _finish(self) -> None:
        with self.worker._lock:
            if self.worker.session is self:
                self.worker.session = None
        self._done.set()
        self._armed_evt.set()
        self._q.put(None)

    # -- public ---------------------------------------------------------------------------------
    def wait_armed(self, timeout: float | None = ARM_TIMEOUT, interrupted=None) -> Armed:
        """Block until armed; raise the worker's error.  *interrupted* is polled (Ctrl-C checks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while not self._armed_evt.wait(0.05):
                if interrupted and interrupted():
                    self.stop()
                    raise KeyboardInterrupt
                if deadline and time.monotonic() > deadline:
                    self.stop()
                    raise ToolkitError(f"the ktrace worker was not armed after {timeout:.0f}s",
                                       "bcc compiles slowly on emulated CPUs: raise "
                                       "GDB_TOOLKIT_KTRACE_ARM_TIMEOUT")
            if self.armed is None and not self._answered and self.warm:
                # the warm worker left (idle time) just as the request went out: start afresh
                self._retry()
                continue
            break
        if self.armed is None:
            self._release_worker()
            raise self.error or ToolkitError("the ktrace worker ended before it was armed")
        return self.armed

    def _retry(self) -> None:
        self.error = None
        self._done.clear()
        self._armed_evt.clear()
        self._q = queue.Queue()
        self._attach(Worker())

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    @property
    def collected(self) -> list[TraceEvent]:
        """The events kept: the last ``keep`` of ``received``."""
        return list(self._events)

    @property
    def dropped(self) -> int:
        """Events received but no longer kept (the memory bound, MAX_KEPT)."""
        return self.received - len(self._events)

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
        """Iterate events until the trace ends (count, timeout, stop()) or *timeout* idle seconds."""
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
        """Wait for in-flight events after the traced program stopped or ended.  The worker
        is asked to flush: its answer comes after every record the kernel had written (exact,
        however slow the machine).  A worker that cannot flush: return once no new event came
        for *quiet* seconds.  Either way at most *limit* seconds (10x that for a flush)."""
        start = time.monotonic()
        if self.armed is not None and self.armed.flush and self.running:
            self._flush_id += 1
            fid = self._flush_id
            if self.worker.send({"type": "flush", "id": fid}):
                while self.running and fid not in self._flushed and time.monotonic() - start < 10 * limit:
                    time.sleep(0.01)
                return
        seen, last_change = self.received, time.monotonic()
        while self.running and time.monotonic() - start < limit:
            time.sleep(0.05)
            n = self.received
            if n != seen:
                seen, last_change = n, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break

    def stop(self, grace: float = 10.0) -> dict | None:
        """Ask the worker to detach and wait for its ``end``; SIGKILL it if it hangs (the kernel
        then drops its perf-event probes when the fds close).  The worker stays warm."""
        if not self._done.is_set():
            if not self.worker.send({"type": "stop"}):
                self.worker.kill()
            if not self._done.wait(grace):
                self.worker.kill()
                self._done.wait(grace)
        self._release_worker()
        return self.end

    def _release_worker(self) -> None:
        if not self._released:
            self._released = True
            _release(self.worker)

    def result(self) -> TraceResult:
        a = self.armed
        return TraceResult(a.attach_method if a else "", a.traced_function if a else "",
                           a.note if a else "", self.collected, a,
                           (self.end or {}).get("reason", ""), self.received)


def validate(spec: TraceSpec) -> None:
    """Everything that can be checked without the kernel, before any (root) worker starts."""
    import math

    from gdb_toolkit.ktrace.argexpr import parse_args_spec, parse_path
    from gdb_toolkit.ktrace.plan import METHODS, MAX_VALUES, split_target

    split_target(spec.function)
    if spec.count is not None and spec.count <= 0:
        raise ToolkitError("--count must be positive", "give --count 1 or more")
    if spec.timeout is not None and not (spec.timeout > 0 and math.isfinite(spec.timeout)):
        # inf was told "must be positive": it is; it is no number of seconds (nor is nan)
        raise ToolkitError(f"--timeout {spec.timeout:g} is not a finite positive number of seconds",
                           "give seconds, e.g. --timeout 10 (none: until the count or Ctrl-C)")
    if spec.pid is not None and spec.pid <= 0:
        raise ToolkitError(f"--pid {spec.pid} is not a process id", "give a running process's pid")
    if spec.pid is not None:
        from gdb_toolkit.ktrace import pidns

        pidns.check_target(spec.pid, pidns.caller_namespace())
    if spec.method is not None and spec.method not in METHODS:
        raise ToolkitError(f"unknown attach method {spec.method!r}", f"use one of {', '.join(METHODS)}")
    n = len(parse_args_spec(spec.args)) + len([parse_path(c) for c in spec.capture])
    if n > MAX_VALUES:
        raise ToolkitError(f"too many values ({n})", f"ask for at most {MAX_VALUES}")


def start(spec: TraceSpec, argv: list[str] | None = None, wait: bool = True,
          facts=None) -> TraceSession:
    """Check and plan *spec* (raises on any bad argument), hand it to a warm or new worker;
    by default return once armed (raises the worker's error).  *argv*: a stand-in worker
    command (tests); *facts*: a stand-in for prepare.KernelFacts (tests)."""
    from gdb_toolkit.ktrace.prepare import prepare

    validate(spec)
    stand_in = argv is not None or bool(os.environ.get(WORKER_ENV))
    try:
        prepared = prepare(spec, facts)
    except ToolkitError:
        if not stand_in:
            raise
        prepared = None                  # a stand-in worker decides by itself
    if argv is not None:
        worker = Worker(argv)
    else:
        worker = _take_worker()
    session = TraceSession(spec, prepared, worker)
    if wait:
        try:
            session.wait_armed()
        except BaseException:
            session.stop()
            raise
    return session


def trace(spec: TraceSpec, argv: list[str] | None = None, facts=None) -> TraceResult:
    """Arm, collect until count/timeout, and return everything.  Needs count or timeout."""
    if spec.count is None and spec.timeout is None:
        raise ToolkitError("trace() needs count or timeout", "set TraceSpec(count=N) or timeout=S")
    session = start(spec, argv, facts=facts)
    try:
        session.wait()
    finally:
        session.stop()
    if session.error and not session.collected:
        raise session.error
    return session.result()
