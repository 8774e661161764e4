"""Valgrind stack traces: ``at 0x..: fn (file:line)`` / ``by 0x..: fn (in /obj)``.

Which frame is "the program's" is decided by the object file the code lives
in, never by the function's name: a user function called ``new_node`` or
``fopen_config`` is the program's, libc's ``open_memstream`` with line info
(libc6-dbg) is not.  Valgrind names the object only for frames without line
info, so the gdb layer gives a ``CodeMap`` (the process's file mappings) that
names the object of every frame.

Roles, from the object's path:
  ``allocator``  valgrind's malloc replacement (vgpreload_*) and valgrind itself
  ``runtime``    the C/C++ runtime: libc, ld.so, libstdc++, libgcc_s, libm, ...
  ``library``    any other shared object installed in a system library directory
  ``program``    the main executable and every other object (its own libraries)
  ``unknown``    no object known (no code map, JIT code)

Code the compiler put into the program from a system header is not the
program's: a ``std::vector`` or ``std::string`` allocation runs template code
instantiated (or inlined) from ``/usr/include/c++/...`` inside the executable.
The gdb layer names the full path of a frame's source file (valgrind prints only
its base name); a program frame whose source is a C++/compiler runtime header
has the role ``runtime``, one from another system header (``/usr/include``,
boost, ...) ``library``, so the site is the program's own line that used it.
"""
import _bisect as bisect   # what bisect.py re-exports (see plt/slots.py)
import functools
import os
import re

from gdb_toolkit.common.record import field, record

PREFIX_RE = re.compile(r"^==\d+==\s?")
FRAME_RE = re.compile(r"\s*(at|by) 0x([0-9A-Fa-f]+): (.*)")

ROLES = ("program", "library", "runtime", "allocator", "unknown")

_ALLOCATOR_RE = re.compile(r"(^|/)(vgpreload_[^/]*|valgrind/[^/]*|[a-z]+-(amd64|x86|arm64|arm|ppc64le|"
                           r"ppc64be|ppc32|s390x|mips32|mips64|nanomips)-linux)$")
# the C/C++ runtime, by file name (any directory: a container's or a sysroot's libc is still libc)
_RUNTIME_RE = re.compile(r"^(libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil|libanl|"
                         r"libstdc\+\+|libgcc_s|libc\+\+|libc\+\+abi|libunwind|libatomic|"
                         r"libasan|libtsan|libubsan|liblsan|libjemalloc|libtcmalloc[_a-z]*|libmimalloc)"
                         r"([.-][^/]*)?\.so(\.[0-9.]+)?$|^ld-linux[^/]*\.so[.0-9]*$|^ld[.-][^/]*\.so[.0-9]*$|"
                         r"^ld64\.so[.0-9]*$")
# headers whose code is the C/C++ runtime's (libstdc++'s templates, gcc's intrinsics) or
# another installed library's, wherever the compiler instantiated or inlined it
_RUNTIME_HEADER_RE = re.compile(r"^/usr/(local/)?(include/c\+\+/|include/[^/]*-linux-gnu[^/]*/c\+\+/|"
                                r"lib/gcc/|lib/llvm-[^/]*/|include/x86_64-linux-gnu/bits/|include/bits/)")
SYSTEM_INCLUDE_DIRS = ("/usr/include/", "/usr/local/include/")
SYSTEM_LIB_DIRS = ("/lib/", "/lib32/", "/lib64/", "/libx32/", "/usr/lib/", "/usr/lib32/",
                   "/usr/lib64/", "/usr/libx32/", "/usr/libexec/")


@functools.lru_cache(maxsize=1024)
def object_role(path: str | None, main_object: str | None = None) -> str:
    """The role of the code in object file *path* (see the module doc)."""
    if not path:
        return "unknown"
    if main_object and path == main_object:
        return "program"
    if _ALLOCATOR_RE.search(path):
        return "allocator"
    if _RUNTIME_RE.match(os.path.basename(path)):
        return "runtime"
    if path.startswith(SYSTEM_LIB_DIRS):
        return "library"
    return "program"


def header_role(source: str | None) -> str | None:
    """The role of code compiled from system header *source* (a full path): ``runtime``
    for the C++/compiler runtime's headers, ``library`` for other installed headers,
    None for the program's own sources."""
    if not source or not source.startswith("/"):
        return None
    if _RUNTIME_HEADER_RE.match(source):
        return "runtime"
    if source.startswith(SYSTEM_INCLUDE_DIRS):
        return "library"
    return None


class CodeMap:
    """Address -> object file, from the process's file mappings (``/proc/PID/maps`` text).

    *source_paths* (optional, given by the gdb layer) maps a code address to
    ``{base name: full path}`` of the source files of the functions at that
    address (inlined ones too): valgrind prints a frame's file by base name only."""

    def __init__(self, ranges: list[tuple[int, int, str]], main_object: str | None = None,
                 source_paths=None):
        self.source_paths = source_paths
        self._file_roles: dict[tuple, str] = {}
        self._ranges = sorted(ranges)
        self._starts = [r[0] for r in self._ranges]
        self.main_object = main_object
        self.frames: dict[str, "Frame"] = {}    # frame line -> Frame: stacks repeat their lines
        self.site_lines: dict = {}              # stack line -> its Frame if a site (leak_records)
        self._roles: dict[tuple, str] = {}

    @classmethod
    def from_maps(cls, text: str, main_object: str | None = None) -> "CodeMap":
        ranges = []
        for line in text.splitlines():
            parts = line.split(None, 5)
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            lo, _, hi = parts[0].partition("-")
            try:
                ranges.append((int(lo, 16), int(hi, 16), parts[5].rstrip("\n")
                               .removesuffix(" (deleted)")))
            except ValueError:
                continue
        return cls(ranges, main_object)

    def role_at(self, address: int, kind: str) -> str:
        """The role of the code at a frame's address (cached: stacks repeat addresses)."""
        key = (address, kind)
        role = self._roles.get(key)
        if role is None:
            role = self._roles[key] = object_role(
                self.object_of(address - 1 if kind == "by" and address else address), self.main_object)
        return role

    def frame_role(self, address: int, kind: str, file: str | None) -> str:
        """The role of a frame: its object's (role_at), or a header's for program code
        compiled from a system header (see the module doc)."""
        role = self.role_at(address, kind)
        if role != "program" or not file:
            return role
        key = (address, kind, file)
        cached = self._file_roles.get(key)
        if cached is None:
            full = file if file.startswith("/") else None
            if full is None and self.source_paths is not None:
                try:
                    full = self.source_paths(address - 1 if kind == "by" and address else address).get(file)
                except Exception:           # a lookup that fails leaves the object's role
                    full = None
            cached = self._file_roles[key] = header_role(full) or role
        return cached

    def object_of(self, address: int) -> str | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self._ranges[i][1]:
            return self._ranges[i][2]
        return None

    def __len__(self) -> int:
        return len(self._ranges)


@record
class Frame:
    kind: str = field(metadata={"json_skip": True})   # "at" (innermost) or "by" (a return address)
    address: int
    symbol: str | None        # the function; None for "???"
    file: str | None
    line: int | None
    object: str | None        # valgrind's "(in /obj)", or the code map's answer
    role: str = "unknown"     # see ROLES
    offset: int | None = None  # (the project's location object has one; valgrind gives none)

    @property
    def where(self) -> str:
        if self.file:
            return f"{self.file}:{self.line}"
        if self.object:
            return self.object
        return f"0x{self.address:x}"

    def label(self) -> str:
        return f"{self.symbol or '???'} ({self.where})"

    @property
    def function(self) -> str | None:
        return self.symbol


def strip_prefix(line: str) -> str:
    """The text of a valgrind output line without the ``==PID==`` prefix."""
    return PREFIX_RE.sub("", line, count=1)


def parse_frame(text: str, code_map: CodeMap | None = None) -> Frame | None:
    """One stack frame from a line (with or without the ``==PID==`` prefix).

    With a code map, frames are shared per distinct line (10 000 loss records repeat
    the same few hundred lines: malloc's, the program's call sites)."""
    if text.startswith("=="):
        text = text[text.find("==", 2) + 2:]
    if code_map is not None:
        f = code_map.frames.get(text)
        if f is None:
            f = _parse_frame(text, code_map)
            if len(code_map.frames) < 200000:
                code_map.frames[text] = f
        return f
    return _parse_frame(text, None)


def _parse_frame(text: str, code_map: CodeMap | None) -> Frame | None:
    m = FRAME_RE.match(text)
    if not m:
        return None
    kind, addr, rest = m.group(1), int(m.group(2), 16), m.group(3).strip()
    func = rest
    file = obj = None
    line = None
    if rest.endswith(")"):
        i = rest.rfind(" (")
        if i >= 0:
            func, inner = rest[:i], rest[i + 2:-1]
            if inner.startswith("in "):
                obj = inner[3:]
            else:
                f, sep, num = inner.rpartition(":")
                if sep and num.isdigit():
                    file, line = f, int(num)
                else:
                    func = rest
    if func in ("???", ""):
        func = None
    if code_map is not None:
        # a "by" frame is a return address: the call is the byte before it
        mapped = code_map.object_of(addr - 1 if kind == "by" and addr else addr)
        obj = mapped or obj
        role = object_role(obj, code_map.main_object)
        if role == "program" and file:
            role = code_map.frame_role(addr, kind, file) if mapped else (header_role(file) or role)
        return _printed_frame(kind, addr, func, file, line, obj, role)
    role = object_role(obj, None)
    if role == "program" and file:
        role = header_role(file) or role
    return _printed_frame(kind, addr, func, file, line, obj, role)


def _printed_frame(kind, addr, func, file, line, obj, role) -> Frame:
    """The frame with its names as printed (common.names.escape_name), once, here: valgrind
    writes a function, source file or object name as its bytes (an ESC included), and the
    roles above were decided on those bytes."""
    from gdb_toolkit.common.names import escape_name

    return Frame(kind, addr, escape_name(func) if func else func, escape_name(file) if file else file, line,
                 escape_name(obj) if obj else obj, role)


def site_index(frames: list[Frame]) -> int | None:
    """Index of the frame a stack is attributed to: the first frame in the program's own
    code; else the first in a non-runtime library; else the first outside the allocator
    (the runtime's own allocation: libstdc++'s emergency pool is not "malloc"); else the
    first frame."""
    if not frames:
        return None
    for wanted in (("program", "unknown"), ("library",), ("runtime",)):
        for i, f in enumerate(frames):
            if f.role in wanted:
                return i
    return 0


def program_frame(frames: list[Frame]) -> Frame | None:
    """The frame a stack is attributed to (see site_index)."""
    i = site_index(frames)
    return None if i is None else frames[i]


def callers(frames: list[Frame], depth: int) -> list[Frame]:
    """The site frame and up to depth-1 of its callers."""
    i = site_index(frames)
    return [] if i is None else frames[i:i + max(depth, 1)]


def frame_at_depth(frames: list[Frame], depth: int) -> Frame | None:
    """The depth-th frame counted from the site (1 = the site itself); the outermost
    frame when the stack is shorter."""
    i = site_index(frames)
    if i is None:
        return None
    return frames[min(i + max(depth, 1) - 1, len(frames) - 1)]


@record
class Stack:
    """An allocation/free/origin stack with its own heading (used where valgrind prints several)."""
    what: str                                   # e.g. "Uninitialised value was created by a heap allocation"
    frames: list[Frame] = field(default_factory=list)

    @property
    def site(self) -> Frame | None:
        return program_frame(self.frames)
