"""The tracing worker: ``/usr/bin/python3 -m gdb_toolkit.ktrace.worker``.

Reads one JSON spec line on stdin, compiles and attaches a bcc program, and
writes protocol lines (see protocol.py) on stdout.  bcc is imported only here,
never in gdb's process.  It dies with its parent (PR_SET_PDEATHSIG, and EOF on
stdin), stops after ``count`` events or ``timeout`` seconds, and on
SIGINT/SIGTERM detaches everything before saying ``end``.
"""
import ctypes
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from gdb_toolkit.common.errors import ToolkitError  # noqa: E402
from gdb_toolkit.ktrace import protocol  # noqa: E402

PR_SET_PDEATHSIG = 1
TRACEFS = "/sys/kernel/tracing"

_stop = threading.Event()     # set by the stdin watcher (EOF: the parent is gone)
_signalled = False            # set by the signal handlers: no lock there (see _on_signal)
_out = None


def stopping() -> bool:
    return _signalled or _stop.is_set()


def emit(kind: str, **payload) -> None:
    _out.write(protocol.encode(kind, **payload) + "\n")
    _out.flush()


def _set_pdeathsig(parent_pid: int | None) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass
    if parent_pid and os.getppid() != parent_pid:   # parent died before prctl took effect
        sys.exit(0)


def _watch_stdin() -> None:
    """EOF on stdin means the parent is gone (or asked us to stop)."""
    try:
        while sys.stdin.readline():
            pass
    except (OSError, ValueError):
        pass
    _stop.set()


def _on_signal(signum, frame):
    # Only a plain assignment: a handler runs between bytecodes of the main thread, possibly
    # inside another handler (SIGINT from gdb, then PDEATHSIG's SIGTERM as gdb dies); taking
    # Event.set()'s lock there deadlocked the worker with its programs still attached.
    global _signalled
    _signalled = True


# -- the kernel's capabilities --------------------------------------------------------------------
def tracefs_dir(notes: list[str]) -> str | None:
    """A mounted tracefs, mounting it when we are root; None when impossible."""
    for d in (TRACEFS, "/sys/kernel/debug/tracing"):
        if os.path.exists(os.path.join(d, "events")):
            return d
    if os.geteuid() != 0:
        return None
    proc = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True, text=True)
    if proc.returncode == 0 and os.path.exists(os.path.join(TRACEFS, "events")):
        notes.append(f"tracefs was not mounted: mounted it at {TRACEFS} (mount -t tracefs nodev {TRACEFS})")
        return TRACEFS
    return None


def _kernel_config(option: str) -> str | None:
    from gdb_toolkit.doctor.host_facts import probe_kernel_config

    try:
        return probe_kernel_config(option)
    except Exception:
        return None


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


def kernel_caps(bcc, tracefs: str | None, oracle):
    from gdb_toolkit.ktrace.plan import KernelCaps

    kprobes = None
    if not (os.path.exists("/sys/bus/event_source/devices/kprobe")
            or (tracefs and os.path.exists(os.path.join(tracefs, "kprobe_events")))):
        cfg = _kernel_config("CONFIG_KPROBES")
        kprobes = ("no kprobes in this kernel (CONFIG_KPROBES is not set)" if cfg == "n" else
                   "no kprobe PMU and no kprobe_events in tracefs")
    kfunc = None
    if not bcc.BPF.support_kfunc():
        kfunc = ("no kfunc/fentry support (needs BTF and BPF trampolines: "
                 "bpf_trampoline_link_prog not in kallsyms)")
    from gdb_toolkit.kernel.kallsyms import symbol_names

    syms = set(symbol_names(types="tTwW"))
    tf = tracefs

    def tp_exists(cat, name):
        return bool(tf) and os.path.isdir(os.path.join(tf, "events", cat, name))

    return KernelCaps(
        kprobes=kprobes, kfunc=kfunc,
        tracefs=None if tracefs else "tracefs is not mounted and cannot be mounted (not root)",
        has_symbol=(lambda n: n in syms) if syms else (lambda n: True),
        in_btf=(lambda n: oracle.func_params(n) is not None) if oracle else (lambda n: False),
        tracepoint_exists=tp_exists)


def load_oracle(notes: list[str]):
    try:
        from gdb_toolkit.ktrace.btf_types import load_oracle as _load
        return _load()
    except ToolkitError as exc:
        notes.append(f"no BTF type information: {exc}")
    except ImportError as exc:
        notes.append(f"no BTF reader available ({exc})")
    return None


# -- one attempt ----------------------------------------------------------------------------------
def _read_format(tracefs: str, tp: str) -> dict:
    from gdb_toolkit.ktrace.tp_format import parse_format

    cat, name = tp.split(":")
    with open(os.path.join(tracefs, "events", cat, name, "format")) as f:
        return parse_format(f.read())


def _ret_info(oracle, function: str):
    try:
        return oracle.func_ret(function) if oracle else None
    except Exception:
        return None


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


def attach(bcc, headers, cand, spec, oracle, tracefs):
    """Compile and attach for one candidate; returns (bpf, program, values, times) or raises."""
    from gdb_toolkit.ktrace import bpf_source
    from gdb_toolkit.ktrace.argexpr import parse_args_spec
    from gdb_toolkit.ktrace.plan import resolve_values

    params = oracle.func_params(cand.function) if (oracle and cand.method != "tracepoint") else None
    tp_fields = _read_format(tracefs, cand.function) if cand.method == "tracepoint" else None
    values = resolve_values(parse_args_spec(spec.get("args") or []), spec.get("capture") or [],
                            cand, params, oracle, tp_fields)
    exit_off = 16
    if cand.exit_tracepoint and spec.get("ret"):
        exit_off = _read_format(tracefs, cand.exit_tracepoint).get("ret", (16, 8, True))[0]
    prog = bpf_source.generate(cand, values, spec.get("pid"), bool(spec.get("ret")),
                               bool(spec.get("stack")), len(params) if params is not None else None,
                               exit_off, excluded_pids(spec))
    if cand.method == "kfunc" and spec.get("ret") and params is None:
        raise RuntimeError("kretfunc needs the parameter count from BTF")
    os.environ.update(headers.env)
    if os.environ.get("GDB_TOOLKIT_DEBUG"):
        sys.stderr.write(prog.text + "\n")
    t0 = time.monotonic()
    try:
        b = bcc.BPF(text=prog.text, cflags=headers.cflags)      # kfunc programs attach here
    except Exception as exc:
        msg = str(exc)
        if "Failed to compile" in msg:
            raise ToolkitError(f"bcc could not compile the probe program against {headers.path}",
                               "check that the kernel headers package is complete "
                               "(toolkit doctor: bcc compile)") from None
        if "super-user" in msg and cand.method == "kfunc":
            msg = ("the kernel refused to load the fentry (BPF tracing) program: EPERM"
                   + (" even for root (a security policy blocks fentry here)" if os.geteuid() == 0 else ""))
        raise RuntimeError(msg.replace("kfunc__", "").strip()) from None
    t1 = time.monotonic()
    try:
        if cand.method == "kprobe":
            b.attach_kprobe(event=cand.function, fn_name=prog.entry)
            if prog.exit:
                # no maxactive: with it bcc falls back to a tracefs kprobe_events entry, which a
                # SIGKILLed worker would leave behind; the perf kprobe PMU cleans up with the fd
                b.attach_kretprobe(event=cand.function, fn_name=prog.exit)
        elif cand.method == "tracepoint":
            b.attach_tracepoint(tp=cand.function, fn_name=prog.entry)
            if prog.exit:
                b.attach_tracepoint(tp=cand.exit_tracepoint, fn_name=prog.exit)
    except Exception as exc:
        b.cleanup()
        raise RuntimeError(str(exc)) from None
    return b, prog, values, (t1 - t0, time.monotonic() - t1)


def excluded_pids(spec: dict) -> tuple:
    """The caller's and this worker's tgids when tracing every process (see TraceSpec.include_self)."""
    ex = spec.get("exclude")
    return (int(ex["pid"]), os.getpid()) if ex and not spec.get("pid") else ()


def exclusion_note(spec: dict) -> str | None:
    ex = spec.get("exclude")
    if not ex or spec.get("pid"):
        return None
    return (f"not traced: {ex.get('name') or 'the caller'} (pid {int(ex['pid'])}) and the ktrace worker "
            f"(pid {os.getpid()}), all their threads: they read and write the events' pipe")


def method_label(method: str, ret: bool, exit_tp: str | None) -> str:
    if method == "kprobe":
        return "kprobe+kretprobe" if ret else "kprobe"
    if method == "kfunc":
        return "kfunc+kretfunc" if ret else "kfunc"
    return "tracepoint+sys_exit" if (ret and exit_tp) else "tracepoint"


def _require_privileges() -> None:
    """BPF tracing needs root, or CAP_BPF + CAP_PERFMON (kernel >= 5.8), or CAP_SYS_ADMIN."""
    if os.geteuid() == 0:
        return
    cap = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    cap = int(line.split()[1], 16)
    except OSError:
        pass
    if cap & (1 << 21) or (cap & (1 << 38) and cap & (1 << 39)):
        return
    raise ToolkitError("ktrace needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs",
                       "run gdb as root (sudo gdb PROGRAM)")


def run(spec: dict) -> tuple[str, int]:
    from gdb_toolkit.ktrace import kheaders
    from gdb_toolkit.ktrace.fallbacks import Fallback, fallback_from_text, fallbacks_for
    from gdb_toolkit.ktrace.plan import failure_error, make_plan

    notes: list[str] = []
    _require_privileges()
    if exclusion_note(spec):
        notes.append(exclusion_note(spec))
    tracefs = tracefs_dir(notes)
    remove_stale_bcc_probes(tracefs, notes)
    try:
        import bcc   # after mounting tracefs: bcc picks its tracefs path at import
    except ImportError as exc:
        raise ToolkitError(f"bcc cannot be imported by {sys.executable} ({exc})",
                           "apt-get install python3-bpfcc") from None
    oracle = load_oracle(notes)
    caps = kernel_caps(bcc, tracefs, oracle)
    fbs = spec.get("fallbacks")
    if fbs is None:
        fbs = fallbacks_for(spec["function"].split(":", 1)[-1])
    else:
        fbs = [Fallback(**f) if isinstance(f, dict) else fallback_from_text(f) for f in fbs]
    plan = make_plan(spec["function"], fbs, caps, spec.get("method"))
    skipped = list(plan.skipped)
    headers = None
    for cand in plan.candidates:
        if headers is None:
            headers = kheaders.choose(platform.release())
            if headers.note:
                notes.append(headers.note)
        try:
            b, prog, values, (compile_s, attach_s) = attach(bcc, headers, cand, spec, oracle, tracefs)
        except RuntimeError as exc:
            skipped.append(f"{cand.method}:{cand.function}: {exc}")
            continue
        break
    else:
        raise failure_error(spec["function"], skipped)
    return _stream(b, prog, values, cand, spec, oracle, headers, notes, skipped, compile_s, attach_s)


def _stream(b, prog, values, cand, spec, oracle, headers, notes, skipped, compile_s, attach_s):
    ret = bool(spec.get("ret")) and prog.exit is not None
    note = cand.why
    if cand.is_fallback and cand.ret_note and spec.get("ret"):
        note += f"; {cand.ret_note}"
    if spec.get("ret") and not prog.exit:
        notes.append(f"--ret: tracepoint {cand.function} has no return value")
    names = [n[:15] for n in (prog.entry, prog.exit) if n]
    emit_armed = lambda: emit("armed", attach_method=method_label(cand.method, ret, cand.exit_tracepoint),
         traced_function=cand.function, requested=cand.requested, note=note, programs=names,
         skipped=skipped, headers=headers.path, notes=notes, compile_s=round(compile_s, 3),
         attach_s=round(attach_s, 3), unavailable={v.name: v.unavailable for v in values if v.unavailable},
         worker_pid=os.getpid())
    nv = prog.nvalues

    class Event(ctypes.Structure):
        _fields_ = [("time_ns", ctypes.c_uint64), ("task", ctypes.c_uint64), ("retval", ctypes.c_uint64),
                    ("vals", ctypes.c_uint64 * nv), ("pid", ctypes.c_uint32), ("tid", ctypes.c_uint32),
                    ("stack_id", ctypes.c_int32), ("flags", ctypes.c_uint32), ("comm", ctypes.c_char * 16)]

    ret_info = _ret_info(oracle, cand.function) if cand.method != "tracepoint" else (8, True)
    count = {"n": 0}
    limit = spec.get("count")
    # bpf_ktime_get_ns is CLOCK_MONOTONIC; report wall-clock-free monotonic ns plus an epoch offset
    mono_to_real = time.time_ns() - time.monotonic_ns()

    def on_event(cpu, data, size):
        if limit and count["n"] >= limit:
            return
        e = ctypes.cast(data, ctypes.POINTER(Event)).contents
        args, fields = {}, {}
        for i, v in enumerate(values):
            raw = e.vals[i]
            val = None if v.unavailable else (raw - (1 << 64) if v.signed and raw >> 63 else raw)
            (fields if v.kind == "field" else args)[v.name] = val
        stack = []
        if spec.get("stack") and e.stack_id >= 0:
            try:
                for addr in b["gtk_kt_stacks"].walk(e.stack_id):
                    stack.append(b.ksym(addr, show_offset=True).decode(errors="replace"))
            except Exception:
                pass
        retval = signed_retval(e.retval, ret_info) if e.flags & 1 else None
        emit("event", time_ns=e.time_ns, wall_ns=e.time_ns + mono_to_real, pid=e.pid, tid=e.tid,
             comm=e.comm.decode(errors="replace"), task=e.task, args=args, retval=retval, stack=stack,
             fields=fields, function=cand.function)
        count["n"] += 1

    # open the ring before saying 'armed': events submitted earlier would be dropped
    b["gtk_kt_events"].open_perf_buffer(on_event, page_cnt=64)
    emit_armed()
    deadline = time.monotonic() + float(spec["timeout"]) if spec.get("timeout") else None
    reason = "stopped"
    try:
        while True:
            if stopping():
                reason = "stopped"
                break
            if limit and count["n"] >= limit:
                reason = "count"
                break
            if deadline and time.monotonic() >= deadline:
                reason = "timeout"
                break
            b.perf_buffer_poll(timeout=100)
    finally:
        b.cleanup()
    return reason, count["n"]


def main() -> int:
    global _out
    # protocol on a private fd; anything bcc/libbcc prints goes to stderr
    _out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    line = sys.stdin.readline()
    try:
        spec = json.loads(line)
    except json.JSONDecodeError:
        emit("error", cause="worker: no JSON spec on stdin", fix="this is an internal error")
        emit("end", reason="error", events=0, detached=True)
        return 2
    _set_pdeathsig(spec.get("parent_pid"))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    threading.Thread(target=_watch_stdin, daemon=True).start()
    reason, n = "error", 0
    try:
        reason, n = run(spec)
    except ToolkitError as exc:
        emit("error", cause=exc.cause, fix=exc.fix or "")
    except Exception as exc:   # report, never a silent death
        emit("error", cause=f"worker internal error: {type(exc).__name__}: {exc}",
             fix="run with GDB_TOOLKIT_DEBUG=1 and report it")
        if os.environ.get("GDB_TOOLKIT_DEBUG"):
            import traceback
            traceback.print_exc()
    emit("end", reason=reason, events=n, detached=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
