"""Issue 15: valgrind helpers for long-running servers, against valgrind's own output.

Oracles: raw 'monitor leak_check' text captured in the same gdb (parsed here with the test's
own regexes), valgrind's end-of-run --log-file report, the example sources, /proc.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.gdbrun import REPO, assert_no_traceback, compile_c, json_wrapped, run_gdb

pytestmark = [pytest.mark.gdb,
              pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                                 reason="valgrind/vgdb not installed")]

EXAMPLES = REPO / "examples" / "valgrind"
FLAGS = ["-g", "-O0"]


def prog(name):
    return compile_c(EXAMPLES / f"{name}.c", flags=FLAGS)


def j(cmd):
    if cmd.startswith("vg-start "):     # every word after PROGRAM is the program's: --json first
        return json_wrapped("vg-start --json " + cmd[len("vg-start "):])
    return json_wrapped(cmd + " --json")


def raw(cmd):
    """A raw monitor command (gdb's own 'monitor', captured as gdb returns it); the test
    parses its text itself: the oracle.  (Printed, valgrind's text goes to gdb's stderr.)"""
    return [f"python import json; print('@@RAW@@' + json.dumps(gdb.execute('monitor {cmd}', to_string=True)))"]


def raws(res):
    return [json.loads(m) for m in re.findall(r"^@@RAW@@(.*)$", res.stdout, re.M)]


LOSS = re.compile(r"==\d+== ([\d,]+)(?: \([\d,]+ direct, [\d,]+ indirect\))? bytes in ([\d,]+) blocks are "
                  r"(definitely lost|indirectly lost|possibly lost|still reachable) in loss record")
KIND = {"definitely lost": "definite", "indirectly lost": "indirect", "possibly lost": "possible",
        "still reachable": "reachable"}


def oracle_sites(text, source):
    """{(kind, function, line): bytes} from valgrind's text: each record is attributed to its
    first frame in *source* (the test program's own file), as a reader of the report would."""
    out = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = LOSS.search(line)
        if not m:
            continue
        for follow in lines[i + 1:i + 30]:
            fm = re.search(r"(?:at|by) 0x[0-9A-F]+: (\w+) \(" + re.escape(source) + r":(\d+)\)", follow)
            if fm:
                key = (KIND[m.group(3)], fm.group(1), int(fm.group(2)))
                out[key] = out.get(key, 0) + int(m.group(1).replace(",", ""))
                break
            if LOSS.search(follow):
                break
    return out


def source_line(name, text):
    for n, line in enumerate((EXAMPLES / name).read_text().splitlines(), 1):
        if text in line:
            return n
    raise AssertionError(text)


def leftovers(tmp, pid):
    return [n for n in os.listdir(tmp) if f"-{pid}-" in n or n.startswith("gdb_toolkit-vg-")]


# -- leak growth over time: the seed's memleakloop over 6 rounds --------------------------------
@pytest.fixture(scope="module")
def history_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hist")
    cmds = [*j(f"vg-start --main --stdout {tmp}/out --log {tmp}/vg.log {prog('memleakloop')} 7"),
            "break checkpoint"]
    for _ in range(6):
        cmds += ["continue", *j("vg-leaks"), *raw("leak_check full reachable any")]
    cmds += [*j("vg-leaks --history"), "vg-leaks --history",
             f"vg-leaks --history --export {tmp}/h.csv", f"vg-leaks --history --export {tmp}/h.jsonl",
             f"vg-leaks --history --plot {tmp}/h.svg", f"vg-leaks --history --plot {tmp}/h.png",
             f"vg-leaks --history --plot {tmp}/h.gif", f"vg-leaks --plot {tmp}/x.svg"]
    res = run_gdb(cmds, timeout=400, env={"TMPDIR": str(tmp)})
    res.tmp = tmp
    return res


def test_history_grows_exactly_per_round_like_valgrind(history_run):
    res = history_run
    assert_no_traceback(res)
    docs = res.json_documents()
    hist = docs[-1]
    assert hist["snapshot_count"] == 6
    # valgrind's own text at each of the 6 checkpoints is the oracle of every series
    oracle = [oracle_sites(t, "memleakloop.c") for t in raws(res)]
    assert len(oracle) == 6 and all(len(o) == 7 for o in oracle), oracle
    rows = {(r["kind"], r["symbol"], r["line"]): r for r in hist["sites"]}
    for key in oracle[-1]:
        assert [p["bytes"] for p in rows[key]["series"]] == [o.get(key, 0) for o in oracle], key
    line = {f"memleak{i}": source_line("memleakloop.c", f"void memleak{i}") for i in range(1, 6)}
    per_round = {("definite", "memleak1"): 1111, ("definite", "memleak2"): 2456,
                 ("definite", "memleak3"): 356, ("reachable", "memleak4"): 45678,
                 ("reachable", "memleak5"): 560000}
    for (kind, fn), grow in per_round.items():
        r = rows[(kind, fn, line[fn])]
        assert r["growth_bytes_per_snapshot"] == grow and r["steady"], r
        assert r["growth_bytes_per_second"] > 0
    # what main keeps (its 32-byte block, stdio's buffer) plateaus
    flat = [r for r in hist["sites"] if r["symbol"] == "main"]
    assert flat and all(r["growth_bytes"] == 0 for r in flat)
    # sorted by growth, largest first
    growth = [r["growth_bytes_per_snapshot"] for r in hist["sites"]]
    assert growth == sorted(growth, reverse=True)
    # the text: one row per site with a sparkline
    text = res.stdout.split("leak snapshots over")[1]
    assert "▁▂▃▅▆█" in text or "▁▃▄▅▆█" in text or "▁▂▄▅▇█" in text, text


def test_history_export_and_plot(history_run):
    res, tmp = history_run, history_run.tmp
    csv_rows = (tmp / "h.csv").read_text().splitlines()
    assert csv_rows[0].startswith("pid,seq,time,kind,site")
    hist = res.json_documents()[-1]
    assert len(csv_rows) - 1 == 6 * len(hist["sites"])
    lines = [json.loads(ln) for ln in (tmp / "h.jsonl").read_text().splitlines()]
    m1 = [ln["bytes"] for ln in lines if ln["symbol"] == "memleak1"]
    assert m1 == [1111 * k for k in range(1, 7)]
    svg = (tmp / "h.svg").read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "memleak5" in svg and "memleak1" in svg
    png = (tmp / "h.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    assert "unknown image type" in res.stderr and "--export and --plot go with --history" in res.stderr
    # nothing of the session is left in TMPDIR after gdb quit (FIFOs, private dir)
    pid = res.json_documents()[0]["pid"]
    assert leftovers(tmp, pid) == []


# -- the right frame, origins, freed/allocated stacks (examples/valgrind/sites.c) -------------
def test_sites_and_errors_against_end_of_run_log(tmp_path):
    binary = prog("sites")
    log = tmp_path / "vg.log"
    ret = source_line("sites.c", "return 0;")
    res = run_gdb([*j(f"vg-start --stdout {tmp_path}/out --log {log} {binary} -- --track-origins=yes "
                      "--leak-check=full --show-leak-kinds=all"),
                   "continue", "continue", *j("vg-errors"), "vg-errors",
                   "continue", "continue", *j("vg-errors"), f"break sites.c:{ret}", "continue",
                   *j("vg-leaks"), *raw("leak_check full reachable any"), "vg-leaks",
                   *j("vg-leaks --group-by 2"),
                   *j("vg-check main 4"), "vg-who &g_global", "delete", "continue"],
                  timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    start, syscall_errs, uaf_errs, leaks, grouped, check = res.json_documents()
    end = log.read_text()
    assert "ERROR SUMMARY: 7 errors" in end
    # every record attributed to the first frame in the program's source, as valgrind's own
    # text of the same search says (and the end-of-run report, kinds aside: lost only at exit)
    oracle = oracle_sites(raws(res)[0], "sites.c")
    assert ("definite", "new_node", source_line("sites.c", "*new_node(")) in oracle, oracle
    assert {(f, ln) for (_, f, ln) in oracle} == {(f, ln) for (_, f, ln) in oracle_sites(end, "sites.c")}
    ours = {}
    for r in leaks["records"]:
        key = (r["kind"], r["location"]["symbol"], r["location"]["line"])
        ours[key] = ours.get(key, 0) + r["bytes"]
    assert ours == oracle
    assert ("definite", "new_node", source_line("sites.c", "*new_node(")) in ours
    assert ("reachable", "fopen_config", source_line("sites.c", "*fopen_config(")) in ours
    memstream = [r for r in leaks["records"] if r["stack"][1]["symbol"] == "open_memstream"]
    assert memstream and all(r["location"]["symbol"] == "main" for r in memstream)
    assert all(r["stack"][1]["role"] == "runtime" and r["stack"][0]["role"] == "allocator"
               for r in memstream)
    # the syscall error: valgrind's program frame, and the origin kept apart
    last = syscall_errs["last_error"]
    assert last["what"].startswith("Syscall param write(buf)")
    assert [f["symbol"] for f in last["stack"]] == ["write", "main"]
    assert last["origin"]["what"] == "Uninitialised value was created by a heap allocation"
    assert [f["symbol"] for f in last["origin"]["frames"]] == ["malloc", "main"]
    assert f"at main (sites.c:{source_line('sites.c', 'write(1, u, 8)')})" in res.stdout
    # use after free then double free: where freed and where allocated
    uaf = uaf_errs["last_error"]
    assert uaf["what"].startswith("Invalid free()")
    freed_line = alloc_line = source_line("sites.c", "free(fr);                            /* d") - 2
    assert uaf["location"]["free_stack"][1]["line"] == freed_line
    assert uaf["location"]["stack"][1]["line"] == alloc_line
    assert f"(freed at main (sites.c:{freed_line})) (allocated at main (sites.c:{alloc_line}))" in res.stdout
    # --group-by 2: the callers of new_node are summed by the frame above it
    call = source_line("sites.c", "new_node(new_node(new_node(0)))")
    ind = [g for g in grouped["groups"] if g["kind"] == "indirect"]
    assert [(g["location"]["symbol"], g["location"]["line"], len(g["records"]), g["bytes"]) for g in ind] == \
        [("main", call, 2, 96)]
    # a function name is its address; a global nobody points at is not a "leaked heap block"
    assert check["passed"] and check["location"]["kind"] == "mapping"
    assert "no pointer found\n" in res.stdout and "leaked" not in res.stdout.split("vg-who")[-1]


def test_vgdb_error_n_and_vgdb_full_are_accepted(tmp_path):
    binary = prog("sites")
    res = run_gdb([*j(f"vg-start --stdout {tmp_path}/o --log {tmp_path}/a.log {binary} -- "
                      "--vgdb-error=3 --vgdb=full"), "continue", *j("vg-errors"), "kill",
                   f"vg-start --log {tmp_path}/b.log {binary} -- --vgdb=no"],
                  timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    start, errs = res.json_documents()
    assert "--vgdb-error=3" in start["valgrind_command"] and "--vgdb=full" in start["valgrind_command"]
    # valgrind's own count: the threshold is 3 and the program stopped at an error from the
    # third on.  Which one depends on when vg-start connected: with --vgdb-error=3 valgrind does
    # not wait at the start, so on a loaded machine the program may already wait at error 3
    # when gdb connects, and 'continue' then stops at error 4 (seen once at load 3)
    counts = errs["counts"]
    assert counts["vgdb_error"] == 3 and 3 <= counts["found_count"] <= 4, counts
    assert counts["shown_count"] == counts["found_count"], counts
    assert "--vgdb=no would stop vg-start from connecting" in res.stderr


# -- the connection stays in step -----------------------------------------------------------
MANY = r"""
#include <stdlib.h>
#include <unistd.h>
#define DEPTH 12
__attribute__((noinline)) void walk(int depth, unsigned code, size_t size)
{
    if (depth == 0) { char *p = malloc(size); (void)p; return; }
    if (code & 1) walk(depth - 1, code >> 1, size);
    else          walk(depth - 1, code >> 1, size);
}
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile(""); }
int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3000;
    for (int i = 0; i < n; i++)
        walk(DEPTH, (unsigned)i, 16 + (size_t)(i * 7919) % 4096);
    checkpoint();
    for (;;) sleep(1);
}
"""

INTERRUPTED = """python
import os, subprocess
# Ctrl-C as a terminal sends it: SIGINT to gdb from outside, {delay} s into the command
subprocess.Popen(["sh", "-c", f"sleep {{{delay}:.3f}}; kill -INT {{os.getpid()}}"])
try:
    gdb.execute("{command}", to_string=True)
    print("@@NOT-INTERRUPTED@@")
except KeyboardInterrupt:
    print("@@INTERRUPTED@@")
end"""


#: vgdb (gdb's child that relays the remote protocol) and how many bytes it has relayed so far
VGDB_IO = """python
import os
def _vgdb_pid():
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/stat") as f:
                comm, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        if comm.endswith("(vgdb") and int(rest.split()[1]) == os.getpid():
            return int(p)
    raise RuntimeError("no vgdb child of gdb")
def _vgdb_written():
    with open(f"/proc/{_vgdb}/io") as f:
        return int(next(ln for ln in f if ln.startswith("wchar:")).split()[1])
_vgdb = _vgdb_pid()
end"""

#: bytes vgdb relays for one whole leak report (measured here: it grows with valgrind's version)
LEAK_BYTES = """python
_w0 = _vgdb_written()
gdb.execute("monitor leak_check full kinds all any", to_string=True)
_leak_bytes = _vgdb_written() - _w0
end"""

#: Ctrl-C (SIGINT to gdb from outside, as a terminal sends it) once vgdb has relayed a quarter of
#: a whole leak report for {command}: the command is then surely running and far from done,
#: whatever the machine's load (a delay in seconds raced the command on a busy 2-core machine)
INTERRUPTED_MIDWAY = """python
import os, subprocess
_watch = (
    "import os, signal, sys, time\\n"
    "vgdb, goal, gdb_pid = map(int, sys.argv[1:])\\n"
    "deadline = time.monotonic() + 120\\n"
    "print('ready', flush=True)\\n"
    "def written():\\n"
    "    with open(f'/proc/{{vgdb}}/io') as f:\\n"
    "        return int(next(ln for ln in f if ln.startswith('wchar:')).split()[1])\\n"
    "while written() < goal and time.monotonic() < deadline:\\n"
    "    time.sleep(0.001)\\n"
    "if written() >= goal:\\n"
    "    os.kill(gdb_pid, signal.SIGINT)\\n")
_watcher = subprocess.Popen(["/usr/bin/python3", "-I", "-c", _watch, str(_vgdb),
                             str(_vgdb_written() + _leak_bytes // 4), str(os.getpid())],
                            stdout=subprocess.PIPE, text=True)
_watcher.stdout.readline()              # watching before the command starts
try:
    gdb.execute("{command}", to_string=True)
    print("@@NOT-INTERRUPTED@@")
except KeyboardInterrupt:
    print("@@INTERRUPTED@@")
_watcher.kill()                         # gone already, unless the command ended first
_watcher.wait()
end"""


def test_ctrl_c_keeps_the_connection_in_step(tmp_path):
    binary = compile_c(MANY, name="many", flags=FLAGS)
    script = tmp_path / "ctrlc.gdb"
    script.write_text("\n".join([
        f"vg-start --main --log {tmp_path}/vg.log {binary} 4096 -- --num-callers=30",
        "break checkpoint", "continue",
        # Ctrl-C must land while the command runs: once a quarter of valgrind's answer has gone
        # through vgdb (a fixed delay missed the command once vg-leaks got faster than it, and a
        # delay scaled to a measured time still raced it under load)
        VGDB_IO, LEAK_BYTES,
        INTERRUPTED_MIDWAY.format(command="vg-leaks"),       # Ctrl-C during vg-leaks
        *j("vg-leaks --top 2"),
        INTERRUPTED_MIDWAY.format(command="monitor leak_check full kinds all any"),   # raw: desync
        "python\ntry:\n    gdb.execute('vg-leaks --top 2')\nexcept gdb.error as e:\n    print('@@ERR@@', e)\nend",
        *j("vg-attach --reconnect"), *j("vg-leaks --top 2"), ""]))
    res = run_gdb([f"source {script}"], timeout=400, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    assert res.stdout.count("@@INTERRUPTED@@") == 2, res.stdout[-3000:]
    top_after_ctrl_c, reconnected, top_after_reconnect = res.json_documents()
    # Ctrl-C in vg-leaks took effect once valgrind's reply was complete: the next command gets
    # its own answer (valgrind: 4096 records of walk() and one of the loop's)
    assert top_after_ctrl_c["record_count"] == top_after_ctrl_c["matched_record_count"] >= 4096
    assert len(top_after_ctrl_c["records"]) == 2
    # a raw monitor interrupted by Ctrl-C: detected and said in one line, not parsed as an answer
    err = re.search(r"@@ERR@@ (.*)", res.stdout).group(1)
    assert "is out of step" in err and "vg-attach --reconnect" in err
    assert reconnected["connected"] and any("reconnected" in n for n in reconnected["notes"])
    assert top_after_reconnect["record_count"] >= 4096 and len(top_after_reconnect["records"]) == 2


# -- sessions, clean-up, odd options ----------------------------------------------------------
FORKER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile(""); }
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) { pause(); return 0; }
    pid_t pid = fork();
    if (pid == 0) { execl(argv[0], argv[0], "child", (char *)0); _exit(127); }
    char line[32];
    write(1, line, (size_t)snprintf(line, sizeof line, "child=%d\n", (int)pid));   /* no stdio buffer */
    char *p = malloc(10); free(p);          /* an empty heap at the checkpoint */
    checkpoint();
    pause();
    return 0;
}
"""


def test_trace_children_empty_heap_and_private_files(tmp_path):
    binary = compile_c(FORKER, name="forker", flags=FLAGS)
    out = tmp_path / "out"
    res = run_gdb([*j(f"vg-start --main --stdout {out} {binary} -- --trace-children=yes"),
                   "break checkpoint", "continue", *j("vg-leaks"), "vg-leaks", *j("vg-leaks summary"),
                   "shell sleep 1"],
                  timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    start, leaks, summary = res.json_documents()
    # valgrind: "All heap blocks were freed -- no leaks are possible" is an empty heap, not an error
    assert leaks["records"] == [] and all(t["bytes"] == 0 for t in leaks["totals"].values())
    assert any("no leaks are possible" in n for n in leaks["notes"])
    assert summary["totals"]["definite"]["bytes"] == 0
    child = int(re.search(r"child=(\d+)", out.read_text()).group(1))
    # the child valgrind (waiting for a debugger) was killed with its parent when gdb quit
    time.sleep(0.5)
    assert not os.path.exists(f"/proc/{child}/status") or "zombie" in Path(f"/proc/{child}/status").read_text()
    assert leftovers(tmp_path, start["pid"]) == [] and leftovers(tmp_path, child) == []
    assert sorted(os.listdir(tmp_path)) == ["out"], os.listdir(tmp_path)


def test_session_follows_the_process_actually_connected(tmp_path):
    binary = prog("memleakloop")
    env = {"TMPDIR": str(tmp_path)}
    other = subprocess.Popen(["valgrind", "--vgdb=yes", f"--log-file={tmp_path}/other.log", str(binary)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
                             env=dict(os.environ, **env))
    try:
        deadline = time.time() + 30
        while not [n for n in os.listdir(tmp_path) if f"-to-{other.pid}-" in n]:
            assert time.time() < deadline
            time.sleep(0.05)
        res = run_gdb([*j(f"vg-start --main --log {tmp_path}/a.log {binary} 3"), "break checkpoint",
                       "continue", "vg-leaks", "kill", "delete",
                       f"target remote | vgdb --pid={other.pid}", *j("vg-errors"), *j("vg-leaks"),
                       "detach"],
                      timeout=300, env=env)
        assert_no_traceback(res)
        start, errs, leaks = res.json_documents()
        assert errs["pid"] == other.pid and leaks["pid"] == other.pid != start["pid"]
        # no delta between two different processes
        assert leaks["totals_delta"] is None
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()


def test_prefix_log_fd_suppressions_and_counts(tmp_path):
    binary = prog("memleakloop")
    supp = tmp_path / "m1.supp"
    supp.write_text("{\n   memleak1\n   Memcheck:Leak\n   fun:malloc\n   fun:memleak1\n}\n")
    prefix = tmp_path / "pfx" / "vg"
    prefix.parent.mkdir()
    t0 = time.monotonic()
    res = run_gdb([*j(f"vg-start --main {binary} 3 -- --vgdb-prefix={prefix} --log-fd=2 "
                      f"--suppressions={supp}"), "break checkpoint", "continue",
                   *j("vg-leaks"), "continue", *j("vg-leaks --delta increased"),
                   *j("vg-leaks --top 2"), *j("vg-leaks --delta increased")],
                  timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    assert time.monotonic() - t0 < 60
    start, first, grown, top, unchanged = res.json_documents()
    assert start["log_file"] is None and start["log"] == "fd 2 (the program's stderr)"
    # valgrind's own LEAK SUMMARY (its log goes to stderr here) is the oracle of the suppressed bytes
    assert first["suppressed"] == {"bytes": 1111, "blocks": 1, "bytes_delta": None, "blocks_delta": None}
    assert "memleak1" not in {r["location"]["symbol"] for r in first["records"]}
    assert top["matched_record_count"] == top["record_count"] == first["record_count"] and len(top["records"]) == 2
    # nothing grew between the last two searches: the record count is still known
    assert unchanged["records"] == [] and unchanged["record_count"] == first["record_count"]
    assert not [n for n in os.listdir(prefix.parent)], os.listdir(prefix.parent)


def test_hostile_names_lock_holder_and_stdin_fifo(tmp_path):
    """Issue 11 items 1, 7, 8 in the valgrind domain."""
    src = (EXAMPLES / "memleakloop.c").read_text().replace(
        '    printf("begin', '    prctl(PR_SET_NAME, "\\xff\\xfe-bad", 0, 0, 0);\n    printf("begin').replace(
        "#include <unistd.h>", "#include <unistd.h>\n#include <sys/prctl.h>")
    odd_dir = tmp_path / "x\nshell touch PWNED\n"
    odd_dir.mkdir()
    binary = odd_dir / "mem leak"
    shutil.copy(compile_c(src, name="badname", flags=FLAGS), binary)
    env = {"TMPDIR": str(tmp_path)}
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    vg = subprocess.Popen(["valgrind", "--vgdb=yes", f"--log-file={tmp_path}/bg.log", str(binary)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
                          env=dict(os.environ, **env), cwd=tmp_path)
    holder = None
    try:
        deadline = time.time() + 30
        while not [n for n in os.listdir(tmp_path) if f"-to-{vg.pid}-" in n]:
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(1)
        res = run_gdb([*j("vg-attach"), *j("vg-leaks --kinds definite"), "detach",
                       f"vg-start --stdin {fifo} {prog('memleakloop')}", "echo after-fifo\\n"],
                      timeout=300, env=env, cwd=tmp_path)
        assert_no_traceback(res)
        listing, leaks = res.json_documents()
        # the path with a newline loaded symbols without running 'shell touch PWNED'
        assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
        assert listing["connected"] and listing["pid"] == vg.pid
        # its name (prctl PR_SET_NAME) is not UTF-8: the listing still works and names the tool
        assert Path(f"/proc/{vg.pid}/comm").read_bytes().startswith(b"\xff\xfe")
        assert listing["processes"][0]["tool"] == "memcheck"
        assert {r["location"]["symbol"] for r in leaks["records"]} >= {"memleak1", "memleak2"}
        assert "is a FIFO" in res.stderr and "after-fifo" in res.stdout
        # a second debugger: valgrind's lock holder is named, with its parent
        holder = subprocess.Popen(["vgdb", f"--pid={vg.pid}"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=dict(os.environ, **env))
        time.sleep(1)
        res = run_gdb([f"vg-attach {vg.pid}"], timeout=120, env=env)
        assert_no_traceback(res)
        assert f"vgdb pid {holder.pid} (started by " in res.stderr and "already has a debugger" in res.stderr
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        os.killpg(vg.pid, signal.SIGKILL)
        vg.wait()


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux not installed (the interactive terminal)")
def test_interactive_error_stop_sigtrap_line_is_explained(tmp_path):
    """Issue 14 item 8: in a terminal (not in batch) gdb prints 'Program received signal SIGTRAP'
    for memcheck's error stop during vg-start --main; the report says what it is."""
    static = compile_c("int main(void) { return 0; }\n", name="static_main", flags=["-static"])
    session = f"vgtk{os.getpid()}"
    gdbinit = REPO / "gdb_toolkit" / "gdbinit.py"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60",
                    f"TMPDIR={tmp_path} gdb -nx -q -iex 'set debuginfod enabled off' -ex 'source {gdbinit}'"],
                   check=True)
    try:
        time.sleep(2)
        subprocess.run(["tmux", "send-keys", "-t", session, f"vg-start --main {static}", "Enter"], check=True)
        screen = ""
        deadline = time.time() + 60
        while time.time() < deadline and "next: 'continue'" not in screen:
            time.sleep(0.5)
            screen = subprocess.run(["tmux", "capture-pane", "-t", session, "-p", "-J"],
                                    capture_output=True, text=True).stdout
        lines = screen.splitlines()
        assert any(ln.startswith("Program received signal SIGTRAP") for ln in lines), screen
        text = " ".join(ln.strip() for ln in lines)         # notes wrap at the terminal's width
        note = text[text.index("note: stopped on memcheck error #1 before main"):]
        assert "'Program received signal SIGTRAP': that is how valgrind reports a memcheck error stop" in note
        subprocess.run(["tmux", "send-keys", "-t", session, "kill", "Enter", "y", "Enter", "quit", "Enter"])
        time.sleep(1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_vg_watch_samples_a_running_server_and_stops_cleanly(tmp_path):
    """vg-watch on the seed's server (one round a second): growth in whole rounds, gdb connected
    again afterwards, Ctrl-C ends it cleanly (the next commands still get their own answers)."""
    binary = prog("memleakloop")
    script = tmp_path / "watch.gdb"
    script.write_text("\n".join([
        f"vg-start --main --stdout {tmp_path}/out --log {tmp_path}/vg.log {binary}",
        *j("vg-watch 1 --count 4"),
        INTERRUPTED.format(delay="2.5", command="vg-watch 1"),
        *j("vg-leaks --history"), *j("vg-errors"), *j("vg-leaks --top 1"), ""]))
    res = run_gdb([f"source {script}"], timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    watch, hist, errs, top = res.json_documents()
    assert watch["snapshot_count"] == 4
    assert any("gdb connected again" in n for n in watch["notes"])
    rows = {(r["kind"], r["symbol"]): r for r in watch["sites"]}
    for (kind, fn), per_round in {("definite", "memleak1"): 1111, ("definite", "memleak2"): 2456,
                                  ("definite", "memleak3"): 356, ("reachable", "memleak5"): 560000}.items():
        series = [p["bytes"] for p in rows[(kind, fn)]["series"]]
        steps = [b - a for a, b in zip(series, series[1:])]
        assert all(s % per_round == 0 for s in steps) and series[-1] > series[0], (fn, series)
    # 'vg-watch 1' with no count ended on Ctrl-C (else this run would never end), kept its
    # snapshots and left gdb connected and in step
    assert "@@NOT-INTERRUPTED@@" in res.stdout and hist["snapshot_count"] > 4
    assert errs["pid"] == watch["pid"] and top["record_count"] >= 7
    assert "Program received signal" not in res.stdout + res.stderr
