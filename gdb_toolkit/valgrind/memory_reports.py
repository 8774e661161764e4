"""Parsers for memcheck's memory monitor commands.

``who_points_at``, ``block_list`` (via leak_records), ``xb``, ``get_vbits`` and
``check_memory`` outputs -> dataclasses.
"""
import re

from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.valgrind.locations import Location, parse_location_lines
from gdb_toolkit.valgrind.stacks import CodeMap, strip_prefix

_SEARCH_RE = re.compile(r"^Searching for pointers (?:to (0x[0-9a-fA-F]+)|pointing in (\d+) bytes from (0x[0-9a-fA-F]+))")
_POINTS_RE = re.compile(r"^\*(0x[0-9a-fA-F]+) (?:points at|interior points at (\d+) bytes inside) (0x[0-9a-fA-F]+)")
_REG_RE = re.compile(r"^tid (\d+) register (\S+) (?:pointing at|interior pointing (\d+) bytes inside) (0x[0-9a-fA-F]+)")
_CHECK_RE = re.compile(r"^Address (0x[0-9A-Fa-f]+) len (\d+) (addressable|defined|not addressable|not defined)")
_BAD_RE = re.compile(r"^(bad address|Uninitialised value at) (0x[0-9A-Fa-f]+)")


@record
class Pointer:
    """One place holding a pointer into the searched range."""
    address: int | None             # the pointer's own address (None for a register)
    points_to_address: int
    interior_offset: int | None     # None: points at the start
    register: str | None = None
    thread_num: int | None = None
    location: Location | None = None

    @property
    def holder(self) -> str:
        if self.register:
            return f"register {self.register} of thread {self.thread_num}"
        return self.location.holder() if self.location else "unknown"


@record
class WhoPointsAt:
    address: int | None
    size: int
    pointers: list[Pointer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # valgrind's unparsed lines (errors, hints)
    target_location: Location | None = None             # what the searched address itself is
    pid: int | None = None      # the valgrind process asked (the real pid, as every vg-* says it)


def parse_who_points_at(text: str, code_map: CodeMap | None = None) -> WhoPointsAt:
    lines = text.splitlines()
    report = WhoPointsAt(None, 1)
    i = 0
    while i < len(lines):
        t = strip_prefix(lines[i]).strip()
        if not t:
            i += 1
            continue
        if (m := _SEARCH_RE.match(t)):
            if m.group(1):
                report.address = int(m.group(1), 16)
            else:
                report.size, report.address = int(m.group(2)), int(m.group(3), 16)
            i += 1
            continue
        if (m := _POINTS_RE.match(t)):
            p = Pointer(int(m.group(1), 16), int(m.group(3), 16),
                        int(m.group(2)) if m.group(2) else None)
            i += 1
            if i < len(lines):
                loc, i = parse_location_lines(lines, i, code_map)
                p.location = loc
            report.pointers.append(p)
            continue
        if (m := _REG_RE.match(t)):
            report.pointers.append(Pointer(None, int(m.group(4), 16),
                                           int(m.group(3)) if m.group(3) else None,
                                           register=m.group(2), thread_num=int(m.group(1))))
            i += 1
            continue
        report.notes.append(t)
        i += 1
    return report


@record
class ByteState:
    address: int
    byte_value: int | None      # None when unaddressable (valgrind prints 0x??)
    vbits: int | None           # 0 = every bit defined, 0xff = none; None = unaddressable

    @property
    def state(self) -> str:
        if self.vbits is None:
            return "unaddressable"
        if self.vbits == 0:
            return "defined"
        if self.vbits == 0xFF:
            return "undefined"
        return "partly defined"


@record
class Vbits:
    address: int
    size: int
    byte_list: list[ByteState]
    unaddressable: int
    undefined: int
    partly_defined: int
    messages: list[str] = field(default_factory=list, metadata={"json_skip": True})
    notes: list[str] = field(default_factory=list)
    pid: int | None = None      # the valgrind process asked


# JSON keys (contract v4, docs/json.md): byte counts end in _bytes, as vg-leaks' definite_bytes
json_keys(Vbits, {"unaddressable": "unaddressable_bytes", "undefined": "undefined_bytes",
                  "partly_defined": "partly_defined_bytes"})


def _vbit_token(tok: str) -> int | None:
    tok = tok.strip()
    if tok == "__" or not _HEX2.fullmatch(tok):
        return None
    return int(tok, 16)


_HEX2 = re.compile(r"[0-9a-fA-F]{2}")
_XB_VALUES_RE = re.compile(r"^0x([0-9A-Fa-f]{1,16}):((?:\s+0x(?:[0-9A-Fa-f]{2}|\?\?))+)\s*$")


def parse_xb(text: str, address: int | None = None, length: int | None = None) -> Vbits:
    """``xb ADDR LEN``: lines of validity bits, each followed by an address line with values."""
    out: list[ByteState] = []
    messages: list[str] = []
    pending: list[int | None] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _XB_VALUES_RE.match(line)
        if m:
            base = int(m.group(1), 16)
            values = m.group(2).split()
            bits = pending or [None] * len(values)
            for k, v in enumerate(values):
                bit = bits[k] if k < len(bits) else None
                out.append(ByteState(base + k, None if "?" in v or bit is None else int(v, 16), bit))
            pending = None
            continue
        toks = line.split()
        if toks and all(re.fullmatch(r"[0-9a-fA-F]{2}|__", t) for t in toks):
            pending = [_vbit_token(t) for t in toks]
            continue
        messages.append(strip_prefix(line).strip())
    return _vbits_report(out, messages, address, length)


def parse_get_vbits(text: str, address: int, length: int | None = None) -> Vbits:
    """``get_vbits ADDR LEN``: validity bytes in groups of 4 (``________`` = unaddressable)."""
    out: list[ByteState] = []
    messages: list[str] = []
    limit = length if length is not None else 1 << 24
    for raw in text.splitlines():
        if len(out) >= limit:
            break
        line = raw.strip()
        if not line:
            continue
        groups = line.split()
        if all(re.fullmatch(r"[0-9a-fA-F_]{2,8}", g) and len(g) % 2 == 0 for g in groups):
            for g in groups:
                for k in range(0, len(g), 2):
                    out.append(ByteState(address + len(out), None, _vbit_token(g[k:k + 2])))
            continue
        messages.append(strip_prefix(line).strip())
    return _vbits_report(out, messages, address, length)


def _vbits_report(out, messages, address, length) -> Vbits:
    if length is not None:
        out = out[:length]
    start = address if address is not None else (out[0].address if out else 0)
    return Vbits(start, len(out) if length is None else length, out,
                 sum(1 for b in out if b.vbits is None),
                 sum(1 for b in out if b.vbits == 0xFF),
                 sum(1 for b in out if b.vbits not in (None, 0, 0xFF)), messages)


@record
class MemoryCheck:
    address: int
    size: int
    check: str                  # addressable | defined
    ok: bool                    # the verdict: the whole range passes the check (JSON `passed`)
    first_bad_address: int | None   # first unaddressable / undefined byte
    location: Location | None   # what the start address is
    messages: list[str] = field(default_factory=list, metadata={"json_skip": True})
    notes: list[str] = field(default_factory=list)
    pid: int | None = None      # the valgrind process asked


# JSON key (contract v4, docs/json.md): `ok` is the envelope's boolean (the command answered);
# the check's verdict is `passed`
json_keys(MemoryCheck, {"ok": "passed"})


def parse_check_memory(text: str, check: str, address: int, length: int,
                       code_map: CodeMap | None = None) -> MemoryCheck:
    lines = text.splitlines()
    report = MemoryCheck(address, length, check, False, None, None)
    seen = False
    i = 0
    while i < len(lines):
        t = strip_prefix(lines[i]).strip()
        if not t:
            i += 1
            continue
        if (m := _CHECK_RE.match(t)) and not seen:
            seen = True
            report.address, report.size = int(m.group(1), 16), int(m.group(2))
            report.ok = not m.group(3).startswith("not")
            i += 1
            continue
        if (m := _BAD_RE.match(t)):
            report.first_bad_address = int(m.group(2), 16)
            i += 1
            continue
        if t.startswith("Address "):
            loc, j = parse_location_lines(lines, i, code_map)
            if loc is not None:
                report.location = loc
                i = j
                continue
        report.messages.append(t)
        i += 1
    if not seen:
        report.ok = False
    return report
