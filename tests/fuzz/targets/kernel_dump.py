"""Kernel memory files (kcore.Kcore, vmcore.open_dump): /proc/kcore-shaped ELF cores, ELF
vmcores read through their page tables, kdump-compressed and flattened dumps.

The bytes are the file (written into framework.scratch_dir(): the readers take paths).  Invariants:
opening and reading any address is either data of the asked length or a ToolkitError."""
import os

from gdb_toolkit.kernel.kcore import Kcore
from gdb_toolkit.kernel.vmcore import open_dump
from tests.fuzz import framework

MAX_LEN = 65536
DICT = [b"\x7fELF", b"VMCOREINFO\0", b"CORE\0", b"KDUMP   ", b"makedumpfile", b"OSRELEASE=",
        b"SYMBOL(init_top_pgt)=", b"NUMBER(phys_base)=", b"NUMBER(pgtable_l5_enabled)=1",
        b"KERNELOFFSET=", b"SYMBOL(swapper_pg_dir)=", b"NUMBER(VA_BITS)=48",
        b"NUMBER(kimage_voffset)=", b"PAGESIZE=4096", b"\xff\xff\xff\xff"]
PER_INPUT_SECONDS = 4.0

PROBES = (0xFFFFFFFF81000000, 0xFFFF888000100000, 0xFFFFFFFFC0000000, 0xFFFF800008000000, 0x1000)


def fuzz(data: bytes) -> None:
    path = os.path.join(framework.scratch_dir("kernel_dump"), "core")
    with open(path, "wb") as f:
        f.write(data)
    for opener in (Kcore.open, open_dump):
        with opener(path) as mem:
            mem.regions()
            assert isinstance(mem.vmcoreinfo, dict)
            for addr in PROBES + tuple(r.start for r in mem.regions()[:4]):
                try:
                    got = mem.read(addr, 64)
                except Exception as exc:
                    from gdb_toolkit.common.errors import ToolkitError
                    if not isinstance(exc, ToolkitError):
                        raise
                    continue
                assert len(got) == 64
