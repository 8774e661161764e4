"""stack-diagnose natively on arm64 (the arm64 guest: Debian's arm64 kernel, gdb and glibc;
programs compiled there): the seed's teststack (culprit `sub sp, sp, xN`), deep recursion and a
thread overflow, each fix re-run for real.  Oracles: /proc/PID/maps and limits, prlimit, gdb's
$_siginfo (as in test_stack_diagnose.py), the root's objdump, the programs' own output."""
import re
import subprocess

import pytest

from tests.integration.test_stack_diagnose import build, diagnose_live, maps_of, passes_with

pytestmark = pytest.mark.guest_arm64


def test_seed_teststack_culprit_is_sub_sp_sp_xn_and_fix_runs():
    prog = build("teststack")
    assert not passes_with([prog, 1920, 1080], 8 << 20)           # faults under 8 MiB
    doc, orc, res = diagnose_live(prog, ["1920", "1080"], extra=["stack-diagnose"])
    assert doc["verdict"] == "rlimit" and doc["cause"] == "huge-frame", doc
    assert doc["fault_address"] == orc["addr"] and doc["sp_address"] == orc["sp"]
    stack = next(m for m in maps_of(orc["maps"]) if m[3] == "[stack]")
    assert (doc["stack_mapping"]["start_address"], doc["stack_mapping"]["end_address"]) == stack[:2]
    assert doc["rlimit_soft_bytes"] == int(orc["prlimit"].split()[0])
    c = doc["culprit"]
    assert c["symbol"] == "calc_array"
    assert 1920 * 1080 * 8 <= c["size"] <= 1920 * 1080 * 8 + 4096
    ins = c["instruction"]
    m = re.fullmatch(r"sub sp, sp, (x\d+)", ins["text"])
    assert m and ins["dynamic"], ins
    base = next((mm[0] for mm in maps_of(orc["maps"]) if mm[3] == str(prog)), 0)
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(prog)], capture_output=True,
                          text=True).stdout
    assert re.search(rf"^\s*{ins['address'] - base:x}:\s+sub\s+sp, sp, {m.group(1)}\b", dump, re.M), \
        (hex(ins["address"] - base), dump[:3000])
    fix = doc["fix_plan"]
    assert fix["kind"] == "ulimit" and passes_with([prog, 1920, 1080], fix["ulimit_kib"] * 1024)
    assert "sub sp, sp, x" in res.stdout and "ulimit -s" in res.stdout


def test_deep_recursion_on_arm64():
    prog = build("recurse")
    doc, orc, res = diagnose_live(prog, extra=["echo @@DEPTH@@\\n", "print depth"])
    depth = int(re.search(r"@@DEPTH@@\n\$\d+ = (\d+)", res.stdout)[1])
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion", doc
    r = doc["recursion"]
    assert r["functions"] == ["recurse"] and abs(r["depth"] - depth) <= 1, (r, depth)
    assert r["avg_frame_bytes"] == doc["frames"][2]["sp_address"] - doc["frames"][1]["sp_address"]
    assert doc["fix_plan"]["kind"] == "code"


# arm64's PTHREAD_STACK_MIN is 128 KiB (64 KiB pages are possible), x86_64's 16 KiB: the example's
# default 64 KiB thread stack is refused there ("bad stack size"), so give it the minimum
THREAD_STACK = 128 << 10


def test_thread_overflow_on_arm64_and_fix_runs():
    prog = build("thread_overflow")
    doc, orc, res = diagnose_live(prog, [str(THREAD_STACK)])
    assert doc["verdict"] == "thread-overflow" and not doc["thread"]["main"], doc
    st = doc["stack_mapping"]
    maps = maps_of(orc["maps"])
    assert (st["start_address"], st["end_address"], "rw-p") in [(m[0], m[1], m[2]) for m in maps]
    guard = next(m for m in maps if m[1] == st["start_address"])
    assert guard[2] == "---p" and st["guard_range"]["start_address"] == guard[0]
    assert doc["culprit"]["symbol"] == "fill"
    size = doc["fix_plan"]["stacksize_bytes"]
    assert doc["fix_plan"]["kind"] == "pthread_attr_setstacksize"
    assert st["end_address"] - st["start_address"] == THREAD_STACK
    assert size > THREAD_STACK and passes_with([prog, size]) and not passes_with([prog, THREAD_STACK])
