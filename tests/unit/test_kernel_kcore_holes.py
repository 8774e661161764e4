"""/proc/kcore reads a vmalloc or module page that nothing maps as zeros (fs/proc/kcore.c:
vread() fills holes; those segments have p_paddr -1).  kx at an unloaded module's address
printed sixteen 00 bytes and kdis '(bad)' (seen on Debian's arm64 6.1 in the guest, after
rmmod dummy): a read of zeros there must be checked against the kernel's page tables.

The fixture lays out an arm64 kcore as the kernel does -- the linear map (RAM, p_paddr set),
the module area (p_paddr -1) -- with page tables built by tests/support/vmcore_fixture's
independent writer: what is mapped is what the test mapped."""
import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel.kcore import Kcore
from tests.support.kcore_fixture import write_kcore
from tests.support.vmcore_fixture import Arm64PageTables, PhysMemory

PAGE = 4096
LINEAR, PHYS_OFFSET = 0xFFFF000000000000, 0x40000000
MODULES = 0xFFFF800000000000
VOFF = 0xFFFF7FFF80000000          # kimage_voffset
NO_PADDR = (1 << 64) - 1


def _kcore(tmp_path, vmcoreinfo=True):
    mem = PhysMemory()
    pt = Arm64PageTables(mem, va_bits=48)
    pt.map(MODULES + PAGE, 0x41000000)          # a module page with code
    mem.write(0x41000000, b"module code")
    pt.map(MODULES + 2 * PAGE, 0x41001000)      # a mapped page of zeros (.bss)
    # MODULES + 3 pages: unmapped (an unloaded module's, or a guard page)
    module_area = bytearray(8 * PAGE)
    module_area[PAGE:PAGE + 11] = b"module code"
    tables = b"".join(bytes(mem.page(pfn)) for pfn in range(0x7F000, 0x7F000 + 8))
    data = bytes(mem.page(0x41000)) + bytes(mem.page(0x41001))
    regions = {LINEAR + 0x7F000000 - PHYS_OFFSET: tables,
               LINEAR + 0x41000000 - PHYS_OFFSET: data,
               MODULES: bytes(module_area)}
    paddrs = {LINEAR + 0x7F000000 - PHYS_OFFSET: 0x7F000000,
              LINEAR + 0x41000000 - PHYS_OFFSET: 0x41000000, MODULES: NO_PADDR}
    info = ""
    if vmcoreinfo:
        info = (f"OSRELEASE=6.1.0-arm\nPAGESIZE=4096\nNUMBER(VA_BITS)=48\n"
                f"NUMBER(kimage_voffset)=0x{VOFF:x}\nNUMBER(PHYS_OFFSET)=0x{PHYS_OFFSET:x}\n"
                f"SYMBOL(swapper_pg_dir)={pt.root + VOFF:x}\nKERNELOFFSET=0\n")
    return write_kcore(tmp_path / "kcore", regions, info, machine=183, paddrs=paddrs)


def test_zeros_from_an_unmapped_module_page_are_an_error(tmp_path):
    with Kcore.open(str(_kcore(tmp_path))) as kc:
        assert kc.read(MODULES + PAGE, 11) == b"module code"
        assert kc.read(MODULES + 2 * PAGE + 8, 16) == bytes(16)        # mapped zeros are memory
        with pytest.raises(ToolkitError, match=r"kernel address 0xffff800000003000 is not mapped:"
                           r" the kernel's page tables have no page there"):
            kc.read(MODULES + 3 * PAGE, PAGE)
        with pytest.raises(ToolkitError, match=r"0xffff800000003000 is not mapped \(reading "
                           r"0xffff800000002ff0\+0x20\)"):
            kc.read(MODULES + 3 * PAGE - 16, 32)                         # runs into the hole
        with pytest.raises(ToolkitError, match="is not mapped"):
            kc.read(MODULES + 3 * PAGE + 0x250, 16)                      # kx/kdis-sized
        with kc.snapshot():                                              # one command's reads
            assert kc.read(MODULES + PAGE, 6) == b"module"
            with pytest.raises(ToolkitError, match="is not mapped"):
                kc.read(MODULES + 3 * PAGE + 0x250, 16)
        # RAM (p_paddr set) is read as it is: zeros there are memory
        assert kc.read(LINEAR + 0x41000000 - PHYS_OFFSET + 0x100, 16) == bytes(16)


def test_without_page_table_facts_the_zeros_stand(tmp_path):
    with Kcore.open(str(_kcore(tmp_path, vmcoreinfo=False))) as kc:
        assert kc.read(MODULES + 3 * PAGE, 16) == bytes(16)
