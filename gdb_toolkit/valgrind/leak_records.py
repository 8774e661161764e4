"""Parse memcheck's ``leak_check`` / ``block_list`` output into loss records.

Handles every header form valgrind 3.x prints::

    356 bytes in 1 blocks are definitely lost in loss record 2 of 7
    2,222 (+1,111) bytes in 2 (+1) blocks are definitely lost in loss record 3 of 7
    444 (48 direct, 396 indirect) bytes in 1 blocks are definitely lost in loss record 5 of 6
    444 (+44) (48 (+4) direct, 396 (+40) indirect) bytes in 1 (+0) blocks are ...

the allocation stack below each header, ``0xADDR[SIZE]`` block lines
(block_list), and the LEAK SUMMARY with its optional deltas.
"""
import re
from dataclasses import dataclass, field

from gdb_toolkit.valgrind.stacks import Frame, parse_frame, program_frame, strip_prefix

KINDS = ("definite", "indirect", "possible", "reachable")
_KIND_WORDS = {"definitely lost": "definite", "indirectly lost": "indirect",
               "possibly lost": "possible", "still reachable": "reachable"}

_NUM = r"([\d,]+)"
_DELTA = r"(?:\s\(([+-][\d,]+)\))?"
HEADER_RE = re.compile(
    rf"^{_NUM}{_DELTA}\s(?:\({_NUM}{_DELTA} direct, {_NUM}{_DELTA} indirect\)\s)?"
    rf"bytes in {_NUM}{_DELTA} blocks are (definitely lost|indirectly lost|possibly lost|still reachable)"
    r"(?: \(suppressed\))? in loss record ([\d,]+) of ([\d,]+)")
SUMMARY_LINE_RE = re.compile(
    rf"^\s*(definitely lost|indirectly lost|possibly lost|still reachable|suppressed):\s+"
    rf"{_NUM}{_DELTA} bytes in {_NUM}{_DELTA} blocks")
BLOCK_RE = re.compile(r"^0x([0-9A-Fa-f]+)\[(\d+)\]\s*(.*)$")
PID_RE = re.compile(r"^==(\d+)==")


def num(text: str | None) -> int | None:
    """``"1,120,000"`` -> 1120000, ``"+1,111"`` -> 1111, ``"-5"`` -> -5, None -> None."""
    if text is None:
        return None
    return int(text.replace(",", ""))


@dataclass
class Block:
    address: int
    size: int
    note: str = ""          # e.g. "indirect loss record 4" under a block_list entry


@dataclass
class LossRecord:
    number: int
    of: int
    kind: str                       # definite | indirect | possible | reachable
    bytes: int                      # direct + indirect
    direct_bytes: int
    indirect_bytes: int
    blocks: int
    bytes_delta: int | None = None  # None: valgrind printed no delta (mode "any")
    direct_delta: int | None = None
    indirect_delta: int | None = None
    blocks_delta: int | None = None
    stack: list[Frame] = field(default_factory=list)
    block_list: list[Block] = field(default_factory=list)

    @property
    def program_frame(self) -> Frame | None:
        return program_frame(self.stack)

    def key(self) -> tuple:
        """What identifies a record across checks: its kind and allocation stack."""
        return (self.kind, tuple(f.address for f in self.stack))


@dataclass
class KindTotal:
    bytes: int
    blocks: int
    bytes_delta: int | None = None
    blocks_delta: int | None = None


@dataclass
class LeakSummary:
    """LEAK SUMMARY as valgrind printed it: kind -> totals (plus 'suppressed')."""
    kinds: dict[str, KindTotal] = field(default_factory=dict)


@dataclass
class LeakCheckOutput:
    pid: int | None
    records: list[LossRecord]
    summary: LeakSummary | None
    total_records: int | None       # the "of N" of the records (None if none printed)
    notes: list[str] = field(default_factory=list)     # valgrind's hints, unparsed text


def parse_header(text: str) -> LossRecord | None:
    m = HEADER_RE.match(text)
    if not m:
        return None
    (total, d_total, direct, d_direct, indirect, d_indirect, blocks, d_blocks,
     kind_words, number, of) = m.groups()
    total_n = num(total)
    direct_n = num(direct) if direct is not None else total_n
    indirect_n = num(indirect) if indirect is not None else 0
    d_direct_n = num(d_direct) if direct is not None else num(d_total)
    d_indirect_n = num(d_indirect) if indirect is not None else (0 if d_total is not None else None)
    return LossRecord(number=num(number), of=num(of), kind=_KIND_WORDS[kind_words],
                      bytes=total_n, direct_bytes=direct_n, indirect_bytes=indirect_n,
                      blocks=num(blocks), bytes_delta=num(d_total), direct_delta=d_direct_n,
                      indirect_delta=d_indirect_n, blocks_delta=num(d_blocks))


def parse_leak_check(text: str) -> LeakCheckOutput:
    """Parse the text of ``monitor leak_check ...`` or ``monitor block_list ...``."""
    pid = None
    records: list[LossRecord] = []
    summary: LeakSummary | None = None
    notes: list[str] = []
    current: LossRecord | None = None
    in_summary = False
    for raw in text.splitlines():
        if pid is None:
            pm = PID_RE.match(raw)
            if pm:
                pid = int(pm.group(1))
        line = strip_prefix(raw).strip()
        if not line:
            current = None if not in_summary else current
            continue
        if current is not None:
            if line.startswith(("at 0x", "by 0x")):
                frame = parse_frame(line)
                if frame:
                    current.stack.append(frame)
                    continue
            bm = BLOCK_RE.match(line)
            if bm:
                current.block_list.append(Block(int(bm.group(1), 16), int(bm.group(2)),
                                                bm.group(3).strip()))
                continue
        rec = parse_header(line) if line[0].isdigit() else None
        if rec is not None:
            records.append(rec)
            current = rec
            in_summary = False
            continue
        if line.startswith("LEAK SUMMARY"):
            summary = LeakSummary()
            in_summary = True
            current = None
            continue
        if in_summary:
            sm = SUMMARY_LINE_RE.match(line)
            if sm:
                words, b, db, n, dn = sm.groups()
                key = _KIND_WORDS.get(words, words)
                summary.kinds[key] = KindTotal(num(b), num(n), num(db), num(dn))
                continue
            if line.startswith("of which reachable via heuristic"):
                continue
            in_summary = False
        if not line.startswith(("at 0x", "by 0x")) and not BLOCK_RE.match(line):
            notes.append(line)
        current = None
    total = records[0].of if records else None
    return LeakCheckOutput(pid, records, summary, total, notes)
