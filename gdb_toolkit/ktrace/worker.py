"""The tracing worker: ``/usr/bin/python3 -I -S .../gdb_toolkit/ktrace/worker.py --parent PID``.

A helper process that stays warm for the caller's session: it reads one JSON request per line
on stdin -- ``{"type": "trace", ...}`` with the programs already planned and resolved by the
caller (prepare.py), or ``{"type": "stop"}`` -- and answers with protocol lines (protocol.py):
``armed``, ``event``..., ``error``, and always ``end`` per trace; ``bye`` when it leaves.

Loading: the assembled programs (bpf_codegen.py) go straight to bpf(2) and perf_event_open(2)
(bpf_runtime.py): no compiler.  fentry programs, and any program the verifier refuses, are
compiled by bcc from the equivalent C (bpf_source.py); bcc is imported only then, and only
here, never in gdb's process.

Lifetime: it dies with its parent (PR_SET_PDEATHSIG, and EOF on stdin), stops a trace after
``count`` events or ``timeout`` seconds or on ``stop``/SIGINT (detaching everything before
saying ``end``), and leaves after ``idle`` seconds without a request.  Between traces it holds
no BPF program, map or probe.
"""
import ctypes
import json
import os
import platform
import queue
import signal
import struct
import sys
import threading
import time

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from gdb_toolkit.common.errors import ToolkitError  # noqa: E402
from gdb_toolkit.ktrace import wire  # noqa: E402

PR_SET_PDEATHSIG = 1
IDLE_DEFAULT = 600.0

_stop = threading.Event()     # set when the worker must leave (EOF on stdin: the parent is gone)
_signalled = False            # SIGINT: stop the current trace (plain assignment, see _on_signal)
_quit_signal = False          # SIGTERM/SIGHUP: stop and leave
_trace_stop = threading.Event()   # a {"type": "stop"} request arrived
_requests: "queue.Queue" = queue.Queue()
_flushes: "queue.Queue" = queue.Queue()     # ids of {"type": "flush"} requests not yet answered
_wake_r, _wake_w = os.pipe()                # written when a control request arrives: wakes the poll
_out = None


def stopping() -> bool:
    """True when the current trace must end."""
    return _signalled or _quit_signal or _stop.is_set() or _trace_stop.is_set()


def emit(kind: str, **payload) -> None:
    _out.write(wire.encode(kind, **payload) + "\n")
    _out.flush()


def _set_pdeathsig(parent_pid: int | None) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass
    if parent_pid and os.getppid() != parent_pid:   # parent died before prctl took effect
        sys.exit(0)


def _read_stdin() -> None:
    """Requests in; ``stop`` acts at once; EOF means the parent is gone."""
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(msg, dict) and msg.get("type") == "stop":
                _trace_stop.set()
                _wake()
            elif isinstance(msg, dict) and msg.get("type") == "flush":
                _flushes.put(msg.get("id"))
                _wake()
            elif isinstance(msg, dict):
                _requests.put(msg)
    except (OSError, ValueError):
        pass
    _stop.set()
    _requests.put(None)


def _wake() -> None:
    try:
        os.write(_wake_w, b"x")
    except OSError:
        pass


def _answer_flushes(backend, emit_records) -> None:
    """Every record the kernel wrote before a flush request arrived is sent before its answer
    (the caller's settle() after the traced program stopped: no event lost to a timing guess)."""
    if _flushes.empty():
        return
    emit_records(backend.poll(0))
    while True:
        try:
            fid = _flushes.get_nowait()
        except queue.Empty:
            return
        emit("flushed", id=fid)


def _on_signal(signum, frame):
    # Only plain assignments: a handler runs between bytecodes of the main thread, possibly
    # inside another handler (SIGINT from gdb, then PDEATHSIG's SIGTERM as gdb dies); taking
    # Event.set()'s lock there deadlocked the worker with its programs still attached.
    global _signalled, _quit_signal
    if signum == signal.SIGINT:
        _signalled = True
    else:
        _quit_signal = True


# -- stale bcc leftovers -----------------------------------------------------------------------------
def remove_stale_bcc_probes(tracefs: str | None, notes: list[str]) -> None:
    """Kernels without the kprobe PMU get tracefs kprobe_events entries from bcc, named
    ``[pr]_FUNC_bcc_PID``; a worker killed with SIGKILL leaves them.  Remove those whose
    creating process is gone (they are unused by anyone)."""
    import re

    if not tracefs:
        return
    path = os.path.join(tracefs, "kprobe_events")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return
    removed = []
    for line in lines:
        m = re.match(r"^[pr]\d*:(?:(\w+)/)?(\w+_bcc_(\d+))\s", line)
        if not m or os.path.exists(f"/proc/{m.group(3)}"):
            continue
        name = f"{m.group(1)}/{m.group(2)}" if m.group(1) else m.group(2)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, f"-:{name}\n".encode())
            finally:
                os.close(fd)
            removed.append(m.group(2))
        except OSError:
            pass
    if removed:
        notes.append(f"removed {len(removed)} stale kprobe_events entr{'y' if len(removed) == 1 else 'ies'} "
                     f"left by killed bcc processes: {', '.join(removed)}")


def signed_retval(raw: int, info) -> int:
    """Interpret a raw return register: by the BTF return type when known, else
    errno-style (-4095..-1, as 64 or 32 bit) values become negative."""
    raw &= (1 << 64) - 1
    if info:
        size, signed = info
        mask = (1 << (8 * size)) - 1
        v = raw & mask
        if signed and v >> (8 * size - 1):
            v -= 1 << (8 * size)
        return v
    if raw >= (1 << 64) - 4095:
        return raw - (1 << 64)
    if (1 << 32) - 4095 <= raw < (1 << 32):
        return raw - (1 << 32)
    return raw


# -- backends: assembled programs through bpf(2), or bcc --------------------------------------------
class _Failed(Exception):
    """This attempt cannot be used; the message says why (the next attempt is tried)."""


class AsmBackend:
    loader = "assembled"

    def __init__(self, loaded):
        self.loaded = loaded
        if loaded.poller is not None:
            import select
            loaded.poller.register(_wake_r, select.EPOLLIN)   # control requests wake the poll

    def poll(self, timeout_ms: int) -> list[bytes]:
        out = self.loaded.poll(timeout_ms)
        _drain_wake()
        return out

    def close(self) -> None:
        if self.loaded.poller is not None:
            try:
                self.loaded.poller.unregister(_wake_r)
            except OSError:
                pass
        self.loaded.close()

    def stack(self, stack_id: int) -> list[int]:
        return self.loaded.stack(stack_id)

    @property
    def lost(self) -> int:
        return self.loaded.lost


def _drain_wake() -> None:
    import select

    while select.select([_wake_r], [], [], 0)[0]:
        try:
            os.read(_wake_r, 4096)
        except OSError:
            return


class BccBackend:
    loader = "bcc"

    def __init__(self, b):
        self.b = b
        self.pending: list[bytes] = []
        self.lost = 0

        def on_event(cpu, data, size):
            self.pending.append(ctypes.string_at(data, size))

        def on_lost(n):
            self.lost += n

        b["gtk_kt_events"].open_perf_buffer(on_event, page_cnt=64, lost_cb=on_lost)

    def poll(self, timeout_ms: int) -> list[bytes]:
        self.b.perf_buffer_poll(timeout=min(timeout_ms, 50))     # no wake-up fd here: poll often
        out, self.pending = self.pending, []
        return out

    def stack(self, stack_id: int) -> list[int]:
        try:
            return list(self.b["gtk_kt_stacks"].walk(stack_id))
        except Exception:
            return []

    def close(self) -> None:
        self.b.cleanup()


_bcc_state: dict = {}


def _bcc(notes: list[str], tracefs: str | None):
    """bcc and the kernel headers it compiles against (imported/chosen once per worker)."""
    if "bcc" not in _bcc_state:
        from gdb_toolkit.ktrace import kheaders

        remove_stale_bcc_probes(tracefs, notes)
        if sys.flags.no_site:           # started with -S: add the site directories (bcc's) now
            import site
            site.main()
        try:
            import bcc
        except ImportError as exc:
            raise _Failed(f"bcc cannot be imported by {sys.executable} ({exc}); "
                          "apt-get install python3-bpfcc") from None
        try:
            headers = kheaders.choose(platform.release())
        except ToolkitError as exc:
            raise _Failed(f"{exc.cause} ({exc.fix})") from None
        _bcc_state.update(bcc=bcc, headers=headers)
    headers = _bcc_state["headers"]
    if headers.note and headers.note not in notes:
        notes.append(headers.note)
    os.environ.update(headers.env)
    return _bcc_state["bcc"], headers


def load_with_bcc(att: dict, notes: list[str], tracefs: str | None):
    bcc, headers = _bcc(notes, tracefs)
    c = att["c"]
    if os.environ.get("GDB_TOOLKIT_DEBUG"):
        sys.stderr.write(c["text"] + "\n")
    try:
        b = bcc.BPF(text=c["text"], cflags=headers.cflags)      # kfunc programs attach here
    except Exception as exc:
        msg = str(exc)
        if "Failed to compile" in msg:
            raise ToolkitError(f"bcc could not compile the probe program against {headers.path}",
                               "check that the kernel headers package is complete "
                               "(toolkit doctor: bcc compile)") from None
        if "super-user" in msg and att["method"] == "kfunc":
            msg = ("the kernel refused to load the fentry (BPF tracing) program: EPERM"
                   + (" even for root (a security policy blocks fentry here)" if os.geteuid() == 0 else ""))
        raise _Failed(msg.replace("kfunc__", "").strip()) from None
    try:
        if att["method"] == "kprobe":
            b.attach_kprobe(event=att["function"], fn_name=c["entry"])
            if c["exit"]:
                # no maxactive: with it bcc falls back to a tracefs kprobe_events entry, which a
                # SIGKILLed worker would leave behind; the perf kprobe PMU cleans up with the fd
                b.attach_kretprobe(event=att["function"], fn_name=c["exit"])
        elif att["method"] == "tracepoint":
            b.attach_tracepoint(tp=att["function"], fn_name=c["entry"])
            if c["exit"]:
                b.attach_tracepoint(tp=att["exit_tracepoint"], fn_name=c["exit"])
    except Exception as exc:
        b.cleanup()
        raise _Failed(str(exc)) from None
    return BccBackend(b)


def load_attempt(att: dict, notes: list[str], tracefs: str | None):
    """A backend with *att*'s programs loaded and attached; raises _Failed to try the next."""
    from gdb_toolkit.ktrace import bpf_runtime

    # kernels older than 4.17 have no kprobe PMU: bcc's tracefs kprobe_events path serves them
    pmu_ok = att["method"] != "kprobe" or bpf_runtime.has_kprobe_pmu()
    if att.get("asm") and pmu_ok and os.environ.get("GDB_TOOLKIT_KTRACE_LOADER") != "bcc":
        try:
            return AsmBackend(bpf_runtime.load(att["asm"], tracefs))
        except bpf_runtime.BpfError as exc:
            if exc.stage != "load":
                raise _Failed(str(exc)) from None
            first = next((l for l in reversed(exc.log.splitlines()) if l.strip()), "")
            notes.append(f"{exc} {first!r}: compiled the same program with bcc instead"
                         " (please report this with GDB_TOOLKIT_DEBUG=1 output)")
            if os.environ.get("GDB_TOOLKIT_DEBUG"):
                sys.stderr.write(exc.log + "\n")
    return load_with_bcc(att, notes, tracefs)


# -- one trace ----------------------------------------------------------------------------------------
_ksyms: dict = {}


def _symbolize(addr: int) -> list:
    """[address, symbol, offset, module] (symbol None when no kallsyms symbol covers it)."""
    if "k" not in _ksyms:
        try:
            from gdb_toolkit.kernel.kallsyms import Kallsyms

            _ksyms["k"] = Kallsyms.load()
        except Exception:
            _ksyms["k"] = None
    k = _ksyms["k"]
    try:
        found = k.symbolize(addr) if k else None
    except Exception:
        found = None
    if not found:
        return [addr, None, None, None]
    name, off, mod = found
    return [addr, name, off, mod]


def decoder(att: dict):
    """raw record bytes -> event payload (layout of bpf_codegen.Layout / bpf_source's struct)."""
    from gdb_toolkit.common.names import escape_name
    from gdb_toolkit.ktrace.record import Layout

    values = att["values"]
    lay = Layout(max(1, len(values)))
    ret_info = tuple(att["ret_info"]) if att.get("ret_info") else None
    vals_fmt = struct.Struct(f"<{lay.nvalues}Q")

    def decode(raw: bytes, backend, want_stack: bool) -> dict | None:
        if len(raw) < lay.size:
            return None
        time_ns, task, retval = struct.unpack_from("<QQQ", raw, 0)
        vals = vals_fmt.unpack_from(raw, lay.vals)
        pid, tid, stack_id, flags = struct.unpack_from("<IIiI", raw, lay.pid)
        # lossless, as every name in the toolkit (common.names: \xNN, never U+FFFD)
        comm = escape_name(raw[lay.comm:lay.comm + 16].split(b"\0", 1)[0])
        args, fields = {}, {}
        for v, rawv in zip(values, vals):
            val = None if v["unavailable"] else (rawv - (1 << 64) if v["signed"] and rawv >> 63 else rawv)
            (fields if v["kind"] == "field" else args)[v["name"]] = val
        stack = [_symbolize(a) for a in backend.stack(stack_id)] if want_stack and stack_id >= 0 else []
        return dict(time_ns=time_ns, pid=pid, tid=tid, comm=comm, task=task, args=args,
                    retval=signed_retval(retval, ret_info) if flags & 1 else None, stack=stack,
                    fields=fields, function=att["function"])
    return decode


def run_trace(req: dict, served: int) -> tuple[str, int]:
    notes = list(req.get("notes") or [])
    skipped = list(req.get("skipped") or [])
    tracefs = req.get("tracefs")
    t0 = time.monotonic()
    for att in req.get("attempts") or []:
        if stopping():
            return "stopped", 0
        try:
            backend = load_attempt(att, notes, tracefs)
        except _Failed as exc:
            skipped.append(f"{att['method']}:{att['function']}: {exc}")
            continue
        break
    else:
        from gdb_toolkit.ktrace.plan import failure_error

        raise failure_error(req.get("function", "?"), skipped)
    armed_s = time.monotonic() - t0
    try:
        return _stream(backend, att, req, notes + list(att.get("notes") or []), skipped, armed_s, served)
    finally:
        backend.close()


def _stream(backend, att, req, notes, skipped, load_s, served):
    names = [n[:15] for n in (att["c"]["entry"], att["c"]["exit"]) if n] if backend.loader == "bcc" else \
        [p["name"] for p in att["asm"]["progs"]]
    emit("armed", attach_method=att["label"], traced_function=att["function"], requested=att["requested"],
         note=att["note"], programs=names, skipped=skipped, notes=notes, loader=backend.loader,
         compile_s=round(load_s, 3) if backend.loader == "bcc" else 0.0, attach_s=round(load_s, 3),
         unavailable={v["name"]: v["unavailable"] for v in att["values"] if v["unavailable"]},
         worker_pid=os.getpid(), warm=served > 0, flush=True)
    decode = decoder(att)
    limit = req.get("count")
    want_stack = bool(req.get("stack"))
    deadline = time.monotonic() + float(req["timeout"]) if req.get("timeout") else None
    mono_to_real = time.time_ns() - time.monotonic_ns()
    n = 0

    def emit_records(records):
        nonlocal n
        for raw in records:
            if limit and n >= limit:
                return
            ev = decode(raw, backend, want_stack)
            if ev is not None:
                emit("event", wall_ns=ev["time_ns"] + mono_to_real, **ev)
                n += 1

    while True:
        _answer_flushes(backend, emit_records)
        if stopping():
            reason = "stopped"
            break
        if limit and n >= limit:
            reason = "count"
            break
        if deadline and time.monotonic() >= deadline:
            reason = "timeout"
            break
        emit_records(backend.poll(100))
    if backend.lost:
        emit("note", text=f"{backend.lost} event(s) lost: the perf ring overflowed")
    return reason, n


def main(argv: list[str] | None = None) -> int:
    global _out, _signalled
    argv = sys.argv[1:] if argv is None else argv
    parent = int(argv[argv.index("--parent") + 1]) if "--parent" in argv else None
    idle = float(os.environ.get("GDB_TOOLKIT_KTRACE_IDLE", IDLE_DEFAULT))
    # protocol on a private fd; anything bcc/libbcc prints goes to stderr
    _out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    _set_pdeathsig(parent)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    threading.Thread(target=_read_stdin, daemon=True).start()
    served = 0
    idle_since = time.monotonic()
    while not (_stop.is_set() or _quit_signal):
        try:
            req = _requests.get(timeout=min(idle, 1.0))
        except queue.Empty:
            if time.monotonic() - idle_since >= idle:
                emit("bye", reason="idle")
                return 0
            continue
        if req is None:
            break
        if req.get("type") != "trace":
            continue
        _signalled = False
        _trace_stop.clear()
        reason, n = "error", 0
        try:
            reason, n = run_trace(req, served)
        except ToolkitError as exc:
            emit("error", cause=exc.cause, fix=exc.fix or "")
        except Exception as exc:   # report, never a silent death
            emit("error", cause=f"worker internal error: {type(exc).__name__}: {exc}",
                 fix="run with GDB_TOOLKIT_DEBUG=1 and report it")
            if os.environ.get("GDB_TOOLKIT_DEBUG"):
                import traceback
                traceback.print_exc()
        while not _flushes.empty():            # asked while the trace was ending: nothing pending
            emit("flushed", id=_flushes.get_nowait())
        emit("end", reason=reason, events=n, detached=True)
        served += 1
        idle_since = time.monotonic()
    emit("bye", reason="parent gone" if _stop.is_set() else "signal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
