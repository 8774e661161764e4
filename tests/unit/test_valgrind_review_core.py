"""Pure-core cases from the vg review (rev-vg): site choice with header code and runtime-only stacks."""
from gdb_toolkit.valgrind.leak_records import parse_leak_check
from gdb_toolkit.valgrind.stacks import CodeMap, header_role, parse_frame, site_index

MAIN = "/srv/app/server"
MAPS = (f"00108000-0010c000 r-xp 00000000 08:01 1 {MAIN}\n"
        "04840000-04850000 r-xp 00000000 08:01 2 /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so\n"
        "04900000-04a00000 r-xp 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30\n")

# -O2: std::map's node allocation inlined into main (valgrind prints inline frames at one address)
RECORD = """\
==9== 40 bytes in 1 blocks are still reachable in loss record 1 of 2
==9==    at 0x4841F2F: operator new(unsigned long) (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==9==    by 0x109199: allocate (new_allocator.h:137)
==9==    by 0x109199: _M_get_node (stl_tree.h:561)
==9==    by 0x109199: operator[] (stl_map.h:530)
==9==    by 0x109199: main (server.cc:14)
==9== 
==9== 72,704 bytes in 1 blocks are still reachable in loss record 2 of 2
==9==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==9==    by 0x49027B9: ??? (in /usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30)
==9== 
"""

SOURCES = {"new_allocator.h": "/usr/include/c++/12/bits/new_allocator.h",
           "stl_tree.h": "/usr/include/c++/12/bits/stl_tree.h",
           "stl_map.h": "/usr/include/c++/12/bits/stl_map.h",
           "server.cc": "/srv/app/server.cc"}


def test_header_roles():
    assert header_role("/usr/include/c++/12/bits/stl_vector.h") == "runtime"
    assert header_role("/usr/include/x86_64-linux-gnu/c++/12/bits/c++allocator.h") == "runtime"
    assert header_role("/usr/lib/gcc/x86_64-linux-gnu/12/include/xmmintrin.h") == "runtime"
    assert header_role("/usr/include/boost/pool/pool.hpp") == "library"
    assert header_role("/srv/app/include/pool.h") is None
    assert header_role("server.cc") is None


def test_site_skips_code_from_system_headers_inlined_into_the_program():
    cm = CodeMap.from_maps(MAPS, MAIN)
    cm.source_paths = lambda pc: dict(SOURCES)
    recs = parse_leak_check(RECORD, code_map=cm).records
    site = recs[0].program_frame
    assert (site.symbol, site.file, site.line) == ("main", "server.cc", 14)
    roles = [f.role for f in recs[0].frames()]
    assert roles == ["allocator", "runtime", "runtime", "runtime", "program"]


def test_without_source_paths_the_object_decides_as_before():
    cm = CodeMap.from_maps(MAPS, MAIN)
    recs = parse_leak_check(RECORD, code_map=cm).records
    assert recs[0].program_frame.symbol == "allocate"


def test_runtime_only_stack_is_named_by_the_runtime_not_by_malloc():
    cm = CodeMap.from_maps(MAPS, MAIN)
    recs = parse_leak_check(RECORD, code_map=cm).records
    frames = recs[1].frames()
    assert site_index(frames) == 1 and recs[1].program_frame.object.endswith("libstdc++.so.6.0.30")


def test_failing_source_lookup_keeps_the_objects_role():
    cm = CodeMap.from_maps(MAPS, MAIN)

    def boom(pc):
        raise RuntimeError("Cannot locate object file for block.")
    cm.source_paths = boom
    f = parse_frame("by 0x109199: main (server.cc:14)", cm)
    assert f.role == "program"
