"""From parsed leak_check output to the vg-leaks report: filter, sort, totals, deltas.

Totals are computed from the loss records whenever the records are complete
(all kinds, mode ``any``): valgrind 3.19's LEAK SUMMARY is wrong after
``leak_check ... limited N`` (it only counts the records it printed), and that
wrong summary also becomes the base of the next search's deltas.  Summary
deltas are therefore computed here, against the previous vg-leaks snapshot.
"""

from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.valgrind.leak_records import KINDS, KindTotal, LeakCheckOutput, LossRecord
from gdb_toolkit.valgrind.stacks import Frame, frame_at_depth, site_index


@record
class LeakRow:
    record: int
    kind: str
    bytes: int
    direct_bytes: int
    indirect_bytes: int
    blocks: int
    bytes_delta: int | None
    blocks_delta: int | None
    location: Frame | None        # the allocation site: the first frame in the program's own code
    site_index: int | None        # its index in stack
    callers: list                 # --depth N: the N-1 frames above the site (Frame list)
    stack: list                   # the whole allocation stack (Frame list; --json)
    block_list: list = field(default_factory=list)   # Block list (block_list output only)

    @property
    def symbol(self) -> str | None:
        return self.location.symbol if self.location else None

    @property
    def where(self) -> str | None:
        return self.location.where if self.location else None


@record
class GroupRow:
    """--group-by N: records summed by the frame N levels up from their allocation site."""
    kind: str
    location: Frame | None
    bytes: int
    blocks: int
    records: list[int]


@record
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
    notes: list[str] = field(default_factory=list)
    suppressed: KindTotal | None = None   # LEAK SUMMARY's "suppressed" (not in any kind)
    no_leaks: bool = False        # valgrind: "All heap blocks were freed -- no leaks are possible"
    depth: int = 1
    group_by: int | None = None
    groups: list[GroupRow] = field(default_factory=list)
    snapshot: int | None = None   # the number of the history snapshot this search became
    text_rows: int | None = field(default=None, metadata={"json_skip": True})
    #                               the text shows this many records (or sites) at most


# JSON keys (contract v4, docs/json.md): counts end in `_count` (`records` is the list of rows,
# `record` a loss record's number)
json_keys(LeakReport, {"records_total": "record_count", "records_matched": "matched_record_count"})


@record
class BlockReport:
    """vg-block: the heap block holding an address and/or a loss record's blocks."""
    pid: int
    address: int | None           # ADDR looked up (None for vg-block RECORD)
    block_address: int | None     # start of the heap block holding ADDR
    block_size: int | None
    description: str | None       # valgrind's "Address 0x.. is N bytes inside a block of size S alloc'd"
    stack: list                   # the block's allocation stack (Frame list)
    leak_record: LeakRow | None   # the loss record with that allocation stack
    block_list: list              # the record's blocks (valgrind's tree: depth, parent)
    notes: list[str] = field(default_factory=list)

    @property
    def allocation_site(self) -> Frame | None:
        from gdb_toolkit.valgrind.stacks import program_frame

        return program_frame(self.stack)


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
                 extra_summary: LeakCheckOutput | None = None, with_stacks: bool = True,
                 depth: int = 1, group_by: int | None = None,
                 known_total: int | None = None) -> LeakReport:
    """Build the vg-leaks report.

    *complete*: the monitor command listed every record of every kind (so totals
    can be computed from the records).  *extra_summary*: a separate
    ``leak_check summary`` run used for totals when the records are partial.
    *previous_totals*: bytes per kind at our previous check, for totals_delta.
    *with_stacks*: put whole allocation stacks in the rows (JSON); the text table
    needs only the program frame.  *depth*: callers shown above each site;
    *group_by*: sum the records by the frame that many levels up from the site.
    *known_total*: loss records valgrind had at the last search (for a listing
    that printed none: "increased" with nothing grown).
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
    total_records = parsed.total_records
    if total_records is None and parsed.no_leaks:
        total_records = 0
    if total_records is None and known_total is not None and delta is not None:
        total_records = known_total
        warnings.append(f"valgrind listed no loss record (none {delta}); {known_total:,} loss records "
                        "at the last complete search")
    if top is not None and not complete and delta is None and min_bytes is None \
            and set(kinds) == set(KINDS) and total_records is not None:
        matched = total_records        # 'limited N' printed N, but every record matches
    groups = []
    if group_by is not None:
        groups = group_records(records, group_by)
    if top is not None:
        records = records[:top]
        groups = groups[:top]

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
    suppressed = None
    for src in (extra_summary, parsed):
        if src is not None and src.summary is not None and "suppressed" in src.summary.kinds:
            sup = src.summary.kinds["suppressed"]
            suppressed = KindTotal(sup.bytes, sup.blocks)
            break

    rows = []
    for r in records:
        if with_stacks or depth > 1:
            frames = r.frames()
            i = site_index(frames)
            pf = frames[i] if i is not None else None
            up = frames[i + 1:i + depth] if i is not None and depth > 1 else []
        else:
            pf, i, up, frames = r.program_frame, None, [], []
        rows.append(LeakRow(r.number, r.kind, r.bytes, r.direct_bytes, r.indirect_bytes, r.blocks,
                            r.bytes_delta, r.blocks_delta, pf, i, up,
                            frames if with_stacks else [], r.block_list))
    notes = list(warnings)
    if parsed.no_leaks:
        notes.append("valgrind: All heap blocks were freed -- no leaks are possible")
    return LeakReport(parsed.pid, mode, monitor_command, delta, list(kinds), rows,
                      total_records, matched, totals, source, totals_delta, notes, suppressed,
                      parsed.no_leaks, depth, group_by, groups)


def group_records(records: list[LossRecord], depth: int) -> list[GroupRow]:
    """Sum records by (kind, the frame *depth* levels up from the allocation site)."""
    out: dict[tuple, GroupRow] = {}
    for r in records:
        f = frame_at_depth(r.frames(), depth)
        # a source line is one site (a line may hold several calls); without line info the address
        key = (r.kind, f.symbol, f.file, f.line) if f is not None and f.file else (r.kind, f and f.address)
        g = out.get(key)
        if g is None:
            g = out[key] = GroupRow(r.kind, f, 0, 0, [])
        g.bytes += r.bytes
        g.blocks += r.blocks
        g.records.append(r.number)
    return sorted(out.values(), key=lambda g: (-g.bytes, -g.blocks, g.records[0]))


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
