"""ktrace's report (the ``--json`` result, schema gdb_toolkit/schemas/ktrace.schema.json) and its
text rendering.  Pure."""

from gdb_toolkit.common.record import field, record
from gdb_toolkit.ktrace.protocol import TraceEvent

EXACT = 1 << 53           # JSON numbers above this lose bits in jq and JavaScript


def json_value(v):
    """A traced value for JSON: the integer when a double holds it exactly, else None (its
    ``*_words`` twin has it exactly).  Contract v4: one JSON type per key, as retval's."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= EXACT:
        return None
    return v


def location(frame):
    """A kernel stack frame [address, symbol, offset, module] as the common location object."""
    from gdb_toolkit.common.location import kernel_location

    addr, sym, off, mod = (list(frame) + [None, None, None])[:4]
    return kernel_location(addr, sym, off, mod)


def frame_text(frame) -> str:
    addr, sym, off, mod = (list(frame) + [None, None, None])[:4]
    if not sym:
        return f"0x{addr:x}"
    return sym + (f"+0x{off:x}" if off else "") + (f" [{mod}]" if mod else "")


def word(v) -> str | None:
    """A value as the 64-bit word the register held: "0x..." (exact everywhere)."""
    return None if v is None else f"0x{v & ((1 << 64) - 1):x}"


@record
class EventRecord:
    """One event as the JSON result shows it.  Contract v3/v4 (docs/json.md): `retval`, every
    `args` and `captured` value is a number (null when a double cannot hold it exactly); the
    registers and words themselves are `retval_word`, `arg_words`, `captured_words` ("0x...",
    exact).  The --capture values are `captured` (ktask's `fields` is a list of member objects)."""
    time_ns: int
    pid: int
    tid: int
    comm: str
    task_address: int
    function: str
    args: dict
    arg_words: dict             # {name: "0x..."}: the argument registers, exact
    captured: dict
    captured_words: dict        # {path: "0x..."}: the members' words, exact
    retval: int | None          # exact, or None (see retval_word)
    retval_word: str | None     # the return register as "0x..." (pointers, large unsigned values)
    stack: list


def event_record(e: TraceEvent) -> EventRecord:
    exact = e.retval if e.retval is None or abs(e.retval) < EXACT else None
    return EventRecord(e.time_ns, e.pid, e.tid, e.comm, e.task, e.function,
                       {k: json_value(v) for k, v in e.args.items()},
                       {k: word(v) for k, v in e.args.items()},
                       {k: json_value(v) for k, v in e.fields.items()},
                       {k: word(v) for k, v in e.fields.items()},
                       exact, word(e.retval), [location(f) for f in e.stack])


@record
class KtraceReport:
    requested: str
    attach_method: str
    traced_function: str
    why: str                                    # why a fallback was traced and how values relate
    state: str                                  # 'armed' (still running) | 'done'
    pid: int | None
    events: list = field(default_factory=list)  # TraceEvent (EventRecord in the JSON)
    end_reason: str = ""
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: dict = field(default_factory=dict)
    programs: list[str] = field(default_factory=list)
    armed_seconds: float = 0.0
    convenience: dict = field(default_factory=dict)   # $ktask/$kretval/$kevents as set
    stop_reason: str = ""                       # --run: why the inferior stopped
    loader: str = ""                            # 'assembled' (no compiler) | 'bcc'
    warm: bool = False                          # served by the session's warm worker
    count: int = 0                              # events received (more than `events` when
    #                                             gdb's memory bound dropped the earlier ones)

    def for_json(self) -> "KtraceReport":
        from gdb_toolkit.common.record import replace

        return replace(self, events=[event_record(e) for e in self.events],
                       count=max(self.count, len(self.events)))


def format_value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and abs(v) >= 1 << 20:
        from gdb_toolkit.common.render import human_size
        return f"{v} ({human_size(v)})" if v < 1 << 40 else f"0x{v & ((1 << 64) - 1):x}"
    return str(v)


def _how(report: KtraceReport) -> str:
    parts = ["warm worker" if report.warm else "", {"assembled": "programs assembled, no compiler",
                                                     "bcc": "compiled by bcc"}.get(report.loader, "")]
    parts = [p for p in parts if p]
    return f" ({'; '.join(parts)})" if parts else ""


#: the terminal table shows the last this many events (--json has every kept one)
TABLE_ROWS = 100


def render(report: KtraceReport, width: int | None = None, styler=None) -> str:
    from gdb_toolkit.common.table import Col, render_table
    from gdb_toolkit.common.text import key_values, wrap

    method = report.attach_method
    head = [("ktrace", f"{method} on {report.traced_function}"
             + ("" if report.traced_function in (report.requested, report.requested.split(":", 1)[-1])
                else f" (requested {report.requested})")),
            ("why", report.why or None),
            ("pid", str(report.pid) if report.pid else "all processes"),
            ("armed in", f"{report.armed_seconds:.2f} s" + _how(report))]
    text = key_values(head, width, styler)
    for s in report.skipped:
        text += wrap(f"not used: {s}", width, "  ", "    ")
    for n in report.notes:
        text += wrap(f"note: {n}", width, "  ", "    ")
    for name, why in report.unavailable.items():
        text += wrap(f"{name}: unavailable ({why})", width, "  ", "    ")
    if report.stop_reason:
        text += wrap(f"inferior stopped: {report.stop_reason}", width, "", "  ")
    if report.state == "armed":
        text += wrap("armed: continue the program; events are reported when it stops "
                     "(ktrace --stop ends tracing)", width)
        return text
    if not report.events:
        text += wrap(f"no events ({report.end_reason or 'stopped'})", width, "", "  ")
    else:
        argnames = sorted({k for e in report.events for k in e.args})
        fieldnames = sorted({k for e in report.events for k in e.fields})
        has_ret = any(e.retval is not None for e in report.events)
        t0 = report.events[0].time_ns
        rows = []
        shown = report.events[-TABLE_ROWS:]
        total = max(report.count, len(report.events))
        if total > len(shown):
            text += wrap(f"the last {len(shown)} of {total} events (times from the first kept one; "
                         f"--json has the {len(report.events)} kept):", width)
        for e in shown:
            row = [f"+{(e.time_ns - t0) / 1e6:.3f}ms", e.pid, e.tid, e.comm, f"0x{e.task:x}"]
            row += [format_value(e.args.get(a)) for a in argnames]
            row += [format_value(e.fields.get(f)) for f in fieldnames]
            if has_ret:
                row.append(format_value(e.retval))
            rows.append(row)
        cols = ([Col("time", "number"), Col("pid", "number"), Col("tid", "number"), Col("comm", "key"),
                 Col("task", "address")] + [Col(a, "number") for a in argnames]
                + [Col(f, "number") for f in fieldnames] + ([Col("retval", "number")] if has_ret else []))
        text += render_table(cols, rows, width, styler=styler)
        last = report.events[-1]
        if last.stack:
            text += "kernel stack of the last event:\n" + "".join(
                _frame_line(i, f, width, styler) for i, f in enumerate(last.stack))
        text += f"{total} event(s), ended: {report.end_reason or 'stopped'}\n"
    if report.convenience:
        text += convenience_line(report.convenience, width, styler)
    return text


def _frame_line(i: int, frame, width: int | None, styler=None) -> str:
    """``  #i symbol+0xoff [module]`` as gdb's backtrace styles a frame: the function in
    gdb's function style, a bare address in its address style; wrapped under itself."""
    from gdb_toolkit.common.text import wrap_lines

    plain = wrap_lines(f"#{i} {frame_text(frame)}", width, "  ", "      ")
    if styler is None:
        return "\n".join(plain) + "\n"
    addr, sym = (list(frame) + [None, None])[:2]
    token, role = (sym, "function") if sym else (f"0x{addr:x}", "address")
    head = f"  #{i} "
    first = plain[0]
    if first.startswith(head + token):
        first = head + styler(role, token) + first[len(head) + len(token):]
    return "\n".join([first, *plain[1:]]) + "\n"


def convenience_line(values: dict, width: int | None, styler=None) -> str:
    """``$kevents = 3, $ktask = (struct task_struct *) 0xffff...``: each ``$name = value``
    whole on its line when the line holds it, else its value, else its cast (the line
    wrapped inside ``(void *)`` / ``(struct task_struct *)`` at 40 columns), the addresses
    in gdb's address style."""
    import re

    from gdb_toolkit.common.text import wrap_lines

    items = [f"${k} = {v}" for k, v in values.items()]
    keep = []
    for n, (k, v) in enumerate(values.items()):    # the widest that fits of: the item (with
        cast = v[:v.index(") ") + 1] if v.startswith("(") and ") " in v else v  # its comma),
        item = f"${k} = {v}" + ("," if n < len(values) - 1 else "")            # value, cast
        keep.append(next((t for t in (item, v, cast) if width is None or len(t) <= width), cast))
    lines = wrap_lines(", ".join(items), width, keep=keep)
    if styler is not None:
        lines = [re.sub(r"0x[0-9a-f]+", lambda m: styler("address", m.group(0)), ln) for ln in lines]
    return "\n".join(lines) + "\n"
