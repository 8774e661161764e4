"""An (optional) vmlinux ELF: its symbols as a kallsyms-format table, and the bytes the
kernel was built with (for comparing with what is live in memory).

Addresses are link-time; callers slide them by the KASLR offset.  Only the section
headers and .symtab are read (pyelftools); the file is never loaded whole.
"""

from gdb_toolkit.common.closeable import Closeable
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import record

SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHT_NOBITS = 8


@record
class Section:
    name: str
    addr: int
    size: int
    offset: int
    nobits: bool


class Vmlinux(Closeable):
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

        from gdb_toolkit.common.safe_open import open_regular

        rf = open_regular(path, "vmlinux")
        f = open(rf.fd, "rb", closefd=True)
        rf.fd = -1                     # the file object owns the descriptor now
        try:
            elf = ELFFile(f)
        except ELFError as exc:
            f.close()
            raise ToolkitError(f"{path} is not an ELF file ({exc})", "give a vmlinux (not vmlinuz)") \
                from None
        secs, code = [], []
        for s in elf.iter_sections():
            h = s.header
            if h.sh_flags & SHF_ALLOC and h.sh_addr and h.sh_size:
                sec = Section(s.name, h.sh_addr, h.sh_size, h.sh_offset, h.sh_type == "SHT_NOBITS")
                secs.append(sec)
                if h.sh_flags & SHF_EXECINSTR:
                    code.append(sec)
        vm = cls(path, secs, f, elf)
        vm._exec_sections = code
        return vm

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

    def text_start(self) -> int | None:
        """Link address of the first code (``_text``: x86_64's .text, arm64's .head.text)."""
        code = [s.addr for s in self._exec_sections]
        return min(code) if code else None

    def kallsyms_text(self) -> str:
        """.symtab as kallsyms lines (``ADDR T name``), sorted by address.

        Read with struct over the raw section (a vmlinux has ~130 000 symbols: pyelftools'
        per-symbol objects cost minutes in a slow VM)."""
        import struct

        sym = self._elf.get_section_by_name(".symtab")
        if sym is None:
            raise ToolkitError(f"{self.path} has no .symtab (stripped)", "give an unstripped vmlinux")
        h = sym.header
        strtab = self._elf.get_section(h.sh_link)
        if h.sh_entsize != 24 or strtab is None:
            raise ToolkitError(f"{self.path}: unexpected .symtab layout", "give an x86_64/arm64 vmlinux")
        self._f.seek(h.sh_offset)
        raw = self._f.read(h.sh_size - h.sh_size % 24)
        self._f.seek(strtab.header.sh_offset)
        names = self._f.read(strtab.header.sh_size)
        exec_idx = {i for i, s in enumerate(self._elf.iter_sections())
                    if s.header.sh_flags & 0x4}
        rows = []
        for st_name, st_info, _other, shndx, value, _size in struct.iter_unpack("<IBBHQQ", raw):
            if not st_name or not value or shndx in (0, 0xFFF1) or shndx >= 0xFF00:
                continue
            kind, bind = st_info & 0xF, st_info >> 4
            if kind not in (0, 1, 2):           # NOTYPE, OBJECT, FUNC
                continue
            end = names.find(b"\0", st_name)
            name = names[st_name:end if end >= 0 else len(names)].decode("utf-8", "replace")
            if not name:
                continue
            letter = "t" if kind == 2 or (kind == 0 and shndx in exec_idx) else "d"
            if bind in (1, 2):                  # GLOBAL, WEAK
                letter = letter.upper()
            rows.append((value, f"{value:016x} {letter} {name}"))
        rows.sort()
        return "\n".join(r for _, r in rows) + "\n"
