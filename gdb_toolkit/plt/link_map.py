"""The dynamic linker's own list of loaded objects, decoded from raw memory.

``r_debug`` (found through the executable's DT_DEBUG entry, which ld.so fills in) points to
the ``link_map`` chain: for each object its load bias ``l_addr`` and its path ``l_name``.
glibc 2.35+ extends it for ``dlmopen``: ``r_version`` 2 means ``struct r_debug_extended``
whose ``r_next`` leads to the ``r_debug`` of the next link-map namespace (<link.h>).
The executable's own bias comes from auxv (AT_PHDR minus the PT_PHDR address, or AT_ENTRY
minus e_entry).  Everything takes a ``read(addr, size) -> bytes | None`` callable and a word
size (4 or 8), so it runs on a live process, a core file or a remote target alike -- and
on fake memory in tests.
"""
import _struct as struct   # see slots.py
from collections.abc import Callable   # not typing: its import costs ~3 ms of the first call

from gdb_toolkit.common.names import decode_name
from gdb_toolkit.common.record import SlotFields

Reader = Callable[[int, int], "bytes | None"]
DT_DEBUG = 21
MAX_OBJECTS = 4096
MAX_NAMESPACES = 64


class LinkMapEntry(SlotFields):
    __slots__ = ('name', 'l_addr', 'address', 'l_ld', 'namespace')

    def __init__(self, name, l_addr, address, l_ld, namespace):
        self.name = name
        self.l_addr = l_addr
        self.address = address
        self.l_ld = l_ld
        self.namespace = namespace


def main_bias(phdr_vaddr: int | None, entry: int, aux: dict[str, int]) -> int:
    if "AT_PHDR" in aux and phdr_vaddr is not None:
        return aux["AT_PHDR"] - phdr_vaddr
    if "AT_ENTRY" in aux:
        return aux["AT_ENTRY"] - entry
    return 0


def r_debug_from_dynamic(data: bytes | None, wordsize: int = 8) -> int | None:
    """The DT_DEBUG value in the bytes of a loaded .dynamic, or None (0 before ld.so ran)."""
    if not data:
        return None
    fmt = struct.Struct("<qQ" if wordsize == 8 else "<iI")
    for tag, val in fmt.iter_unpack(data[: len(data) // fmt.size * fmt.size]):
        if tag == 0:
            break
        if tag == DT_DEBUG and val:
            return val
    return None


def read_cstring(read: Reader, addr: int, limit: int = 4096) -> str:
    """A NUL-terminated string; undecodable bytes are kept (surrogateescape), so the name
    can be turned back into the exact bytes to find the file."""
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
            return decode_name(out + chunk[:nul])
        out += chunk
    return decode_name(out)


def _word(read: Reader, addr: int, wordsize: int) -> int | None:
    raw = read(addr, wordsize)
    if raw is None or len(raw) != wordsize:
        return None
    return int.from_bytes(raw, "little")


def namespaces(read: Reader, r_debug: int | None, wordsize: int = 8) -> list[int]:
    """Addresses of the r_debug of every namespace: the base one, then r_next's chain."""
    out: list[int] = []
    rd = r_debug
    while rd and rd not in out and len(out) < MAX_NAMESPACES:
        out.append(rd)
        version = read(rd, 4)
        if version is None or int.from_bytes(version, "little") < 2:
            break
        # struct r_debug_extended { struct r_debug base; struct r_debug_extended *r_next; }
        # r_debug = { int r_version; link_map *r_map; ElfW(Addr) r_brk; enum r_state; ElfW(Addr) r_ldbase }
        rd = _word(read, rd + 5 * wordsize, wordsize)
    return out


def walk(read: Reader, r_debug: int | None, wordsize: int = 8,
         all_namespaces: bool = True) -> list[LinkMapEntry]:
    """Every link_map entry in list order, namespace by namespace ('' names the executable)."""
    out: list[LinkMapEntry] = []
    seen: set[int] = set()
    spaces = namespaces(read, r_debug, wordsize) if r_debug else []
    for ns, rd in enumerate(spaces if all_namespaces else spaces[:1]):
        lm = _word(read, rd + wordsize, wordsize)   # r_map follows the int (padded to a word)
        while lm and lm not in seen and len(seen) < MAX_OBJECTS:
            seen.add(lm)
            entry = read(lm, 5 * wordsize)           # l_addr, l_name, l_ld, l_next, l_prev
            if entry is None or len(entry) != 5 * wordsize:
                break
            l_addr, l_name, l_ld, l_next, _ = struct.unpack("<5" + ("Q" if wordsize == 8 else "I"), entry)
            out.append(LinkMapEntry(read_cstring(read, l_name) if l_name else "", l_addr, lm, l_ld, ns))
            lm = l_next
    return out


def mapping_at(maps, address: int, starts: list[int] | None = None):
    """The mapping of *maps* holding *address*, or None.  *starts*: the mappings' start
    addresses when *maps* is sorted by start (as /proc/PID/maps is): a bisect, not a scan
    (a process with 300 libraries has ~1500 mappings, asked once per object)."""
    if starts is not None:
        import _bisect

        i = _bisect.bisect_right(starts, address) - 1
        return maps[i] if i >= 0 and address < maps[i].end else None
    return next((m for m in maps if m.start <= address < m.end), None)


def sorted_starts(maps) -> list[int] | None:
    """The start addresses of *maps* when they are sorted and disjoint (for mapping_at), else None."""
    starts = [m.start for m in maps]
    if any(maps[i].end > starts[i + 1] for i in range(len(starts) - 1)):
        return None
    return starts


def mapped_file(maps, address: int, pid: int, same_file,
                starts: list[int] | None = None) -> tuple[str, str | None] | None:
    """The file that backs the mapping holding *address* (an object's l_ld, its loaded
    .dynamic) in a local process, from /proc/PID/maps: ``(path, None)`` when the path still
    names the mapped file, ``(/proc/PID/map_files/LO-HI, path)`` when that file was deleted or
    replaced since (an upgrade renames a new one over it), None when unknown.  The kernel
    keeps the path the object was opened by, resolved: a relative dlopen name
    ("./x.so") and a later chdir() cannot mislead it.  *maps* holds objects with start, end,
    offset, dev ("fd:01"), inode and path; *same_file(path, dev, inode)* says whether a path
    still names that inode.  *starts*: see mapping_at."""
    hit = mapping_at(maps, address, starts)
    if hit is None or not hit.inode or not hit.path.startswith("/"):
        return None
    path = hit.path
    deleted = path.endswith(" (deleted)")
    if deleted:
        path = path[: -len(" (deleted)")]
    if not deleted and same_file(path, hit.dev, hit.inode):
        return path, None
    first = min((m for m in maps if m.inode == hit.inode and m.dev == hit.dev), key=lambda m: m.start)
    return f"/proc/{pid}/map_files/{first.start:x}-{first.end:x}", path
