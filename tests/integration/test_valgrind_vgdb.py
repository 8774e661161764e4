"""vg-* commands against real valgrind 3.19 (vgdb), one valgrind per scenario.

Oracles: valgrind's own end-of-run report (--leak-check=full --show-leak-kinds=all
in its --log-file), the sizes written in the example programs' sources, and the
addresses the programs print.  Each gdb run batches many commands because
valgrind is slow to start.
"""
import ast
import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.gdbrun import (JSON_BEGIN, JSON_END, REPO, addr, assert_no_traceback, compile_c,
                                  json_wrapped, run_gdb)

pytestmark = [pytest.mark.gdb,
              pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                                 reason="valgrind/vgdb not installed")]

EXAMPLES = REPO / "examples" / "valgrind"
FLAGS = ["-g", "-O0"]
ORACLE_OPTS = "-- --leak-check=full --show-leak-kinds=all"


def prog(name):
    return compile_c(EXAMPLES / f"{name}.c", flags=FLAGS)


def j(cmd):
    if cmd.startswith("vg-start "):     # every word after PROGRAM is the program's: --json first
        return json_wrapped("vg-start --json " + cmd[len("vg-start "):])
    return json_wrapped(cmd + " --json")


def docs(res):
    return res.json_documents()


LOSS_RE = re.compile(r"==\d+== ([\d,]+)(?: \(([\d,]+) direct, ([\d,]+) indirect\))? bytes in ([\d,]+) blocks are "
                     r"(definitely lost|indirectly lost|possibly lost|still reachable) in loss record")


def end_of_run_records(log_text):
    """Independent oracle: (bytes, blocks, kind, first frame in the program) per loss record."""
    out = []
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        m = LOSS_RE.search(line)
        if not m:
            continue
        func = None
        for follow in lines[i + 1:i + 12]:
            fm = re.search(r"by 0x[0-9A-F]+: (\w+) \((\w+\.c):\d+\)", follow)
            if fm and fm.group(2).startswith(("memleakloop", "indirectleak")):
                func = fm.group(1)
                break
        kind = {"definitely lost": "definite", "indirectly lost": "indirect",
                "possibly lost": "possible", "still reachable": "reachable"}[m.group(5)]
        out.append((int(m.group(1).replace(",", "")), int(m.group(4).replace(",", "")), kind, func))
    return out


def leak_summary(log_text):
    res = {}
    for words, b, n in re.findall(r"(definitely lost|indirectly lost|possibly lost|still reachable): "
                                  r"([\d,]+) bytes in ([\d,]+) blocks", log_text):
        res[words] = (int(b.replace(",", "")), int(n.replace(",", "")))
    return res


@pytest.fixture(scope="module")
def memleak_session(tmp_path_factory):
    """vg-start memleakloop for 3 rounds: leak checks at each checkpoint, then run to the end."""
    binary = prog("memleakloop")
    out = tmp_path_factory.mktemp("vg") / "memleakloop.out"
    cmds = [*j(f"vg-start --main --stdout {out} --log {out.parent}/vg-%p.log {binary} 3 -v --x=y {ORACLE_OPTS}"),
            "python from gdb_toolkit.valgrind import gdb_session as s; "
            "print('@@CMDLINE@@', open('/proc/%d/cmdline' % max(s.SESSIONS)).read().split(chr(0)))",
            "break checkpoint", "continue",
            *j("vg-leaks"), "vg-leaks",
            "continue",
            *j("vg-leaks --delta increased"),
            *j("vg-leaks --top 2"),
            *j("vg-leaks summary"),
            *j("vg-block 3"),
            *j("vg-block g_psz1[1]"), "vg-block g_psz1[1]",
            *j("vg-who g_psz1[0]"), "vg-who g_psz1[0]",
            *j("vg-leaks --kinds definite --min-bytes 1000"),
            "echo @@ADDR@@\\n", "output/x g_psz1[0]", "echo \\n", "output/x g_psz1[1]", "echo \\n",
            "output/x &g_psz1[0]", "echo \\n",
            "continue",
            *j("vg-leaks"),
            "delete", "continue", "vg-leaks"]
    res = run_gdb(cmds, timeout=300)
    res.program_output = out.read_text()
    return res


def test_vg_start_reports_real_pid_and_runs_to_main(memleak_session):
    res = memleak_session
    assert_no_traceback(res)
    start = docs(res)[0]
    pid = start["pid"]
    assert start["stopped_at"].startswith("main (memleakloop.c:")
    # the program prints its own pid: it is the valgrind pid, not gdb's placeholder 42000
    assert f"begin to alloc memory pid={pid}" in res.program_output
    assert start["valgrind_command"][1:4] == ["--tool=memcheck", "--vgdb=yes", "--vgdb-error=0"]
    assert start["log_file"].endswith(f"/vg-{pid}.log")
    assert "--leak-check=full" in start["valgrind_command"]
    assert start["program_stdin"] == "/dev/null" and "round 3:" in res.program_output
    # words after PROGRAM are its arguments, '-v' too: the kernel's view of valgrind's argv
    cmdline = ast.literal_eval(re.search(r"@@CMDLINE@@ (\[.*\])", res.stdout).group(1))
    assert cmdline[-5:] == [str(prog("memleakloop")), "3", "-v", "--x=y", ""]
    assert start["arguments"] == ["3", "-v", "--x=y"]
    assert_cleaned_up(pid)
    # after the program ran to its end, a check says so in one line
    assert "vg-leaks: the program under valgrind has exited" in res.stderr


def assert_cleaned_up(pid):
    """After gdb is gone: no valgrind process and no vgdb FIFO of *pid* remain."""
    tmp = os.environ.get("TMPDIR") or "/tmp"
    assert not [n for n in os.listdir(tmp) if f"-{pid}-by-" in n]
    if os.path.exists(f"/proc/{pid}/status"):
        assert "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_leaks_round_one_match_the_program(memleak_session):
    leaks = docs(memleak_session)[1]
    by = {r["location"]["symbol"]: r for r in leaks["records"]}
    assert (by["memleak1"]["bytes"], by["memleak1"]["kind"]) == (1111, "definite")
    assert (by["memleak2"]["bytes"], by["memleak2"]["kind"]) == (2456, "definite")
    assert (by["memleak3"]["bytes"], by["memleak3"]["kind"]) == (356, "definite")
    assert (by["memleak4"]["bytes"], by["memleak4"]["kind"]) == (45678, "reachable")
    assert (by["memleak5"]["bytes"], by["memleak5"]["kind"]) == (560000, "reachable")
    assert (by["memleak1"]["location"]["file"], by["memleak1"]["location"]["line"]) == ("memleakloop.c", source_line("memleakloop.c", "void memleak1"))
    assert leaks["totals_source"] == "records"
    assert leaks["totals"]["definite"] == {"bytes": 1111 + 2456 + 356, "blocks": 3,
                                           "bytes_delta": None, "blocks_delta": None}
    sizes = [r["bytes"] for r in leaks["records"]]
    assert sizes == sorted(sizes, reverse=True)
    # the text table shows the program frame, not malloc
    table = memleak_session.stdout.split(JSON_END)[2].split(JSON_BEGIN)[0]
    assert "memleak5" in table and "malloc" not in table.split("totals")[0]


def source_line(name, text):
    for n, line in enumerate((EXAMPLES / name).read_text().splitlines(), 1):
        if text in line:
            return n
    raise AssertionError(text)


def test_delta_increased_shows_growth_between_checks(memleak_session):
    grown = docs(memleak_session)[2]
    by = {r["location"]["symbol"]: r for r in grown["records"]}
    assert set(by) == {"memleak1", "memleak2", "memleak3", "memleak4", "memleak5"}
    assert (by["memleak4"]["bytes"], by["memleak4"]["bytes_delta"], by["memleak4"]["blocks_delta"]) == \
        (2 * 45678, 45678, 1)
    assert by["memleak5"]["bytes_delta"] == 560000
    assert grown["totals_delta"]["definite"] == 1111 + 2456 + 356
    assert grown["totals_delta"]["reachable"] >= 45678 + 560000


def test_top_uses_correct_totals_despite_limited(memleak_session):
    top, summary = docs(memleak_session)[3], docs(memleak_session)[4]
    assert [r["location"]["symbol"] for r in top["records"]] == ["memleak5", "memleak4"]
    assert "limited 2" in top["monitor_command"]
    # totals equal the plain summary search, not valgrind's limited miscount (0 definite)
    assert top["totals"]["definite"]["bytes"] == summary["totals"]["definite"]["bytes"] == 2 * 3923
    assert summary["records"] == []


def test_kinds_and_min_bytes(memleak_session):
    d = docs(memleak_session)[8]
    assert [(r["location"]["symbol"], r["bytes"]) for r in d["records"]] == [("memleak2", 4912), ("memleak1", 2222)]


def test_block_list_by_record_and_by_address(memleak_session):
    res = memleak_session
    by_record, by_addr = docs(res)[5], docs(res)[6]
    addrs = res.stdout.split("@@ADDR@@")[1].split()[:3]
    g0, g1, gaddr = (int(a, 16) for a in addrs)
    rec = by_record["leak_record"]
    assert rec["record"] == 3 and len(by_record["block_list"]) == rec["blocks"]
    hit = by_addr["leak_record"]
    assert hit["location"]["symbol"] == "memleak4" and addr(by_addr["address"]) == g1
    assert (addr(by_addr["block_address"]), by_addr["block_size"]) == (g1, 45678)   # v.info location's block
    assert {addr(b["address"]) for b in by_addr["block_list"]} == {g0, g1}
    assert all(b["size"] == 45678 for b in by_addr["block_list"])
    who = docs(res)[7]
    holders = [p for p in who["pointers"] if p["address"] and addr(p["address"]) == gaddr]
    assert holders and holders[0]["location"]["symbol"] == "g_psz1"
    assert who["target_location"]["kind"] == "heap_block" and who["target_location"]["block_size"] == 45678


def test_leaks_match_valgrinds_end_of_run_report(memleak_session):
    res = memleak_session
    final = docs(res)[9]
    log = Path(docs(res)[0]["log_file"]).read_text()
    assert "HEAP SUMMARY" in log, log[-2000:]
    oracle = {(b, n, k, f) for (b, n, k, f) in end_of_run_records(log) if f and f.startswith("memleak")}
    ours = {(r["bytes"], r["blocks"], r["kind"], r["location"]["symbol"]) for r in final["records"]
            if ((r["location"] or {}).get("symbol") or "").startswith("memleak")}
    assert oracle == ours == {(3 * 1111, 3, "definite", "memleak1"), (3 * 2456, 3, "definite", "memleak2"),
                              (3 * 356, 3, "definite", "memleak3"),
                              (3 * 45678, 3, "reachable", "memleak4"),
                              (3 * 560000, 3, "reachable", "memleak5")}
    summary = leak_summary(log)
    assert (final["totals"]["definite"]["bytes"], final["totals"]["definite"]["blocks"]) == \
        summary["definitely lost"]


def test_indirect_leaks_against_end_of_run_report(tmp_path):
    binary = prog("indirectleak")
    res = run_gdb([*j(f"vg-start --main --stdout {tmp_path}/out --log {tmp_path}/vg.log {binary} {ORACLE_OPTS}"), "break checkpoint", "continue",
                   *j("vg-leaks"), *j("vg-leaks --kinds indirect"), "vg-leaks", "delete", "continue"],
                  timeout=300)
    assert_no_traceback(res)
    start, full, indirect = docs(res)[:3]
    log = Path(start["log_file"]).read_text()
    summary = leak_summary(log)
    assert (full["totals"]["indirect"]["bytes"], full["totals"]["indirect"]["blocks"]) == \
        summary["indirectly lost"] == (2 * 48 + 3 * 100, 5)
    assert (full["totals"]["definite"]["bytes"], full["totals"]["definite"]["blocks"]) == \
        summary["definitely lost"] == (48, 1)
    definite = [r for r in full["records"] if r["kind"] == "definite"]
    assert [(r["bytes"], r["direct_bytes"], r["indirect_bytes"]) for r in definite] == [(444, 48, 396)]
    assert {r["kind"] for r in indirect["records"]} == {"indirect"}
    oracle = {(b, n, k) for (b, n, k, f) in end_of_run_records(log) if k != "reachable"}
    assert {(r["bytes"], r["blocks"], r["kind"]) for r in full["records"] if r["kind"] != "reachable"} == oracle
    assert "48+396" in res.stdout


def test_heap_overflow_stop_errors_quiet_mode_and_valgrind_death(tmp_path):
    binary = prog("memcorrupt")
    out = tmp_path / "out"
    res = run_gdb([*j(f"vg-start --stdout {out} --log {tmp_path}/vg.log {binary} -- -q"), "continue",
                   *j("vg-errors"), "vg-errors",
                   "vg-leaks summary",
                   *j("vg-leaks"), *j("vg-leaks --top 1"),
                   "python import os, signal; from gdb_toolkit.valgrind import gdb_session as s; "
                   "os.kill(max(s.SESSIONS), signal.SIGKILL)",
                   "shell sleep 0.5",
                   "vg-leaks", "vg-errors", "echo gdb-still-usable\\n", "print 6*7"],
                  timeout=300)
    assert_no_traceback(res)
    start, errors = docs(res)[:2]
    block = int(re.search(r"block=(0x[0-9a-f]+)", out.read_text()).group(1), 16)
    # the error stop is announced with the error, not as a mere signal
    assert re.search(r"vg: stopped on memcheck error #1 \(the SIGTRAP above is valgrind's error stop, "
                     r"not a signal\): Invalid write of size 1 "
                     r"at main \(memcorrupt.c:%d\)" % source_line("memcorrupt.c", "psz[32] = 'b'"), res.stdout)
    assert errors["counts"]["found_count"] == 1
    loc = errors["last_error"]["location"]
    assert addr(loc["address"]) == block + 32 and loc["relation"] == "after" and loc["block_size"] == 32
    assert errors["last_error"]["what"] == "Invalid write of size 1"
    # without -s valgrind lists no error context: the text says how to get them
    assert errors["errors"] == [] and "only when it runs with -s or -v" in res.stdout
    assert "Invalid write of size 1" in Path(start["log_file"]).read_text()
    # -q: the summary is suppressed -> explained; full still works, with a warning
    assert "returned no output" in res.stderr and "-q" in res.stderr
    quiet = docs(res)[2]
    assert {r["bytes"] for r in quiet["records"]} >= {32}
    assert any("no LEAK SUMMARY" in w for w in quiet["notes"])
    # -q and --top 1: the one record shown must not pass for the totals
    top1 = docs(res)[3]
    assert len(top1["records"]) == 1 and len(quiet["records"]) >= 2
    by_kind = {}
    for r in quiet["records"]:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + r["bytes"]
    assert all(t["bytes"] == by_kind.get(k, 0) for k, t in top1["totals"].items()), top1["totals"]
    assert any("no LEAK SUMMARY" in w for w in top1["notes"])
    # valgrind killed while connected: clear errors, gdb goes on
    gone = [ln for ln in res.stderr.splitlines() if "is gone" in ln]
    assert len(gone) == 2 and all("vg-start" in ln for ln in gone), res.stderr
    assert "gdb-still-usable" in res.stdout and "$1 = 42" in res.stdout
    assert_cleaned_up(start["pid"])


def test_vbits_check_who_and_log_output(tmp_path):
    binary = prog("vbits")
    out = tmp_path / "out"
    res = run_gdb([*j(f"vg-start --main --stdout {out} --log {tmp_path}/vg.log {binary}"), "break checkpoint", "continue",
                   *j("vg-vbits g_buf 24"), "vg-vbits g_buf 24",
                   *j("vg-vbits g_buf+56 16"),
                   *j("vg-check g_buf 24 defined"),
                   *j("vg-check g_buf 10 defined"),
                   *j("vg-check g_buf 70"),
                   *j("vg-check &g_static sizeof(g_static) defined"),
                   *j("vg-who g_buf"), "vg-who g_buf",
                   "monitor v.set log_output", "vg-leaks summary",
                   "vg-who g_buf", "vg-errors", "vg-check g_buf 4", "vg-vbits g_buf 4", "vg-block 1",
                   "monitor v.set gdb_output",
                   *j("vg-leaks summary"),
                   "vg-vbits no_such_symbol 4", "vg-check g_buf 0",
                   *j("vg-vbits -8 8"), "vg-block -5"],
                  timeout=300)
    assert_no_traceback(res)
    d = docs(res)
    m = re.search(r"g_buf=(0x[0-9a-f]+) g_box=(0x[0-9a-f]+) &g_holder=(0x[0-9a-f]+)", out.read_text())
    g_buf, g_box, g_holder = (int(x, 16) for x in m.groups())
    vb = d[1]
    assert addr(vb["address"]) == g_buf
    # memset(g_buf, 'A', 10): 10 defined bytes with value 0x41, the rest of the 64-byte block undefined
    assert [b["vbits"] for b in vb["byte_list"]] == [0] * 10 + [0xFF] * 14
    assert all(b["byte_value"] == 0x41 for b in vb["byte_list"][:10])
    assert "DDDDDDDD" in res.stdout and "DDUUUUUU" in res.stdout
    edge = d[2]
    assert edge["unaddressable_bytes"] == 8 and [b["vbits"] for b in edge["byte_list"][8:]] == [None] * 8
    not_def, defined, not_addr, glob = d[3:7]
    assert (not_def["passed"], addr(not_def["first_bad_address"])) == (False, g_buf + 10)
    assert defined["passed"] and defined["location"]["block_size"] == 64
    assert (not_addr["passed"], addr(not_addr["first_bad_address"]), not_addr["check"]) == (False, g_buf + 64, "addressable")
    assert glob["passed"] and glob["location"]["symbol"] == "g_static"
    who = d[7]
    by_at = {addr(p["address"]): p for p in who["pointers"] if p["address"]}
    assert by_at[g_holder + 8]["location"]["symbol"] == "g_holder"
    assert by_at[g_box]["location"]["kind"] == "heap_block" and by_at[g_box]["location"]["block_size"] == 16
    assert any(p["location"] and p["location"]["symbol"] == "g_buf" for p in who["pointers"])
    assert any(p["location"] and p["location"]["kind"] == "stack" for p in who["pointers"])
    # 'v.set log_output' makes monitor output vanish: explained, and gdb_output brings it back
    assert "log_output" in res.stderr
    for cmd in ("vg-who", "vg-errors", "vg-check", "vg-vbits", "vg-block"):
        assert any(ln.startswith(f"{cmd}: 'monitor ") and "returned no output" in ln
                   and "v.set gdb_output" in ln for ln in res.stderr.splitlines()), (cmd, res.stderr)
    assert d[8]["totals"]["reachable"]["bytes"] >= 64 + 16
    assert "cannot evaluate 'no_such_symbol'" in res.stderr
    assert "bad length 0" in res.stderr
    # a negative address is the top of the address space, as in gdb's own 'x -8'
    top = d[9]
    assert addr(top["address"]) == (1 << 64) - 8 and top["unaddressable_bytes"] == 8
    assert "vg-block: 0xfffffffffffffffb is not inside a heap block" in res.stderr
    assert_cleaned_up(d[0]["pid"])    # vg-start'ed valgrind is killed when gdb quits


def test_not_connected_and_bad_arguments(tmp_path):
    res = run_gdb(["vg-leaks", "vg-who 0x1000", "vg-block 1", "vg-vbits 0x1000 4", "vg-check 0x1000 4",
                   "vg-errors", "vg-leaks --kinds bogus", "vg-leaks --top 0", "vg-leaks --delta sideways",
                   f"vg-start {tmp_path}/missing", "vg-start /bin/true -- --tool=helgrind",
                   "vg-start /bin/true -- --vgdb=no", "vg-attach 999999999",
                   f"vg-start --timeout -1 {prog('memleakloop')}", f"vg-start --timeout nan {prog('memleakloop')}",
                   "vg-errors",
                   "echo alive\\n"])
    assert_no_traceback(res)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("usage:")]
    not_connected = [ln for ln in lines if "needs a connection to a valgrind gdbserver" in ln]
    assert len(not_connected) == 7      # the last vg-errors too: no bad --timeout connected
    assert sum("argument --timeout: not a positive number of seconds" in ln for ln in lines) == 2
    assert all("vg-start" in ln and "vg-attach" in ln for ln in not_connected)
    assert any("unknown leak kind 'bogus'" in ln for ln in lines)
    assert any("--top 0 is out of range. Fix: give --top 1..1000000" in ln for ln in lines)
    assert any("invalid choice: 'sideways'" in ln for ln in lines)
    assert any("not found" in ln for ln in lines)
    assert any("need memcheck" in ln for ln in lines)
    assert any("--vgdb=no would stop" in ln for ln in lines)
    # above the kernel's PID_MAX_LIMIT (2^22): no process id at all, not "no such valgrind"
    assert any("PID 999999999 is out of range (not a process id). Fix: give PID 1..4194304" in ln
               for ln in lines)
    assert "alive" in res.stdout
    # nothing started: no valgrind child of ours is left
    assert subprocess.run(["pgrep", "-f", f"valgrind.*{tmp_path}"], capture_output=True).returncode == 1


def test_vg_block_by_address_keeps_the_leak_delta(tmp_path):
    binary = prog("memleakloop")
    res = run_gdb([f"vg-start --main --stdout {tmp_path}/out --log {tmp_path}/vg.log {binary} 4",
                   "break checkpoint", "continue", "vg-leaks", "continue",
                   *j("vg-block g_psz1[0]"), *j("vg-leaks --delta increased"),
                   "continue", *j("vg-block g_psz1[2]"), *j("vg-leaks --delta increased")])
    assert_no_traceback(res)
    block, grown, late_block, late_grown = docs(res)
    # a block the last leak search knew: found without a new search, so the delta still shows
    # what one round of the program allocates (sizes from examples/valgrind/memleakloop.c)
    assert block["leak_record"]["location"]["symbol"] == "memleak4" and block["notes"] == []
    by = {r["location"]["symbol"]: r["bytes_delta"] for r in grown["records"]}
    assert by == {"memleak1": 1111, "memleak2": 2456, "memleak3": 356, "memleak4": 45678,
                  "memleak5": 560000}
    # a block newer than the last search: vg-block says which block it is (valgrind's v.info
    # location) but runs no leak search, so the next delta is still one round's growth
    assert late_block["block_size"] == 45678 and late_block["stack"][1]["symbol"] == "memleak4"
    assert late_block["address"] not in {b["address"] for b in late_block["block_list"]}
    assert any("does not list this block" in w for w in late_block["notes"])
    assert {r["location"]["symbol"]: r["bytes_delta"] for r in late_grown["records"]} == by


def test_main_on_stripped_and_error_before_main(tmp_path):
    src = "int main(void) { return 0; }\n"
    stripped = compile_c(src, name="stripped_main", flags=["-s"])
    static = compile_c(src, name="static_main", flags=["-static"])
    res = run_gdb([f"vg-start --main --log {tmp_path}/a.log {stripped}", "vg-errors",
                   f"vg-start --main --log {tmp_path}/b.log {static}", "info breakpoints"])
    assert_no_traceback(res)
    # stripped: no main to run to -> one-line error before anything runs, valgrind gone
    assert re.search(r"--main: .*stripped_main has no symbol 'main' \(stripped\?\)\. Fix: ", res.stderr)
    assert any(ln.startswith("vg-errors needs a connection to a valgrind gdbserver") for ln in
               res.stderr.splitlines()), res.stderr
    # static glibc: memcheck stops on an error before main (valgrind's own log names it)
    # (text, not --json: gdb prints "Program received signal SIGTRAP" for that stop itself)
    stopped_at = re.search(r"^stopped at: +(.*)$", res.stdout, re.M).group(1)
    note = re.search(r"^note: +(.*)$", res.stdout, re.M).group(1)
    first_error = re.search(r"==\d+== (\S.*)\n==\d+==    at 0x[0-9A-F]+: (\w+)",
                            (tmp_path / "b.log").read_text())
    assert not stopped_at.startswith("main ")
    assert note.startswith("stopped on memcheck error #1 before main: " + first_error.group(1)), note
    assert stopped_at.startswith(first_error.group(2) + " ")
    # the temporary breakpoint on main is not left behind
    assert "No breakpoints or watchpoints." in res.stdout


def test_failed_connection_leaves_nothing_behind(tmp_path):
    # vgdb that cannot connect: vg-start fails in one line and leaves no process, FIFO or file
    res = run_gdb([f"vg-start --stdout {tmp_path}/out --log {tmp_path}/vg.log {prog('memleakloop')}",
                   "vg-errors", "echo alive\\n"],
                  env={"GDB_TOOLKIT_VGDB": "/bin/false", "TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    assert "cannot connect to valgrind process" in res.stderr and "alive" in res.stdout
    pid = int(re.search(r"valgrind process (\d+)", res.stderr).group(1))
    assert sorted(os.listdir(tmp_path)) == ["out", "vg.log"], os.listdir(tmp_path)
    assert not os.path.exists(f"/proc/{pid}/status") or "zombie" in Path(f"/proc/{pid}/status").read_text()


NOPTRACE_C = r"""
/* run a command with ptrace(2) failing with EPERM (seccomp): a host where ptrace is denied */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return perror("noptrace"), 127;
    execvp(argv[1], argv + 1);
    return perror("execvp"), 127;
}
"""


@contextlib.contextmanager
def valgrind_bg(binary, tmp_path, name, stdin=subprocess.DEVNULL, env=None, tool="memcheck"):
    """valgrind --vgdb=yes PROGRAM running freely (not waiting for gdb); killed afterwards."""
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(["valgrind", f"--tool={tool}", "--vgdb=yes", f"--log-file={log}", str(binary)],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, text=True, env=dict(os.environ, **(env or {})))
    try:
        line = proc.stdout.readline()
        assert "begin to alloc memory" in line, line
        proc.stdout.readline()          # "round 1 ..." : the program is now waiting
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        remove_fifos(proc.pid, (env or {}).get("TMPDIR"))


def remove_fifos(pid, tmp=None):
    tmp = tmp or os.environ.get("TMPDIR") or "/tmp"
    for name in os.listdir(tmp):
        if re.match(rf"vgdb-pipe-.*-{pid}-by-", name):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(tmp, name))


def test_attach_list_stale_fifo_and_ptrace_denied(tmp_path):
    binary = prog("memleakloop")
    wrapper = tmp_path / "vgdb-noptrace"
    noptrace = compile_c(NOPTRACE_C, name="noptrace")
    wrapper.write_text(f"#!/bin/sh\nexec {noptrace} {shutil.which('vgdb')} \"$@\"\n")
    wrapper.chmod(0o755)
    with valgrind_bg(binary, tmp_path, "blocked", stdin=subprocess.PIPE) as blocked, \
            valgrind_bg(binary, tmp_path, "sleeper") as sleeper, \
            valgrind_bg(binary, tmp_path, "killed") as killed:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        tmpdir = os.environ.get("TMPDIR") or "/tmp"
        assert any(f"-to-{killed.pid}-by-" in n for n in os.listdir(tmpdir)), "stale FIFO expected"
        res = run_gdb([*j("vg-attach"), "vg-attach",
                       f"vg-attach {killed.pid}",
                       f"python import os; os.environ['GDB_TOOLKIT_VGDB'] = '{wrapper}'",
                       f"vg-attach {blocked.pid}",
                       "python import os; del os.environ['GDB_TOOLKIT_VGDB']",
                       "echo after-ptrace\\n",
                       *j(f"vg-attach {sleeper.pid}"),
                       *j("vg-leaks --kinds definite"),
                       *j("vg-vbits &g_round 4")], timeout=300)
        assert_no_traceback(res)
        listing, attached, leaks = docs(res)[:3]
        live = {p["pid"] for p in listing["processes"]}
        assert {blocked.pid, sleeper.pid} <= live and killed.pid not in live
        assert killed.pid in listing["stale_fifo_pids"] and not listing["connected"]
        assert str(blocked.pid) in res.stdout and "choose one with vg-attach PID" in res.stdout
        assert f"no live valgrind gdbserver with pid {killed.pid} (only a stale FIFO" in res.stderr
        ptrace_err = [ln for ln in res.stderr.splitlines() if "ptrace" in ln]
        assert ptrace_err and "Fix:" in ptrace_err[0] and "ptrace_scope" in ptrace_err[0], res.stderr
        assert "after-ptrace" in res.stdout
        assert attached["connected"] and attached["pid"] == sleeper.pid
        assert attached["program"] == str(binary)
        assert {r["location"]["symbol"] for r in leaks["records"]} >= {"memleak1", "memleak2", "memleak3"}
        # attached while sleeping: stopped in a system call -> the make_memory hazard is recalled
        vb = docs(res)[3]
        assert vb["undefined_bytes"] == 0 and any("system call" in w for w in vb["notes"]), vb
        # vg-attach'ed processes are left running when gdb goes away
        assert sleeper.poll() is None and blocked.poll() is None


def test_attach_picks_the_only_live_process(tmp_path):
    """With TMPDIR private to this test, exactly one valgrind is visible: vg-attach takes it.

    It runs helgrind, not memcheck: vg-errors works, vg-leaks says memcheck is needed."""
    binary = prog("memleakloop")
    env = {"TMPDIR": str(tmp_path)}
    with valgrind_bg(binary, tmp_path, "only", env=env, tool="helgrind") as only:
        res = run_gdb([f"complete vg-attach {str(only.pid)[:2]}",
                       *j("vg-attach"), *j("vg-errors"), "vg-leaks"], env=env, timeout=300)
        assert_no_traceback(res)
        attached, errors = docs(res)
        assert attached["connected"] and attached["pid"] == only.pid
        assert attached["program"] == str(binary) and attached["processes"][0]["tool"] == "helgrind"
        assert errors["pid"] == only.pid and errors["counts"]["found_count"] == 0
        assert f"vg-attach {only.pid}" in res.stdout          # tab completion offers live pids
        assert "need valgrind's memcheck tool" in res.stderr and "not recognised" in res.stderr
        # the one note says what works with helgrind (rev-vg: was silent)
        assert [n.split(",")[0] for n in attached["notes"]] == [f"valgrind {only.pid} runs helgrind"]
        # gdb loaded with another program: attaching says the symbols do not belong to the process
        other = prog("vbits")
        res = run_gdb([*j("vg-attach")], program=other, env=env, timeout=300)
        assert_no_traceback(res)
        wrong = docs(res)[0]
        assert wrong["connected"] and wrong["program"] == str(other)
        assert f"is not the program valgrind runs ({binary})" in " ".join(wrong["notes"])
        assert only.poll() is None
