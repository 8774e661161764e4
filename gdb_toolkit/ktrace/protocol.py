"""The worker's wire protocol: one JSON object per line on its stdout.

Per trace request: ``{"type": "armed", ...}`` once attached, then ``{"type": "event", ...}``
per event (``{"type": "note", "text"}`` for lost records), ``{"type": "error", "cause", "fix"}``
on failure, and always a final ``{"type": "end", "reason", "events", "detached"}``.  The worker
then waits for the next request.  ``{"type": "flush", "id"}`` during a trace is answered by
``{"type": "flushed", "id"}`` after every record already in the kernel's rings; ``{"type": "bye", "reason"}`` is its last line.  Pure.
"""
import json

from gdb_toolkit.common.record import field, fields, record
from gdb_toolkit.ktrace.wire import TYPES, encode  # noqa: F401 -- one encoder, shared with the worker


@record
class TraceEvent:
    time_ns: int
    pid: int
    tid: int
    comm: str
    task: int
    args: dict = field(default_factory=dict)
    retval: int | None = None
    stack: list = field(default_factory=list)        # [address, symbol, offset, module] per frame
    fields: dict = field(default_factory=dict)     # capture mode: task fields read at event time
    function: str = ""


@record
class Armed:
    attach_method: str           # kprobe | kretprobe | kfunc | kretfunc | tracepoint
    traced_function: str         # what was actually attached (function or CAT:NAME)
    requested: str
    note: str = ""               # why a fallback was traced, how its values relate
    programs: list[str] = field(default_factory=list)   # BPF program names (bpftool prog show)
    skipped: list[str] = field(default_factory=list)    # what was tried and why it failed
    headers: str = ""            # kernel headers bcc compiled against
    notes: list[str] = field(default_factory=list)      # environment actions (tracefs mounted...)
    compile_s: float = 0.0
    attach_s: float = 0.0
    loader: str = ""             # 'assembled' (bpf(2) directly) | 'bcc' (compiled)
    worker_pid: int = 0
    warm: bool = False           # the worker had served a trace before (no start-up cost)
    flush: bool = False          # the worker answers {"type": "flush"} (exact settle)
    unavailable: dict = field(default_factory=dict)     # value name -> why


class ProtocolError(Exception):
    pass


def decode(line: str) -> dict:
    try:
        msg = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {line[:120]!r} ({exc})") from None
    if not isinstance(msg, dict) or msg.get("type") not in TYPES:
        raise ProtocolError(f"not a worker message: {line[:120]!r}")
    return msg


def event_from(msg: dict) -> TraceEvent:
    return TraceEvent(int(msg["time_ns"]), int(msg["pid"]), int(msg["tid"]), str(msg.get("comm", "")),
                      int(msg["task"]), dict(msg.get("args") or {}), msg.get("retval"),
                      list(msg.get("stack") or []), dict(msg.get("fields") or {}),
                      str(msg.get("function", "")))


def armed_from(msg: dict) -> Armed:
    known = {f.name for f in fields(Armed)}
    return Armed(**{k: v for k, v in msg.items() if k in known})
