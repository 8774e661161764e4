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


# -- workers waiting for a debugger (valgrind/waiting.py) ---------------------------------------
import os  # noqa: E402

from gdb_toolkit.valgrind.waiting import describe, descendants, error_from_log, waits_for_debugger  # noqa: E402

CHILD_LOG = """\
==77== Memcheck, a memory error detector
==77== Parent PID: 70
==77== 
==77== Conditional jump or move depends on uninitialised value(s)
==77==    at 0x1091A3: main (fkerr.c:7)
==77== 
==77== (action on error) vgdb me ... 
==77== 
==77== TO DEBUG THIS PROCESS USING GDB: start GDB like this
==77==   /path/to/gdb ./fkerr
"""


def _fake_proc(tmp_path, pid, syscall, mem=b"", fds=None, ppid=1):
    d = tmp_path / str(pid)
    (d / "fd").mkdir(parents=True)
    (d / "syscall").write_text(syscall)
    (d / "stat").write_text(f"{pid} (memcheck-amd64-) S {ppid} 1 1 0")
    (d / "mem").write_bytes(mem)
    for n, target in (fds or {}).items():
        os.symlink(target, d / "fd" / str(n))
    return str(tmp_path)


def test_waiting_in_poll_on_its_own_fifo(tmp_path):
    mem = bytes(0x1000) + (5).to_bytes(4, "little") + b"\1\0\0\0"
    proc = _fake_proc(tmp_path, 77, "7 0x1000 0x1 0xffffffffffffffff 0x0 0x0 0x0 0x1 0x2",
                      mem, {5: "/tmp/vgdb-pipe-from-vgdb-to-77-by-root-on-h"}, ppid=70)
    assert waits_for_debugger(77, proc, "x86_64")
    assert not waits_for_debugger(77, proc, "riscv64")


def test_a_client_poll_with_a_timeout_or_many_fds_is_not_waiting(tmp_path):
    mem = bytes(0x1000) + (5).to_bytes(4, "little")
    fifo = {5: "/tmp/vgdb-pipe-from-vgdb-to-78-by-root-on-h"}
    assert not waits_for_debugger(78, _fake_proc(tmp_path / "a", 78, "7 0x1000 0x1 0x3e8 0 0 0 1 2", mem, fifo),
                                  "x86_64")
    assert not waits_for_debugger(78, _fake_proc(tmp_path / "b", 78, "7 0x1000 0x3 0xffffffffffffffff 0 0 0 1 2",
                                                 mem, fifo), "x86_64")
    # poll on another descriptor (a server's socket)
    assert not waits_for_debugger(78, _fake_proc(tmp_path / "c", 78, "7 0x1000 0x1 0xffffffffffffffff 0 0 0 1 2",
                                                 mem, {5: "socket:[1234]"}), "x86_64")


def test_waiting_in_open_of_its_own_fifo(tmp_path):
    path = b"/tmp/vgdb-pipe-to-vgdb-from-79-by-root-on-h\0"
    proc = _fake_proc(tmp_path, 79, "257 0xffffff9c 0x2000 0x1 0 0 0 1 2", bytes(0x2000) + path)
    assert waits_for_debugger(79, proc, "x86_64")
    other = _fake_proc(tmp_path / "x", 79, "257 0xffffff9c 0x2000 0x1 0 0 0 1 2", bytes(0x2000) + b"/etc/passwd\0")
    assert not waits_for_debugger(79, other, "x86_64")


def test_error_from_the_childs_log_and_descendants(tmp_path):
    where, error = error_from_log(CHILD_LOG)
    assert where == "error"
    assert error == "Conditional jump or move depends on uninitialised value(s) at main (fkerr.c:7)"
    assert error_from_log("==5== (action at startup) vgdb me ... \n") == ("startup", None)
    assert error_from_log("==5== Parent PID: 4\n") == (None, None)
    for pid, ppid in ((10, 1), (11, 10), (12, 11), (13, 1)):
        _fake_proc(tmp_path, pid, "0 0 0 0 0 0 0 0 0", ppid=ppid)
    assert descendants(10, str(tmp_path)) == {11: 10, 12: 11}


def test_describe_says_how_to_get_out():
    from gdb_toolkit.valgrind.waiting import WaitingProcess

    text = describe(WaitingProcess(77, 70, "x", "error", "Invalid read of size 4 at main (a.c:3)", None))
    assert "vg-attach 77" in text and "Invalid read of size 4" in text and "--vgdb-error" in text


HELGRIND_LAST_ERROR = """\
==25478== ----------------------------------------------------------------
==25478== 
==25478== Possible data race during write of size 4 at 0x10C02C by thread #3
==25478== Locks held: none
==25478==    at 0x109173: w (race.c:4)
==25478==    by 0x484C7D6: ??? (in /usr/libexec/valgrind/vgpreload_helgrind-amd64-linux.so)
==25478==    by 0x48EF1F4: start_thread (pthread_create.c:442)
==25478==    by 0x496EB4F: clone (clone.S:100)
==25478== 
==25478== This conflicts with a previous write of size 4 by thread #2
==25478== Locks held: none
==25478==    at 0x109173: w (race.c:4)
==25478==    by 0x484C7D6: ??? (in /usr/libexec/valgrind/vgpreload_helgrind-amd64-linux.so)
==25478==    by 0x48EF1F4: start_thread (pthread_create.c:442)
==25478==    by 0x496EB4F: clone (clone.S:100)
 Address 0x10c02c is 0 bytes inside data symbol "g"
==25478== 
==25478== ---Thread-Announcement------------------------------------------
==25478== 
==25478== Thread #3 was created
==25478==    at 0x4975B4F: clone (clone.S:76)
==25478== 
"""


def test_helgrind_error_keeps_its_conflicting_stack_apart():
    from gdb_toolkit.valgrind.error_reports import parse_errors

    errs = parse_errors(HELGRIND_LAST_ERROR).errors
    assert len(errs) == 1
    e = errs[0]
    assert e.what == "Possible data race during write of size 4 at 0x10C02C by thread #3"
    assert [f.symbol for f in e.stack] == ["w", None, "start_thread", "clone"]
    assert [r.what for r in e.related] == ["This conflicts with a previous write of size 4 by thread #2"]
    assert len(e.related[0].frames) == 4 and e.location.symbol == "g"


def test_memcheck_errors_still_end_at_a_blank_line():
    from gdb_toolkit.valgrind.error_reports import parse_errors

    text = ("==1== Invalid read of size 4\n==1==    at 0x1: main (a.c:3)\n==1== \n"
            "==1== Invalid write of size 1\n==1==    at 0x2: main (a.c:4)\n==1== \n")
    errs = parse_errors(text).errors
    assert [e.what for e in errs] == ["Invalid read of size 4", "Invalid write of size 1"]
    assert all(e.related == [] for e in errs)
