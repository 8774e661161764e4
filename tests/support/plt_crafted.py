"""Crafted ELF files for the PLT commands' hostile-input tests and fuzz seeds.

Each builder copies a real ELF64 binary and lies in its *section headers* only (sizes,
offsets, types, relocation entries placed in .comment), so the dynamic linker -- which
reads program headers and the dynamic section, never section headers -- still loads the
crafted shared object, while the toolkit's reader sees the lie.  (When sec's shared
crafted-file builders land, these stay as the PLT-specific mutations.)
"""
import struct
from pathlib import Path

SHDR = struct.Struct("<IIQQQQIIQQ")


def _sections(data: bytes) -> tuple[int, int, list[list], dict[str, int]]:
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    rows = [list(SHDR.unpack_from(data, shoff + i * shentsize)) for i in range(shnum)]
    strtab = rows[shstrndx]
    names = data[strtab[4]:strtab[4] + strtab[5]]
    by_name = {}
    for i, r in enumerate(rows):
        end = names.find(b"\0", r[0])
        by_name[names[r[0]:end].decode()] = i
    return shoff, shentsize, rows, by_name


def _write(data: bytearray, shoff: int, shentsize: int, rows: list[list]) -> None:
    for i, r in enumerate(rows):
        SHDR.pack_into(data, shoff + i * shentsize, *r)


def craft(src: Path, dst: Path, mutation: str) -> Path:
    """Copy *src* to *dst* with one named lie (see MUTATIONS)."""
    data = bytearray(Path(src).read_bytes())
    shoff, shentsize, rows, idx = _sections(bytes(data))
    MUTATIONS[mutation](data, rows, idx)
    _write(data, shoff, shentsize, rows)
    dst.write_bytes(bytes(data))
    dst.chmod(0o755)
    return dst


def _reloc_in_comment(offset: int, rtype: int = 6):
    """.rela.dyn's header points at .comment, which now holds relocations at *offset*."""
    def mutate(data, rows, idx):
        com = rows[idx[".comment"]]
        rel = rows[idx[".rela.dyn"]]
        entries = struct.pack("<QQq", offset, (1 << 32) | rtype, 0)
        if com[5] < len(entries):
            raise ValueError(".comment too small for the crafted relocations")
        data[com[4]:com[4] + len(entries)] = entries
        rel[4], rel[5] = com[4], len(entries)
    return mutate


def _size(name: str, size: int):
    def mutate(data, rows, idx):
        rows[idx[name]][5] = size
    return mutate


def _nobits(name: str, size: int):
    def mutate(data, rows, idx):
        rows[idx[name]][1] = 8            # SHT_NOBITS
        rows[idx[name]][5] = size
    return mutate


def _offset(name: str, offset: int):
    def mutate(data, rows, idx):
        rows[idx[name]][4] = offset
    return mutate


def _size_in_segment(name: str, size: int):
    """The section AND its PT_LOAD claim *size* bytes (the loader's view lies too): a reader
    that zero-fills past the file would allocate and disassemble all of it."""
    def mutate(data, rows, idx):
        sec = rows[idx[name]]
        sec[5] = size
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        for i in range(phnum):
            off = phoff + i * phentsize
            ptype, flags, poff, vaddr, paddr, filesz, memsz, align = struct.unpack_from("<IIQQQQQQ", data, off)
            if ptype == 1 and vaddr <= sec[3] < vaddr + memsz:
                struct.pack_into("<IIQQQQQQ", data, off, ptype, flags, poff, vaddr, paddr,
                                 sec[3] - vaddr + size, sec[3] - vaddr + size, align)
    return mutate


def _dynsym_count(n: int):
    def mutate(data, rows, idx):
        rows[idx[".dynsym"]][5] = n * 24
    return mutate


MUTATIONS = {
    "reloc-1TiB": _reloc_in_comment(0x10000000000, 7),    # JUMP_SLOT: kept even outside the GOT
    "reloc-2GiB": _reloc_in_comment(0x80000000, 7),
    "plt-256MiB": _size(".plt", 256 << 20),
    "plt-64MiB": _size(".plt", 64 << 20),
    "text-8MiB": _size(".text", 8 << 20),
    "plt-256MiB-segment": _size_in_segment(".plt", 256 << 20),
    "text-8MiB-segment": _size_in_segment(".text", 8 << 20),
    "versym-nobits-2^40": _nobits(".gnu.version", 1 << 40),
    "dynsym-huge": _dynsym_count(1 << 34),
    "relaplt-offset-past-end": _offset(".rela.plt", 1 << 40),
    "dynstr-offset-past-end": _offset(".dynstr", 1 << 33),
}
