"""The toolkit on a long-running, multi-threaded server it attaches to (examples/servers/).

Oracles: the server's own answers to a client before and after (its request counter), the
figures it prints about its own threads (pthread_getattr_np and the address of a local),
/proc/PID/task, /proc/PID/status (tracer, state, signal masks and dispositions) and
/proc/PID/task/*/children -- never the code under test.
"""
import json
import os
import re
import shutil
import socket
import subprocess

import pytest

from tests.support.gdbrun import (JSON_BEGIN, JSON_END, REPO, assert_no_traceback, background, compile_c,
                                  json_wrapped, run_gdb, unwrap)

pytestmark = pytest.mark.gdb

SERVER = REPO / "examples" / "servers" / "pool_server.c"
WORKERS, DEEP = 240, 2


def ask(port: int) -> int:
    """One request; the server's answer 'ok N' (N counts every answer it gave)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"hello\n")
        reply = s.recv(64).decode()
    m = re.fullmatch(r"ok (\d+)\n", reply)
    assert m, reply
    return int(m.group(1))


def status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def children(pid: int) -> list:
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids += fh.read().split()
        except FileNotFoundError:
            pass
    return kids


def test_attached_server_all_threads_grouped_and_still_serving():
    """stack-diagnose --all-threads on a 243-thread server: the 240 idle workers are one row
    (a count the server's argv and /proc/PID/task confirm), the two threads that use over 90%
    of their stacks get their whole report with the figure they measured themselves, the
    output stays ~40 lines (it was 243 full reports: ~4,500 lines); got and plt on the same
    attach; after detach the server answers again and carries no trace of gdb."""
    binary = compile_c(SERVER, flags=["-g", "-O0", "-pthread"])
    with background([binary, str(WORKERS), str(DEEP), "20000"], ready="ready") as (proc, lines):
        port = int(lines[-1].split()[1])
        deep = {int(m.group(1)): (int(m.group(2)), int(m.group(3)))
                for m in (re.fullmatch(r"deep (\d+) used (\d+) of (\d+)", ln) for ln in lines) if m}
        assert len(deep) == DEEP, lines
        before = status(proc.pid)
        first = ask(port)
        nthreads = len(os.listdir(f"/proc/{proc.pid}/task"))
        assert nthreads == 1 + WORKERS + DEEP
        res = run_gdb(["stack-diagnose --all-threads", "echo @@END-TEXT@@\\n",
                       *json_wrapped("stack-diagnose --all-threads --json"), "got", "plt",
                       "set width 80", "echo @@W80@@\\n", "stack-diagnose --all-threads",
                       "echo @@END-W80@@\\n", "detach"], pid=proc.pid, timeout=300)
        assert_no_traceback(res)
        after = status(proc.pid)
        served = ask(port)
        kids = children(proc.pid)
    text = res.stdout.split("@@END-TEXT@@")[0]
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("[New LWP"))
    # bounded: the header, one row per group of idle threads, the two deep threads' reports
    start = text.index("stack-diagnose: ")
    report = text[start:]
    assert report.count("\n") < 120, report[:3000]
    assert f"stack-diagnose: {nthreads} threads of process {proc.pid}" in report
    rows = re.findall(r"^\s+(\d+)\s+([\d, -]+?)\s+[\d.]+ [KM]iB\s+[\d.]+ [KM]iB\s+[\d.]+%\s+(\d+)\s*$\n"
                      r"\s+frames: (.*)$", report, re.M)
    by_frames = {fr: int(n) for n, _nums, _fullest, fr in rows}
    workers = [n for fr, n in by_frames.items() if "worker" in fr.split(" <- ")]
    assert workers == [WORKERS], rows
    assert sum(by_frames.values()) == nthreads - DEEP
    # each deep thread: its own report, named by its LWP, its use as it measured it
    for tid, (used, size) in deep.items():
        m = re.search(rf"^stack-diagnose: thread \d+ \"pool_server[^\"]*\" \(LWP {tid}\).*?\n"
                      r"VERDICT .*?stopped by SIGSTOP \(gdb's attach: PTRACE_ATTACH sends it\): "
                      r"stack nearly full -- .*?\n(?:.*\n)*?stack used: .*?\((\d+) B", report, re.M)
        assert m, (tid, report[:4000])
        assert used <= int(m.group(1)) <= used + 512, (tid, used, m.group(1))
    # at 80 columns nothing is longer than the terminal
    narrow = res.stdout.split("@@W80@@\n")[1].split("@@END-W80@@")[0]
    assert f"{nthreads} threads" in narrow and "frames: epoll_wait" in narrow
    assert max(map(len, narrow.splitlines())) <= 80, narrow
    # the JSON keeps every thread's diagnosis
    doc = res.json_documents()[0]
    assert len(doc["diagnoses"]) == nthreads
    assert {d["thread"]["tid"] for d in doc["diagnoses"]} == {int(t) for t in
                                                               _tids_seen(res.stdout, proc.pid)}
    # still serving, nothing left behind: no tracer, not stopped, same signal masks and
    # dispositions, no child process
    assert served > first
    assert after["TracerPid"] == "0" and after["State"][0] in "SR", after
    for key in ("SigBlk", "SigIgn", "SigCgt", "Threads"):
        assert after[key] == before[key], (key, before[key], after[key])
    assert not kids, kids


def _tids_seen(stdout: str, pid: int) -> set:
    """The LWPs gdb announced when it attached, and the process itself."""
    return {str(pid), *re.findall(r"^\[New LWP (\d+)\]", stdout, re.M)}


# -- valgrind: a server's thousands of errors ----------------------------------------------------

def _many_errors_source(sites: int, hot: int) -> str:
    """A program whose line HOT-LINE makes *hot* errors from one context, then *sites* lines
    one error each (each its own context), then stops in done()."""
    lines = ["#include <stdlib.h>", "volatile int sink;", "void done(void) { sink = 0; }",
             "int main(void) {", "  int *u = malloc(8);",
             f"  for (int i = 0; i < {hot}; i++) if (u[1] == i) sink++;   /* HOT-LINE */"]
    lines += [f"  if (u[1] == {i}) sink++;" for i in range(sites)]
    lines += ["  done();", "  return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_vg_errors_past_valgrinds_error_limit(tmp_path):
    """1,100 error contexts and one hot one (500 times): vg-errors lists the hot one first with
    valgrind's own count, 20 lines of contexts instead of 1,000, and says that valgrind stopped
    recording (its log says so: the oracle); under --error-limit=no it does not say so."""
    source = _many_errors_source(1100, 500)
    binary = compile_c(source, name="many_errors", flags=["-g", "-O0"])
    hot_line = next(n for n, ln in enumerate(source.splitlines(), 1) if "HOT-LINE" in ln)
    out = {}
    for limit in ("yes", "no"):
        log = tmp_path / f"vg-{limit}.log"
        res = run_gdb([f"vg-start --stdout {tmp_path}/out --log {log} {binary} -- -s "
                       f"--vgdb-error=99999999 --error-limit={limit}",
                       "break done", "continue", "echo @@TEXT@@\\n", "vg-errors", "echo @@END@@\\n",
                       *json_wrapped("vg-errors --json"),
                       "python import json; print('@@RAW@@' + json.dumps("
                       "gdb.execute('monitor v.info all_errors', to_string=True)))",
                       "python import json; print('@@RAW@@' + json.dumps("
                       "gdb.execute('monitor v.info n_errs_found', to_string=True)))"],
                      timeout=300, env={"TMPDIR": str(tmp_path)})
        assert_no_traceback(res)
        raw_all, raw_counts = [json.loads(m) for m in re.findall(r"^@@RAW@@(.*)$", res.stdout, re.M)]
        out[limit] = (res, res.stdout.split("@@TEXT@@\n")[1].split("@@END@@")[0],
                      res.json_documents()[0], raw_all, raw_counts, log.read_text())
    res, text, doc, raw_all, raw_counts, vglog = out["yes"]
    # valgrind's own word: it stopped at 1,000 contexts
    assert "More than 1000 different errors detected" in vglog
    shown = int(re.search(r"n_errs_shown (\d+)", raw_counts).group(1))
    assert shown == 1000
    counts = [int(c.replace(",", "")) for c in re.findall(r"([\d,]+) errors in context \d+ of", raw_all)]
    assert len(counts) == 1000 and max(counts) == 500
    # the text: the hot context first, with valgrind's count; 20 contexts; the rest counted
    ctx_lines = [ln for ln in text.splitlines() if re.match(r"  [\d,]+ x ", ln)]
    assert len(ctx_lines) == 20, text
    assert ctx_lines[0].startswith("  500 x ") and f"many_errors.c:{hot_line})" in ctx_lines[0], ctx_lines[0]
    assert "... 980 more contexts (980 errors)" in text
    assert "valgrind has stopped recording errors" in text and "--error-limit=no" in text
    assert len(text.splitlines()) < 60, text
    # --json: every context, valgrind's counts
    assert sorted((e["count"] for e in doc["errors"]), reverse=True) == sorted(counts, reverse=True)
    assert any("stopped recording errors" in n for n in doc["notes"])
    # --error-limit=no: all 1,101 contexts recorded, no such note
    res, text, doc, raw_all, raw_counts, vglog = out["no"]
    assert "More than 1000 different errors" not in vglog
    assert int(re.search(r"n_errs_shown (\d+)", raw_counts).group(1)) == 1101
    assert len(doc["errors"]) == 1101 and not any("stopped recording" in n for n in doc["notes"])


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_vg_attach_among_valgrind_servers_and_stale_fifos(tmp_path):
    """Two pool servers already running under valgrind and 40 stale vgdb FIFOs (a long-lived
    /tmp): vg-attach lists both live ones and counts the stale FIFOs in one bounded line;
    vg-attach PID connects to the one asked, vg-leaks answers about it (its 300 live blocks),
    and after gdb detaches both servers answer their clients again."""
    binary = compile_c(SERVER, flags=["-g", "-O0", "-pthread"])
    env = {"TMPDIR": str(tmp_path)}
    with open("/proc/sys/kernel/pid_max") as fh:
        pid_max = int(fh.read())
    dead = [pid_max + 1 + i for i in range(40)]                     # pids that cannot exist
    for pid in dead:
        os.mkfifo(tmp_path / f"vgdb-pipe-from-vgdb-to-{pid}-by-nobody-on-nowhere")
    vg = ["valgrind", "--vgdb=yes", "--leak-check=full", f"--log-file={tmp_path}/vg-%p.log"]
    with background([*vg, binary, "4", "0", "300"], ready="ready", timeout=120, env=env) as (one, l1), \
            background([*vg, binary, "2", "0", "5"], ready="ready", timeout=120, env=env) as (two, l2):
        port1, port2 = int(l1[-1].split()[1]), int(l2[-1].split()[1])
        first1, first2 = ask(port1), ask(port2)
        res = run_gdb([*json_wrapped("vg-attach --json"), "echo @@LIST@@\\n", "vg-attach",
                       "echo @@END@@\\n", *json_wrapped(f"vg-attach {one.pid} --json"),
                       *json_wrapped("vg-leaks --json"),
                       "echo @@BLOCKS@@\\n", "vg-block live[0]", "echo @@END@@\\n",
                       *json_wrapped("vg-block live[0] --json"), *json_wrapped("vg-block live[299] --json"),
                       *json_wrapped("vg-block live[299] --limit 0 --json"),
                       "python import json; doc = json.loads(gdb.execute('vg-block live[0] --json', "
                       "to_string=True)); print('@@RAW@@' + json.dumps(gdb.execute('monitor block_list %d' "
                       "% doc['result']['leak_record']['record'], to_string=True)))",
                       "detach"], env=env, timeout=300)
        assert_no_traceback(res)
        after1, after2 = ask(port1), ask(port2)
        assert one.poll() is None and two.poll() is None
    listing, attached, leaks, first50, last50, every = res.json_documents()[:6]
    assert {p["pid"] for p in listing["processes"]} == {one.pid, two.pid}
    assert sorted(listing["stale_fifo_pids"]) == dead
    text = res.stdout.split("@@LIST@@\n")[1].split("@@END@@")[0]
    stale = [ln for ln in text.splitlines() if "stale vgdb FIFO" in ln]
    assert stale and stale[0].startswith("ignored 40 stale vgdb FIFOs of dead pids: ")
    assert "and 32 more" in stale[0] and len(stale[0]) < 200, stale
    assert attached["connected"] and attached["pid"] == one.pid
    # 300 blocks of 16+(i%64) bytes stay live (still reachable) at the server's allocation line
    sizes = sum(16 + i % 64 for i in range(300))
    src = SERVER.read_text().splitlines()
    line = next(n for n, ln in enumerate(src, 1) if "live[i] = malloc" in ln)
    rows = [r for r in leaks["records"] if r["location"]["line"] == line]
    assert [(r["kind"], r["bytes"], r["blocks"]) for r in rows] == [("reachable", sizes, 300)], rows
    assert after1 > first1 and after2 > first2
    # vg-block on the 300-block record: valgrind's first 50 blocks (its own 'block_list N', in
    # full, is the oracle), the rest said in a note; --limit 0 gives all 300
    raw = json.loads(re.search(r"^@@RAW@@(.*)$", res.stdout, re.M).group(1))
    oracle = [int(a, 16) for a in re.findall(r"==\d+== (0x[0-9A-F]+)\[\d+\]", raw)]
    assert len(oracle) == 300
    assert [int(b["address"], 16) for b in first50["block_list"]] == oracle[:50]
    assert any("first 50 of the record's 300 blocks" in n for n in first50["notes"])
    assert [int(b["address"], 16) for b in every["block_list"]] == oracle
    assert not any("first" in n for n in every["notes"]), every["notes"]
    assert any("do not include this block" in n for n in last50["notes"]), last50["notes"]
    text = res.stdout.split("@@BLOCKS@@\n")[1].split("@@END@@")[0]
    assert len(re.findall(r"^0x[0-9a-f]+ +\d+", text, re.M)) == 50, text


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_vg_leaks_thousands_of_records_through_one_wrapper(tmp_path):
    """3,000 loss records all allocated by one wrapper (leak()) from 3,000 call lines: the text
    shows the 50 largest, counts the rest exactly (valgrind's own records: the oracle), says
    the records share one site and how to tell them apart; --group-by 2 then gives one site per
    call line; --json keeps every record."""
    lines = ["#include <stdlib.h>", "void *keep[3000];", "volatile int sink;",
             "__attribute__((noinline)) void *leak(int n) { return malloc(16 + n); }   /* SITE */",
             "void done(void) { sink = 0; }", "int main(void) {"]
    lines += [f"  leak({i % 50});" if i % 2 else f"  keep[{i}] = leak({i % 50});" for i in range(3000)]
    lines += ["  done();", "  return 0;", "}"]
    source = "\n".join(lines) + "\n"
    site = next(n for n, ln in enumerate(source.splitlines(), 1) if "SITE" in ln)
    binary = compile_c(source, name="many_leaks", flags=["-g", "-O0"])
    res = run_gdb([f"vg-start --stdout {tmp_path}/out {binary}", "break done", "continue",
                   "python import json; print('@@RAW@@' + json.dumps("
                   "gdb.execute('monitor leak_check full reachable any', to_string=True)))",
                   "echo @@TEXT@@\\n", "vg-leaks", "echo @@END@@\\n", *json_wrapped("vg-leaks --json"),
                   *json_wrapped("vg-leaks --group-by 2 --kinds definite --json")],
                  timeout=300, env={"TMPDIR": str(tmp_path)})
    assert_no_traceback(res)
    raw = json.loads(re.search(r"^@@RAW@@(.*)$", res.stdout, re.M).group(1))
    recs = [(int(b.replace(",", "")), int(k.replace(",", "")), kind) for b, k, kind in re.findall(
        r"== ([\d,]+) bytes in ([\d,]+) blocks are (definitely lost|still reachable|possibly lost|"
        r"indirectly lost) in loss record", raw)]
    assert len(recs) == 3000
    text = res.stdout.split("@@TEXT@@\n")[1].split("@@END@@")[0]
    assert "3,000 loss records, 3,000 matched, 50 shown" in text
    rows = re.findall(r"^ *\d+ +(?:definite|reachable|possible|indirect) +([\d,]+) ", text, re.M)
    assert len(rows) == 50
    by_size = sorted(recs, reverse=True)
    assert sorted((int(b.replace(",", "")) for b in rows), reverse=True) == [r[0] for r in by_size[:50]]
    rest_bytes, rest_blocks = sum(r[0] for r in by_size[50:]), sum(r[1] for r in by_size[50:])
    assert (f"... 2,950 more records, smaller ({rest_bytes:,} bytes in {rest_blocks:,} blocks)"
            in " ".join(text.split())), text[-800:]
    assert f"3,000 of the 3,000 records are allocated in leak (many_leaks.c:{site})" in " ".join(text.split())
    assert len(text.splitlines()) < 80
    full, grouped = res.json_documents()
    assert len(full["records"]) == 3000
    definite = sum(1 for r in recs if r[2] == "definitely lost")
    assert len(grouped["groups"]) == definite
    assert len({(g["location"]["file"], g["location"]["line"]) for g in grouped["groups"]}) == definite


# -- ktrace bound to an attached server ---------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="BPF needs root")
@pytest.mark.skipif(os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1", reason="host test")
def test_ktrace_on_an_attached_server_ends_and_leaves_it_serving():
    """gdb -p on the pool server: a blocking ktrace of the stopped server is refused at once
    (it waited out --timeout, or for ever with --count: no thread of a stopped process reaches
    a probe); 'ktrace ... --run --count 1' continues it, and when a client's connection makes a
    worker thread call accept(2) the trace ends and ktrace interrupts the server (it used to
    keep it running until Ctrl-C).  Oracles: /proc/PID/task for the event's thread, the
    client's answers, bpftool for programs left behind, /proc/PID/status after detach."""
    import threading
    import time

    binary = compile_c(SERVER, flags=["-g", "-O0", "-pthread"])
    with background([binary, "4", "0"], ready="ready") as (proc, lines):
        port = int(lines[-1].split()[1])
        first = ask(port)
        answers = []
        client = threading.Timer(4.0, lambda: answers.append(ask(port)))
        client.start()
        t0 = time.monotonic()
        tp = "tracepoint:syscalls:sys_enter_accept"
        res = run_gdb([f"ktrace {tp} --timeout 30", "echo @@REFUSED@@\\n",
                       *json_wrapped(f"ktrace {tp} --run --count 1 --timeout 120 --json"),
                       "info program", "detach"], pid=proc.pid, timeout=100)
        elapsed = time.monotonic() - t0
        client.join(20)
        tasks = {int(t) for t in os.listdir(f"/proc/{proc.pid}/task")}
        after = status(proc.pid)
        served = ask(port)
    assert_no_traceback(res)
    refused = [ln for ln in res.stderr.splitlines() if "holds process" in ln]
    assert refused and f"while gdb holds process {proc.pid} stopped" in refused[0] and "--run" in refused[0]
    assert "@@REFUSED@@" in res.stdout
    # with --run gdb prints the stop (ktrace's interrupt) before the document
    chunk = res.stdout.split(JSON_BEGIN, 1)[-1].split(JSON_END, 1)[0]
    assert "received signal SIGINT" in chunk.split("\n{")[0]
    doc = unwrap(json.loads(chunk[chunk.index("\n{"):]))
    assert doc["end_reason"] == "count" and len(doc["events"]) == 1, doc
    ev = doc["events"][0]
    assert ev["pid"] == proc.pid and ev["tid"] in tasks and ev["tid"] != proc.pid
    assert "interrupted by ktrace when the trace ended (count" in doc["stop_reason"]
    assert elapsed < 60, elapsed
    assert answers and answers[0] > first and served > answers[0]
    assert after["TracerPid"] == "0" and after["State"][0] in "SR", after
    if shutil.which("bpftool"):
        import subprocess

        progs = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
        assert "gtk_kt" not in progs


_LEAKS_THEN_ERROR = """#include <stdlib.h>
#include <unistd.h>
volatile int sink;
__attribute__((noinline)) void *leak(int n) { return malloc(16 + n); }
void checkpoint(void) { sink = 0; }
void checkpoint2(void) { sink = 1; }
int main(void) {
%s
  checkpoint();
  write(1, "ready\\n", 6);
  char c;
  if (read(0, &c, 1) < 0) return 1;                 /* the test says when */
  int *u = malloc(8);
  if (u[1] == 7) sink++;                            /* ERROR-LINE: one memcheck error */
  write(1, "erred\\n", 6);
  checkpoint2();
  for (;;) pause();
}
"""


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_leak_searches_and_valgrinds_error_limit(tmp_path):
    """valgrind counts every loss record a leak search prints as an error shown; under its
    default --error-limit=yes it records no error at all past 1,000: one vg-leaks of 1,100
    records switched a server's error reporting off (valgrind's log: 'More than 1000 different
    errors detected', and the next real error is not counted).  vg-leaks on a vg-attach'ed
    valgrind says so; vg-start passes --error-limit=no, and the error after the same search is
    recorded (valgrind's own log and n_errs_found are the oracles)."""
    body = "\n".join(f"  leak({i % 50});" for i in range(1100))
    binary = compile_c(_LEAKS_THEN_ERROR % body, name="leaks_then_error", flags=["-g", "-O0"])
    env = {"TMPDIR": str(tmp_path)}
    raw_counts = ("python import json; print('@@RAW@@' + json.dumps("
                  "gdb.execute('monitor v.info n_errs_found', to_string=True)))")
    # 1. a valgrind started by hand (its defaults), attached
    log = tmp_path / "attached.log"
    proc = subprocess.Popen(["valgrind", "--vgdb=yes", f"--log-file={log}", binary], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, **env))
    try:
        assert proc.stdout.readline() == "ready\n"
        res = run_gdb([f"vg-attach {proc.pid}", *json_wrapped("vg-leaks --json"), raw_counts, "detach"],
                      env=env, timeout=300)
        assert_no_traceback(res)
        proc.stdin.write("x")
        proc.stdin.flush()
        assert proc.stdout.readline() == "erred\n"
        after = run_gdb([f"vg-attach {proc.pid}", *json_wrapped("vg-errors --json"), raw_counts, "detach"],
                        env=env, timeout=300)
        assert_no_traceback(after)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)
    leaks = res.json_documents()[0]
    shown = int(re.search(r"n_errs_shown (\d+)", _raw(res)[0]).group(1))
    assert len(leaks["records"]) == shown >= 1100
    assert any("stopped recording errors" in n and "leak search" in n for n in leaks["notes"]), leaks["notes"]
    # valgrind's own word that the error after the search went unrecorded
    assert "More than 1000 different errors detected" in log.read_text()
    assert int(re.search(r"n_errs_found (\d+)", _raw(after)[0]).group(1)) == 0
    assert any("stopped recording errors" in n for n in after.json_documents()[0]["notes"])
    # 2. vg-start: --error-limit=no, the same search, then the error is recorded
    log2 = tmp_path / "started.log"
    (tmp_path / "in").write_bytes(b"x")
    res = run_gdb([f"vg-start --stdin {tmp_path}/in --stdout {tmp_path}/out --log {log2} {binary} -- "
                   "--vgdb-error=999999", "break checkpoint", "break checkpoint2", "continue",
                   *json_wrapped("vg-leaks --json"), "continue", *json_wrapped("vg-errors --json"), raw_counts],
                  env=env, timeout=300)
    assert_no_traceback(res)
    started, errs = res.json_documents()[:2]
    assert len(started["records"]) >= 1100 and not any("stopped recording" in n for n in started["notes"])
    assert int(re.search(r"n_errs_found (\d+)", _raw(res)[0]).group(1)) == 1
    assert errs["counts"]["found_count"] == 1
    line = next(n for n, ln in enumerate((_LEAKS_THEN_ERROR % body).splitlines(), 1) if "ERROR-LINE" in ln)
    assert errs["last_error"]["what"].startswith("Conditional jump") and \
        any(f["line"] == line for f in errs["last_error"]["stack"])
    assert "More than 1000 different errors" not in log2.read_text()


def _raw(res) -> list:
    return [json.loads(m) for m in re.findall(r"^@@RAW@@(.*)$", res.stdout, re.M)]
