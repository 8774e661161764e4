"""The link_map walk and auxv parsing on fake memory (the layout is glibc's struct
link_map / r_debug, <link.h>), plus the starti ("not relocated yet") state."""
import struct

import pytest

from gdb_toolkit.common.procfs import parse_auxv, parse_auxv_bytes
from gdb_toolkit.plt import link_map

AUXV = """33   AT_SYSINFO_EHDR      System-supplied DSO's ELF header 0x7ffff7fc1000
3    AT_PHDR              Program headers for program    0x555555554040
9    AT_ENTRY             Entry point of program         0x555555555060
7    AT_BASE              Base address of interpreter    0x7ffff7fc3000
31   AT_EXECFN            File name of executable        0x7fffffffefc8 "/tmp/x"
"""


class FakeMemory:
    def __init__(self):
        self.blocks: dict[int, bytes] = {}

    def put(self, addr, data):
        self.blocks[addr] = data

    def read(self, addr, size):
        for base, data in self.blocks.items():
            if base <= addr and addr + size <= base + len(data):
                return data[addr - base: addr - base + size]
        return None


def test_parse_auxv_and_main_bias():
    aux = parse_auxv(AUXV)
    assert aux["AT_PHDR"] == 0x555555554040 and aux["AT_BASE"] == 0x7ffff7fc3000
    assert link_map.main_bias(0x40, 0x1060, aux) == 0x555555554000
    assert link_map.main_bias(None, 0x1060, aux) == 0x555555554000
    assert link_map.main_bias(0x40, 0x1060, {}) == 0


def test_parse_auxv_bytes_names_types_as_gdb_and_stops_at_at_null():
    pairs = [(33, 0x7ffff7fc1000), (3, 0x555555554040), (9, 0x555555555060), (0x7777, 5), (7, 0x7ffff7fc3000),
             (0, 0), (3, 0xdead)]                                  # after AT_NULL: not the vector
    raw = b"".join(struct.pack("<QQ", t, v) for t, v in pairs)
    aux = parse_auxv_bytes(raw + b"\x01\x02", 8)                   # a torn last pair is ignored
    assert aux == {**{k: v for k, v in parse_auxv(AUXV).items() if k != "AT_EXECFN"}, "AT_NULL": 0}
    raw32 = b"".join(struct.pack("<II", t, v & 0xFFFFFFFF) for t, v in pairs[:3])
    assert parse_auxv_bytes(raw32, 4) == {"AT_SYSINFO_EHDR": 0xf7fc1000, "AT_PHDR": 0x55554040,
                                          "AT_ENTRY": 0x55555060}
    assert parse_auxv_bytes(b"", 8) == {} and parse_auxv_bytes(b"\xff" * (1 << 20), 8) == {}
    with pytest.raises(ValueError):
        parse_auxv_bytes(raw, 3)


def test_r_debug_from_dynamic():
    dyn = struct.pack("<qQ", 1, 5) + struct.pack("<qQ", 21, 0x7ffff7ffe118) + struct.pack("<qQ", 0, 0)
    assert link_map.r_debug_from_dynamic(dyn) == 0x7ffff7ffe118
    before_ld_so = struct.pack("<qQ", 21, 0) + struct.pack("<qQ", 0, 0)
    assert link_map.r_debug_from_dynamic(before_ld_so) is None
    assert link_map.r_debug_from_dynamic(None) is None


def test_walk_follows_l_next_and_reads_names_across_pages():
    mem = FakeMemory()
    r_debug, a, b, c = 0x1000, 0x2000, 0x3000, 0x4000
    mem.put(r_debug, struct.pack("<iiQ", 1, 0, a))
    names = {a: 0, b: 0x5ff8, c: 0x6100}
    mem.put(0x5ff8, b"/lib/lib")                   # a name crossing a page end...
    mem.put(0x6000, b"c.so.6\0")                   # ...whose second page is separate
    mem.put(0x6100, b"/lib64/ld-linux-x86-64.so.2\0")
    mem.put(a, struct.pack("<QQQQQ", 0x555555554000, names[a], 0, b, 0))
    mem.put(b, struct.pack("<QQQQQ", 0x7ffff7dcd000, names[b], 0, c, a))
    mem.put(c, struct.pack("<QQQQQ", 0x7ffff7fca000, names[c], 0, a, b))   # a loop ends the walk
    assert [(e.name, e.l_addr) for e in link_map.walk(mem.read, r_debug)] == [("", 0x555555554000), ("/lib/libc.so.6", 0x7ffff7dcd000),
                                               ("/lib64/ld-linux-x86-64.so.2", 0x7ffff7fca000)]
    assert link_map.walk(mem.read, None) == []
    assert link_map.walk(mem.read, 0x9000) == []   # unreadable r_debug


def test_not_relocated_state_before_ld_so_ran():
    from gdb_toolkit.plt.elf_model import load_model
    from gdb_toolkit.plt.slots import LoadedObject, classify
    from tests.support.plt_oracles import build_hello

    m = load_model(str(build_hello(["-fno-plt"], name="hello_fno-plt")))
    obj = LoadedObject(m.path, 0x555555554000, m)
    atoi = next(s for s in m.slots if s.symbol == "atoi")
    assert classify(atoi, obj, 0, None, live=True, relocated=False).state == "not-relocated"
    assert classify(atoi, obj, 0, None, live=True).state == "null"


def test_mapped_file_prefers_the_kernels_path_and_the_mapped_copy():
    """/proc/PID/maps names the file an object was mapped from: a path that still names that
    inode is read as is; a deleted or replaced one through /proc/PID/map_files."""
    from gdb_toolkit.common.procfs import parse_maps

    maps = parse_maps(
        "7f0000000000-7f0000001000 r--p 00000000 fd:01 100 /opt/a/libx.so\n"
        "7f0000001000-7f0000002000 r-xp 00001000 fd:01 100 /opt/a/libx.so\n"
        "7f0000003000-7f0000004000 rw-p 00002000 fd:01 100 /opt/a/libx.so\n"
        "7f0000010000-7f0000011000 r--p 00000000 fd:01 200 /opt/b/liby.so (deleted)\n"
        "7f0000011000-7f0000012000 rw-p 00001000 fd:01 200 /opt/b/liby.so (deleted)\n"
        "7f0000020000-7f0000021000 rw-p 00000000 00:00 0 \n")
    same = {("/opt/a/libx.so", "fd:01", 100)}
    check = lambda path, dev, ino: (path, dev, ino) in same
    assert link_map.mapped_file(maps, 0x7f0000003010, 42, check) == ("/opt/a/libx.so", None)
    # a path that names another inode now (an upgrade renamed a new file over it)
    assert link_map.mapped_file(maps, 0x7f0000003010, 42, lambda *a: False) == \
        ("/proc/42/map_files/7f0000000000-7f0000001000", "/opt/a/libx.so")
    assert link_map.mapped_file(maps, 0x7f0000011008, 42, check) == \
        ("/proc/42/map_files/7f0000010000-7f0000011000", "/opt/b/liby.so")
    assert link_map.mapped_file(maps, 0x7f0000020008, 42, check) is None        # anonymous
    assert link_map.mapped_file(maps, 0x100, 42, check) is None                  # not mapped
    # the bisect over sorted starts (a process with hundreds of libraries) answers the same,
    # gaps and the last mapping's end included; overlapping (unsorted) maps fall back to a scan
    starts = link_map.sorted_starts(maps)
    assert starts == [m.start for m in maps]
    for a in (0x100, 0x7f0000000000, 0x7f0000001fff, 0x7f0000002000, 0x7f0000003010, 0x7f0000011008,
              0x7f0000020fff, 0x7f0000021000):
        assert link_map.mapping_at(maps, a, starts) is next((m for m in maps if m.start <= a < m.end), None), hex(a)
        assert link_map.mapped_file(maps, a, 42, check, starts) == link_map.mapped_file(maps, a, 42, check)
    assert link_map.sorted_starts(list(reversed(maps))) is None


def test_auxv_entries_first_wins_like_getauxval_and_match_this_process(tmp_path):
    """auxv_entries (the one auxv reader: plt, stack-diagnose live and core) against the
    kernel's own /proc/self/auxv read by an independent struct walk, and getauxval's rule that
    the first entry of a type wins."""
    import os
    import resource

    from gdb_toolkit.common.procfs import auxv_entries

    with open("/proc/self/auxv", "rb") as f:
        raw = f.read()
    oracle = {}
    for t, v in struct.iter_unpack("<QQ", raw[: len(raw) // 16 * 16]):
        oracle.setdefault(t, v)
        if t == 0:
            break
    got = auxv_entries(raw, 8)
    assert got == oracle and got[6] == resource.getpagesize() and got[11] == os.getuid()
    from gdb_toolkit.common.procfs import read_auxv

    assert read_auxv(os.getpid()) == raw and read_auxv(2**22 + 1) == b""      # no such pid
    dup = struct.pack("<QQQQQQ", 6, 4096, 6, 65536, 0, 0)
    assert auxv_entries(dup, 8) == {6: 4096, 0: 0}
