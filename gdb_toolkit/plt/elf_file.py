"""The project's ELF reader: small, fast, bounded; ELF32 and ELF64, little-endian.

Headers, sections, segments, dynamic tags, symbol and relocation tables (RELA and REL)
decoded in bulk with ``struct.iter_unpack``.  pyelftools is the obvious tool, but
importing it alone costs ~45 ms in gdb's Python and decoding entry by entry is slow; the
``got`` command must name a 5000-slot table in tens of milliseconds.

Every size, offset and count taken from the file is checked against the file before it
is used, as BFD does: a table or section that claims bytes past the end of the file is
a ``BadElf`` error naming it (never a huge read, never a zero-filled allocation), and
``.bss``-like (NOBITS) sections have no file bytes at all.  Non-regular files (FIFOs,
devices) are refused before anything is read.  (Tests cross-check every value against
``readelf``; ``tests/fuzz`` throws mutated files at it.)
"""
import _struct as struct   # see slots.py
import os

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import escape_name
from gdb_toolkit.common.record import SlotFields, field, record
from gdb_toolkit.common.safe_open import open_regular as _open_regular

EM_386, EM_ARM, EM_X86_64, EM_AARCH64 = 3, 40, 62, 183
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS, PT_GNU_RELRO = 1, 2, 3, 4, 6, 7, 0x6474E552
SHT_SYMTAB, SHT_RELA, SHT_HASH, SHT_NOBITS, SHT_REL, SHT_DYNSYM, SHT_NOTE = 2, 4, 5, 8, 9, 11, 7
SHT_GNU_HASH = 0x6FFFFFF6
SHF_ALLOC = 2
DT_NULL, DT_NEEDED, DT_SONAME, DT_DEBUG, DT_FLAGS, DT_FLAGS_1, DT_BIND_NOW = 0, 1, 14, 21, 30, 0x6FFFFFFB, 24
DF_SYMBOLIC, DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x2, 0x8, 0x1, 0x08000000
STT_OBJECT, STT_FUNC, STT_TLS, STT_GNU_IFUNC = 1, 2, 6, 10
STV_PROTECTED = 3

#: the largest single read the reader makes (a table or a PLT); real ones are far smaller
MAX_READ = 256 << 20
#: bytes of GNU hash chain read at a time (files without section headers)
GNU_HASH_PIECE = 16 << 10
MAX_SECTIONS = 1 << 16
#: bytes read at once from the start of a file (ELF header and program headers)
HEAD_READ = 4096
MAX_SEGMENTS = 1 << 12


class BadElf(ToolkitError):
    """The file is not a well-formed ELF object (a table lies outside it, a count is absurd)."""

    def __init__(self, path: str, what: str):
        super().__init__(f"{path}: malformed ELF: {what}",
                         "the file is corrupt or crafted; check it with 'readelf -a'")


class Section(SlotFields):
    __slots__ = ('name', 'type', 'flags', 'addr', 'offset', 'size', 'link', 'info', 'entsize')

    def __init__(self, name, type, flags, addr, offset, size, link, info, entsize):
        self.name = name
        self.type = type
        self.flags = flags
        self.addr = addr
        self.offset = offset
        self.size = size
        self.link = link
        self.info = info
        self.entsize = entsize

    def contains(self, addr: int) -> bool:
        return self.addr <= addr < self.addr + self.size


class Segment(SlotFields):
    __slots__ = ('type', 'flags', 'offset', 'vaddr', 'filesz', 'memsz')

    def __init__(self, type, flags, offset, vaddr, filesz, memsz):
        self.type = type
        self.flags = flags
        self.offset = offset
        self.vaddr = vaddr
        self.filesz = filesz
        self.memsz = memsz


class Symbol(SlotFields):
    __slots__ = ('name', 'value', 'size', 'type', 'bind', 'shndx', 'version', 'hidden_version', 'visibility',
                 'version_index')

    def __init__(self, name, value, size, type, bind, shndx, version='', hidden_version=False, visibility=0,
                 version_index=0):
        self.name = name
        self.value = value
        self.size = size
        self.type = type
        self.bind = bind
        self.shndx = shndx
        self.version = version
        self.hidden_version = hidden_version
        self.visibility = visibility
        self.version_index = version_index      # .gnu.version entry without the hidden bit


class RawReloc(SlotFields):
    __slots__ = ('offset', 'type', 'sym', 'addend', 'section', 'symtab')

    def __init__(self, offset, type, sym, addend, section, symtab):
        self.offset = offset
        self.type = type
        self.sym = sym
        self.addend = addend
        self.section = section
        self.symtab = symtab


class Layout:
    """Struct formats of one ELF class (32 or 64 bits, little-endian)."""
    __slots__ = ('bits', 'word', 'ehdr', 'shdr', 'phdr', 'sym', 'rela', 'rel', 'dyn', 'sym_shift')

    def __init__(self, bits, word, ehdr, shdr, phdr, sym, rela, rel, dyn, sym_shift):
        self.bits = bits
        self.word = word
        self.ehdr = ehdr
        self.shdr = shdr
        self.phdr = phdr
        self.sym = sym
        self.rela = rela
        self.rel = rel
        self.dyn = dyn
        self.sym_shift = sym_shift

    def __repr__(self):
        return f"Layout({', '.join(repr(getattr(self, k)) for k in self.__slots__)})"

    @property
    def wordsize(self) -> int:
        return self.bits // 8
LAYOUT64 = Layout(64, "<Q", struct.Struct("<16sHHIQQQIHHHHHH"), struct.Struct("<IIQQQQIIQQ"),
                  struct.Struct("<IIQQQQQQ"), struct.Struct("<IBBHQQ"), struct.Struct("<QQq"),
                  struct.Struct("<QQ"), struct.Struct("<qQ"), 32)
LAYOUT32 = Layout(32, "<I", struct.Struct("<16sHHIIIIIHHHHHH"), struct.Struct("<IIIIIIIIII"),
                  struct.Struct("<IIIIIIII"), struct.Struct("<IIIBBH"), struct.Struct("<IIi"),
                  struct.Struct("<II"), struct.Struct("<iI"), 8)


class SymbolTableBytes:
    """One symbol table as the file holds it (whole entries only) with its string table.

    ``rows()`` decodes the defined, named functions, ifuncs and objects (what a symbol index
    keeps); ``rows_at(value)`` finds just those whose st_value is *value*, by searching a
    copy of the tables' value column for the value's encoding; ``rows_named(name, hash)``
    reads just the entries its hash table chains to *name* (C speed: naming a handful of
    addresses in libc costs no pass over its 10k symbols in Python)."""
    __slots__ = ("strtab", "data", "layout", "_values")

    KEEP = (STT_OBJECT, STT_FUNC, STT_GNU_IFUNC)

    def __init__(self, strtab: bytes, data: bytes, layout: Layout):
        size = layout.sym.size
        self.strtab = strtab
        self.data = data[: len(data) // size * size]
        self.layout = layout
        self._values = None

    def __len__(self) -> int:
        return len(self.data) // self.layout.sym.size

    def _row(self, entry):
        if self.layout.bits == 32:
            name, value, size, info, _o, shndx = entry
        else:
            name, info, _o, shndx, value, size = entry
        if shndx and name and value and (info & 0xF) in self.KEEP:
            return (value, size, info & 0xF, info >> 4, name)
        return None

    def rows(self) -> list[tuple]:
        """[(value, size, type, bind, name offset)] in table order."""
        keep = set(self.KEEP)
        rows = self.layout.sym.iter_unpack(self.data)
        if self.layout.bits == 32:
            rows = ((n, i, o, sh, v, s) for n, v, s, i, o, sh in rows)
        return [(value, size, info & 0xF, info >> 4, name) for name, info, _o, shndx, value, size in rows
                if shndx and name and value and (info & 0xF) in keep]

    def rows_at(self, value: int) -> list[tuple]:
        """The rows of ``rows()`` whose value is *value*, in table order."""
        try:
            pattern = struct.pack(self.layout.word, value)
        except struct.error:
            return []
        # Search the first 4 bytes of every st_value, copied into one column (4-byte units
        # at a fixed stride: a C-level copy), not the whole table: a short needle in 240 KB
        # of libc's debug symbols costs ~0.3 ms in gdb's Python, the copy and the search of
        # its 40 KB ~0.1 ms.  Hits on a unit boundary are checked against the whole entry.
        if self._values is None:
            entry_units, value_unit = (6, 2) if self.layout.bits == 64 else (4, 1)
            self._values = memoryview(self.data).cast("B").cast("I")[value_unit::entry_units].tobytes()
        values, needle, sym = self._values, pattern[:4], self.layout.sym
        out, pos = [], 0
        while True:
            pos = values.find(needle, pos)
            if pos < 0:
                return out
            if pos % 4 == 0:
                row = self._row(sym.unpack_from(self.data, pos // 4 * sym.size))
                if row is not None and row[0] == value:
                    out.append(row)
            pos += 1

    def rows_named(self, name: str, table: "SymbolHash") -> list[tuple]:
        """The rows of ``rows()`` named *name* among the entries *table* (this symbol table's
        hash section) chains to it, in table order.  The hash only says where to look: each
        entry is read and its name compared, so a wrong or crafted hash table can hide a
        symbol but never name a wrong one."""
        return [row for _, row in self.indexes_named(name, table)]

    def indexes_named(self, name: str, table: "SymbolHash") -> list[tuple[int, tuple]]:
        """``rows_named`` with each row's index in the table (its .gnu.version entry)."""
        try:
            raw = name.encode("utf-8", "surrogateescape")     # _cstr's decoding, undone
        except UnicodeEncodeError:
            return []
        sym, strtab, found = self.layout.sym, self.strtab, {}
        for i in table.candidates(raw, len(self)):
            row = self._row(sym.unpack_from(self.data, i * sym.size))
            if row is not None and _cstr(strtab, row[4]) == name:
                found[i] = row
        return sorted(found.items())


class SymbolHash:
    """A dynamic symbol table's hash section (SHT_GNU_HASH or SysV SHT_HASH): which entries
    to look at for a name.  Bounded: indexes outside the table and endless chains end the
    walk."""
    __slots__ = ("data", "gnu", "bloom_words")

    def __init__(self, data: bytes, gnu: bool, wordsize: int):
        self.data = data[: len(data) // 4 * 4]
        self.gnu = gnu
        self.bloom_words = wordsize // 4        # the GNU bloom filter's words are ELF words

    def candidates(self, name: bytes, nsyms: int):
        """Symbol indexes whose hash chain is *name*'s (a superset of the entries named so)."""
        words = memoryview(self.data).cast("I") if self.data else ()
        if self.gnu:
            if len(words) < 4:
                return
            nbuckets, symoffset, bloom_size = words[0], words[1], words[2]
            buckets = 4 + bloom_size * self.bloom_words
            chains = buckets + nbuckets
            if not nbuckets or chains > len(words):
                return
            h = 5381
            for c in name:
                h = (h * 33 + c) & 0xFFFFFFFF
            i = words[buckets + h % nbuckets]
            if i < symoffset:
                return
            while i < nsyms and chains + i - symoffset < len(words):
                link = words[chains + i - symoffset]
                if (link | 1) == (h | 1):
                    yield i
                if link & 1:
                    return
                i += 1
        else:
            if len(words) < 2:
                return
            nbucket, nchain = words[0], words[1]
            if not nbucket or 2 + nbucket + nchain > len(words):
                return
            h = 0
            for c in name:
                h = (h << 4) + c
                g = h & 0xF0000000
                if g:
                    h ^= g >> 24
                h &= ~g & 0xFFFFFFFF
            i = words[2 + h % nbucket]
            for _ in range(min(nchain, nsyms)):     # a chain visits each entry once, at most
                if not i or i >= nsyms or i >= nchain:
                    return
                yield i
                i = words[2 + nbucket + i]


def display_path(path) -> str:
    """A path as printable text that survives any bytes (common.names.escape_name)."""
    return escape_name(path)


@record
class ElfFile:
    path: str
    machine: int
    etype: int
    entry: int
    layout: Layout = LAYOUT64
    file_size: int = 0
    flags: int = 0                 # e_flags (arm: EABI version, float ABI)
    sections: list[Section] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    dynamic: list[tuple[int, int]] = field(default_factory=list)
    _fh: object = None
    #: no section header table (stripped with sstrip, or cut off): the sections are rebuilt
    #: from the dynamic segment, the way ld.so finds its tables (_sections_from_dynamic)
    no_section_headers: bool = False

    @property
    def bits(self) -> int:
        return self.layout.bits

    @property
    def wordsize(self) -> int:
        return self.layout.wordsize

    # -- construction ------------------------------------------------------------------
    @classmethod
    def open(cls, path: str) -> "ElfFile":
        rf = _open_regular(path, "ELF file")        # refuses FIFOs/devices without blocking
        try:
            return cls._parse(path, rf, rf.size)
        except BaseException:
            rf.close()
            raise

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> "ElfFile":
        """An ELF image read from memory (the vDSO): every bound checked as for a file."""
        return cls._parse(name, _Image(bytes(data)), len(data))

    @classmethod
    def _parse(cls, path: str, fh, size: int) -> "ElfFile":
        # the first page holds the ELF header and, in every real file, the program headers:
        # one read instead of three (a first 'got' opens five ELF files)
        head = fh.read_range(0, min(size, HEAD_READ))
        ident = head[:16]
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise ToolkitError(f"{display_path(path)} is not an ELF file", "load an executable or shared object")
        if ident[4] not in (1, 2) or ident[5] != 1:
            raise ToolkitError(f"{display_path(path)} is not a little-endian ELF32/ELF64 file",
                               "gdb_toolkit's PLT commands support x86_64, i386, aarch64 and arm (little-endian)")
        lay = LAYOUT64 if ident[4] == 2 else LAYOUT32
        if size < lay.ehdr.size:
            raise BadElf(display_path(path), "truncated ELF header")
        (_, etype, machine, _, entry, phoff, shoff, eflags, _, phentsize, phnum, shentsize, shnum,
         shstrndx) = lay.ehdr.unpack(head[:lay.ehdr.size])
        self = cls(path, machine, etype, entry, lay, size, eflags, _fh=fh)
        self._name = display_path(path)
        if phnum:
            if phentsize < lay.phdr.size or phnum > MAX_SEGMENTS:
                raise BadElf(self._name, f"program header table (entry size {phentsize}, {phnum} entries)")
            end = phoff + phnum * phentsize
            data = head[phoff:end] if 0 <= phoff and end <= len(head) else \
                self._read(phoff, phnum * phentsize, "the program header table")
            for i in range(phnum):
                p = lay.phdr.unpack_from(data, i * phentsize)
                if lay.bits == 64:
                    t, fl, off, va, _, fsz, msz, _ = p
                else:
                    t, off, va, _, fsz, msz, fl, _ = p
                self.segments.append(Segment(t, fl, off, va, fsz, msz))
        if shoff:
            if shentsize < lay.shdr.size:
                raise BadElf(self._name, f"section header entry size {shentsize}")
            if shnum and shstrndx != 0xFFFF and shnum <= MAX_SECTIONS and shoff + shnum * shentsize <= size:
                data = self._read(shoff, shnum * shentsize, "the section header table")   # one read
            else:
                first = lay.shdr.unpack(self._read(shoff, lay.shdr.size, "the section header table"))
                if shnum == 0:                      # extended numbering: the count is in section 0
                    shnum = first[5]
                if shstrndx == 0xFFFF:
                    shstrndx = first[6]
                if shnum > MAX_SECTIONS:
                    raise BadElf(self._name, f"{shnum} sections")
                data = self._read(shoff, shnum * shentsize, "the section header table")
            raw = list(lay.shdr.iter_unpack(data)) if shentsize == lay.shdr.size else \
                [lay.shdr.unpack_from(data, i * shentsize) for i in range(shnum)]
            names = b""
            if 0 < shstrndx < shnum and raw[shstrndx][1] != SHT_NOBITS:
                s = raw[shstrndx]
                names = self._read(s[4], s[5], "the section name table")
            for r in raw:
                # a section's name is printed, never looked up by bytes: escaped here, once
                # (escape_name; the ASCII names compared with -- .plt, .got -- are unchanged)
                self.sections.append(Section(escape_name(_cstr(names, r[0])), r[1], r[2], r[3], r[4], r[5], r[6],
                                             r[7], r[9]))
        dyn = next((s for s in self.segments if s.type == PT_DYNAMIC), None)
        if dyn is not None and dyn.filesz:
            data = self._read(dyn.offset, dyn.filesz, "the dynamic segment")
            step = lay.dyn.size
            for tag, val in lay.dyn.iter_unpack(data[: len(data) // step * step]):
                if tag == DT_NULL:
                    break
                self.dynamic.append((tag, val))
        if not self.sections and (self.dynamic or any(p.type == PT_NOTE for p in self.segments)):
            self.sections = _sections_from_dynamic(self)
            self.no_section_headers = True
        return self

    def close(self):
        if self._fh and not isinstance(self._fh, _Image):     # an image has nothing to reopen
            self._fh.close()
            self._fh = None

    def _read(self, offset: int, size: int, what: str = "data") -> bytes:
        """Exactly *size* file bytes at *offset*, or BadElf when they are not all in the file."""
        if offset < 0 or size < 0 or offset + size > self.file_size or size > MAX_READ:
            raise BadElf(getattr(self, "_name", self.path),
                         f"{what} (offset 0x{offset:x}, size 0x{size:x}) lies outside the file "
                         f"({self.file_size} bytes)")
        if self._fh is None:
            self._fh = _open_regular(self.path, "ELF file")
        return self._fh.read_range(offset, size)

    # -- lookups -----------------------------------------------------------------------
    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, sec: Section) -> bytes:
        """The section's file bytes; a NOBITS section has none (never a zero-filled buffer)."""
        if sec.type == SHT_NOBITS:
            return b""
        return self._read(sec.offset, sec.size, f"section {sec.name or '?'}")

    def segment_of(self, vaddr: int, size: int = 1) -> Segment | None:
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr and vaddr + size <= seg.vaddr + seg.memsz:
                return seg
        return None

    def read_vaddr(self, vaddr: int, size: int) -> bytes | None:
        """File bytes backing [vaddr, vaddr+size) (zeros past filesz, as the loader does),
        or None when no PT_LOAD segment covers the range.  *size* is bounded by MAX_READ."""
        seg = self.segment_of(vaddr, size)
        if seg is None or size > MAX_READ:
            return None
        off = vaddr - seg.vaddr
        avail = max(0, min(size, seg.filesz - off))
        data = self._read(seg.offset + off, avail, "a loaded segment") if avail else b""
        return data + b"\0" * (size - len(data))

    def dyn_values(self, tag: int) -> list[int]:
        return [v for t, v in self.dynamic if t == tag]

    def dynstr(self) -> bytes:
        sec = self.section(".dynstr")
        return self.section_data(sec) if sec else b""

    def build_id(self) -> str | None:
        for sec in self.sections:
            if sec.type == SHT_NOTE and sec.name == ".note.gnu.build-id":
                return parse_build_id(self.section_data(sec))
        return None

    def build_id_vaddr(self) -> tuple[int, int] | None:
        """(link-time address, size) of the build-id note, to compare with memory."""
        for sec in self.sections:
            if sec.type == SHT_NOTE and sec.name == ".note.gnu.build-id" and sec.addr and sec.flags & SHF_ALLOC:
                return sec.addr, min(sec.size, 256)
        return None

    # -- tables ------------------------------------------------------------------------
    def symbols(self, index: int, defined_only: bool = False, types=None) -> list[Symbol]:
        """Every entry of the symbol table in section *index* (entry 0 included), or with
        *defined_only* just the named, defined functions, ifuncs, objects and TLS variables
        (only the STT_* *types* given, when given)."""
        sec = self.sections[index]
        strtab = b""
        if 0 < sec.link < len(self.sections):
            strtab = self.section_data(self.sections[sec.link])
        data = self.section_data(sec)
        st = self.layout.sym
        rows = st.iter_unpack(data[: len(data) // st.size * st.size])
        if self.layout.bits == 32:
            rows = ((n, i, o, sh, v, s) for n, v, s, i, o, sh in rows)
        if defined_only:
            keep = types or (STT_OBJECT, STT_FUNC, STT_GNU_IFUNC, STT_TLS)
            return [Symbol(_cstr(strtab, name), value, size, info & 0xF, info >> 4, shndx, visibility=other & 3)
                    for name, info, other, shndx, value, size in rows
                    if shndx and name and (value or (info & 0xF) == STT_TLS) and (info & 0xF) in keep]
        return [Symbol(_cstr(strtab, name), value, size, info & 0xF, info >> 4, shndx, visibility=other & 3)
                for name, info, other, shndx, value, size in rows]

    def raw_symbols(self, index: int) -> tuple[bytes, list[tuple]]:
        """(string table, [(value, size, type, bind, name offset)]) of the defined, named
        functions, ifuncs and objects of a symbol table: no name decoded, no object built
        (libc's debug symbol table has 10k entries; the index decodes names on a hit)."""
        table = self.symbol_table(index)
        return table.strtab, table.rows()

    def symbol_table(self, index: int) -> "SymbolTableBytes":
        """A symbol table's bytes and its string table, decoded only on demand."""
        sec = self.sections[index]
        strtab = b""
        if 0 < sec.link < len(self.sections):
            strtab = self.section_data(self.sections[sec.link])
        return SymbolTableBytes(strtab, self.section_data(sec), self.layout)

    def relocations(self) -> list[RawReloc]:
        """Every entry of every allocated RELA/REL section (.rela.dyn, .rel.plt, ...)."""
        out = []
        shift = self.layout.sym_shift
        mask = (1 << shift) - 1
        for sec in self.sections:
            if sec.type not in (SHT_RELA, SHT_REL) or not sec.flags & SHF_ALLOC:
                continue
            data = self.section_data(sec)
            if sec.type == SHT_RELA:
                st = self.layout.rela
                for off, info, addend in st.iter_unpack(data[: len(data) // st.size * st.size]):
                    out.append(RawReloc(off, info & mask, info >> shift, addend, sec.name, sec.link))
            else:
                st = self.layout.rel
                for off, info in st.iter_unpack(data[: len(data) // st.size * st.size]):
                    out.append(RawReloc(off, info & mask, info >> shift, None, sec.name, sec.link))
        return out

    def symbol_versions(self, dynsym_index: int, count: int) -> list[tuple[str, bool]]:
        """(version name, hidden) per .dynsym entry from .gnu.version/_r/_d; '' if none."""
        return [(name, hidden) for name, hidden, _ in self.symbol_version_info(dynsym_index, count)]

    def has_versym(self) -> bool:
        """Does the object carry .gnu.version (ld.so's l_versyms)?  Without it every
        definition satisfies every versioned reference."""
        return any(s.name == ".gnu.version" and s.type != SHT_NOBITS for s in self.sections)

    def symbol_version_info(self, dynsym_index: int, count: int) -> list[tuple[str, bool, int]]:
        """(version name, hidden, version index) per .dynsym entry; ('', False, 0) if none."""
        versym = next((s for s in self.sections if s.name == ".gnu.version"), None)
        if versym is None or versym.type == SHT_NOBITS:
            return [("", False, 0)] * count
        raw = self.section_data(versym)
        ids = [v for (v,) in struct.iter_unpack("<H", raw[: min(len(raw), count * 2) // 2 * 2])]
        names = self.version_names()
        out = [(names.get(v & 0x7FFF, ""), bool(v & 0x8000), v & 0x7FFF) for v in ids]
        out += [("", False, 0)] * (count - len(out))
        return out

    def version_names(self) -> dict[int, str]:
        """Version index -> name from .gnu.version_r (needed) and .gnu.version_d (defined);
        every offset is checked, a malformed chain simply ends."""
        names: dict[int, str] = {}
        for sec in self.sections:
            if sec.name not in (".gnu.version_r", ".gnu.version_d") or sec.type == SHT_NOBITS:
                continue
            if not 0 < sec.link < len(self.sections):
                continue
            strtab = self.section_data(self.sections[sec.link])
            data = self.section_data(sec)
            off, seen = 0, 0
            if sec.name == ".gnu.version_r":
                while off + 16 <= len(data) and seen < 4096:
                    seen += 1
                    _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, off)
                    a = off + aux
                    for _ in range(min(cnt, 4096)):
                        if a + 16 > len(data):
                            break
                        _, _, other, name, anext = struct.unpack_from("<IHHII", data, a)
                        names[other & 0x7FFF] = _cstr(strtab, name)
                        if not anext:
                            break
                        a += anext
                    if not nxt:
                        break
                    off += nxt
            else:
                while off + 20 <= len(data) and seen < 4096:
                    seen += 1
                    _, flags, ndx, cnt, _, aux, nxt = struct.unpack_from("<HHHHIII", data, off)
                    if cnt and not flags & 1 and off + aux + 4 <= len(data):  # VER_FLG_BASE: the file
                        (name,) = struct.unpack_from("<I", data, off + aux)
                        names[ndx & 0x7FFF] = _cstr(strtab, name)
                    if not nxt:
                        break
                    off += nxt
        return names


class _Image:
    """Bytes with the reader interface of common.safe_open.RegularFile (read_range)."""

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def read_range(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise BadElf("(memory image)", f"range 0x{offset:x}+0x{length:x} outside {self.size} bytes")
        return self.data[offset:offset + length]

    def close(self):
        pass


DT_PLTRELSZ, DT_PLTGOT, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_RELA, DT_RELASZ = 2, 3, 4, 5, 6, 7, 8
DT_STRSZ, DT_REL, DT_RELSZ, DT_PLTREL, DT_JMPREL = 10, 17, 18, 20, 23
DT_GNU_HASH, DT_VERSYM, DT_VERDEF, DT_VERNEED = 0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFC, 0x6FFFFFFE
SHT_DYNAMIC, SHT_GNU_VERSYM, SHT_GNU_VERDEF, SHT_GNU_VERNEED = 6, 0x6FFFFFFF, 0x6FFFFFFD, 0x6FFFFFFE


def _sections_from_dynamic(elf: "ElfFile") -> list[Section]:
    """Sections for a file without a section header table, found the way ld.so finds its
    tables: through the dynamic segment's tags (DT_SYMTAB, DT_STRTAB/DT_STRSZ, DT_RELA,
    DT_JMPREL, DT_VERSYM, DT_VERNEED, DT_VERDEF, DT_GNU_HASH/DT_HASH), and the build-id
    note through PT_NOTE.  The dynamic symbol count comes from the hash table (as
    readelf --use-dynamic does) and from the largest index a relocation names.  A tag
    pointing outside every loaded segment's file bytes is left out (never read)."""
    tags: dict[int, int] = {}
    for t, v in elf.dynamic:
        tags.setdefault(t, v)
    loads = [p for p in elf.segments if p.type == PT_LOAD]

    # a cut-off file: a segment's bytes past the file's end are not there to read
    def offset(vaddr: int, size: int = 1) -> int | None:
        for p in loads:
            if p.vaddr <= vaddr and vaddr + size <= p.vaddr + p.filesz:
                off = p.offset + vaddr - p.vaddr
                return off if off + size <= elf.file_size else None
        return None

    def room(vaddr: int) -> int:        # file bytes from vaddr to the end of its segment
        for p in loads:
            if p.vaddr <= vaddr < p.vaddr + p.filesz:
                return max(0, min(p.vaddr + p.filesz - vaddr, elf.file_size - (p.offset + vaddr - p.vaddr)))
        return 0

    out = [Section("", 0, 0, 0, 0, 0, 0, 0, 0)]

    def add(name, stype, vaddr, size, link=0, entsize=0, flags=SHF_ALLOC) -> int | None:
        if vaddr is None or size <= 0 or size > MAX_READ:
            return None
        off = offset(vaddr, size)
        if off is None:
            return None
        out.append(Section(name, stype, flags, vaddr, off, size, link, 0, entsize))
        return len(out) - 1

    lay = elf.layout
    word = lay.wordsize
    strtab = add(".dynstr", 3, tags.get(DT_STRTAB), tags.get(DT_STRSZ, 0)) or 0
    dyn = next((p for p in elf.segments if p.type == PT_DYNAMIC), None)
    if dyn is not None:
        add(".dynamic", SHT_DYNAMIC, dyn.vaddr, dyn.filesz, strtab, lay.dyn.size, SHF_ALLOC | 1)
    relocs = []      # (name, type, vaddr, size)
    rel_t = SHT_RELA if tags.get(DT_PLTREL, DT_RELA) == DT_RELA else SHT_REL
    if DT_RELA in tags:
        relocs.append((".rela.dyn", SHT_RELA, tags[DT_RELA], tags.get(DT_RELASZ, 0)))
    if DT_REL in tags:
        relocs.append((".rel.dyn", SHT_REL, tags[DT_REL], tags.get(DT_RELSZ, 0)))
    if DT_JMPREL in tags:
        relocs.append((".rela.plt" if rel_t == SHT_RELA else ".rel.plt", rel_t, tags[DT_JMPREL],
                       tags.get(DT_PLTRELSZ, 0)))
    nsyms = 0
    shift = lay.sym_shift
    got_end = tags.get(DT_PLTGOT, 0) + 3 * word
    for name, t, va, size in relocs:    # the largest symbol index a relocation names
        off = offset(va, size) if 0 < size <= MAX_READ else None
        if off is None:
            continue
        st = lay.rela if t == SHT_RELA else lay.rel
        data = elf._read(off, size // st.size * st.size, "a relocation table")
        for row in st.iter_unpack(data):
            nsyms = max(nsyms, (row[1] >> shift) + 1)
            if name.endswith(".plt") and DT_PLTGOT in tags and got_end <= row[0] < got_end + MAX_READ:
                got_end = row[0] + word     # .got.plt: GOT[0..2], then the PLT's slots
    hash_sec = None
    if DT_GNU_HASH in tags:
        va = tags[DT_GNU_HASH]
        n, size = _gnu_hash_extent(elf, offset(va, 16), room(va))
        nsyms, hash_sec = max(nsyms, n), (".gnu.hash", SHT_GNU_HASH, va, size)
    elif DT_HASH in tags:
        va = tags[DT_HASH]
        off = offset(va, 8)
        if off is not None:
            nbucket, nchain = struct.unpack("<II", elf._read(off, 8, "the hash table"))
            nsyms, hash_sec = max(nsyms, nchain), (".hash", SHT_HASH, va, 8 + 4 * (nbucket + nchain))
    dynsym = None
    if DT_SYMTAB in tags and nsyms:
        dynsym = add(".dynsym", SHT_DYNSYM, tags[DT_SYMTAB], nsyms * lay.sym.size, strtab, lay.sym.size)
    if hash_sec and dynsym:
        add(*hash_sec, dynsym, 4)
    for name, t, va, size in relocs:
        add(name, t, va, size, dynsym or 0, (lay.rela if t == SHT_RELA else lay.rel).size)
    if DT_VERSYM in tags and dynsym:
        add(".gnu.version", SHT_GNU_VERSYM, tags[DT_VERSYM], 2 * nsyms, dynsym, 2)
    for tag, name, stype in ((DT_VERNEED, ".gnu.version_r", SHT_GNU_VERNEED),
                             (DT_VERDEF, ".gnu.version_d", SHT_GNU_VERDEF)):
        if tag in tags:     # a chain of records; its reader stops at the chain's end
            add(name, stype, tags[tag], min(room(tags[tag]), 1 << 20), strtab)
    if DT_PLTGOT in tags:   # ld.so's GOT[0..2]; the slots themselves are found by relocation
        add(".got.plt" if DT_JMPREL in tags else ".got", 1, tags[DT_PLTGOT], got_end - tags[DT_PLTGOT], 0, word,
            SHF_ALLOC | 1)
    for p in elf.segments:
        if p.type != PT_NOTE or not p.filesz or p.filesz > MAX_READ:
            continue
        data = elf._read(p.offset, p.filesz, "a note segment")
        off = 0
        while off + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            end = off + 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
            if ntype == 3 and data[off + 12:off + 12 + namesz].rstrip(b"\0") == b"GNU":
                out.append(Section(".note.gnu.build-id", SHT_NOTE, SHF_ALLOC, p.vaddr + off, p.offset + off,
                                   min(end, len(data)) - off, 0, 0, 0))
                break
            off = end
    return out


def _gnu_hash_extent(elf: "ElfFile", off: int | None, room: int) -> tuple[int, int]:
    """(symbol count, table size) of a DT_GNU_HASH table: past the last bucket's chain.  The
    chain is read in pieces of GNU_HASH_PIECE bytes, never past *room* (the file bytes left in
    its segment): a table at the start of a segment that also holds .text reads the chain it
    needs, not the text."""
    if off is None:
        return 0, 0
    nbuckets, symoffset, bloom_size, _ = struct.unpack("<IIII", elf._read(off, 16, "the GNU hash table"))
    buckets = 16 + bloom_size * elf.layout.wordsize
    chains = buckets + 4 * nbuckets
    if chains > room or chains > MAX_READ:
        return 0, 0
    head = elf._read(off, chains, "the GNU hash table")
    last = max(struct.unpack_from(f"<{nbuckets}I", head, buckets), default=0)
    if last < symoffset:
        return symoffset, chains
    pos = chains + 4 * (last - symoffset)        # the last bucket's chain, up to its end bit
    while pos + 4 <= min(room, MAX_READ):
        piece = elf._read(off + pos, min(GNU_HASH_PIECE, min(room, MAX_READ) - pos) // 4 * 4,
                          "the GNU hash chains")
        for (word,) in struct.iter_unpack("<I", piece):
            pos += 4
            if word & 1:
                return symoffset + (pos - chains) // 4, pos
    return symoffset + (pos - chains) // 4, pos


def image_size(header: bytes) -> int | None:
    """The bytes an ELF image needs (headers, sections, segments) from its first 64 bytes,
    or None when they are not an ELF header."""
    if len(header) < 52 or header[:4] != b"\x7fELF" or header[4] not in (1, 2) or header[5] != 1:
        return None
    lay = LAYOUT64 if header[4] == 2 else LAYOUT32
    if len(header) < lay.ehdr.size:
        return None
    (_, _, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _) = lay.ehdr.unpack(
        header[:lay.ehdr.size])
    return max(lay.ehdr.size, phoff + phnum * phentsize, shoff + shnum * shentsize)


def parse_build_id(data: bytes) -> str | None:
    """The GNU build-id in the bytes of a note section (or None)."""
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        name_end = off + 12 + (namesz + 3) // 4 * 4
        desc_end = name_end + (descsz + 3) // 4 * 4
        if desc_end > len(data) + 3:
            return None
        if ntype == 3 and data[off + 12:off + 12 + namesz].rstrip(b"\0") == b"GNU":
            return data[name_end:name_end + descsz].hex() or None
        off = desc_end
    return None


def _cstr(table: bytes, offset: int) -> str:
    if offset >= len(table):
        return ""
    end = table.find(b"\0", offset)
    if end < 0:
        end = len(table)
    return table[offset:end].decode("utf-8", "surrogateescape")     # any bytes: escape_name shows them


_real_paths: dict[str, tuple[int, int, str]] = {}


def file_key(path: str) -> tuple[str, int, int]:
    """(real path, mtime, size): the file's identity for caches.  The real path is
    remembered per path while the path still names the same inode (realpath costs an
    lstat per path component, on every warm 'got')."""
    st = os.stat(path)
    known = _real_paths.get(path)
    if known is None or known[0] != st.st_dev or known[1] != st.st_ino:
        if len(_real_paths) > 4096:
            _real_paths.clear()
        known = _real_paths[path] = (st.st_dev, st.st_ino, os.path.realpath(path))
    return (known[2], st.st_mtime_ns, st.st_size)
