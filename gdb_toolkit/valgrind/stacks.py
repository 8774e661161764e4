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
"""
import bisect
import functools
import os
import re
from dataclasses import dataclass, field

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


class CodeMap:
    """Address -> object file, from the process's file mappings (``/proc/PID/maps`` text)."""

    def __init__(self, ranges: list[tuple[int, int, str]], main_object: str | None = None):
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

    def object_of(self, address: int) -> str | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self._ranges[i][1]:
            return self._ranges[i][2]
        return None

    def __len__(self) -> int:
        return len(self._ranges)


@dataclass
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
    main = None
    if code_map is not None:
        # a "by" frame is a return address: the call is the byte before it
        mapped = code_map.object_of(addr - 1 if kind == "by" and addr else addr)
        obj = mapped or obj
        main = code_map.main_object
    return Frame(kind, addr, func, file, line, obj, object_role(obj, main))


def site_index(frames: list[Frame]) -> int | None:
    """Index of the frame a stack is attributed to: the first frame in the program's own
    code; else the first in a non-runtime library; else the first outside the allocator
    and the runtime; else the first frame."""
    if not frames:
        return None
    for wanted in (("program", "unknown"), ("library",)):
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


@dataclass
class Stack:
    """An allocation/free/origin stack with its own heading (used where valgrind prints several)."""
    what: str                                   # e.g. "Uninitialised value was created by a heap allocation"
    frames: list[Frame] = field(default_factory=list)

    @property
    def site(self) -> Frame | None:
        return program_frame(self.frames)
