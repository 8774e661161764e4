"""What one ELF object says about its PLT and GOT, cached per (path, mtime, size).

``load_model(path)`` returns an ``ObjectModel``: architecture, PIE/static/stripped, lazy or
BIND_NOW, the PT_GNU_RELRO range, the PLT/GOT sections, and one ``SlotSpec`` per GOT slot
used for external calls or data (JUMP_SLOT, GLOB_DAT, IRELATIVE, ...) with its symbol and
version (``memcpy@GLIBC_2.14``) and its value in the file.  The symbol index (for naming
addresses) is built on first use.
"""
import _bisect as bisect   # see slots.py
import _struct as struct
import os
from functools import cached_property

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, record
from gdb_toolkit.plt import reloc_types
from gdb_toolkit.plt.elf_file import (DF_1_NOW, DF_1_PIE, DF_BIND_NOW, DF_SYMBOLIC, DT_BIND_NOW,
                                      DT_FLAGS, DT_FLAGS_1, DT_NEEDED, DT_SONAME, ET_DYN, PT_DYNAMIC,
                                      PT_GNU_RELRO, PT_INTERP, PT_LOAD, PT_PHDR, SHT_DYNSYM, SHT_GNU_HASH,
                                      SHT_HASH, SHT_SYMTAB, STT_FUNC, STT_GNU_IFUNC, BadElf, ElfFile, Section, Symbol,
                                      SymbolHash, SymbolTableBytes, _cstr, display_path, file_key)
from gdb_toolkit.plt.symbolizer import LazySymbolIndex

PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got", ".iplt")
#: the most slots one object may claim (libraries with 100k imports exist; crafted files claim more)
MAX_SLOTS = 1 << 20
GOT_SECTIONS = (".got", ".got.plt")
DEBUG_ROOT = "/usr/lib/debug"
DT_AUDIT, DT_DEPAUDIT = 0x6FFFFEFC, 0x6FFFFEFB


@record
class SlotSpec:
    address: int           # link-time address of the slot (add the load bias at run time)
    kind: str              # JUMP_SLOT, GLOB_DAT, IRELATIVE, ABS, TLSDESC, TLS_* (arch-free)
    rtype: str             # full name, R_X86_64_JUMP_SLOT
    symbol: str            # memcpy, or the ifunc's name for IRELATIVE, or ""
    version: str           # GLIBC_2.14 or ""
    addend: int            # RELA addend, or for REL the word in the file
    file_value: int        # the word at the slot in the file
    reloc_section: str     # .rela.plt / .rela.dyn / .rel.plt
    index: int             # position in its relocation section (the PLT push index)
    symbol_type: int = 0   # STT_* of the relocation's symbol (an import keeps its type)
    hidden_version: bool = False
    weak: bool = False     # the import is weak (may legitimately stay 0)

    @property
    def display(self) -> str:
        """``memcpy@GLIBC_2.14`` as printed: the name and version by common.names.escape_name
        (any bytes; the one rendering of every name in text and --json)."""
        from gdb_toolkit.common.names import escape_name

        name = self.symbol or "?"
        return escape_name(f"{name}@{self.version}" if self.version else name)

    @property
    def symbol_text(self) -> str:
        """The bare name as printed (escape_name)."""
        from gdb_toolkit.common.names import escape_name

        return escape_name(self.symbol)


@record
class ObjectModel:
    path: str
    arch: str
    etype: str                         # EXEC or DYN
    entry: int
    is_pie: bool
    is_static: bool
    is_shared_lib: bool
    stripped: bool
    bind_now: bool
    soname: str
    needed: list[str]
    relro: tuple[int, int] | None      # [start, end) link-time
    phdr_vaddr: int | None
    dynamic_vaddr: int | None
    loads: list[tuple[int, int, int]]  # (vaddr, memsz, flags)
    sections: dict[str, Section]
    build_id: str | None
    machine: int = 0
    wordsize: int = 8
    symbolic: bool = False                 # DF_SYMBOLIC: own definitions first
    pltgot: int | None = None              # DT_PLTGOT: GOT[0], whose [1] and [2] feed the resolver
    has_plt_relocs: bool = False           # DT_JMPREL/DT_PLTRELSZ: JUMP_SLOTs ld.so may bind lazily
    tls: tuple[int, int] | None = None     # PT_TLS (vaddr, memsz)
    audit_libs: list[str] = field(default_factory=list)   # DT_AUDIT / DT_DEPAUDIT: rtld-audit modules
    dropped: int = 0                       # relocations outside any loaded segment (crafted file)
    dynamic_size: int = 0                  # PT_DYNAMIC's memsz (the loaded .dynamic's bytes)
    # copy relocations: (name@version, address, size, R_X86_64_COPY...) -- not GOT slots, but
    # what 'got stdout' must explain in a non-PIE program (set when the slots are decoded)
    copies: list = field(default_factory=list)
    _elf: ElfFile = field(default=None, repr=False)
    _index: LazySymbolIndex | None = field(default=None, repr=False)
    debug_file: str | None = None
    _irelative_named: bool = field(default=False, repr=False)

    # -- derived facts -------------------------------------------------------------------
    @cached_property
    def name(self) -> str:
        return display_path(os.path.basename(self.path))

    @property
    def is_dynamic_linker(self) -> bool:
        """ld.so itself (by its soname): it relocates itself at start-up, and twice
        (gdb_live._ldso_final_relocation)."""
        return self.soname.startswith(("ld-linux", "ld64.so", "ld.so"))

    @property
    def binding(self) -> str:
        if self.is_static:
            return "static"
        return "now" if self.bind_now else "lazy"

    @cached_property
    def span(self) -> tuple[int, int]:
        lo = min((v for v, _, _ in self.loads), default=0)
        hi = max((v + m for v, m, _ in self.loads), default=0)
        return lo & ~0xFFF, hi

    def plt_sections(self) -> list[Section]:
        return [self.sections[n] for n in PLT_SECTIONS if n in self.sections]

    @cached_property
    def _alloc(self) -> tuple[list[int], list[Section]]:
        secs = sorted((s for s in self.sections.values() if s.addr and s.size), key=lambda s: s.addr)
        return [s.addr for s in secs], secs

    def section_of(self, addr: int) -> str | None:
        starts, secs = self._alloc
        i = bisect.bisect_right(starts, addr) - 1
        for j in range(i, max(i - 3, -1), -1):     # .tbss overlaps the sections after it
            if addr < secs[j].addr + secs[j].size:
                return secs[j].name
        return None

    def in_relro(self, addr: int) -> bool:
        return bool(self.relro) and self.relro[0] <= addr < self.relro[1]

    def read(self, vaddr: int, size: int) -> bytes | None:
        """File bytes at link-time address *vaddr*."""
        return self._elf.read_vaddr(vaddr, size)

    def got_plt_reserved(self) -> int | None:
        """Address of GOT[0] (DT_PLTGOT, else the start of .got.plt), whose [1] and [2]
        feed the resolver."""
        if self.pltgot:
            return self.pltgot
        sec = self.sections.get(".got.plt")
        return sec.addr if sec else None

    @property
    def index(self) -> LazySymbolIndex:
        if self._index is None:
            self._index = _build_index(self)
        return self._index

    @cached_property
    def slots(self) -> list[SlotSpec]:
        """The GOT slots, decoded on first use (objects only needed to name addresses skip it)."""
        out = _slots(self._elf, self)
        if not self.is_shared_lib:
            self.__dict__["slots"] = out
            self.name_irelative()   # cheap for executables; libraries name theirs on first need
        return out

    def name_irelative(self) -> "ObjectModel":
        """IRELATIVE slots carry no symbol: name them after the ifunc whose resolver is the
        addend.  Done on first need (it builds the symbol index, ~20 ms for libc)."""
        if not self._irelative_named:
            self._irelative_named = True
            for s in self.slots:
                if s.kind == "IRELATIVE" and not s.symbol:
                    hit = self.index.lookup(s.addend)
                    if hit and not hit.offset:
                        s.symbol = hit.name
        return self

    @cached_property
    def _tls_symbols(self) -> tuple[list[int], list[Symbol]]:
        """STT_TLS symbols sorted by offset in the TLS block (.symtab, else the debug file's,
        and .dynsym): a local TLS relocation carries only an offset."""
        def tls_of(elf, types):
            return [sym for i, sec in enumerate(elf.sections) if sec.type in types
                    for sym in elf.symbols(i, defined_only=True, types=(6,))]     # STT_TLS
        found = tls_of(self._elf, (SHT_SYMTAB, SHT_DYNSYM))
        dbg = debug_file_for(self.build_id) if self.stripped else None
        if dbg:
            try:
                delf = ElfFile.open(dbg)
                found += tls_of(delf, (SHT_SYMTAB,))
                delf.close()
            except (ToolkitError, OSError, struct.error):
                pass
        found.sort(key=lambda sym: (sym.value, -sym.size, sym.bind == 0, sym.name))   # STB_LOCAL last
        return [sym.value for sym in found], found

    def tls_variable(self, offset: int) -> str | None:
        """The TLS variable at *offset* in this object's TLS block (``name`` or ``name+N``)."""
        values, syms = self._tls_symbols
        i = bisect.bisect_right(values, offset) - 1
        while i > 0 and values[i - 1] == values[i]:
            i -= 1                                  # the first (largest, global) of the aliases
        if i < 0:
            return None
        sym = syms[i]
        if offset == sym.value:
            return sym.name
        return f"{sym.name}+0x{offset - sym.value:x}" if offset < sym.value + sym.size else None

    def slot_by_address(self) -> dict[int, SlotSpec]:
        return {s.address: s for s in self.slots}

    def slots_named(self, name: str) -> list[SlotSpec]:
        self.name_irelative()
        found = self._slots_named(name)
        if not found:
            from gdb_toolkit.common.names import typed_name

            typed = typed_name(name)    # the name as the toolkit printed it (esc\x1bok)
            if typed is not None:
                found = self._slots_named(typed)
        return found

    def _slots_named(self, name: str) -> list[SlotSpec]:
        if "@" in name:           # a version was given: only that version
            base, _, ver = name.partition("@")
            ver = ver.lstrip("@")
            return [s for s in self.slots if s.symbol == base and s.version == ver]
        return [s for s in self.slots if s.symbol == name]

    @cached_property
    def exports(self) -> dict[str, list[Symbol]]:
        """Defined dynamic symbols by name (with versions): what this object offers to the
        dynamic linker's lookup.  Built on first need (the audit)."""
        return self._dynamic_symbols[0]

    def version_shown(self, name: str, value: int, wanted: str) -> str:
        """*name* with the version of its definition at *value*, written as readelf and gdb
        write it (``vfoo@VER_1``; the default version ``vfoo@@VER_2``), when that definition
        is not of the version *wanted* (the slot's reference): a slot for vfoo@VER_1 holding
        vfoo@@VER_2 must not read "vfoo" like its neighbour.  Else *name*.  Through the
        dynamic symbol table's hash: no pass over the table."""
        if not wanted or self._version_lookup is None:
            return name
        defs = self._version_lookup(name)
        if len(defs) < 2 or not any(v == wanted for _, v, _ in defs):
            return name     # no definition of the wanted version here (the vDSO's time@@LINUX_2.6)
        found = [(v, hidden) for val, v, hidden in defs if val == value]
        if not found or any(v == wanted for v, _ in found):
            return name
        ver, hidden = min(found, key=lambda f: f[1])        # the default version first
        return f"{name}{'@' if hidden else '@@'}{ver}" if ver else name

    def ifunc_definitions(self, name: str) -> list[int]:
        """The values (file addresses: the resolvers) of this object's dynamic definitions of
        *name* that are STT_GNU_IFUNC (glibc's strlen, memcpy, time).  Through the dynamic
        symbol table's hash: no pass over the table; [] without one."""
        self.index                      # sets up the hash lookup (no table read yet)
        named = self.__dict__.get("_named")
        if named is None:
            return []
        return [row[0] for row in named(name) if row[2] == STT_GNU_IFUNC]

    @cached_property
    def _version_lookup(self):
        """name -> [(value, version, hidden)] of the .dynsym definitions of *name*; None
        without .gnu.version or a hash section."""
        elf = self._elf
        if not elf.has_versym():
            return None
        self.index                      # shares the index's tables and hash (read once)
        named = self.__dict__.get("_named")
        if named is None:
            return None
        indexed = named.indexed
        info = []

        def lookup(name: str) -> list[tuple[int, str, bool]]:
            hits = indexed(name)
            if len(hits) < 2:       # one definition: no other version to tell it from
                return [(row[0], "", False) for _, row in hits]
            if not info:            # .gnu.version's words and the version names, read once
                versym = next((s for s in elf.sections if s.name == ".gnu.version"), None)
                info.append((elf.section_data(versym) if versym is not None else b"", elf.version_names()))
            raw, names = info[0]
            out = []
            for i, row in hits:
                if 2 * i + 2 <= len(raw):
                    v = int.from_bytes(raw[2 * i:2 * i + 2], "little")
                    out.append((row[0], names.get(v & 0x7FFF, ""), bool(v & 0x8000)))
            return out

        return lookup

    @cached_property
    def canonical_plt(self) -> dict[str, list[Symbol]]:
        """Undefined dynamic functions with a value: a non-PIE program's *canonical PLT
        entries* (it took the function's address, so that PLT stub IS the function's address
        for the whole process).  ld.so binds other objects' GLOB_DAT/ABS references to them;
        a JUMP_SLOT lookup skips them (glibc's check_match: ELF_RTYPE_CLASS_PLT)."""
        return self._dynamic_symbols[1]

    @cached_property
    def versioned(self) -> tuple[bool, bool]:
        """(has .gnu.version, has .gnu.version_d): how ld.so matches versions against it."""
        elf = self._elf
        return elf.has_versym(), any(s.name == ".gnu.version_d" for s in elf.sections)

    @cached_property
    def _dynamic_symbols(self) -> tuple[dict[str, list[Symbol]], dict[str, list[Symbol]]]:
        elf = self._elf
        out: dict[str, list[Symbol]] = {}
        canonical: dict[str, list[Symbol]] = {}
        for i, sec in enumerate(elf.sections):
            if sec.type != SHT_DYNSYM:
                continue
            syms = elf.symbols(i)
            vers = elf.symbol_version_info(i, len(syms))
            for s, (ver, hidden, ndx) in zip(syms, vers):
                if not s.name or s.bind not in (1, 2, 10):       # GLOBAL, WEAK, GNU_UNIQUE
                    continue
                s.version, s.hidden_version, s.version_index = ver, hidden, ndx
                if s.shndx:
                    out.setdefault(s.name, []).append(s)
                elif s.value and s.type == STT_FUNC:
                    canonical.setdefault(s.name, []).append(s)
        return out, canonical


_cache: dict[str, tuple[tuple, ObjectModel]] = {}


def load_model(path: str) -> ObjectModel:
    """The model of *path*, rebuilt only when the file's mtime or size changes."""
    try:
        key = file_key(path)
    except OSError as exc:
        raise ToolkitError(f"cannot read {path}: {exc.strerror}", "check the path of the loaded file") from None
    hit = _cache.get(key[0])
    if hit and hit[0] == key:
        return hit[1]
    model = _build(path)
    _cache[key[0]] = (key, model)
    return model


def clear_cache() -> None:
    _cache.clear()


_images: dict[bytes, ObjectModel] = {}


def model_from_image(name: str, data: bytes) -> ObjectModel:
    """The model of an ELF image read from memory (the kernel's vDSO, which has no file),
    cached per content: keyed by the image's bytes themselves (a vDSO is a few pages), which
    is exact and spares every first ``got`` hashlib's import (OpenSSL, 2-3 ms)."""
    data = bytes(data)
    hit = _images.get(data)
    if hit is None:
        hit = _images[data] = _build(name, ElfFile.from_bytes(name, data))
    return hit


def _build(path: str, elf: ElfFile | None = None) -> ObjectModel:
    elf = elf or ElfFile.open(path)
    if reloc_types.arch_name(elf.machine) is None:
        raise ToolkitError(f"{display_path(path)}: machine {elf.machine} is not supported",
                           "gdb_toolkit's PLT commands support x86_64, i386, aarch64 and arm")
    sections = {}
    for s in elf.sections:
        sections.setdefault(s.name, s)
    seg = {}
    for p in elf.segments:
        seg.setdefault(p.type, p)
    flags = sum(elf.dyn_values(DT_FLAGS))
    flags1 = sum(elf.dyn_values(DT_FLAGS_1))
    bind_now = bool(flags & DF_BIND_NOW or flags1 & DF_1_NOW or elf.dyn_values(DT_BIND_NOW))
    dynstr = elf.dynstr()
    soname = next((_cstr(dynstr, v) for v in elf.dyn_values(DT_SONAME)), "")
    needed = [_cstr(dynstr, v) for v in elf.dyn_values(DT_NEEDED)]
    # static, or static-pie (a .dynamic for its self-relocation, but no interpreter and nothing needed)
    is_static = PT_DYNAMIC not in seg or (PT_INTERP not in seg and bool(flags1 & DF_1_PIE) and not needed)
    relro = None
    if PT_GNU_RELRO in seg:
        r = seg[PT_GNU_RELRO]
        relro = (r.vaddr, r.vaddr + r.memsz)
    model = ObjectModel(
        path=path, arch=reloc_types.ARCH_NAME[elf.machine],
        etype="DYN" if elf.etype == ET_DYN else "EXEC", entry=elf.entry,
        is_pie=elf.etype == ET_DYN and (bool(flags1 & DF_1_PIE) or is_static
                                        or (PT_INTERP in seg and not soname)),
        is_static=is_static,
        is_shared_lib=(elf.etype == ET_DYN and not flags1 & DF_1_PIE and not is_static
                       and (PT_INTERP not in seg or bool(soname))),
        stripped=not any(s.type == SHT_SYMTAB for s in elf.sections),
        bind_now=bind_now, soname=soname, needed=needed, relro=relro,
        phdr_vaddr=seg[PT_PHDR].vaddr if PT_PHDR in seg else None,
        dynamic_vaddr=seg[PT_DYNAMIC].vaddr if PT_DYNAMIC in seg else None,
        dynamic_size=seg[PT_DYNAMIC].memsz if PT_DYNAMIC in seg else 0,
        loads=[(p.vaddr, p.memsz, p.flags) for p in elf.segments if p.type == PT_LOAD],
        sections=sections, build_id=elf.build_id(), machine=elf.machine, wordsize=elf.wordsize,
        symbolic=bool(flags & DF_SYMBOLIC), _elf=elf, pltgot=next(iter(elf.dyn_values(3)), None),
        has_plt_relocs=bool(sum(elf.dyn_values(2))),
        tls=(seg[7].vaddr, seg[7].memsz) if 7 in seg else None,
        audit_libs=[a for tag in (DT_AUDIT, DT_DEPAUDIT) for v in elf.dyn_values(tag)
                    for a in _cstr(dynstr, v).split(":") if a])
    return model


#: copy relocations remembered per object (a program has a handful: stdout, environ, std::cout)
MAX_COPIES = 4096


def _slots(elf: ElfFile, model: ObjectModel) -> list[SlotSpec]:
    relocs = elf.relocations()
    if not relocs:
        return []
    if len(relocs) > MAX_SLOTS:
        raise BadElf(display_path(model.path), f"{len(relocs)} relocations")
    symtabs: dict[int, list] = {}
    versions: dict[int, list] = {}
    wanted = []
    counters: dict[str, int] = {}
    word = elf.wordsize
    got_ranges = [(s.addr, s.addr + s.size) for n, s in model.sections.items() if n in GOT_SECTIONS]
    loads = [(p.vaddr, p.vaddr + p.memsz) for p in elf.segments if p.type == PT_LOAD]
    kinds: dict[int, str] = {}
    copies = []
    for r in relocs:
        idx = counters.get(r.section, 0)
        counters[r.section] = idx + 1
        kind = kinds.get(r.type)
        if kind is None:
            kind = kinds[r.type] = reloc_types.short_name(elf.machine, r.type)
        if kind not in reloc_types.SLOT_KINDS:
            if kind == "COPY":
                copies.append(r)
            continue
        off = r.offset
        end = off + (2 * word if kind == "TLSDESC" else word)
        for lo, hi in loads:
            if lo <= off and end <= hi:
                break
        else:
            model.dropped += 1   # outside every loaded segment: crafted, never read
            continue
        in_got = False
        for lo, hi in got_ranges:
            if lo <= off < hi:
                in_got = True
                break
        if not in_got and not (kind in ("JUMP_SLOT", "IRELATIVE") and not got_ranges) and \
                not (elf.no_section_headers and kind != "ABS"):
            # (no section headers: GOT sections unknown, but GLOB_DAT/TLS relocations are GOT slots)
            continue       # a data pointer outside the GOT (.data, .init_array): not a slot
        wanted.append((r, kind, idx))
    values = _file_words(elf, [r.offset for r, _, _ in wanted])
    out = []
    model.copies = []
    for r, kind, idx in [*((r, "COPY", -1) for r in copies[:MAX_COPIES]), *wanted]:
        name = version = ""
        stype, hidden, weak = 0, False, False
        if r.sym and r.symtab < len(elf.sections) and elf.sections[r.symtab].type in (SHT_DYNSYM, SHT_SYMTAB):
            if r.symtab not in symtabs:
                symtabs[r.symtab] = elf.symbols(r.symtab)
                if elf.sections[r.symtab].type == SHT_DYNSYM:
                    versions[r.symtab] = elf.symbol_versions(r.symtab, len(symtabs[r.symtab]))
            table = symtabs[r.symtab]
            if r.sym < len(table):
                sym = table[r.sym]
                name, stype, weak = sym.name, sym.type, sym.bind == 2
                if r.symtab in versions:
                    version, hidden = versions[r.symtab][r.sym]
        if kind == "COPY":
            if name:
                model.copies.append((f"{name}@{version}" if version else name, r.offset, sym.size,
                                     reloc_types.full_name(elf.machine, r.type)))
            continue
        fv = values.get(r.offset, 0)
        addend = r.addend if r.addend is not None else fv
        full = kinds.get(-1 - r.type)
        if full is None:
            full = kinds[-1 - r.type] = reloc_types.full_name(elf.machine, r.type)
        out.append(SlotSpec(r.offset, kind, full, name, version,
                            addend, fv, r.section, idx, stype, hidden, weak))
    out.sort(key=lambda s: s.address)
    return out


def _file_words(elf: ElfFile, addresses: list[int]) -> dict[int, int]:
    """The file's word at each address, reading each covering segment's bytes once."""
    out: dict[int, int] = {}
    fmt = elf.layout.word
    word = elf.wordsize
    by_seg: dict[int, list[int]] = {}
    for a in addresses:
        seg = elf.segment_of(a, word)
        if seg is not None:
            by_seg.setdefault(id(seg), []).append(a)
    for seg in elf.segments:
        addrs = by_seg.get(id(seg))
        if not addrs:
            continue
        lo = min(addrs)
        hi = min(max(addrs) + word, seg.vaddr + seg.filesz)
        blob = elf.read_vaddr(lo, hi - lo) if hi > lo else b""
        for a in addrs:
            off = a - lo
            out[a] = struct.unpack_from(fmt, blob, off)[0] if 0 <= off and off + word <= len(blob) else 0
    return out


def debug_file_for(build_id: str | None, root: str = DEBUG_ROOT) -> str | None:
    if not build_id or len(build_id) < 3:
        return None
    cand = os.path.join(root, ".build-id", build_id[:2], build_id[2:] + ".debug")
    return cand if os.path.exists(cand) else None


def _build_index(model: ObjectModel) -> LazySymbolIndex:
    """The object's symbol index: its symbol tables and, for a stripped object, its debug
    file's .symtab, all read on the index's first need of them; names of dynamic symbols
    through the hash section before that."""
    elf = model._elf
    own = [i for i, sec in enumerate(elf.sections) if sec.type in (SHT_DYNSYM, SHT_SYMTAB)]
    read: dict[int, SymbolTableBytes] = {}

    def table(i: int) -> SymbolTableBytes:
        if i not in read:
            read[i] = elf.symbol_table(i)
        return read[i]

    def tables() -> list[SymbolTableBytes]:
        out = [table(i) for i in own]
        if model.stripped:
            dbg = debug_file_for(model.build_id)
            if dbg:
                try:
                    delf = ElfFile.open(dbg)
                    out += [delf.symbol_table(i) for i, sec in enumerate(delf.sections) if sec.type == SHT_SYMTAB]
                    delf.close()
                    model.debug_file = dbg
                except (ToolkitError, OSError, struct.error):
                    pass
        return out

    # a program's canonical PLT entries are where its imported functions' addresses point
    canonical = [] if model.is_shared_lib else [
        Symbol(f"{name}@plt", s.value, 0, s.type, s.bind, 1) for name, syms in model.canonical_plt.items()
        for s in syms]
    named = _named_lookup(elf, own, table)
    model.__dict__["_named"] = named        # also for version_shown, after the index is built
    return LazySymbolIndex(tables, extra=canonical, named=named)


def _named_lookup(elf: ElfFile, own: list[int], table):
    """name -> the dynamic symbol table's rows of that name, found through its hash section
    (GNU, else SysV); None without one.  A table or hash that cannot be read answers [] (the
    index then searches by address, which reports what is wrong with the file)."""
    dyn = next((i for i in own if elf.sections[i].type == SHT_DYNSYM), None)
    if dyn is None:
        return None
    hsec = next((s for s in elf.sections if s.type == SHT_GNU_HASH and s.link == dyn), None) or \
        next((s for s in elf.sections if s.type == SHT_HASH and s.link == dyn), None)
    if hsec is None:
        return None
    hashed: list[SymbolHash] = []

    def indexed(name: str) -> list[tuple[int, tuple]]:
        """(index in .dynsym, row) of the entries named *name*."""
        try:
            if not hashed:
                hashed.append(SymbolHash(elf.section_data(hsec), hsec.type == SHT_GNU_HASH, elf.wordsize))
            return table(dyn).indexes_named(name, hashed[0])
        except (ToolkitError, struct.error, ValueError, TypeError):
            return []

    def named(name: str) -> list[tuple]:
        return [row for _, row in indexed(name)]

    named.indexed = indexed
    return named
