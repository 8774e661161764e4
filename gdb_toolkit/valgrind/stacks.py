"""Valgrind stack traces: ``at 0x..: fn (file:line)`` / ``by 0x..: fn (in /obj)``.

``program_frame`` picks the frame that belongs to the program: the first one
that is not valgrind's malloc replacement, libc/ld.so or a C++ runtime.
"""
import functools
import re
from dataclasses import dataclass

# "==123==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)"
# "==123==    by 0x10935D: main (memleakloop.c:41)"
# "==123==    by 0x48E109F: _IO_doallocbuf (genops.c:347)"
# "==123==    by 0x10935D: ??? (in /tmp/prog)"   "by 0x1: ???"
PREFIX_RE = re.compile(r"^==\d+==\s?")
FRAME_RE = re.compile(r"\s*(at|by) 0x([0-9A-Fa-f]+): (.*)")

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
    if text.startswith("=="):
        text = text[text.find("==", 2) + 2:]
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
    return Frame(kind, addr, func, file, line, obj)


def is_runtime_frame(frame: Frame) -> bool:
    """True for valgrind's malloc replacements and C/C++ runtime frames."""
    return _is_runtime(frame.function, frame.file, frame.object)


@functools.lru_cache(maxsize=4096)
def _is_runtime(function: str | None, file: str | None, obj: str | None) -> bool:
    if file and _RUNTIME_FILES.match(file):
        return True
    if obj and _RUNTIME_OBJS.search(obj):
        return True
    if function and _RUNTIME_FUNCS.match(function):
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
