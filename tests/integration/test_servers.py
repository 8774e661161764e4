"""The toolkit on a long-running, multi-threaded server it attaches to (examples/servers/).

Oracles: the server's own answers to a client before and after (its request counter), the
figures it prints about its own threads (pthread_getattr_np and the address of a local),
/proc/PID/task, /proc/PID/status (tracer, state, signal masks and dispositions) and
/proc/PID/task/*/children -- never the code under test.
"""
import json
import os
import re
import socket

import pytest

from tests.support.gdbrun import REPO, assert_no_traceback, background, compile_c, json_wrapped, run_gdb

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
                      r"VERDICT .*?stack nearly full -- .*?\n(?:.*\n)*?stack used: .*?\((\d+) B", report, re.M)
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
