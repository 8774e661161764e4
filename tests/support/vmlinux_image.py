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


def cached_debian_vmlinuz() -> list:
    """The Debian amd64 vmlinuz files in the guest cache: 6.1 (x86_64 guest) and bookworm-
    backports' 6.12 (x86_64-new), oldest first; [] when none is cached."""
    from pathlib import Path

    from tests.guest.kernel import cache_root, version_key
    boots = Path(cache_root()).glob("*/tree/boot/vmlinuz-*-amd64")
    return sorted(boots, key=lambda p: version_key(p.name[len("vmlinuz-"):]))


def vmlinux_from_vmlinuz(data: bytes) -> bytes:
    """The ELF inside a vmlinuz: 6.1's payload is xz (lzma), 6.12's zstd (the zstd tool; the
    size word after the frame makes it warn, the ELF is whole)."""
    import lzma
    import subprocess
    xz, zst = data.find(b"\xfd7zXZ\x00"), data.find(b"\x28\xb5\x2f\xfd")
    if xz >= 0 and (zst < 0 or xz < zst):
        elf = lzma.LZMADecompressor().decompress(data[xz:])
    elif zst >= 0:
        elf = subprocess.run(["zstd", "-dcq"], input=data[zst:], capture_output=True).stdout
    else:
        raise AssertionError("vmlinuz: neither an xz nor a zstd payload")
    assert elf[:4] == b"\x7fELF", "no ELF in the vmlinuz payload"
    return elf
