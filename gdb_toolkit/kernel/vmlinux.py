"""An (optional) vmlinux ELF: its symbols as a kallsyms-format table, and the bytes the
kernel was built with (for comparing with what is live in memory).

Addresses are link-time; callers slide them by the KASLR offset.  Only the section
headers and .symtab are read (pyelftools); the file is never loaded whole.
"""
from dataclasses import dataclass

from gdb_toolkit.common.errors import ToolkitError

SHF_ALLOC = 0x2
SHT_NOBITS = 8


@dataclass
class Section:
    name: str
    addr: int
    size: int
    offset: int
    nobits: bool


class Vmlinux:
    def __init__(self, path: str, sections: list[Section], f, elf):
        self.path = path
        self.sections = sections
        self._f = f
        self._elf = elf

    @classmethod
    def open(cls, path: str) -> "Vmlinux":
        from gdb_toolkit.common.deps import require

        require("elftools")
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        try:
            f = open(path, "rb")
        except OSError as exc:
            raise ToolkitError(f"cannot open vmlinux {path}: {exc.strerror}",
                               "give the vmlinux of the running kernel") from None
        try:
            elf = ELFFile(f)
        except ELFError as exc:
            f.close()
            raise ToolkitError(f"{path} is not an ELF file ({exc})", "give a vmlinux (not vmlinuz)") \
                from None
        secs = []
        for s in elf.iter_sections():
            h = s.header
            if h.sh_flags & SHF_ALLOC and h.sh_addr and h.sh_size:
                secs.append(Section(s.name, h.sh_addr, h.sh_size, h.sh_offset, h.sh_type == "SHT_NOBITS"))
        return cls(path, secs, f, elf)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def read(self, addr: int, size: int) -> bytes:
        """Bytes at a link-time address as stored in the file."""
        for s in self.sections:
            if s.addr <= addr < s.addr + s.size:
                if s.nobits:
                    raise ToolkitError(f"0x{addr:x} is in {s.name}, which has no bytes in {self.path}", None)
                n = min(size, s.addr + s.size - addr)
                self._f.seek(s.offset + addr - s.addr)
                return self._f.read(n)
        raise ToolkitError(f"0x{addr:x} is in no section of {self.path}",
                           "is it the vmlinux of this kernel (same build-id) and the KASLR offset right?")

    def kallsyms_text(self) -> str:
        """.symtab as kallsyms lines (``ADDR T name``), sorted by address."""
        sym = self._elf.get_section_by_name(".symtab")
        if sym is None:
            raise ToolkitError(f"{self.path} has no .symtab (stripped)", "give an unstripped vmlinux")
        rows = []
        for s in sym.iter_symbols():
            e = s.entry
            if not s.name or not e.st_value or e.st_shndx in ("SHN_UNDEF", "SHN_ABS"):
                continue
            kind = e.st_info.type
            if kind not in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
                continue
            letter = "t" if kind == "STT_FUNC" else "d"
            if kind == "STT_NOTYPE":
                sec = self._elf.get_section(e.st_shndx) if isinstance(e.st_shndx, int) else None
                letter = "t" if sec is not None and sec.header.sh_flags & 0x4 else "d"
            if e.st_info.bind in ("STB_GLOBAL", "STB_WEAK"):
                letter = letter.upper()
            rows.append((e.st_value, f"{e.st_value:016x} {letter} {s.name}"))
        rows.sort()
        return "\n".join(r for _, r in rows) + "\n"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
