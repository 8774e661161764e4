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

from gdb_toolkit.common.record import field, record
from gdb_toolkit.valgrind.stacks import CodeMap, Frame, parse_frame, program_frame, strip_prefix

KINDS = ("definite", "indirect", "possible", "reachable")
_KIND_WORDS = {"definitely lost": "definite", "indirectly lost": "indirect",
               "possibly lost": "possible", "still reachable": "reachable"}

_NUM = r"(\d[\d,]*)"
_DELTA = r"(?:\s\(([+-]\d[\d,]*)\))?"
HEADER_RE = re.compile(
    rf"^{_NUM}{_DELTA}\s(?:\({_NUM}{_DELTA} direct, {_NUM}{_DELTA} indirect\)\s)?"
    rf"bytes in {_NUM}{_DELTA} blocks are (definitely lost|indirectly lost|possibly lost|still reachable)"
    r"(?: \(suppressed\))? in loss record (\d[\d,]*) of (\d[\d,]*)")
SUMMARY_LINE_RE = re.compile(
    rf"^\s*(definitely lost|indirectly lost|possibly lost|still reachable|suppressed):\s+"
    rf"{_NUM}{_DELTA} bytes in {_NUM}{_DELTA} blocks")
BLOCK_RE = re.compile(r"^0x([0-9A-Fa-f]+)\[(\d+)\]\s*(.*)$")
PID_RE = re.compile(r"==(\d+)==")
_ADDR_KIND_RE = re.compile(r"(?m)^(?:==\d+== ?)?[ \t]*(at|by) 0x([0-9A-Fa-f]+): ")
_ADDR_IN_FRAME_RE = re.compile(r"(?m)^(?:==\d+== ?)?[ \t]*(?:at|by) 0x([0-9A-Fa-f]+):")


def num(text: str | None) -> int | None:
    """``"1,120,000"`` -> 1120000, ``"+1,111"`` -> 1111, ``"-5"`` -> -5, None -> None."""
    if text is None:
        return None
    return int(text.replace(",", ""))


NO_LEAKS_TEXT = "All heap blocks were freed -- no leaks are possible"


@record
class Block:
    address: int
    size: int
    note: str = ""          # e.g. "indirect loss record 4" under a block_list entry
    depth: int = 0          # valgrind's block tree: 0 = a block of the record, 1 = reached through
    parent_address: int | None = None   # the block this one is reached through (depth > 0)


@record
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
    # the raw stack lines, parsed on demand (10 000 records need not all be parsed)
    stack_text: str = field(default="", repr=False, compare=False, metadata={"json_skip": True})
    code_map: CodeMap | None = field(default=None, repr=False, compare=False,
                                     metadata={"json_skip": True})
    _site: tuple | None = field(default=None, repr=False, compare=False, metadata={"json_skip": True})

    def frames(self) -> list[Frame]:
        """The whole allocation stack (parsed from stack_text on first use)."""
        if not self.stack and self.stack_text:
            cm = self.code_map
            self.stack = [f for f in (parse_frame(t, cm) for t in self.stack_text.splitlines()) if f]
        return self.stack

    @property
    def program_frame(self) -> Frame | None:
        """The frame the record is attributed to (stacks.site_index), parsing only as
        many frames as needed while the stack is still text."""
        if self._site is None:
            self._site = (self._find_site(),)
        return self._site[0]

    def _find_site(self) -> Frame | None:
        if self.stack or not self.stack_text:
            return program_frame(self.stack)
        st, cm = self.stack_text, self.code_map
        if cm is not None:
            # roles from the addresses alone; only the site's line is parsed.  Stacks repeat
            # their lines (10 000 records share malloc's and the program's call sites), so
            # each distinct line is looked at once per search (CodeMap.site_lines)
            seen = cm.site_lines
            pos, size = 0, len(st)
            while pos < size:
                nl = st.find("\n", pos)
                nl = size if nl < 0 else nl
                line = st[pos:nl]
                pos = nl + 1
                hit = seen.get(line, _UNSEEN)
                if hit is _UNSEEN:
                    hit = _site_of_line(line, cm)
                    if len(seen) < 200000:
                        seen[line] = hit
                if hit is not _NOT_SITE:
                    return hit
            return program_frame(self.frames())
        pos, size = 0, len(st)
        while pos < size:
            nl = st.find("\n", pos)
            nl = size if nl < 0 else nl
            text = st[pos:nl]
            pos = nl + 1
            if "0x" not in text:
                continue
            f = parse_frame(text, cm)
            if f is not None and f.role in ("program", "unknown"):
                return f
        return program_frame(self.frames())

    def stack_addresses(self) -> tuple:
        """The addresses of the allocation stack, from the text when it is not parsed yet."""
        if self.stack or not self.stack_text:
            return tuple(f.address for f in self.stack)
        return tuple(int(a, 16) for a in _ADDR_IN_FRAME_RE.findall(self.stack_text))

    def key(self) -> tuple:
        """What identifies a record across checks: its kind and allocation stack."""
        return (self.kind, tuple(f.address for f in self.frames()))


_UNSEEN = object()
_NOT_SITE = object()


def _site_of_line(line: str, cm: CodeMap):
    """The frame of a stack line when the code at its address is the program's (or of no
    known object), else _NOT_SITE (not a frame line, or the allocator's/runtime's code)."""
    m = _ADDR_KIND_RE.match(line)
    if m is None or cm.role_at(int(m.group(2), 16), m.group(1)) not in ("program", "unknown"):
        return _NOT_SITE
    f = parse_frame(line.strip(), cm)
    # program code compiled from a system header (std::vector's allocate) is not a site
    return f if f is not None and f.role in ("program", "unknown") else _NOT_SITE


@record
class KindTotal:
    bytes: int
    blocks: int
    bytes_delta: int | None = None
    blocks_delta: int | None = None


@record
class LeakSummary:
    """LEAK SUMMARY as valgrind printed it: kind -> totals (plus 'suppressed')."""
    kinds: dict[str, KindTotal] = field(default_factory=dict)


@record
class LeakCheckOutput:
    pid: int | None
    records: list[LossRecord]
    summary: LeakSummary | None
    total_records: int | None       # the "of N" of the records (None if none printed)
    notes: list[str] = field(default_factory=list)     # valgrind's hints, unparsed text
    no_leaks: bool = False          # "All heap blocks were freed -- no leaks are possible"


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


_BLOCK_SCAN_RE = re.compile(r"(?m)^(?:==\d+== ?)?([ \t]*)0x([0-9A-Fa-f]+)\[(\d+)\][ \t]*(.*)$")
_SUMMARY_AT_RE = re.compile(r"(?m)^(?:==\d+== ?)?[ \t]*LEAK SUMMARY:")


def _record(m) -> LossRecord:
    (total, d_total, direct, d_direct, indirect, d_indirect, blocks, d_blocks,
     kind_words, number, of) = m.groups()
    c = str.replace
    total_n = int(c(total, ",", ""))
    if direct is None:
        direct_n, indirect_n = total_n, 0
        d_direct_n = int(c(d_total, ",", "")) if d_total else None
        d_indirect_n = 0 if d_total else None
    else:
        direct_n, indirect_n = int(c(direct, ",", "")), int(c(indirect, ",", ""))
        d_direct_n = int(c(d_direct, ",", "")) if d_direct else None
        d_indirect_n = int(c(d_indirect, ",", "")) if d_indirect else None
    return LossRecord(int(c(number, ",", "")), int(c(of, ",", "")), _KIND_WORDS[kind_words], total_n,
                      direct_n, indirect_n, int(c(blocks, ",", "")),
                      int(c(d_total, ",", "")) if d_total else None, d_direct_n, d_indirect_n,
                      int(c(d_blocks, ",", "")) if d_blocks else None)


def parse_leak_check(text: str, full_stacks: bool = True,
                     code_map: CodeMap | None = None) -> LeakCheckOutput:
    """Parse the text of ``monitor leak_check ...`` or ``monitor block_list ...``.

    With ``full_stacks=False`` the allocation stacks are kept as text and parsed
    only when asked (``LossRecord.frames()``/``program_frame``): that is what
    keeps 10 000 records fast.  *code_map* names the object file of each frame
    (which frame is the program's is decided from it).
    """
    pm = PID_RE.search(text, 0, 4096)
    pid = int(pm.group(1)) if pm else None
    si = text.rfind("LEAK SUMMARY:")
    end_records = text.rfind("\n", 0, si) + 1 if si >= 0 else len(text)
    records: list[LossRecord] = []
    notes: list[str] = []
    # find headers with str.find (C speed over megabytes), then match each line
    pos = 0
    last = None
    find, rfind = text.find, text.rfind
    hit = find(" in loss record ", 0, end_records)
    while hit >= 0:
        start = rfind("\n", 0, hit) + 1
        stop = find("\n", hit)
        stop = len(text) if stop < 0 else stop
        line = text[start:stop]
        if line.startswith("=="):
            line = line[line.find("==", 2) + 2:]
        m = HEADER_RE.match(line.strip())
        if m is not None:
            if last is None:
                _notes(text[pos:start], notes)
            else:
                last.stack_text = text[pos:start]
            last = _record(m)
            records.append(last)
            pos = stop
        hit = find(" in loss record ", stop, end_records)
    if last is not None:
        last.stack_text = text[pos:end_records]
    else:
        _notes(text[:end_records], notes)
    sm = _SUMMARY_AT_RE.search(text, end_records) if si >= 0 else None
    for rec in records:
        st = rec.stack_text
        rec.code_map = code_map
        if "0x" in st and "[" in st:
            rec.block_list = _block_tree(_BLOCK_SCAN_RE.finditer(st))
            if rec.block_list:
                rec.stack_text = _BLOCK_SCAN_RE.sub("", st)
        if full_stacks:
            rec.frames()
    summary = None
    if sm:
        summary = LeakSummary()
        rest = text[sm.end():].splitlines()
        j = 1 if rest and not rest[0].strip() else 0
        while j < len(rest):
            line = strip_prefix(rest[j]).strip()
            lm = SUMMARY_LINE_RE.match(line)
            if lm:
                words, b, db, n, dn = lm.groups()
                summary.kinds[_KIND_WORDS.get(words, words)] = KindTotal(num(b), num(n), num(db), num(dn))
            elif line and not line.startswith("of which reachable via heuristic"):
                break
            j += 1
        _notes("\n".join(rest[j:]), notes)
    total = records[0].of if records else None
    no_leaks = NO_LEAKS_TEXT in text[:4096] and not records
    if no_leaks:
        # valgrind's way of saying every kind is zero: not an error, an empty heap
        summary = LeakSummary({k: KindTotal(0, 0) for k in KINDS})
        total = 0
        notes = [n for n in notes if NO_LEAKS_TEXT not in n]
    return LeakCheckOutput(pid, records, summary, total, notes, no_leaks)


def _block_tree(matches) -> list[Block]:
    """block_list lines -> blocks with their depth in valgrind's tree (two spaces a level)
    and the block each deeper one is reached through."""
    out: list[Block] = []
    parents: list[int] = []
    base = None
    for b in matches:
        indent = len(b.group(1).expandtabs())
        base = indent if base is None else min(base, indent)
        depth = max(0, (indent - base) // 2)
        addr = int(b.group(2), 16)
        del parents[depth:]
        out.append(Block(addr, int(b.group(3)), b.group(4).strip(), depth,
                         parents[-1] if parents else None))
        parents.append(addr)
    return out


def _notes(chunk: str, notes: list[str]) -> None:
    for line in chunk.splitlines():
        t = strip_prefix(line).strip()
        if t and not t.startswith(("at 0x", "by 0x")) and not BLOCK_RE.match(t):
            notes.append(t)
