"""Kernel dumps (vmcores): physical memory plus VMCOREINFO, read by kernel virtual address.

Two file formats:
- ELF (kdump's /proc/vmcore saved with cp or ``makedumpfile -E``, QEMU's
  ``dump-guest-memory``): PT_LOAD ``p_paddr`` is physical; ``p_vaddr`` may be a virtual
  address (kdump), 0 (QEMU without paging) or the same as kcore's (a kcore-shaped file).
- kdump-compressed (``makedumpfile -c/-l/-p/-z``, QEMU ``dump-guest-memory -z``): a
  ``KDUMP   `` header, bitmaps of the dumped pages, one descriptor per dumped page, each
  page zlib/lzo/snappy/zstd-compressed or raw.

Virtual addresses are translated through the dump's own page tables (pagetables.py) with
what VMCOREINFO says.  A dump without page-table facts (an old kernel, QEMU without the
vmcoreinfo device) is read by ``p_vaddr`` when its segments carry virtual addresses.
"""
import _bisect as bisect   # what bisect.py re-exports (see plt/slots.py)
import os
import _struct as struct   # what struct.py re-exports (see plt/slots.py)
import zlib

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import pagetables as PT
from gdb_toolkit.kernel.kcore import (MACHINES, Kcore, Segment, open_core_fd, parse_elf_core,
                                      parse_notes, parse_vmcoreinfo, pread, refuse_process_core)
from gdb_toolkit.kernel.memory import VMCORE, KernelMemory, Region

MAX_PAGE_DESCS = 1 << 36
KDUMP_SIGNATURE = b"KDUMP   "
FLAT_SIGNATURE = b"makedumpfile"
MAX_FLAT_BLOCKS = 1 << 26


class _Flattened:
    """makedumpfile's flattened format (what it, and QEMU, write to a pipe -- QEMU also to
    a file): a 4 KiB header, then blocks of (big-endian offset, size, data) that place data
    at offsets of the real kdump file; -1 ends it.  Indexed once, read like that file."""

    def __init__(self, fd: int, path: str):
        self.fd, self.path = fd, path
        total = os.fstat(fd).st_size
        starts, pieces = [], []
        pos, end = 4096, 0
        while pos + 16 <= total:
            off, size = struct.unpack(">qq", pread(fd, 16, pos))
            if off < 0:
                break
            if size < 0 or pos + 16 + size > total or len(pieces) >= MAX_FLAT_BLOCKS:
                raise ToolkitError(f"{path}: a flattened block at 0x{pos:x} is damaged",
                                   "the file is truncated or not a flattened dump")
            starts.append(off)
            pieces.append((off, size, pos + 16))
            end = max(end, off + size)
            pos += 16 + size
        order = sorted(range(len(starts)), key=starts.__getitem__)
        self.pieces = [pieces[i] for i in order]
        self.starts = [p[0] for p in self.pieces]
        self.size = end

    def pread(self, off: int, n: int) -> bytes:
        out, cur, left = [], off, n
        while left > 0:
            i = bisect.bisect_right(self.starts, cur) - 1
            if i < 0 or cur >= self.pieces[i][0] + self.pieces[i][1]:
                raise ToolkitError(f"{self.path}: nothing written at offset 0x{cur:x} of the dump",
                                   "the file is damaged or truncated")
            start, size, at = self.pieces[i]
            k = min(left, start + size - cur)
            out.append(pread(self.fd, k, at + cur - start))
            cur += k
            left -= k
        return b"".join(out)


class _Physical:
    """Physical reads over sorted (paddr, filesz, memsz, file offset) ranges of one fd."""

    def __init__(self, fd: int, path: str, ranges: list[tuple[int, int, int, int]]):
        self.fd = fd
        self.path = path
        self.ranges = sorted(ranges)
        self._starts = [r[0] for r in self.ranges]

    def read_phys(self, paddr: int, size: int) -> bytes:
        out, cur, left = [], paddr, size
        while left > 0:
            i = bisect.bisect_right(self._starts, cur) - 1
            if i < 0 or cur >= self.ranges[i][0] + self.ranges[i][2]:
                raise ToolkitError(f"physical address 0x{cur:x} is not in {self.path}",
                                   "the dump does not hold that memory (excluded or outside RAM)")
            start, filesz, memsz, off = self.ranges[i]
            n = min(left, start + memsz - cur)
            inside = max(0, min(n, start + filesz - cur))
            if inside:
                data = pread(self.fd, inside, off + cur - start)
                if len(data) < inside:
                    raise ToolkitError(f"{self.path} is truncated at physical 0x{cur:x}",
                                       "the dump was cut short (disk full, interrupted copy)")
                out.append(data)
            if n > inside:
                out.append(bytes(n - inside))         # p_memsz past p_filesz: zeros
            cur += n
            left -= n
        return b"".join(out)


class Vmcore(Kcore):
    """An ELF kernel dump read by virtual address through its page tables."""

    kind = VMCORE

    def __init__(self, fd, path, segments, notes, machine, phys: _Physical):
        super().__init__(fd, path, segments, notes, machine)
        self.phys = phys
        self.translator = PT.translator(self.arch, self.vmcoreinfo, phys.read_phys)

    @classmethod
    def open(cls, path: str) -> "Vmcore":
        fd = open_core_fd(path, "vmcore")
        try:
            machine, loads, notes = parse_elf_core(fd, path)
            refuse_process_core(path, loads, notes)
            if not loads:
                raise ToolkitError(f"{path} has no PT_LOAD segments", "the file is not a kernel dump")
            size = os.fstat(fd).st_size
            ranges = [(p, min(f, max(0, size - o)), m, o) for _v, p, o, f, m in loads]
            segs = [Segment(v, f or m, o) for v, _p, o, f, m in loads if v]
            return cls(fd, path, segs or [Segment(0, 0, 0)], notes, machine,
                       _Physical(fd, path, ranges))
        except BaseException:
            os.close(fd)
            raise

    @property
    def description(self) -> str:
        from gdb_toolkit.common.names import escape_name

        return f"{escape_name(self.path)} (ELF vmcore)"

    def regions(self) -> list[Region]:
        if self.translator is None:                  # read by p_vaddr: show those
            return super().regions()
        return [Region(p, m, o, physical=True) for p, _f, m, o in self.phys.ranges]

    def read(self, addr: int, size: int) -> bytes:
        if self.translator is None:
            return super().read(addr, size)          # virtual segments (no page-table facts)
        return read_translated(self.translator, self.phys.read_phys, addr, size)

    # through the page tables, not Kcore's segment plan: readable means contained
    contains = KernelMemory.contains


def read_translated(tr: PT.Translator, read_phys, addr: int, size: int) -> bytes:
    """*size* bytes at virtual *addr*, page by page through *tr*."""
    if size <= 0:
        return b""
    out, cur, end = [], addr & PT.MASK64, (addr & PT.MASK64) + size
    page = 1 << tr.page_shift
    while cur < end:
        n = min(end, (cur | (page - 1)) + 1) - cur
        out.append(read_phys(tr.translate(cur), n))
        cur += n
    return b"".join(out)


class DiskDump(KernelMemory):
    """A kdump-compressed dump (``KDUMP   `` signature)."""

    kind = VMCORE

    def __init__(self, fd: int, path: str, flat: "_Flattened | None" = None):
        self.fd = fd
        self.path = path
        self.flat = flat
        self.size = flat.size if flat is not None else os.fstat(fd).st_size
        hdr = self._pread(0, 464)
        if hdr[:8] != KDUMP_SIGNATURE:
            raise ToolkitError(f"{path} is not a kdump-compressed dump", None)
        self.version = struct.unpack_from("<i", hdr, 8)[0]
        uts = [hdr[12 + 65 * i:12 + 65 * (i + 1)].split(b"\0")[0].decode("utf-8", "replace")
               for i in range(6)]
        self.machine_name = uts[4]
        (self.block_size, self.sub_hdr_size, self.bitmap_blocks,
         max_mapnr) = struct.unpack_from("<iiII", hdr, 428)
        if self.block_size not in (4096, 16384, 65536) or not 0 < self.sub_hdr_size < 1 << 20 \
                or not 0 < self.bitmap_blocks < 1 << 24:
            raise ToolkitError(f"{path}: implausible kdump header (block size {self.block_size}, "
                               f"sub-header {self.sub_hdr_size}, bitmap blocks {self.bitmap_blocks})",
                               "the file is damaged")
        sub = self._pread(self.block_size, 104)
        self.phys_base = struct.unpack_from("<Q", sub, 0)[0]
        info_text, self.notes = "", []
        if self.version >= 3:
            off, size = struct.unpack_from("<QQ", sub, 32)
            if 0 < size < 1 << 20:
                info_text = self._pread(off, size).decode("utf-8", "replace")
        if self.version >= 4:
            off, size = struct.unpack_from("<QQ", sub, 48)
            if 0 < size < 16 << 20:
                self.notes = parse_notes(self._pread(off, size))
        if self.version >= 6:
            max_mapnr = struct.unpack_from("<Q", sub, 96)[0] or max_mapnr
        self.max_mapnr = max_mapnr
        self._info = parse_vmcoreinfo(info_text)
        for n in self.notes:
            if n.name == "VMCOREINFO" and not self._info:
                self._info = parse_vmcoreinfo(n.desc.decode("utf-8", "replace"))
        half = self.bitmap_blocks * self.block_size // 2
        need = (max_mapnr + 7) // 8
        if need > half:
            raise ToolkitError(f"{path}: its bitmaps ({half} bytes) cannot cover {max_mapnr} pages",
                               "the file is damaged")
        bm_off = self.block_size * (1 + self.sub_hdr_size)
        self._bitmap = self._pread(bm_off + half, need)        # the 2nd bitmap: dumped pages
        self._desc_off = bm_off + self.bitmap_blocks * self.block_size
        # popcount before each 4096-page chunk: descriptor index = rank(pfn)
        self._rank = [0]
        for i in range(0, len(self._bitmap), 512):
            self._rank.append(self._rank[-1] + int.from_bytes(self._bitmap[i:i + 512], "little")
                              .bit_count())
        self.page_shift = self.block_size.bit_length() - 1
        self.translator = PT.translator(self.arch, self._info, self.read_phys)
        self._cache: dict[int, bytes] = {}

    @classmethod
    def open(cls, path: str) -> "DiskDump":
        fd = open_core_fd(path, "vmcore")
        try:
            magic = os.pread(fd, 12, 0)
            return cls(fd, path, _Flattened(fd, path) if magic == FLAT_SIGNATURE else None)
        except BaseException:
            os.close(fd)
            raise

    @property
    def description(self) -> str:
        from gdb_toolkit.common.names import escape_name

        return f"{escape_name(self.path)} (kdump-compressed vmcore" + (", flattened)" if self.flat else ")")

    def _pread(self, off: int, n: int) -> bytes:
        if self.flat is not None:
            return self.flat.pread(off, n)
        if off < 0 or n < 0 or off + n > self.size:
            raise ToolkitError(f"{self.path}: a header points at 0x{off:x}+0x{n:x}, past the end of "
                               f"the {self.size}-byte file", "the file is damaged or truncated")
        data = pread(self.fd, n, off)
        if len(data) < n:
            raise ToolkitError(f"{self.path}: short read at 0x{off:x}", "the file is truncated")
        return data

    @property
    def arch(self) -> str:
        return {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
            self.machine_name, self.machine_name or "unknown")


    @property
    def vmcoreinfo(self) -> dict[str, str]:
        return self._info

    def regions(self) -> list[Region]:
        """Runs of dumped pages (physical)."""
        out, start, prev = [], None, None
        for pfn in self._dumped_pfns(limit=1 << 22):
            if start is None:
                start = prev = pfn
            elif pfn == prev + 1:
                prev = pfn
            else:
                out.append(Region(start << self.page_shift, (prev - start + 1) << self.page_shift, None,
                                  physical=True))
                start = prev = pfn
        if start is not None:
            out.append(Region(start << self.page_shift, (prev - start + 1) << self.page_shift, None,
                              physical=True))
        return out

    def _dumped_pfns(self, limit: int):
        n = 0
        for i, byte in enumerate(self._bitmap):
            if byte:
                for b in range(8):
                    if byte >> b & 1:
                        yield i * 8 + b
                        n += 1
                        if n >= limit:
                            return

    def _dumped(self, pfn: int) -> bool:
        return pfn < self.max_mapnr and bool(self._bitmap[pfn >> 3] >> (pfn & 7) & 1)

    def _index(self, pfn: int) -> int:
        chunk = pfn >> 12
        base = self._rank[chunk]
        lo = chunk * 512
        part = self._bitmap[lo:pfn >> 3]
        n = int.from_bytes(part, "little").bit_count() if part else 0
        n += (self._bitmap[pfn >> 3] & ((1 << (pfn & 7)) - 1)).bit_count()
        return base + n

    def _page(self, pfn: int) -> bytes:
        blk = self._cache.get(pfn)
        if blk is not None:
            return blk
        if not self._dumped(pfn):
            raise ToolkitError(f"physical page 0x{pfn << self.page_shift:x} is not in {self.path} "
                               "(excluded by makedumpfile's dump level, or not RAM)",
                               "take the dump with a lower -d level to keep such pages")
        desc = self._pread(self._desc_off + 24 * self._index(pfn), 24)
        off, size, flags, _pflags = struct.unpack("<QIIQ", desc)
        if not 0 < size <= self.block_size * 2:
            raise ToolkitError(f"{self.path}: bad page descriptor for pfn 0x{pfn:x}", "the file is damaged")
        raw = self._pread(off, size)
        blk = _decompress(raw, flags, self.block_size, self.path)
        if len(self._cache) > 2048:
            self._cache.clear()
        self._cache[pfn] = blk
        return blk

    def read_phys(self, paddr: int, size: int) -> bytes:
        out, cur, end = [], paddr, paddr + size
        while cur < end:
            pfn = cur >> self.page_shift
            n = min(end, (pfn + 1) << self.page_shift) - cur
            off = cur - (pfn << self.page_shift)
            out.append(self._page(pfn)[off:off + n])
            cur += n
        return b"".join(out)

    def read(self, addr: int, size: int) -> bytes:
        if self.translator is None:
            raise ToolkitError(f"{self.path}: VMCOREINFO lacks the page-table facts to read virtual "
                               "addresses", "take the dump from a kernel with VMCOREINFO (4.19+)")
        return read_translated(self.translator, self.read_phys, addr, size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _decompress(raw: bytes, flags: int, block: int, path: str) -> bytes:
    if flags & 0x1:                                     # DUMP_DH_COMPRESSED_ZLIB
        try:
            d = zlib.decompressobj()
            out = d.decompress(raw, block)
        except zlib.error as exc:
            raise ToolkitError(f"{path}: a zlib page does not decompress ({exc})", "the file is damaged") \
                from None
    elif flags & 0x2:                                   # LZO
        out = _optional("lzo", "python3-lzo", path).decompress(raw, False, block)
    elif flags & 0x4:                                   # snappy
        out = _optional("snappy", "python3-snappy", path).uncompress(raw)
    elif flags & 0x20:                                  # zstd
        out = _optional("zstandard", "python3-zstandard", path).ZstdDecompressor().decompress(
            raw, max_output_size=block)
    else:
        out = raw
    if len(out) != block:
        raise ToolkitError(f"{path}: a page decompresses to {len(out)} bytes, not {block}",
                           "the file is damaged")
    return out


def _optional(module: str, package: str, path: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ToolkitError(f"{path} has pages compressed with {module}, and Python's {module} "
                           "module is not installed", f"apt-get install {package}, or make the "
                           "dump with zlib (makedumpfile -c)") from None


def open_dump(path: str) -> KernelMemory:
    """A kernel dump file: ELF (vmcore) or kdump-compressed."""
    fd = open_core_fd(path, "vmcore")
    try:
        magic = os.pread(fd, 8, 0)
    except OSError as exc:      # /proc/self/mem: a "regular" file that cannot be read at 0
        from gdb_toolkit.common.names import escape_name

        raise ToolkitError(f"cannot read {escape_name(path)}: {exc.strerror or exc}",
                           "give /proc/kcore or a vmcore file") from None
    finally:
        os.close(fd)
    if magic == KDUMP_SIGNATURE or magic == FLAT_SIGNATURE[:8]:
        return DiskDump.open(path)
    return Vmcore.open(path)


__all__ = ["Vmcore", "DiskDump", "open_dump", "MACHINES"]
