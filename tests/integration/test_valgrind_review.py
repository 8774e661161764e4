"""Review of the vg-* commands (rev-vg): cases issue 15 does not list, each against an
independent oracle (valgrind's own monitor text read through gdb's raw 'monitor', valgrind's
log, /proc).
"""
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from gdb_toolkit.common.schemas import validate_document
from tests.support.gdbrun import assert_no_traceback as _assert_no_traceback
from tests.support.gdbrun import compile_c, json_wrapped, run_gdb

pytestmark = [pytest.mark.gdb,
              pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                                 reason="valgrind/vgdb not installed")]


def assert_no_traceback(res):
    """No traceback, and every --json document the run printed is valid against its schema."""
    _assert_no_traceback(res)
    for doc in res.envelopes():
        assert validate_document(doc) == [], doc


def j(cmd):
    return json_wrapped(cmd + " --json")


def raw(cmd):
    return [f"python import json; print('@@RAW@@' + json.dumps(gdb.execute('monitor {cmd}', to_string=True)))"]


def raws(res):
    return [__import__("json").loads(m) for m in re.findall(r"^@@RAW@@(.*)$", res.stdout, re.M)]


LOSS = re.compile(r"==\d+== ([\d,]+)(?: \([\d,]+ direct, [\d,]+ indirect\))? bytes in ([\d,]+) blocks are "
                  r"(?:definitely lost|indirectly lost|possibly lost|still reachable) in loss record (\d+) of")


def first_frame_in(text, source):
    """{record number: (function, line) of its first frame in *source*, or None}: how a reader
    of valgrind's report finds the line of their own code that allocated."""
    out, current = {}, None
    for line in text.splitlines():
        m = LOSS.search(line)
        if m:
            current = int(m.group(3))
            out[current] = None
            continue
        fm = re.search(r"(?:at|by) 0x[0-9A-F]+: (\S+) \(" + re.escape(source) + r":(\d+)\)", line)
        if fm and current is not None and out[current] is None:
            out[current] = (fm.group(1), int(fm.group(2)))
    return out


# -- C++: container allocations belong to the program line that used the container -----------
STL = r"""
#include <map>
#include <string>
#include <vector>
std::vector<int> *gv;
std::string *gstr;
std::map<int, int> *gm;
__attribute__((noinline)) void checkpoint() { asm volatile(""); }
int main() {
    gv = new std::vector<int>;
    gv->push_back(1);
    gstr = new std::string(200, 'x');
    gm = new std::map<int, int>;
    (*gm)[1] = 2;
    checkpoint();
    return 0;
}
"""


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_cxx_container_allocations_are_the_programs_line_not_the_template(tmp_path, opt):
    binary = compile_c(STL, name="stlsites", flags=["-g", opt], compiler="g++")
    res = run_gdb([f"vg-start --main --stdout /dev/null --log {tmp_path}/vg.log {binary}",
                   "break checkpoint", "continue", *j("vg-leaks"), *raw("leak_check full reachable any")],
                  timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    leaks = res.json_documents()[0]
    oracle = first_frame_in(raws(res)[0], "stlsites.c")
    got = {r["record"]: r["location"] for r in leaks["records"]}
    assert got.keys() == oracle.keys()
    # the vector's, string's and map's storage: valgrind's first frame in the program's source
    # (-O0: out-of-line template instances in the executable; -O2: inlined into main)
    assert sum(1 for v in oracle.values() if v) >= 6
    for rec, want in oracle.items():
        if want is not None:
            assert (got[rec]["symbol"], got[rec]["file"], got[rec]["line"]) == (want[0], "stlsites.c", want[1]), rec
        else:
            # libstdc++'s own emergency pool: named by the runtime frame, not by malloc
            assert got[rec]["role"] != "allocator", got[rec]


# -- a server that exits (or dies) keeps its leak history -------------------------------------
ROUNDS = r"""
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile(""); }
__attribute__((noinline)) void handle_request(int r)
{
    char *p = malloc(100 + 10 * r);      /* lost every round */
    memset(p, r, 100 + 10 * r);
}
int main(void)
{
    for (int r = 0; r < 4; r++) {
        handle_request(r);
        checkpoint();
    }
    return 0;
}
"""

DEFINITE = re.compile(r"definitely lost: ([\d,]+) (?:\([+-][\d,]+\) )?bytes")


def test_history_survives_the_program_exiting(tmp_path):
    binary = compile_c(ROUNDS, name="rounds", flags=["-g", "-O0"])
    steps = [f"vg-start --main --stdout /dev/null --log {tmp_path}/vg.log {binary}", "break checkpoint"]
    for _ in range(4):
        steps += ["continue", "vg-leaks", *raw("leak_check summary")]
    steps += ["delete", "continue", *j("vg-leaks --history"), "vg-leaks --history"]
    res = run_gdb(steps, timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    assert "exited normally" in res.stdout
    # valgrind's own summary at each of the 4 checks
    oracle = [int(DEFINITE.search(t).group(1).replace(",", "")) for t in raws(res)]
    hist = res.json_documents()[-1]
    assert hist["snapshot_count"] == 4
    site = [s for s in hist["sites"] if s["kind"] == "definite" and s["symbol"] == "handle_request"]
    assert len(site) == 1 and oracle[-1] == 100 + 110 + 120 > 0
    assert [t["definite_bytes"] for t in hist["total_series"]] == oracle
    assert site[0]["series"][-1]["bytes"] == oracle[-1]
    assert any("exited (status 0)" in n for n in hist["notes"])
    assert "the program under valgrind has exited" not in res.stderr


# -- vg-attach: a valgrind running another tool, and a pid that is no valgrind gdbserver ---------
PAUSE = r"""
#include <stdlib.h>
#include <unistd.h>
int main(void) { char *p = malloc(42); p[0] = 1; write(1, "ready\n", 6); pause(); return p[0]; }
"""


RACE = r"""
#include <pthread.h>
#include <unistd.h>
int g;
static void *w(void *a) { (void)a; for (int i = 0; i < 100; i++) g++; return 0; }
int main(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], 0, w, 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], 0);
    write(1, "ready\n", 6);
    pause();
    return 0;
}
"""


def _proc_tool(pid):
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    return [a.decode() for a in argv if a.startswith(b"--tool=")]


def test_vg_attach_helgrind_errors_and_why_a_pid_is_not_attachable(tmp_path):
    binary = compile_c(PAUSE, name="pauser", flags=["-g"])
    racer = compile_c(RACE, name="racer", flags=["-g", "-O0", "-pthread"])
    env = dict(os.environ, TMPDIR=str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    procs = [subprocess.Popen(["valgrind", "--tool=helgrind", "--vgdb=yes", f"--log-file={tmp_path}/h.log",
                               str(racer)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE),
             subprocess.Popen(["valgrind", "--vgdb=no", f"--log-file={tmp_path}/n.log", str(binary)],
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE),
             subprocess.Popen(["sleep", "300"]),
             subprocess.Popen(["valgrind", "--vgdb=yes", f"--log-file={tmp_path}/m.log", str(binary)],
                              env=dict(env, TMPDIR=str(tmp_path / "elsewhere")), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE)]
    helgrind, novgdb, sleeper, elsewhere = procs
    try:
        for p in (helgrind, novgdb, elsewhere):
            assert p.stdout.readline() == b"ready\n"
        assert _proc_tool(helgrind.pid) == ["--tool=helgrind"]          # the oracle: its argv
        log = (tmp_path / "h.log").read_text()                          # and helgrind's own report
        assert "Possible data race" in log and "This conflicts with a previous" in log
        res = run_gdb([*j(f"vg-attach {helgrind.pid}"), *j("vg-errors"), "vg-errors", "detach",
                       *j(f"vg-attach {novgdb.pid}"), *j(f"vg-attach {sleeper.pid}"),
                       *j(f"vg-attach {elsewhere.pid}"), *j("vg-leaks --kinds reachable"), "detach",
                       "vg-attach 999999"],
                      timeout=120, env={"TMPDIR": str(tmp_path)})
        assert_no_traceback(res)
        hel, hel_errs, nov, sle, els, leaks = res.envelopes()
        # a helgrind server can be attached: what works is said, and its errors parse
        assert hel["ok"] and any("runs helgrind, not memcheck" in n for n in hel["result"]["notes"]), hel
        last = hel_errs["result"]["last_error"]
        assert last["what"].startswith("Possible data race during ") and "thread #" in last["what"]
        assert last["stack"][0]["symbol"] == "w" and last["stack"][0]["file"] == "racer.c"
        assert [r["what"].split(" of size")[0] for r in last["related"]][0].startswith("This conflicts with a previous")
        assert last["related"][0]["frames"][0]["symbol"] == "w"
        assert "---" not in last["what"] and "last error: ----" not in res.stdout
        assert not nov["ok"] and "--vgdb=no" in nov["error"]["cause"], nov
        assert not sle["ok"] and "(sleep) is not running under valgrind" in sle["error"]["cause"], sle
        # started with another TMPDIR (its FIFOs elsewhere): found from its environment
        assert els["ok"] and els["result"]["pid"] == elsewhere.pid, els
        assert any(f"{tmp_path}/elsewhere" in n for n in els["result"]["notes"])
        assert leaks["ok"] and leaks["result"]["pid"] == elsewhere.pid, leaks
        assert "there is no process 999999" in res.stderr
    finally:
        for p in procs:
            p.kill()
            p.wait()


# -- a program path with a blank and a non-UTF-8 byte, arguments with blanks --------------------
def test_listing_keeps_program_and_arguments_apart_and_attach_loads_symbols(tmp_path):
    binary = compile_c(PAUSE, name="pauser", flags=["-g"])
    where = os.path.join(os.fsencode(tmp_path), b"we ird", b"d\xffx")
    os.makedirs(where)
    prog = os.path.join(where, b"p rog")
    shutil.copy(binary, prog)
    env = dict(os.environ, TMPDIR=str(tmp_path))
    procs = [subprocess.Popen([b"valgrind", b"--vgdb=yes", f"--log-file={tmp_path}/{n}.log".encode(), prog,
                               b"a b", b"c"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL) for n in (1, 2)]
    try:
        for p in procs:                 # past its malloc, in pause()
            assert p.stdout.readline() == b"ready\n"
        # the oracle: the kernel's argv of each valgrind
        argv = open(f"/proc/{procs[0].pid}/cmdline", "rb").read().split(b"\0")
        assert prog in argv and b"a b" in argv
        res = run_gdb(["vg-attach", *j("vg-attach"), *j(f"vg-attach {procs[0].pid}"), *j("vg-leaks")],
                      timeout=120, env={"TMPDIR": str(tmp_path)})
        assert_no_traceback(res)
        shown = os.fsdecode(prog).replace("\udcff", "\\xff")
        # the program cell may wrap between words, never inside the quoted path: the quotes keep
        # program and arguments apart
        assert re.search(r"memcheck\s+'" + re.escape(shown) + "'", res.stdout), res.stdout
        assert "'a b' c" in res.stdout, res.stdout
        listing, attached, leaks = res.json_documents()
        assert {p["pid"] for p in listing["processes"]} == {p.pid for p in procs}
        assert attached["connected"] and attached["pid"] == procs[0].pid
        site = leaks["records"][0]["location"]
        assert (site["symbol"], site["file"], site["bytes"] if "bytes" in site else 42) == ("main", "pauser.c", 42)
    finally:
        for p in procs:
            p.kill()
            p.wait()


# -- a forking server whose worker waits for a debugger nobody brings --------------------------
FORKING = r"""
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void)
{
    pid_t c = fork();
    if (c == 0) {
        int x;
        if (x > 2) write(1, "y", 1);        /* the worker's memcheck error */
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);                     /* the server "hangs" here */
    write(1, "worker done\n", 12);
    return 0;
}
"""

CTRL_C = """python
import os, subprocess
subprocess.Popen(["sh", "-c", f"sleep {seconds}; kill -INT {{os.getpid()}}"])
try:
    gdb.execute("continue")
except KeyboardInterrupt:
    pass
end"""


def _syscall(pid):
    return open(f"/proc/{pid}/syscall").read().split()[0]


def test_worker_forked_under_vg_start_waits_and_is_named_without_resuming_it(tmp_path):
    binary = compile_c(FORKING, name="forking", flags=["-g", "-O0"])
    out = tmp_path / "out"
    script = tmp_path / "s.gdb"
    script.write_text("\n".join([
        "set width 80", f"vg-start --stdout {out} --log {tmp_path}/vg-%p.log {binary}",
        CTRL_C.format(seconds=6), *j("vg-errors"), ""]))
    res = run_gdb([f"source {script}"], timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    errs = res.json_documents()[0]
    waiting = errs["waiting_children"]
    assert len(waiting) == 1, (errs, res.stdout[-2000:])
    child = waiting[0]["pid"]
    # valgrind's own log names the child's parent; it says nothing about the wait
    log = (tmp_path / f"vg-{child}.log").read_text()
    assert f"Parent PID: {errs['pid']}" in log and waiting[0]["ppid"] == errs["pid"]
    assert waiting[0]["stopped_at"] is None and waiting[0]["log_file"] == f"{tmp_path}/vg-{child}.log"
    flat = res.stdout.replace("\n    ", " ")
    assert f"vg: valgrind child {child} (parent {errs['pid']}) is stopped in valgrind's gdbserver" in flat
    assert "worker done" not in out.read_text()          # looking did not resume it


def test_worker_stopped_at_its_error_is_named_with_the_error_from_its_log(tmp_path):
    binary = compile_c(FORKING, name="forking", flags=["-g", "-O0"])
    env = dict(os.environ, TMPDIR=str(tmp_path))
    server = subprocess.Popen(["valgrind", "--vgdb=yes", "--vgdb-error=1", f"--log-file={tmp_path}/vg-%p.log",
                               str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        deadline, logs = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            logs = [p for p in tmp_path.glob("vg-*.log") if "(action on error) vgdb me" in p.read_text()]
            if logs:
                break
            time.sleep(0.2)
        child = int(logs[0].name[3:-4])
        # the oracle: the child's own log (its error), /proc (blocked in poll on its FIFO)
        log = logs[0].read_text()
        assert f"Parent PID: {server.pid}" in log and "Conditional jump or move depends on uninit" in log
        before = _syscall(child)
        res = run_gdb([f"vg-attach {server.pid}", *j("vg-errors"), "vg-errors"], timeout=120,
                      env={"TMPDIR": str(tmp_path)})
        assert_no_traceback(res)
        w = res.json_documents()[0]["waiting_children"]
        assert [x["pid"] for x in w] == [child] and w[0]["stopped_at"] == "error"
        assert w[0]["comm"] == pathlib.Path(f"/proc/{child}/comm").read_text().strip() and "program" not in w[0]
        assert w[0]["error_line"].startswith("Conditional jump or move depends on uninitialised value(s) at main (forking.c:")
        assert f"valgrind child {child} (parent {server.pid}) stopped on a memcheck error" in res.stdout.replace("\n    ", " ")
        time.sleep(1)
        assert _syscall(child) == before and server.poll() is None       # still waiting, not resumed
        # the way out the message gives: vg-attach the worker.  It must still be at its error
        # (a standalone vgdb probe before connecting used to resume it: 'valgrind ... is gone')
        res = run_gdb([*j(f"vg-attach {child}"), "bt"], timeout=120, env={"TMPDIR": str(tmp_path)})
        assert_no_traceback(res)
        att = res.json_documents()[0]
        line = next(n for n, t in enumerate(FORKING.splitlines(), 1) if "the worker's memcheck error" in t)
        assert att["connected"] and att["stopped_at"].startswith(f"main (forking.c:{line}"), att
    finally:
        for p in [*(int(x.name[3:-4]) for x in tmp_path.glob("vg-*.log"))]:
            try:
                os.kill(p, 9)
            except OSError:
                pass
        server.wait()


# -- vg-watch must not sample a program that waits at an error (vgdb would resume it) ----------
LATE_ERROR = r"""
#include <stdlib.h>
#include <unistd.h>
int main(void)
{
    for (int i = 0; i < 3; i++) { malloc(100); usleep(300000); }
    int x;
    if (x > 2) write(1, "y", 1);            /* the error, about 1 s in */
    for (;;) { malloc(100); usleep(300000); }
}
"""


def test_vg_watch_stops_at_an_error_without_resuming_past_it(tmp_path):
    binary = compile_c(LATE_ERROR, name="lateerror", flags=["-g", "-O0"])
    line = next(n for n, t in enumerate(LATE_ERROR.splitlines(), 1) if "the error, about" in t)
    res = run_gdb([f"vg-start --main --stdout /dev/null --log {tmp_path}/vg.log {binary} -- --vgdb-error=1",
                   *j("vg-watch 0.7 --count 8"), *j("vg-errors")],
                  timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    watch, errs = res.json_documents()
    assert any("stopped on a memcheck error" in n for n in watch["notes"]), watch["notes"]
    # gdb is back at the error itself, as valgrind's log reports it
    assert f"main (lateerror.c:{line})" in " ".join(watch["notes"]), watch["notes"]
    assert errs["counts"]["found_count"] == 1
    log = (tmp_path / "vg.log").read_text()
    assert f"(lateerror.c:{line})" in log


def test_vg_watch_runs_past_errors_below_vgdb_error_and_says_valgrind_was_killed(tmp_path):
    binary = compile_c(LATE_ERROR, name="lateerror", flags=["-g", "-O0"])
    script = tmp_path / "s.gdb"
    script.write_text("\n".join([
        f"vg-start --main --stdout /dev/null --log {tmp_path}/vg.log {binary} -- --vgdb-error=5",
        "python",
        "import subprocess",
        "from gdb_toolkit.valgrind import gdb_session as gs",
        "subprocess.Popen(['sh', '-c', f'sleep 1.6; kill -9 {gs.connection_pid()}'])",
        "end", *j("vg-watch 0.5 --count 20"), *j("vg-leaks --history"), ""]))
    res = run_gdb([f"source {script}"], timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    watch, hist = res.json_documents()
    assert any(n.endswith("was killed by SIGKILL") for n in watch["notes"]), watch["notes"]
    assert not any("the program exited" in n for n in watch["notes"])
    # error #1 (valgrind's log) is below --vgdb-error=5: the program ran on and so did the watch
    assert "Conditional jump or move depends on uninitialised" in (tmp_path / "vg.log").read_text()
    assert any("error #1, below --vgdb-error=5: the program runs on" in n for n in watch["notes"])
    assert hist["snapshot_count"] == watch["snapshot_count"] >= 2
