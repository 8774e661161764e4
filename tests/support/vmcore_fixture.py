"""Build small kernel dumps for tests: physical memory with real page tables, written as an
ELF vmcore (QEMU dump-guest-memory's layout: p_vaddr 0, p_paddr physical) or in the
kdump-compressed format (makedumpfile / QEMU -z).

    mem = PhysMemory()
    pt = X86PageTables(mem, levels=5)
    pt.map(vaddr, paddr)                    # a 4 KiB page; map(..., large=21) a 2 MiB page
    mem.write(paddr, b"...")
    write_elf_vmcore(path, mem, vmcoreinfo_text, machine=62)
"""
import struct
import zlib

from tests.support.kcore_fixture import _note

PAGE = 4096


class PhysMemory:
    def __init__(self):
        self.pages: dict[int, bytearray] = {}
        self._next_table = 0x7F000000          # page-table pages are allocated from here

    def page(self, pfn: int) -> bytearray:
        if pfn not in self.pages:
            self.pages[pfn] = bytearray(PAGE)
        return self.pages[pfn]

    def write(self, paddr: int, data: bytes):
        off = 0
        while off < len(data):
            pfn, o = divmod(paddr + off, PAGE)
            n = min(PAGE - o, len(data) - off)
            self.page(pfn)[o:o + n] = data[off:off + n]
            off += n

    def q(self, paddr: int, v: int):
        self.write(paddr, struct.pack("<Q", v & (2 ** 64 - 1)))

    def read_q(self, paddr: int) -> int:
        pfn, o = divmod(paddr, PAGE)
        return struct.unpack_from("<Q", self.page(pfn), o)[0]

    def alloc_table(self) -> int:
        p = self._next_table
        self._next_table += PAGE
        self.page(p // PAGE)
        return p


class X86PageTables:
    def __init__(self, mem: PhysMemory, levels: int = 4):
        self.mem = mem
        self.levels = levels
        self.root = mem.alloc_table()

    def map(self, vaddr: int, paddr: int, large: int = 12):
        """Map the page of size 1 << large (12, 21 or 30) at vaddr to paddr."""
        table = self.root
        for shift in (48, 39, 30, 21, 12)[5 - self.levels:]:
            idx = (vaddr >> shift) & 511
            slot = table + 8 * idx
            if shift == large:
                self.mem.q(slot, paddr | 0x63 | (0x80 if large > 12 else 0))
                return
            e = self.mem.read_q(slot)
            if not e & 1:
                nt = self.mem.alloc_table()
                self.mem.q(slot, nt | 0x63)
                e = nt | 0x63
            table = e & 0x000FFFFFFFFFF000


class Arm64PageTables:
    """4 KiB granule, VA_BITS 48 (4 levels) or 39 (3 levels)."""

    def __init__(self, mem: PhysMemory, va_bits: int = 48):
        self.mem = mem
        self.va_bits = va_bits
        self.levels = 4 if va_bits > 39 else 3
        self.root = mem.alloc_table()

    def map(self, vaddr: int, paddr: int, large: int = 12):
        table = self.root
        shifts = (39, 30, 21, 12)[4 - self.levels:]
        for shift in shifts:
            idx = (vaddr >> shift) & 511
            slot = table + 8 * idx
            if shift == large:
                # page (level 3): bits 0b11; block (level 1/2): 0b01
                self.mem.q(slot, paddr | (0x3 if shift == 12 else 0x1) | 0x400)
                return
            e = self.mem.read_q(slot)
            if not e & 1:
                nt = self.mem.alloc_table()
                self.mem.q(slot, nt | 0x3)
                e = nt | 0x3
            table = e & 0x0000FFFFFFFFF000


def _runs(mem: PhysMemory):
    """Contiguous runs of present pages: [(start pfn, [page bytes...])]."""
    out = []
    for pfn in sorted(mem.pages):
        if out and out[-1][0] + len(out[-1][1]) == pfn:
            out[-1][1].append(bytes(mem.pages[pfn]))
        else:
            out.append((pfn, [bytes(mem.pages[pfn])]))
    return out


def write_elf_vmcore(path, mem: PhysMemory, vmcoreinfo: str, machine: int = 62,
                     vaddr_of=lambda paddr: 0):
    """An ELF vmcore: PT_NOTE (CORE prstatus + VMCOREINFO), one PT_LOAD per physical run."""
    notes = _note(b"CORE", 1, b"\0" * 336)
    if vmcoreinfo:
        notes += _note(b"VMCOREINFO", 0, vmcoreinfo.encode())
    runs = _runs(mem)
    phnum = 1 + len(runs)
    data_off = 64 + 56 * phnum
    cur = data_off + len(notes)
    phdrs = [struct.pack("<IIQQQQQQ", 4, 0, data_off, 0, 0, len(notes), 0, 4)]
    blobs = []
    for pfn, pages in runs:
        blob = b"".join(pages)
        pa = pfn * PAGE
        phdrs.append(struct.pack("<IIQQQQQQ", 1, 7, cur, vaddr_of(pa), pa, len(blob), len(blob), 0))
        blobs.append(blob)
        cur += len(blob)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + b"".join(phdrs) + notes + b"".join(blobs))
    return path


def write_kdump(path, mem: PhysMemory, vmcoreinfo: str, machine: str = "x86_64",
                compress_every: int = 2, version: int = 6):
    """The kdump-compressed format (makedumpfile's diskdump): every compress_every-th page
    zlib-compressed, the others raw; pages not in *mem* are excluded by the bitmap."""
    block = PAGE
    max_mapnr = max(mem.pages) + 1
    bitmap_bytes = (max_mapnr + 7) // 8
    bitmap_blocks = 2 * ((bitmap_bytes + block - 1) // block)
    half = bitmap_blocks * block // 2
    bm1 = bytearray(half)
    for pfn in mem.pages:
        bm1[pfn >> 3] |= 1 << (pfn & 7)
    info = vmcoreinfo.encode()
    sub_hdr_size = 1
    hdr = bytearray(block)
    hdr[:8] = b"KDUMP   "
    struct.pack_into("<i", hdr, 8, version)
    hdr[12 + 65 * 4:12 + 65 * 4 + len(machine)] = machine.encode()
    struct.pack_into("<iiII", hdr, 428, block, sub_hdr_size, bitmap_blocks, max_mapnr & 0xFFFFFFFF)
    desc_off = block * (1 + sub_hdr_size + bitmap_blocks)
    pfns = sorted(mem.pages)
    data_off = desc_off + 24 * len(pfns)
    info_off = data_off
    data_off += len(info)
    descs, blobs = [], []
    for i, pfn in enumerate(pfns):
        raw = bytes(mem.pages[pfn])
        if compress_every and i % compress_every == 0:
            payload, flags = zlib.compress(raw), 0x1
        else:
            payload, flags = raw, 0
        descs.append(struct.pack("<QIIQ", data_off, len(payload), flags, 0))
        blobs.append(payload)
        data_off += len(payload)
    sub = bytearray(block)
    struct.pack_into("<QiiQQ", sub, 0, 0, 31, 0, 0, max_mapnr)
    struct.pack_into("<QQ", sub, 32, info_off, len(info))
    struct.pack_into("<QQQ", sub, 80, 0, max_mapnr, max_mapnr)
    with open(path, "wb") as f:
        f.write(hdr + sub + bm1 + bm1 + b"".join(descs) + info + b"".join(blobs))
    return path
