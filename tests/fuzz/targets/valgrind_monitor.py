"""Fuzz target: valgrind's monitor-command output parsers (gdb_toolkit/valgrind, no gdb).

One input is fed to every parser of valgrind text -- leak_check / block_list (with a code map
built from the same bytes as /proc maps text), v.info last_error / all_errors / n_errs_found,
who_points_at, xb, get_vbits, check_memory, v.info location -- and through the reports built
on them (vg-leaks rows, --group-by, history snapshots).  Seed corpus: real monitor output
captured on valgrind 3.19 (tests/data/valgrind).
"""
from gdb_toolkit.valgrind.error_reports import parse_errors, parse_n_errs_found
from gdb_toolkit.valgrind.history import build_history
from gdb_toolkit.valgrind.leak_records import KINDS, parse_leak_check
from gdb_toolkit.valgrind.leak_view import build_report
from gdb_toolkit.valgrind.locations import parse_location_lines
from gdb_toolkit.valgrind.memory_reports import (parse_check_memory, parse_get_vbits, parse_who_points_at,
                                                 parse_xb)
from gdb_toolkit.valgrind.session_state import Session, sites_of
from gdb_toolkit.valgrind.stacks import CodeMap
from gdb_toolkit.valgrind.waiting import error_from_log

MAX_LEN = 8192
PER_INPUT_SECONDS = 2.0
DICT = [b"==1== ", b"   at 0x", b"   by 0x", b": malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)",
        b" (memleakloop.c:26)", b" bytes in ", b" blocks are definitely lost in loss record ",
        b" blocks are still reachable in loss record ", b" of ", b" (+1,111)", b" direct, ", b" indirect)",
        b"LEAK SUMMARY:", b"   definitely lost: ", b"suppressed: ", b"0x4A4A040[48]", b"  0x4A4A0A0[100]",
        b"All heap blocks were freed -- no leaks are possible", b"Address 0x4a43060 is ",
        b"bytes inside a block of size 32 alloc'd", b" free'd", b"Block was alloc'd at",
        b"Uninitialised value was created by a heap allocation", b"n_errs_found 1 n_errs_shown 1 (vgdb-error 0)",
        b"ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)", b"*0x10c050 points at 0x4a43040",
        b"tid 1 register RAX pointing at 0x4a43040", b"Searching for pointers to 0x4a43040",
        b"ff ff __ 00", b"0x4A43040:\t0x41\t0x??", b"________ ffffffff", b"00108000-00109000 r-xp 00000000 fe:00 1 /p",
        b"---Thread-Announcement------------------------------------------",
        b"----------------------------------------------------------------",
        b"This conflicts with a previous write of size 4 by thread #2", b"(action on error) vgdb me ... ",
        b"(action at startup) vgdb me ... "]


def fuzz(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    cm = CodeMap.from_maps(text)
    out = parse_leak_check(text, code_map=cm)
    for r in out.records:
        assert r.bytes >= 0 and r.blocks >= 0
        r.frames()
        r.program_frame
        assert all(b.depth >= 0 for b in r.block_list)
    for complete in (True, False):
        rep = build_report(out, mode="full", monitor_command="m", kinds=list(KINDS), delta=None,
                           min_bytes=None, top=3, complete=complete, with_stacks=True, depth=3,
                           group_by=2, known_total=5)
        assert len(rep.records) <= 3
    s = Session(1)
    s.add_snapshot(sites_of(out.records), {k: 0 for k in KINDS}, when=1.0)
    s.add_snapshot(sites_of(parse_leak_check(text[::-1] + text).records), {}, when=2.0)
    build_history(1, s.snapshots, None, 5)
    errs = parse_errors(text, cm)
    for e in errs.errors:
        e.one_line()
        assert all(r.what for r in e.related)
    where, _ = error_from_log(text)
    assert where is None or where.strip()
    parse_n_errs_found(text)
    who = parse_who_points_at(text, cm)
    for p in who.pointers:
        p.holder
    parse_xb(text, 0x1000, 64)
    parse_get_vbits(text, 0x1000, 64)
    parse_check_memory(text, "defined", 0x1000, 16, cm)
    lines = text.splitlines()
    for i in range(min(len(lines), 50)):
        loc, j = parse_location_lines(lines, i, cm)
        assert j >= i
        if loc is not None:
            loc.holder()
