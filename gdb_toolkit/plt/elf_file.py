"""A small, fast ELF64 little-endian reader: headers, sections, segments, dynamic tags,
symbol and relocation tables decoded in bulk with ``struct.iter_unpack``.

pyelftools is the obvious tool, but importing it alone costs ~45 ms in gdb's Python and
decoding tables entry by entry is slow; the ``got`` command must name a 5000-slot table in
under 50 ms, so the handful of fixed-layout structures we need are decoded here directly.
(Tests cross-check everything against ``readelf``.)
"""
import os
import struct
from dataclasses import dataclass, field

from gdb_toolkit.common.errors import ToolkitError

EM_X86_64 = 62
EM_AARCH64 = 183
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_PHDR, PT_GNU_RELRO = 1, 2, 3, 6, 0x6474E552
SHT_SYMTAB, SHT_RELA, SHT_DYNSYM, SHT_NOBITS, SHT_NOTE = 2, 4, 11, 8, 7
SHF_ALLOC = 2
DT_NULL, DT_NEEDED, DT_SONAME, DT_DEBUG, DT_FLAGS, DT_FLAGS_1, DT_BIND_NOW = 0, 1, 14, 21, 30, 0x6FFFFFFB, 24
DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x8, 0x1, 0x08000000
STT_OBJECT, STT_FUNC, STT_GNU_IFUNC = 1, 2, 10

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_PHDR = struct.Struct("<IIQQQQQQ")


@dataclass
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    def contains(self, addr: int) -> bool:
        return self.addr <= addr < self.addr + self.size


@dataclass
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass
class Symbol:
    name: str
    value: int
    size: int
    type: int      # STT_*
    bind: int      # 0 local, 1 global, 2 weak
    shndx: int
    version: str = ""
    hidden_version: bool = False


@dataclass
class RawReloc:
    offset: int
    type: int
    sym: int
    addend: int
    section: str
    symtab: int    # section index of the linked symbol table


@dataclass
class ElfFile:
    path: str
    machine: int
    etype: int
    entry: int
    sections: list[Section] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    dynamic: list[tuple[int, int]] = field(default_factory=list)
    _fh: object = None

    # -- construction ------------------------------------------------------------------
    @classmethod
    def open(cls, path: str) -> "ElfFile":
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise ToolkitError(f"cannot open {path}: {exc.strerror}", "check the file exists and is readable") from None
        head = fh.read(_EHDR.size)
        if len(head) < _EHDR.size or head[:4] != b"\x7fELF":
            fh.close()
            raise ToolkitError(f"{path} is not an ELF file", "load an executable or shared object")
        if head[4] != 2 or head[5] != 1:
            fh.close()
            raise ToolkitError(f"{path} is not a 64-bit little-endian ELF file",
                               "gdb_toolkit's PLT commands support x86_64 and aarch64 ELF64")
        (_, etype, machine, _, entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
         shstrndx) = _EHDR.unpack(head)
        self = cls(path, machine, etype, entry, _fh=fh)
        if phnum:
            fh.seek(phoff)
            data = fh.read(phnum * phentsize)
            for i in range(phnum):
                t, fl, off, va, _, fsz, msz, _ = _PHDR.unpack_from(data, i * phentsize)
                self.segments.append(Segment(t, fl, off, va, fsz, msz))
        if shnum and shoff:
            fh.seek(shoff)
            data = fh.read(shnum * shentsize)
            raw = [_SHDR.unpack_from(data, i * shentsize) for i in range(shnum)]
            names = b""
            if shstrndx < shnum:
                s = raw[shstrndx]
                names = self._read(s[4], s[5])
            for r in raw:
                self.sections.append(Section(_cstr(names, r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[9]))
        dyn = next((s for s in self.segments if s.type == PT_DYNAMIC), None)
        if dyn is not None and dyn.filesz:
            data = self._read(dyn.offset, dyn.filesz)
            for tag, val in struct.iter_unpack("<qQ", data[: len(data) // 16 * 16]):
                if tag == DT_NULL:
                    break
                self.dynamic.append((tag, val))
        return self

    def close(self):
        if self._fh:
            self._fh.close()
            self._fh = None

    def _read(self, offset: int, size: int) -> bytes:
        if self._fh is None:
            self._fh = open(self.path, "rb")
        self._fh.seek(offset)
        return self._fh.read(size)

    # -- lookups -----------------------------------------------------------------------
    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, sec: Section) -> bytes:
        if sec.type == SHT_NOBITS:
            return b"\0" * sec.size
        return self._read(sec.offset, sec.size)

    def read_vaddr(self, vaddr: int, size: int) -> bytes | None:
        """File bytes backing [vaddr, vaddr+size) (zero-filled past filesz), or None."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr and vaddr + size <= seg.vaddr + seg.memsz:
                off = vaddr - seg.vaddr
                avail = max(0, min(size, seg.filesz - off))
                data = self._read(seg.offset + off, avail) if avail else b""
                return data + b"\0" * (size - len(data))
        return None

    def dyn_values(self, tag: int) -> list[int]:
        return [v for t, v in self.dynamic if t == tag]

    def dynstr(self) -> bytes:
        sec = self.section(".dynstr")
        return self.section_data(sec) if sec else b""

    def build_id(self) -> str | None:
        for sec in self.sections:
            if sec.type == SHT_NOTE and sec.name == ".note.gnu.build-id":
                data = self.section_data(sec)
                namesz, descsz, ntype = struct.unpack_from("<III", data)
                start = 12 + (namesz + 3) // 4 * 4
                return data[start:start + descsz].hex()
        return None

    # -- tables ------------------------------------------------------------------------
    def symbols(self, index: int, defined_only: bool = False) -> list[Symbol]:
        """Every entry of the symbol table in section *index* (entry 0 included), or with
        *defined_only* just the named, defined functions, ifuncs and objects (for indexes)."""
        sec = self.sections[index]
        strtab = self.section_data(self.sections[sec.link]) if sec.link < len(self.sections) else b""
        data = self.section_data(sec)
        rows = struct.iter_unpack("<IBBHQQ", data[: len(data) // 24 * 24])
        if defined_only:
            keep = (STT_OBJECT, STT_FUNC, STT_GNU_IFUNC)
            return [Symbol(_cstr(strtab, name), value, size, info & 0xF, info >> 4, shndx)
                    for name, info, _o, shndx, value, size in rows
                    if shndx and value and name and (info & 0xF) in keep]
        return [Symbol(_cstr(strtab, name), value, size, info & 0xF, info >> 4, shndx)
                for name, info, _o, shndx, value, size in rows]

    def relocations(self) -> list[RawReloc]:
        """Every RELA entry of every allocated RELA section (.rela.dyn, .rela.plt, ...)."""
        out = []
        for sec in self.sections:
            if sec.type != SHT_RELA or not sec.flags & SHF_ALLOC:
                continue
            data = self.section_data(sec)
            for off, info, addend in struct.iter_unpack("<QQq", data[: len(data) // 24 * 24]):
                out.append(RawReloc(off, info & 0xFFFFFFFF, info >> 32, addend, sec.name, sec.link))
        return out

    def symbol_versions(self, dynsym_index: int, count: int) -> list[tuple[str, bool]]:
        """(version name, hidden) per .dynsym entry from .gnu.version/_r/_d; '' if none."""
        versym = next((s for s in self.sections if s.name == ".gnu.version"), None)
        if versym is None:
            return [("", False)] * count
        ids = [v for (v,) in struct.iter_unpack("<H", self.section_data(versym)[: count * 2])]
        names: dict[int, str] = {}
        for sec in self.sections:
            if sec.name == ".gnu.version_r":
                strtab = self.section_data(self.sections[sec.link])
                data = self.section_data(sec)
                off = 0
                while off + 16 <= len(data):
                    _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, off)
                    a = off + aux
                    for _ in range(cnt):
                        _, _, other, name, anext = struct.unpack_from("<IHHII", data, a)
                        names[other] = _cstr(strtab, name)
                        if not anext:
                            break
                        a += anext
                    if not nxt:
                        break
                    off += nxt
            elif sec.name == ".gnu.version_d":
                strtab = self.section_data(self.sections[sec.link])
                data = self.section_data(sec)
                off = 0
                while off + 20 <= len(data):
                    _, flags, ndx, cnt, _, aux, nxt = struct.unpack_from("<HHHHIII", data, off)
                    if cnt and not flags & 1:  # VER_FLG_BASE names the file itself
                        (name,) = struct.unpack_from("<I", data, off + aux)
                        names[ndx] = _cstr(strtab, name)
                    if not nxt:
                        break
                    off += nxt
        out = []
        for v in ids:
            out.append((names.get(v & 0x7FFF, ""), bool(v & 0x8000)))
        out += [("", False)] * (count - len(out))
        return out


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    if end < 0:
        end = len(table)
    return table[offset:end].decode("utf-8", "replace")


def file_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_mtime_ns, st.st_size)
