"""A vmlinux ELF image as kernel memory at its link addresses (for tests of readers that
take a memory object: the kernel as built, no running kernel needed)."""
import io

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel.memory import KernelMemory


class ElfImageMemory(KernelMemory):
    def __init__(self, elf: bytes):
        from elftools.elf.elffile import ELFFile

        self.data = elf
        self.path = "vmlinux image"
        self.sections = {}
        for s in ELFFile(io.BytesIO(elf)).iter_sections():
            h = s.header
            if h.sh_flags & 2 and h.sh_addr and h.sh_type != "SHT_NOBITS":
                self.sections[s.name] = (h.sh_addr, h.sh_size, h.sh_offset)
        self.arch = "x86_64"

    def section(self, name: str) -> tuple[int, int]:
        a, n, _o = self.sections[name]
        return a, n

    def read(self, addr: int, size: int) -> bytes:
        for a, n, off in self.sections.values():
            if a <= addr and addr + size <= a + n:
                return self.data[off + addr - a:off + addr - a + size]
        raise ToolkitError(f"0x{addr:x} is in no section of the image", None)
