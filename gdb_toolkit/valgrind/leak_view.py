"""From parsed leak_check output to the vg-leaks report: filter, sort, totals, deltas.

Totals are computed from the loss records whenever the records are complete
(all kinds, mode ``any``): valgrind 3.19's LEAK SUMMARY is wrong after
``leak_check ... limited N`` (it only counts the records it printed), and that
wrong summary also becomes the base of the next search's deltas.  Summary
deltas are therefore computed here, against the previous vg-leaks snapshot.
"""
from dataclasses import dataclass, field

from gdb_toolkit.valgrind.leak_records import KINDS, KindTotal, LeakCheckOutput, LossRecord


@dataclass
class LeakRow:
    record: int
    kind: str
    bytes: int
    direct_bytes: int
    indirect_bytes: int
    blocks: int
    bytes_delta: int | None
    blocks_delta: int | None
    function: str | None          # the allocating frame that belongs to the program
    location: str | None          # its file:line or object
    stack: list                   # the whole allocation stack (Frame list)
    block_list: list = field(default_factory=list)   # Block list (block_list output only)


@dataclass
class LeakReport:
    pid: int | None
    mode: str                     # full | summary
    monitor_command: str
    delta: str | None             # None | increased | changed
    kinds: list[str]
    records: list[LeakRow]
    records_total: int | None     # loss records valgrind has (the "of N")
    records_matched: int          # after --kinds/--delta/--min-bytes, before --top
    totals: dict[str, KindTotal]
    totals_source: str            # "records" | "valgrind summary" | "separate summary search"
    totals_delta: dict[str, int] | None   # bytes growth per kind since our previous check
    warnings: list[str] = field(default_factory=list)
    address: int | None = None    # vg-block ADDR: the address looked up


def totals_from_records(records: list[LossRecord]) -> dict[str, KindTotal]:
    """Per-kind direct bytes and blocks, the way valgrind's LEAK SUMMARY counts them."""
    out = {k: KindTotal(0, 0) for k in KINDS}
    for r in records:
        t = out[r.kind]
        t.bytes += r.direct_bytes
        t.blocks += r.blocks
    return out


def summary_totals(parsed: LeakCheckOutput) -> dict[str, KindTotal] | None:
    if parsed.summary is None:
        return None
    return {k: KindTotal(v.bytes, v.blocks) for k, v in parsed.summary.kinds.items() if k in KINDS}


def build_report(parsed: LeakCheckOutput, *, mode: str, monitor_command: str, kinds: list[str],
                 delta: str | None, min_bytes: int | None, top: int | None,
                 complete: bool, previous_totals: dict[str, int] | None = None,
                 extra_summary: LeakCheckOutput | None = None, with_stacks: bool = True) -> LeakReport:
    """Build the vg-leaks report.

    *complete*: the monitor command listed every record of every kind (so totals
    can be computed from the records).  *extra_summary*: a separate
    ``leak_check summary`` run used for totals when the records are partial.
    *previous_totals*: bytes per kind at our previous check, for totals_delta.
    *with_stacks*: put whole allocation stacks in the rows (JSON); the text table
    needs only the program frame.
    """
    warnings: list[str] = []
    records = [r for r in parsed.records if r.kind in kinds]
    if delta == "increased":
        records = [r for r in records if (r.bytes_delta or 0) > 0 or (r.blocks_delta or 0) > 0]
    elif delta == "changed":
        records = [r for r in records if (r.bytes_delta or 0) != 0 or (r.blocks_delta or 0) != 0]
    if min_bytes is not None:
        records = [r for r in records if r.bytes >= min_bytes]
    records.sort(key=lambda r: (-r.bytes, -r.blocks, r.number))
    matched = len(records)
    if top is not None:
        records = records[:top]

    vg_totals = summary_totals(parsed)
    if complete and mode == "full":
        totals = totals_from_records(parsed.records)
        source = "records"
        if vg_totals is not None:
            bad = [k for k in KINDS if k in vg_totals and
                   (vg_totals[k].bytes, vg_totals[k].blocks) != (totals[k].bytes, totals[k].blocks)]
            if bad:
                warnings.append("valgrind's LEAK SUMMARY disagrees with its own loss records for "
                                + ", ".join(bad) + " (valgrind 3.19 miscounts after 'limited N'); "
                                "totals computed from the records")
    elif extra_summary is not None and summary_totals(extra_summary) is not None:
        totals = summary_totals(extra_summary)
        source = "separate summary search"
    elif vg_totals is not None:
        totals = vg_totals
        source = "valgrind summary"
    else:
        totals = {}
        source = "none"
    totals_delta = None
    if previous_totals is not None and totals:
        totals_delta = {k: totals[k].bytes - previous_totals.get(k, 0) for k in totals}

    rows = []
    for r in records:
        pf = r.program_frame
        rows.append(LeakRow(r.number, r.kind, r.bytes, r.direct_bytes, r.indirect_bytes, r.blocks,
                            r.bytes_delta, r.blocks_delta, pf.function if pf else None,
                            pf.where if pf else None, r.frames() if with_stacks else [],
                            r.block_list))
    return LeakReport(parsed.pid, mode, monitor_command, delta, list(kinds), rows,
                      parsed.total_records, matched, totals, source, totals_delta, warnings)


def monitor_leak_command(mode: str, kinds: list[str], delta: str | None, limited: int | None = None) -> str:
    """The ``leak_check`` monitor command for the given options."""
    kinds_arg = "all" if set(kinds) == set(KINDS) else ",".join(kinds)
    cmd = f"leak_check {mode} kinds {kinds_arg} {delta or 'any'}"
    if limited is not None:
        cmd += f" limited {limited}"
    return cmd


def parse_kinds(text: str | None) -> list[str]:
    """``definite,indirect`` -> list; accepts 'all' and singular/plural spellings."""
    if not text or text == "all":
        return list(KINDS)
    aliases = {"definitely": "definite", "indirectly": "indirect", "possibly": "possible",
               "still": "reachable", "leak": "definite"}
    out = []
    for word in text.split(","):
        w = word.strip().lower()
        w = aliases.get(w, w)
        if w not in KINDS:
            raise ValueError(f"unknown leak kind {word!r} (choose from {', '.join(KINDS)})")
        if w not in out:
            out.append(w)
    return out


def explain_empty_output(text: str, command: str) -> str | None:
    """Why a monitor command printed nothing (valgrind -q or 'v.set log_output'), else None."""
    if text.strip():
        return None
    return (f"'monitor {command}' returned no output: valgrind sends its messages to the log, "
            "either because it runs with -q (quiet: leak summaries are suppressed) or because "
            "output was redirected with 'monitor v.set log_output'")
