"""Kernel virtual -> physical addresses for a physical memory dump (a vmcore).

A kdump vmcore, makedumpfile's output or QEMU's dump-guest-memory hold *physical* memory;
VMCOREINFO says where the kernel's page tables are and how its image is placed, which is
enough to translate every kernel address the way the MMU did:

- x86_64: the image (``__START_KERNEL_map``..+KERNEL_IMAGE_SIZE) is ``va - 0xffffffff80000000 +
  phys_base``; everything else (direct map, vmalloc, modules, per-cpu) walks ``init_top_pgt``
  with 4 or 5 levels (``NUMBER(pgtable_l5_enabled)``), 1 GiB / 2 MiB large pages included.
- arm64: the linear map is ``(va & ~PAGE_OFFSET) + PHYS_OFFSET``, the image ``va -
  kimage_voffset``; the rest walks ``swapper_pg_dir`` (4K, 16K or 64K granule, VA_BITS).

Pure: ``read_phys(paddr, n) -> bytes`` comes in.  Bounded: a walk is at most 5 reads, table
pages and translations are cached per page.
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel.memory import vmcoreinfo_hex

X86_START_KERNEL_MAP = 0xFFFFFFFF80000000
X86_ADDR_MASK = 0x000FFFFFFFFFF000
ARM64_ADDR_MASK = 0x0000FFFFFFFFF000
MASK64 = (1 << 64) - 1


def _num(info: dict, key: str) -> int | None:
    v = info.get(key)
    if v is None:
        return None
    try:
        return int(v, 0) if v.strip().lower().startswith(("0x", "-0x")) else int(v, 10)
    except ValueError:
        try:
            return int(v, 16)
        except ValueError:
            return None


class Unmapped(ToolkitError):
    """The address has no translation (not present in the page tables)."""


class Translator:
    """Base: caches table reads and per-page translations."""

    page_shift = 12

    def __init__(self, read_phys):
        self.read_phys = read_phys
        self._tables: dict[int, bytes] = {}
        self._pages: dict[int, int] = {}

    def _entry(self, table: int, index: int) -> int:
        blk = self._tables.get(table)
        if blk is None:
            size = 1 << self.page_shift
            blk = self.read_phys(table, size)
            if len(self._tables) > 4096:
                self._tables.clear()
            self._tables[table] = blk
        return struct.unpack_from("<Q", blk, index * 8)[0]

    def translate(self, vaddr: int) -> int:
        """The physical address of *vaddr*; Unmapped when no mapping exists."""
        vaddr &= MASK64
        page = vaddr >> self.page_shift
        base = self._pages.get(page)
        if base is None:
            base = self._walk(page << self.page_shift)
            if len(self._pages) > 1 << 16:
                self._pages.clear()
            self._pages[page] = base
        return base + (vaddr & ((1 << self.page_shift) - 1))

    def _walk(self, vaddr: int) -> int:
        raise NotImplementedError


class X86_64(Translator):
    def __init__(self, read_phys, pgd_phys: int, levels: int, phys_base: int,
                 image_size: int = 1 << 30, sme_mask: int = 0):
        super().__init__(read_phys)
        self.pgd = pgd_phys
        self.levels = levels
        self.phys_base = phys_base
        self.image_size = image_size
        self.mask = X86_ADDR_MASK & ~sme_mask

    @classmethod
    def from_vmcoreinfo(cls, info: dict, read_phys) -> "X86_64 | None":
        phys_base = _num(info, "NUMBER(phys_base)")
        top = (vmcoreinfo_hex(info, "SYMBOL(init_top_pgt)")
               or vmcoreinfo_hex(info, "SYMBOL(init_level4_pgt)")
               or vmcoreinfo_hex(info, "SYMBOL(swapper_pg_dir)"))
        if phys_base is None or top is None:
            return None
        levels = 5 if _num(info, "NUMBER(pgtable_l5_enabled)") == 1 else 4
        image = _num(info, "NUMBER(KERNEL_IMAGE_SIZE)") or (1 << 30)
        sme = _num(info, "NUMBER(sme_mask)") or 0
        pgd = (top - X86_START_KERNEL_MAP + phys_base) & MASK64
        return cls(read_phys, pgd, levels, phys_base, image, sme)

    def in_image(self, vaddr: int) -> bool:
        return X86_START_KERNEL_MAP <= vaddr < X86_START_KERNEL_MAP + self.image_size

    def _walk(self, vaddr: int) -> int:
        if self.in_image(vaddr):
            return (vaddr - X86_START_KERNEL_MAP + self.phys_base) & MASK64
        table = self.pgd
        shifts = (48, 39, 30, 21, 12)[5 - self.levels:]
        for shift in shifts:
            e = self._entry(table, (vaddr >> shift) & 511)
            if not e & 1:
                raise Unmapped(f"kernel address 0x{vaddr:x} is not mapped in the dump's page tables",
                               "check the address (ksym NAME; kcore lists what the dump holds)")
            if shift in (30, 21) and e & 0x80:      # 1 GiB / 2 MiB page
                return (e & self.mask & ~((1 << shift) - 1)) | (vaddr & ((1 << shift) - 1) & ~0xFFF)
            table = e & self.mask
        return table


class Arm64(Translator):
    def __init__(self, read_phys, pgd_phys: int, va_bits: int, page_shift: int,
                 phys_offset: int, kimage_voffset: int):
        super().__init__(read_phys)
        self.pgd = pgd_phys
        self.va_bits = va_bits
        self.page_shift = page_shift
        self.phys_offset = phys_offset
        self.kimage_voffset = kimage_voffset
        self.page_offset = (-(1 << va_bits)) & MASK64
        self.page_end = (-(1 << (va_bits - 1))) & MASK64
        per = page_shift - 3
        self.levels = -(-(va_bits - page_shift) // per)

    @classmethod
    def from_vmcoreinfo(cls, info: dict, read_phys) -> "Arm64 | None":
        va_bits = _num(info, "NUMBER(VA_BITS)")
        voff = vmcoreinfo_hex(info, "NUMBER(kimage_voffset)")
        phys_off = vmcoreinfo_hex(info, "NUMBER(PHYS_OFFSET)")
        swapper = vmcoreinfo_hex(info, "SYMBOL(swapper_pg_dir)")
        page = _num(info, "PAGESIZE") or 4096
        if None in (va_bits, voff, phys_off, swapper) or page not in (4096, 16384, 65536):
            return None
        return cls(read_phys, (swapper - voff) & MASK64, va_bits, page.bit_length() - 1,
                   phys_off, voff)

    def _walk(self, vaddr: int) -> int:
        if self.page_offset <= vaddr < self.page_end:          # the linear map
            return ((vaddr & ~self.page_offset) + self.phys_offset) & MASK64
        per = self.page_shift - 3
        table = self.pgd
        for level in range(self.levels):
            shift = self.page_shift + per * (self.levels - 1 - level)
            index = (vaddr >> shift) & ((1 << per) - 1)
            if level == 0:
                index = (vaddr >> shift) & ((1 << (self.va_bits - shift)) - 1)
            e = self._entry(table, index)
            if not e & 1:
                raise Unmapped(f"kernel address 0x{vaddr:x} is not mapped in the dump's page tables",
                               "check the address (ksym NAME; kcore lists what the dump holds)")
            last = level == self.levels - 1
            out = e & ARM64_ADDR_MASK & ~((1 << self.page_shift) - 1)
            if not last and not e & 2:                          # a block
                return (e & ARM64_ADDR_MASK & ~((1 << shift) - 1)) | \
                    (vaddr & ((1 << shift) - 1) & ~((1 << self.page_shift) - 1))
            table = out
        return table


def translator(arch: str, vmcoreinfo: dict, read_phys) -> Translator | None:
    """The translator VMCOREINFO allows for *arch*, or None (not enough information)."""
    if arch == "x86_64":
        return X86_64.from_vmcoreinfo(vmcoreinfo, read_phys)
    if arch == "aarch64":
        return Arm64.from_vmcoreinfo(vmcoreinfo, read_phys)
    return None
