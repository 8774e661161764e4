"""ktrace in real-world conditions on this host (tracepoints).

A busy function: gdb keeps a bounded number of events (the last ones), counts the
rest and says so; the terminal shows a bounded table and, at a stop of a background trace, a
bounded number of event lines.  Oracle: the program's own loop (close(2) of fd 1000+i, i <
CALLS, then 2000+i), so which events are the last ones is known without the code under test.
The bound is lowered with GDB_TOOLKIT_KTRACE_KEEP so that the test needs no high event rate.

A fork followed by gdb (follow-fork-mode child): the trace stays on the pid it was armed for,
and says that gdb now debugs another process (oracle: gdb's own inferior list)."""
import json
import os

import pytest

from tests.support.gdbrun import JSON_BEGIN, JSON_END, compile_c, json_wrapped, marked_documents, run_gdb, unwrap
from tests.support.ktrace_oracles import wait_no_programs

pytestmark = [pytest.mark.gdb,
              pytest.mark.skipif(os.geteuid() != 0, reason="BPF needs root"),
              pytest.mark.skipif(os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1", reason="host tests")]

CALLS, KEEP = 400, 50
SOURCE = r"""
#include <unistd.h>
void done(void) { __asm__ volatile("" ::: "memory"); }
int main(void)
{
    for (int i = 0; i < %d; i++) close(1000 + i);     /* EBADF: nothing is closed */
    done();
    for (int i = 0; i < %d; i++) close(2000 + i);
    done();
    return 0;
}
""" % (CALLS, CALLS)


def test_busy_trace_keeps_the_last_events_counts_all_and_says_so():
    prog = compile_c(SOURCE, name="closer", flags=["-g", "-O0"])
    tp = "ktrace tracepoint:syscalls:sys_enter_close --args fd"
    res = run_gdb(["break done", "start > /dev/null",
                   *json_wrapped(f"{tp} --run --json"),
                   f"{tp} --run",               # the terminal form of the same: a fresh trace
                   "print $kevents"],
                  program=prog, env={"GDB_TOOLKIT_KTRACE_KEEP": str(KEEP)}, timeout=300)
    out = res.stdout
    chunk = out.split(JSON_BEGIN, 1)[1].split(JSON_END, 1)[0]
    doc = unwrap(json.loads(chunk[chunk.index("\n{"):]))
    mine = [e["args"]["fd"] for e in doc["events"]]
    assert doc["count"] == CALLS, doc["count"]                        # every call counted
    assert mine == [1000 + i for i in range(CALLS - KEEP, CALLS)], mine   # the last KEEP kept
    assert any(f"kept the last {KEEP} of {CALLS} events" in n for n in doc["notes"]), doc["notes"]
    # the terminal: the count, the note, the last KEEP rows (no more), $kevents = all of them
    text = out.split(JSON_END, 1)[1]
    assert f"kept the last {KEEP} of {CALLS} events" in " ".join(text.split())
    assert f"{CALLS} event(s), ended: stopped" in text
    rows = [l.split() for l in text.splitlines() if l.lstrip().startswith("+") and l.count("closer")]
    assert [int(r[-1]) for r in rows] == [2000 + i for i in range(CALLS - KEEP, CALLS)], rows
    assert f"$kevents = {CALLS}" in text and f"= {CALLS}\n" in text.rsplit("$", 1)[-1] + "\n"
    assert wait_no_programs() == []


def test_background_trace_prints_a_bounded_number_of_lines_at_a_stop():
    """Armed in the background (no --run/--count/--timeout), the stop hook printed one line per
    event since the last stop: CALLS lines here, a million under a busy function."""
    prog = compile_c(SOURCE, name="closer", flags=["-g", "-O0"])
    res = run_gdb(["break done", "start > /dev/null",
                   "ktrace tracepoint:syscalls:sys_enter_close --args fd", "continue",
                   "print $kevents", "ktrace --stop"], program=prog, timeout=300)
    out = res.stdout
    lines = [l for l in out.splitlines() if l.startswith("[ktrace] closer pid")]
    assert f"[ktrace] {CALLS} new event(s); the last 20:" in out, out[-3000:]
    assert [int(l.split("'fd': ")[1].rstrip("}")) for l in lines] == \
        [1000 + i for i in range(CALLS - 20, CALLS)], lines
    assert f"$1 = {CALLS}" in out
    assert wait_no_programs() == []


FORKER = r"""
#include <sys/wait.h>
#include <unistd.h>
void done(void) { __asm__ volatile("" ::: "memory"); }
int main(void)
{
    for (int i = 0; i < 3; i++) getppid();
    pid_t c = fork();
    if (c == 0) { for (int i = 0; i < 5; i++) getppid(); done(); return 0; }
    waitpid(c, 0, 0);
    return 0;
}
"""


def test_fork_followed_by_gdb_is_said_not_silently_reported_as_the_process_at_hand():
    prog = compile_c(FORKER, name="forker", flags=["-g", "-O0"])
    res = run_gdb(["set follow-fork-mode child", "set detach-on-fork on", "break done",
                   "start > /dev/null",
                   *json_wrapped("ktrace tracepoint:syscalls:sys_enter_getppid --run --json"),
                   "python print('PIDS', gdb.selected_inferior().pid, "
                   "' '.join(str(i.pid) for i in gdb.inferiors()))"],
                  program=prog, timeout=300)
    out = res.stdout
    chunk = out.split(JSON_BEGIN, 1)[1].split(JSON_END, 1)[0]
    doc = unwrap(json.loads(chunk[chunk.index("\n{"):]))
    child = int(out.split("PIDS ", 1)[1].split()[0])
    assert child != doc["pid"] and "breakpoint" in doc["stop_reason"], (child, doc["pid"])
    assert [e["pid"] for e in doc["events"]] == [doc["pid"]] * 3       # the parent's 3 calls only
    said = [n for n in doc["notes"] if f"gdb now debugs process {child}" in n]
    assert said and f"--pid {child}" in said[0], doc["notes"]
    assert wait_no_programs() == []


def test_without_btf_a_capture_is_refused_in_one_line_and_tracepoints_still_work(tmp_path):
    """/sys/kernel/btf/vmlinux hidden (an empty file bind-mounted over it, in a private mount
    namespace): a value that needs BTF is refused before anything is armed, naming the option
    that asked and one fix; a tracepoint's own fields and its sys_exit return value need no BTF.
    Oracle for the return value: close(2) of a descriptor that is not open fails with EBADF."""
    import errno
    import shutil
    import subprocess

    from tests.support.gdbrun import gdb_argv

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) (util-linux) for a private mount namespace")
    prog = compile_c(SOURCE, name="closer", flags=["-g", "-O0"])
    empty = tmp_path / "empty_btf"
    empty.write_bytes(b"")
    tp = "ktrace tracepoint:syscalls:sys_enter_close --args fd"
    argv = gdb_argv(["break done", "start > /dev/null",
                     *json_wrapped(f"{tp} --capture signal->rlim[3].rlim_cur --run --json"),
                     *json_wrapped(f"{tp} --ret --run --json")], program=prog)
    script = 'mount --bind "$0" /sys/kernel/btf/vmlinux && exec "$@"'
    res = subprocess.run(["unshare", "--mount", "sh", "-c", script, str(empty), *argv],
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    refused, ret = marked_documents(res.stdout)
    assert not refused["ok"], refused
    err = refused["error"]
    assert err["cause"].startswith("--capture: task_struct->signal->rlim[3].rlim_cur needs the kernel's BTF")
    assert err["message"].count("Fix:") == 1 and "CONFIG_DEBUG_INFO_BTF" in err["fix"], err
    r = unwrap(ret)
    assert [e["args"]["fd"] for e in r["events"]] == [1000 + i for i in range(CALLS)]
    assert {e["retval"] for e in r["events"]} == {-errno.EBADF}, r["events"][:3]
    assert wait_no_programs() == []
