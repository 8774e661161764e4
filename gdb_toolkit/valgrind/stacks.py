"""Valgrind stack traces: ``at 0x..: fn (file:line)`` / ``by 0x..: fn (in /obj)``.

``program_frame`` picks the frame that belongs to the program: the first one
that is not valgrind's malloc replacement, libc/ld.so or a C++ runtime.
"""
import re
from dataclasses import dataclass

# "==123==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)"
# "==123==    by 0x10935D: main (memleakloop.c:41)"
# "==123==    by 0x48E109F: _IO_doallocbuf (genops.c:347)"
# "==123==    by 0x10935D: ??? (in /tmp/prog)"   "by 0x1: ???"
PREFIX_RE = re.compile(r"^==\d+==\s?")
FRAME_RE = re.compile(r"^\s*(at|by)\s+0x([0-9A-Fa-f]+):\s+(.*?)\s*$")
_LOC_RE = re.compile(r"^(.*?)\s+\((?:in\s+(.+)|(.+?):(\d+))\)$")

_RUNTIME_FUNCS = re.compile(
    r"^(malloc|calloc|realloc|free|memalign|posix_memalign|aligned_alloc|valloc|pvalloc|"
    r"reallocarray|strdup|strndup|__libc_\w+|_dl_\w+|operator new.*|operator delete.*|"
    r"__gnu_cxx::.*|std::.*|_IO_\w+|__GI_\w+|vfprintf|__vfprintf_internal|outstring_func|"
    r"printf|fprintf|puts|fputs|fwrite|fopen\w*|__fopen_internal|getdelim|getline|"
    r"__new_\w+|new_\w+|_Znwm|_Znam|_ZdlPv|_ZdaPv)(@@?\S+)?$")
_RUNTIME_OBJS = re.compile(r"(vgpreload_|/valgrind/|/libc[.-]|/ld-linux|/libstdc\+\+|/libgcc_s)")
_RUNTIME_FILES = re.compile(r"^(vg_replace_malloc\.c|filedoalloc\.c|genops\.c|fileops\.c|"
                            r"vfprintf-internal\.c|printf\.c|iofopen\.c|dl-\w+\.c)$")


@dataclass
class Frame:
    kind: str                 # "at" (innermost) or "by"
    address: int
    function: str | None      # None for "???"
    file: str | None
    line: int | None
    object: str | None        # "in /path/obj" when there is no line info

    @property
    def where(self) -> str:
        if self.file:
            return f"{self.file}:{self.line}"
        if self.object:
            return self.object
        return f"0x{self.address:x}"

    def label(self) -> str:
        return f"{self.function or '???'} ({self.where})"


def strip_prefix(line: str) -> str:
    """The text of a valgrind output line without the ``==PID==`` prefix."""
    return PREFIX_RE.sub("", line, count=1)


def parse_frame(text: str) -> Frame | None:
    """One stack frame from a line (with or without the ``==PID==`` prefix)."""
    m = FRAME_RE.match(strip_prefix(text))
    if not m:
        return None
    kind, addr, rest = m.group(1), int(m.group(2), 16), m.group(3)
    func = file = obj = None
    line = None
    lm = _LOC_RE.match(rest)
    if lm:
        func = lm.group(1)
        if lm.group(2):
            obj = lm.group(2)
        else:
            file, line = lm.group(3), int(lm.group(4))
    else:
        func = rest
    if func in ("???", ""):
        func = None
    return Frame(kind, addr, func, file, line, obj)


def is_runtime_frame(frame: Frame) -> bool:
    """True for valgrind's malloc replacements and C/C++ runtime frames."""
    if frame.file and _RUNTIME_FILES.match(frame.file):
        return True
    if frame.object and _RUNTIME_OBJS.search(frame.object):
        return True
    if frame.function and _RUNTIME_FUNCS.match(frame.function):
        return True
    return False


def program_frame(frames: list[Frame]) -> Frame | None:
    """The allocating frame that belongs to the program (first non-runtime frame).

    Falls back to the first frame with source information, then the first frame.
    """
    for f in frames:
        if not is_runtime_frame(f):
            return f
    for f in frames:
        if f.file:
            return f
    return frames[0] if frames else None
