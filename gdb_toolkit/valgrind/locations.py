"""Valgrind's address descriptions (``Address 0x.. is ...``) and what holds an address."""
import re

from gdb_toolkit.common.record import field, record
from gdb_toolkit.valgrind.stacks import CodeMap, Frame, parse_frame, program_frame, strip_prefix

_ADDR_RE = re.compile(r"^Address (0x[0-9A-Fa-f]+) (is .*)$")
_INSIDE_SYM_RE = re.compile(r"^is (\d+) bytes inside data symbol \"(.*)\"$")
_STACK_RE = re.compile(r"^is on thread (\d+)'s stack$")
_FRAME_RE = re.compile(r"^in frame #(\d+), created by (.*?)(?: \((.*)\))?$")
_BLOCK_RE = re.compile(r"^is (\d+) bytes (inside|after|before) a(?:n unallocated)? block of size (\d[\d,]*)"
                       r" (alloc'd|free'd|in arena .*|client-defined.*)$")
# "is in the Text segment of /bin/x", "is in a rw- mapped file /lib/x.so segment",
# "is in a rw- anonymous segment"
_SEG_RE = re.compile(r"^is in (?:a|the) (?:(\S+) segment of (.*)|\S+ mapped file (.*) segment|"
                     r"\S+ (anonymous) segment)$")


@record
class Location:
    """What valgrind says an address is: data symbol, stack, heap block, or unknown."""
    address: int
    kind: str                         # data_symbol | stack | heap_block | freed_block | mapping | unknown
    description: str                  # valgrind's sentence
    symbol: str | None = None
    offset: int | None = None         # bytes inside (or after/before) the symbol/block
    relation: str | None = None       # inside | after | before (heap blocks)
    block_size: int | None = None
    thread_num: int | None = None
    frame_level: int | None = None    # valgrind's "in frame #N" (a frame's number is its level)
    frame_function: str | None = None
    frame_where: str | None = None
    stack: list[Frame] = field(default_factory=list)       # allocation stack of the block
    free_stack: list[Frame] = field(default_factory=list)  # where a freed block was freed
    file: str | None = None           # the project's location object: the source position of
    line: int | None = None           # the frame holding a stack address (frame_where); the
                                      # mapped file is ``object``
    object: str | None = None

    @property
    def allocated_at(self) -> Frame | None:
        return program_frame(self.stack)

    def holder(self) -> str:
        """A short human phrase: ``data symbol g_buf+8``, ``main's frame #1 (thread 1)``..."""
        if self.kind == "data_symbol":
            return f"global {self.symbol}" + (f"+{self.offset}" if self.offset else "")
        if self.kind == "stack":
            if self.frame_function:
                return f"stack of thread {self.thread_num}, frame #{self.frame_level} {self.frame_function}"
            return f"stack of thread {self.thread_num}"
        if self.kind in ("heap_block", "freed_block"):
            what = "freed block" if self.kind == "freed_block" else "heap block"
            at = self.allocated_at
            where = f" from {at.label()}" if at else ""
            rel = f"+{self.offset}" if self.relation == "inside" else f" ({self.offset} bytes {self.relation})"
            return f"{what} of {self.block_size} bytes{rel}{where}"
        return self.description


def _source_position(where: str | None) -> tuple[str | None, int | None, str | None]:
    """valgrind's "(file.c:36)" or "(in /lib/x.so)" after a frame's function, as the
    location object's file, line and object (docs/json.md: file:line is never one string)."""
    if not where:
        return None, None, None
    if where.startswith("in "):
        return None, None, where[3:]
    path, sep, line = where.rpartition(":")
    return (path, int(line), None) if sep and path and line.isdigit() else (None, None, None)


def parse_location_lines(lines: list[str], start: int,
                         code_map: CodeMap | None = None) -> tuple[Location | None, int]:
    """Parse an ``Address 0x.. is ...`` description starting at lines[start].

    Returns the location and the index of the first line not consumed.
    """
    text = strip_prefix(lines[start]).strip()
    m = _ADDR_RE.match(text)
    if not m:
        return None, start
    address, rest = int(m.group(1), 16), m.group(2)
    loc = Location(address, "unknown", f"Address {m.group(1)} {rest}")
    i = start + 1
    if (sm := _INSIDE_SYM_RE.match(rest)):
        loc.kind, loc.offset, loc.symbol = "data_symbol", int(sm.group(1)), sm.group(2)
    elif (sm := _STACK_RE.match(rest)):
        loc.kind, loc.thread_num = "stack", int(sm.group(1))
        if i < len(lines) and (fm := _FRAME_RE.match(strip_prefix(lines[i]).strip())):
            loc.frame_level, loc.frame_function, loc.frame_where = int(fm.group(1)), fm.group(2), fm.group(3)
            loc.file, loc.line, obj = _source_position(fm.group(3))
            loc.object = loc.object or obj
            loc.description += " " + strip_prefix(lines[i]).strip()
            i += 1
    elif (sm := _BLOCK_RE.match(rest)):
        loc.offset, loc.relation = int(sm.group(1)), sm.group(2)
        loc.block_size = int(sm.group(3).replace(",", ""))
        loc.kind = "freed_block" if sm.group(4) == "free'd" else "heap_block"
    elif (sm := _SEG_RE.match(rest)):
        loc.kind = "mapping"
        loc.symbol = sm.group(2) or sm.group(3) or sm.group(4)
        loc.object = sm.group(2) or sm.group(3)
    target = loc.stack if loc.kind != "freed_block" else loc.free_stack
    while i < len(lines):
        t = strip_prefix(lines[i]).strip()
        f = parse_frame(t, code_map) if t.startswith(("at 0x", "by 0x")) else None
        if f is not None:
            target.append(f)
            i += 1
            continue
        if t.startswith("Block was alloc'd at"):
            target = loc.stack
            i += 1
            continue
        break
    # names as printed, once, here (escape_name): valgrind writes a data symbol's, a function's
    # or a file's bytes; its own words are printable and hold no backslash (frames: parse_frame)
    from gdb_toolkit.common.names import escape_name

    for key in ("symbol", "frame_function", "frame_where", "file", "object", "description"):
        value = getattr(loc, key)
        if value:
            setattr(loc, key, escape_name(value))
    return loc, i
