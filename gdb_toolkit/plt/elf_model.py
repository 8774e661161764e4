"""What one ELF object says about its PLT and GOT, cached per (path, mtime, size).

``load_model(path)`` returns an ``ObjectModel``: architecture, PIE/static/stripped, lazy or
BIND_NOW, the PT_GNU_RELRO range, the PLT/GOT sections, and one ``SlotSpec`` per GOT slot
used for external calls or data (JUMP_SLOT, GLOB_DAT, IRELATIVE, ...) with its symbol and
version (``memcpy@GLIBC_2.14``) and its value in the file.  The symbol index (for naming
addresses) is built on first use.
"""
import bisect
import os
import struct
from dataclasses import dataclass, field
from functools import cached_property

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.plt import reloc_types
from gdb_toolkit.plt.elf_file import (DF_1_NOW, DF_1_PIE, DF_BIND_NOW, DT_BIND_NOW, DT_FLAGS,
                                      DT_FLAGS_1, DT_NEEDED, DT_SONAME, EM_AARCH64, EM_X86_64,
                                      ET_DYN, PT_DYNAMIC, PT_GNU_RELRO, PT_INTERP, PT_LOAD, PT_PHDR,
                                      SHT_DYNSYM, SHT_SYMTAB, ElfFile, Section, file_key)
from gdb_toolkit.plt.symbolizer import SymbolIndex

PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got", ".iplt")
GOT_SECTIONS = (".got", ".got.plt")
DEBUG_ROOT = "/usr/lib/debug"


@dataclass
class SlotSpec:
    address: int           # link-time address of the slot (add the load bias at run time)
    kind: str              # JUMP_SLOT, GLOB_DAT, IRELATIVE, ...
    rtype: str             # full name, R_X86_64_JUMP_SLOT
    symbol: str            # memcpy, or the ifunc's name for IRELATIVE, or ""
    version: str           # GLIBC_2.14 or ""
    addend: int
    file_value: int        # the 8 bytes at the slot in the file
    reloc_section: str     # .rela.plt / .rela.dyn
    index: int             # position in its relocation section (the PLT push index)

    @property
    def display(self) -> str:
        name = self.symbol or "?"
        return f"{name}@{self.version}" if self.version else name


@dataclass
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
    _elf: ElfFile = field(default=None, repr=False)
    _index: SymbolIndex | None = field(default=None, repr=False)
    debug_file: str | None = None
    _irelative_named: bool = field(default=False, repr=False)

    # -- derived facts -------------------------------------------------------------------
    @cached_property
    def name(self) -> str:
        return os.path.basename(self.path)

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
        """Address of GOT[0] (the start of .got.plt), whose [1] and [2] feed the resolver."""
        sec = self.sections.get(".got.plt")
        return sec.addr if sec else None

    @property
    def index(self) -> SymbolIndex:
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

    def slot_by_address(self) -> dict[int, SlotSpec]:
        return {s.address: s for s in self.slots}

    def slots_named(self, name: str) -> list[SlotSpec]:
        self.name_irelative()
        if "@" in name:           # a version was given: only that version
            return [s for s in self.slots if s.display == name]
        return [s for s in self.slots if s.symbol == name]


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


def _build(path: str) -> ObjectModel:
    elf = ElfFile.open(path)
    if elf.machine not in (EM_X86_64, EM_AARCH64):
        raise ToolkitError(f"{path}: machine {elf.machine} is not supported",
                           "gdb_toolkit's PLT commands support x86_64 and aarch64")
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
    from gdb_toolkit.plt.elf_file import _cstr

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
        loads=[(p.vaddr, p.memsz, p.flags) for p in elf.segments if p.type == PT_LOAD],
        sections=sections, build_id=elf.build_id(), _elf=elf)
    return model


def _slots(elf: ElfFile, model: ObjectModel) -> list[SlotSpec]:
    relocs = elf.relocations()
    if not relocs:
        return []
    symtabs: dict[int, list] = {}
    versions: dict[int, list] = {}
    wanted = []
    counters: dict[str, int] = {}
    got_ranges = [(s.addr, s.addr + s.size) for n, s in model.sections.items() if n in GOT_SECTIONS]
    for r in relocs:
        idx = counters.get(r.section, 0)
        counters[r.section] = idx + 1
        kind = reloc_types.short_name(elf.machine, r.type)
        if kind not in reloc_types.SLOT_KINDS:
            continue
        in_got = any(lo <= r.offset < hi for lo, hi in got_ranges)
        if kind in ("64", "ABS64") and not in_got:
            continue       # a data pointer outside the GOT, not a slot
        if kind not in ("JUMP_SLOT", "IRELATIVE") and not in_got and got_ranges:
            continue
        wanted.append((r, kind, idx))
    # one bulk read of the file's GOT range for the initial values
    lo = min(r.offset for r, _, _ in wanted) if wanted else 0
    hi = max(r.offset for r, _, _ in wanted) + 8 if wanted else 0
    blob = elf.read_vaddr(lo, hi - lo) if wanted else b""
    out = []
    for r, kind, idx in wanted:
        name = version = ""
        if r.sym and r.symtab < len(elf.sections) and elf.sections[r.symtab].type in (SHT_DYNSYM, SHT_SYMTAB):
            if r.symtab not in symtabs:
                symtabs[r.symtab] = elf.symbols(r.symtab)
                if elf.sections[r.symtab].type == SHT_DYNSYM:
                    versions[r.symtab] = elf.symbol_versions(r.symtab, len(symtabs[r.symtab]))
            table = symtabs[r.symtab]
            if r.sym < len(table):
                name = table[r.sym].name
                if r.symtab in versions:
                    version = versions[r.symtab][r.sym][0]
        fv = struct.unpack_from("<Q", blob, r.offset - lo)[0] if blob else 0
        out.append(SlotSpec(r.offset, kind, reloc_types.full_name(elf.machine, r.type), name, version,
                            r.addend, fv, r.section, idx))
    out.sort(key=lambda s: s.address)
    return out


def debug_file_for(build_id: str | None, root: str = DEBUG_ROOT) -> str | None:
    if not build_id or len(build_id) < 3:
        return None
    cand = os.path.join(root, ".build-id", build_id[:2], build_id[2:] + ".debug")
    return cand if os.path.exists(cand) else None


def _build_index(model: ObjectModel) -> SymbolIndex:
    elf = model._elf
    syms = []
    for i, sec in enumerate(elf.sections):
        if sec.type in (SHT_DYNSYM, SHT_SYMTAB):
            syms.extend(elf.symbols(i, defined_only=True))
    if model.stripped:
        dbg = debug_file_for(model.build_id)
        if dbg:
            try:
                delf = ElfFile.open(dbg)
                for i, sec in enumerate(delf.sections):
                    if sec.type == SHT_SYMTAB:
                        syms.extend(delf.symbols(i, defined_only=True))
                delf.close()
                model.debug_file = dbg
            except (ToolkitError, OSError, struct.error):
                pass
    return SymbolIndex(syms)
