"""The dynamic linker's own list of loaded objects, decoded from raw memory.

``r_debug`` (found through the executable's DT_DEBUG entry, which ld.so fills in) points to
the ``link_map`` chain: for each object its load bias ``l_addr`` and its path ``l_name``.
The executable's own bias comes from auxv (AT_PHDR minus the PT_PHDR address, or AT_ENTRY
minus e_entry).  Everything takes a ``read(addr, size) -> bytes | None`` callable, so it runs
on a live process, a core file or a remote target alike -- and on fake memory in tests.
"""
import struct
from collections.abc import Callable   # not typing: its import costs ~3 ms of the first call

Reader = Callable[[int, int], "bytes | None"]
DT_DEBUG = 21
MAX_OBJECTS = 4096


def main_bias(phdr_vaddr: int | None, entry: int, aux: dict[str, int]) -> int:
    if "AT_PHDR" in aux and phdr_vaddr is not None:
        return aux["AT_PHDR"] - phdr_vaddr
    if "AT_ENTRY" in aux:
        return aux["AT_ENTRY"] - entry
    return 0


def r_debug_from_dynamic(data: bytes | None) -> int | None:
    """The DT_DEBUG value in the bytes of a loaded .dynamic, or None (0 before ld.so ran)."""
    if not data:
        return None
    for tag, val in struct.iter_unpack("<qQ", data[: len(data) // 16 * 16]):
        if tag == 0:
            break
        if tag == DT_DEBUG and val:
            return val
    return None


def read_cstring(read: Reader, addr: int, limit: int = 4096) -> str:
    out = b""
    while len(out) < limit:
        # never read across a page end: the string may sit at the end of a mapping
        step = min(0x1000 - ((addr + len(out)) & 0xFFF), 256)
        chunk = read(addr + len(out), step)
        while chunk is None and step > 1:      # near the end of a mapping: smaller reads
            step //= 2
            chunk = read(addr + len(out), step)
        if chunk is None:
            break
        nul = chunk.find(b"\0")
        if nul >= 0:
            return (out + chunk[:nul]).decode("utf-8", "replace")
        out += chunk
    return out.decode("utf-8", "replace")


def walk(read: Reader, r_debug: int | None) -> list[tuple[str, int]]:
    """(l_name, l_addr) of every link_map entry in order ('' for the executable)."""
    if not r_debug:
        return []
    head = read(r_debug + 8, 8)               # struct r_debug { int r_version; link_map *r_map; ...}
    lm = struct.unpack("<Q", head)[0] if head else 0
    out, seen = [], set()
    while lm and lm not in seen and len(seen) < MAX_OBJECTS:
        seen.add(lm)
        entry = read(lm, 40)                  # l_addr, l_name, l_ld, l_next, l_prev
        if entry is None:
            break
        l_addr, l_name, _l_ld, l_next, _ = struct.unpack("<QQQQQ", entry)
        out.append((read_cstring(read, l_name) if l_name else "", l_addr))
        lm = l_next
    return out
