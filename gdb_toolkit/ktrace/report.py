"""ktrace's report and its text rendering (pure)."""
from dataclasses import dataclass, field

from gdb_toolkit.ktrace.protocol import TraceEvent


@dataclass
class KtraceReport:
    requested: str
    attach_method: str
    traced_function: str
    note: str
    state: str                                  # 'armed' (still running) | 'done'
    pid: int | None
    events: list[TraceEvent] = field(default_factory=list)
    end_reason: str = ""
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: dict = field(default_factory=dict)
    programs: list[str] = field(default_factory=list)
    armed_s: float = 0.0
    convenience: dict = field(default_factory=dict)   # $ktask/$kretval/$kevents as set
    stop_reason: str = ""                       # --run: why the inferior stopped
    loader: str = ""                            # 'assembled' (no compiler) | 'bcc'
    warm: bool = False                          # served by the session's warm worker


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


def render(report: KtraceReport, width: int | None = None) -> str:
    from gdb_toolkit.common.render import key_values, table

    method = report.attach_method
    head = [("ktrace", f"{method} on {report.traced_function}"
             + ("" if report.traced_function in (report.requested, report.requested.split(":", 1)[-1])
                else f" (requested {report.requested})")),
            ("why", report.note or None),
            ("pid", str(report.pid) if report.pid else "all processes"),
            ("armed in", f"{report.armed_s:.2f} s" + _how(report))]
    text = key_values(head)
    for s in report.skipped:
        text += f"  not used: {s}\n"
    for n in report.notes:
        text += f"  note: {n}\n"
    for name, why in report.unavailable.items():
        text += f"  {name}: unavailable ({why})\n"
    if report.stop_reason:
        text += f"inferior stopped: {report.stop_reason}\n"
    if report.state == "armed":
        text += ("armed: continue the program; events are reported when it stops "
                 "(ktrace --stop ends tracing)\n")
        return text
    if not report.events:
        text += f"no events ({report.end_reason or 'stopped'})\n"
    else:
        argnames = sorted({k for e in report.events for k in e.args})
        fieldnames = sorted({k for e in report.events for k in e.fields})
        has_ret = any(e.retval is not None for e in report.events)
        t0 = report.events[0].time_ns
        rows = []
        for e in report.events:
            row = [f"+{(e.time_ns - t0) / 1e6:.3f}ms", e.pid, e.tid, e.comm, f"0x{e.task:x}"]
            row += [format_value(e.args.get(a)) for a in argnames]
            row += [format_value(e.fields.get(f)) for f in fieldnames]
            if has_ret:
                row.append(format_value(e.retval))
            rows.append(row)
        headers = ["time", "pid", "tid", "comm", "task"] + argnames + fieldnames + (["retval"] if has_ret else [])
        text += table(headers, rows, width=width)
        last = report.events[-1]
        if last.stack:
            text += "kernel stack of the last event:\n" + "".join(f"  #{i} {s}\n" for i, s in enumerate(last.stack))
        text += f"{len(report.events)} event(s), ended: {report.end_reason or 'stopped'}\n"
    if report.convenience:
        text += ", ".join(f"${k} = {v}" for k, v in report.convenience.items()) + "\n"
    return text
