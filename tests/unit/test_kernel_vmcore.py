"""Kernel dumps: virtual -> physical through the dump's own page tables (x86_64 4/5 levels,
arm64), the ELF and kdump-compressed formats, and refusing what is not a kernel dump."""
import struct

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel.kcore import Kcore
from gdb_toolkit.kernel.vmcore import DiskDump, Vmcore, open_dump
from tests.support.kcore_fixture import _note
from tests.support.vmcore_fixture import (Arm64PageTables, PhysMemory, X86PageTables,
                                          write_elf_vmcore, write_kdump)

START_KERNEL_MAP = 0xFFFFFFFF80000000
PHYS_BASE = 0x60000000
KASLR = 0x1E00000
TEXT = 0xFFFFFFFF81000000 + KASLR
DIRECT = 0xFF11000000100000         # a direct-map page
VMALLOC_2M = 0xFFFFC90000200000     # inside a 2 MiB page
MODULE = 0xFFFFFFFFC0001000
BANNER = b"Linux version 6.1.0-test (synthetic)\0"


def x86_dump(levels=5):
    mem = PhysMemory()
    pt = X86PageTables(mem, levels)
    top_va = pt.root - PHYS_BASE + START_KERNEL_MAP          # init_top_pgt lies in the image
    mem.write(TEXT - START_KERNEL_MAP + PHYS_BASE, BANNER)
    pt.map(DIRECT, 0x100000)
    mem.write(0x100000, b"direct map page " + bytes(range(240)) * 17)
    pt.map(DIRECT + 0x1000, 0x5000)                          # not physically adjacent
    mem.write(0x5000, b"NEXT PAGE")
    pt.map(VMALLOC_2M & ~0x1FFFFF, 0x400000, large=21)
    mem.write(0x400000 + (VMALLOC_2M & 0x1FFFFF) + 0x1234, b"inside a large page")
    pt.map(MODULE, 0x3000)
    mem.write(0x3000, b"module text")
    info = (f"OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_top_pgt)={top_va:x}\n"
            f"NUMBER(phys_base)={PHYS_BASE}\nNUMBER(pgtable_l5_enabled)={1 if levels == 5 else 0}\n"
            f"KERNELOFFSET={KASLR:x}\nNUMBER(KERNEL_IMAGE_SIZE)={1 << 30}\n")
    return mem, info


def check_x86(dump):
    assert dump.read(TEXT, len(BANNER)) == BANNER
    assert dump.read(DIRECT, 16) == b"direct map page "
    # a read across two virtual pages that are far apart physically
    assert dump.read(DIRECT + 0xFF8, 17).endswith(b"NEXT PAGE")
    assert dump.read(VMALLOC_2M + 0x1234, 19) == b"inside a large page"
    assert dump.read(MODULE, 11) == b"module text"
    assert dump.kaslr_offset == KASLR and dump.release == "6.1.0-test"
    with pytest.raises(ToolkitError, match="not mapped"):
        dump.read(0xFFFFFFFFC0800000, 8)


@pytest.mark.parametrize("levels", [4, 5])
def test_elf_vmcore_reads_through_x86_page_tables(tmp_path, levels):
    mem, info = x86_dump(levels)
    path = write_elf_vmcore(tmp_path / "vmcore", mem, info)
    with open_dump(str(path)) as d:
        assert isinstance(d, Vmcore) and d.arch == "x86_64" and d.kind == "vmcore"
        check_x86(d)
        assert all(r.physical for r in d.regions())


def test_kdump_compressed_reads_the_same(tmp_path):
    mem, info = x86_dump(5)
    path = write_kdump(tmp_path / "vmcore.kdump", mem, info)
    with open_dump(str(path)) as d:
        assert isinstance(d, DiskDump) and d.arch == "x86_64"
        check_x86(d)
        with pytest.raises(ToolkitError, match="not in .*excluded"):
            d.read_phys(0x9000, 8)


def test_arm64_linear_map_and_walk(tmp_path):
    mem = PhysMemory()
    pt = Arm64PageTables(mem, va_bits=48)
    voff = 0xFFFF7FFF80000000                      # kimage_voffset: image va - pa
    image_va = pt.root + voff                      # swapper_pg_dir's va
    mem.write(0x40100000, b"linear")
    pt.map(0xFFFF800008010000, 0x41000000)         # a module page
    mem.write(0x41000000, b"module")
    pt.map(0xFFFF800010000000, 0x42000000, large=21)
    mem.write(0x42000000 + 0x345, b"block")
    info = (f"OSRELEASE=6.1.0-arm\nPAGESIZE=4096\nNUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0x{voff:x}\n"
            f"NUMBER(PHYS_OFFSET)=0x40000000\nSYMBOL(swapper_pg_dir)={image_va:x}\nKERNELOFFSET=0\n")
    path = write_elf_vmcore(tmp_path / "vmcore", mem, info, machine=183)
    with open_dump(str(path)) as d:
        assert d.arch == "aarch64"
        assert d.read(0xFFFF000000100000, 6) == b"linear"
        assert d.read(0xFFFF800008010000, 6) == b"module"
        assert d.read(0xFFFF800010000345, 5) == b"block"


def test_a_process_core_is_not_a_kernel_core(tmp_path):
    """issue 11 item 9: kcore / kx accepted a process core (gcore's) as a kernel."""
    notes = _note(b"CORE", 1, b"\0" * 336) + _note(b"CORE", 3, b"\0" * 40 + b"sleep\0".ljust(16, b"\0")
                                                  + b"\0" * 80) + _note(b"CORE", 6, b"\0" * 16)
    ph = [struct.pack("<IIQQQQQQ", 4, 0, 64 + 2 * 56, 0, 0, len(notes), 0, 4),
          struct.pack("<IIQQQQQQ", 1, 5, 4096, 0x555555554000, 0, 4096, 4096, 4096)]
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8 + struct.pack(
        "<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    img = bytearray(8192)
    blob = ehdr + b"".join(ph) + notes
    img[:len(blob)] = blob
    path = tmp_path / "core.1234"
    path.write_bytes(bytes(img))
    for opener in (Kcore.open, open_dump):
        with pytest.raises(ToolkitError, match=r"process core \(of 'sleep'\), not a kernel core"):
            opener(str(path))


def test_fifo_is_refused_without_blocking(tmp_path):
    import os
    import time

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t = time.monotonic()
    for opener in (Kcore.open, open_dump):
        with pytest.raises(ToolkitError, match="FIFO"):
            opener(str(fifo))
    assert time.monotonic() - t < 2


def test_truncated_and_damaged_dumps_are_one_line_errors(tmp_path):
    mem, info = x86_dump(4)
    path = write_kdump(tmp_path / "v", mem, info)
    data = path.read_bytes()
    (tmp_path / "t").write_bytes(data[:len(data) // 2])
    with pytest.raises(ToolkitError):
        with open_dump(str(tmp_path / "t")) as d:
            d.read(TEXT, 16)
            d.read(MODULE, 16)
            d.read(DIRECT, 16)
    bad = bytearray(data)
    struct.pack_into("<i", bad, 428, 12345)               # block size
    (tmp_path / "b").write_bytes(bytes(bad))
    with pytest.raises(ToolkitError, match="implausible"):
        open_dump(str(tmp_path / "b"))
