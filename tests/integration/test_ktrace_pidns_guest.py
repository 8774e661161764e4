"""ktrace and ktask with gdb inside a child pid namespace (a container: ``unshare --pid --fork
--mount-proc``), in the QEMU guest.  The pids gdb sees there are not the kernel's global pids
that bpf_get_current_pid_tgid returns and task_struct->pid holds: a filter or a task-list
walk on gdb's pid finds whatever host process has that number as its global pid.

The trap is set on purpose: a decoy process in the init namespace gets some global pid D; gdb
in the container makes its inferior's namespace pid D too (/proc/sys/kernel/ns_last_pid).
Oracles: the program's own loop count (exactly CALLS getppid(2) calls), the decoy's and the
inferior's comm (different binaries), the decoy's pid from Popen (the init namespace), the
kernel's /proc in the container for the inferior's pid, bpftool and the debugfs kprobes list
for leftovers."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.gdbrun import compile_c, gdb_argv, json_wrapped, marked_documents, unwrap
from tests.support.ktrace_oracles import wait_no_programs

needs_unshare = pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                                   reason="needs root and unshare(1) (util-linux) for a pid namespace")
host_only = pytest.mark.skipif(os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1", reason="host tests")

CALLS = 40
SOURCE = r"""
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
void done(void) { __asm__ volatile("" ::: "memory"); }
int main(int argc, char **argv)
{
    if (argc > 1) {                       /* the decoy: getppid forever */
        for (;;) { getppid(); usleep(1000); }
    }
    for (int i = 0; i < %d; i++) { getppid(); usleep(2000); }
    done();
    return 0;
}
""" % CALLS


_docs = marked_documents


def _kprobes_on(function: str) -> list[str]:
    with open("/sys/kernel/debug/kprobes/list") as f:
        return [l for l in f if f" {function}+0x0" in l]


# a process in a pid namespace nested below gdb's: ktrace --pid with its pid (in gdb's namespace)
NESTED = ("python import subprocess, time; "
          "n = subprocess.Popen(['unshare', '--pid', '--fork', 'sleep', '60']); time.sleep(0.5); "
          "kid = open('/proc/%d/task/%d/children' % (n.pid, n.pid)).read().split()[0]; "
          "gdb.execute('ktrace vfs_read --pid %s --count 1 --timeout 2 --json' % kid)")


def _in_container(commands: list[str], env: dict | None = None):
    """gdb in a new pid namespace (its own /proc) debugging nsprobe, whose namespace pid is
    made equal to the global pid of a decoy (the same program looping forever, named nsdecoy)
    running in the init namespace.  Returns (gdb's stdout, the decoy's pid)."""
    prog = compile_c(SOURCE, name="nsprobe", flags=["-g", "-O0"])
    decoy_bin = compile_c(SOURCE, name="nsdecoy", flags=["-g", "-O0"])
    decoy = subprocess.Popen([str(decoy_bin), "forever"])
    try:
        d = decoy.pid                                     # its global pid (we are in the init ns)
        cmds = ["set startup-with-shell off", "break done",
                f"python open('/proc/sys/kernel/ns_last_pid', 'w').write('{d - 1}')",
                "starti", "python print('INFPID %d' % gdb.selected_inferior().pid)", *commands]
        argv = ["unshare", "--pid", "--fork", "--mount-proc", *gdb_argv(cmds, program=prog)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                             stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
        sys.stdout.write(res.stdout[-6000:] + res.stderr[-3000:])
        assert decoy.poll() is None, "the decoy died"
    finally:
        decoy.kill()
        decoy.wait()
    infpid = int(res.stdout.split("INFPID ", 1)[1].split()[0])
    if infpid != d:
        pytest.skip(f"ns_last_pid did not give the inferior pid {d} (got {infpid}): no trap set")
    return res.stdout, d


def _inferior_events(doc: dict, d: int) -> list:
    assert doc["ok"], doc
    t = unwrap(doc)
    comms = {e["comm"] for e in t["events"]}
    assert comms == {"nsprobe"}, comms                     # never the decoy (global pid d)
    assert len(t["events"]) == CALLS, len(t["events"])     # every call of the loop, no other
    assert {(e["pid"], e["tid"]) for e in t["events"]} == {(d, d)}   # as gdb and /proc see them
    return t["events"]


def _refused(doc: dict) -> None:
    assert not doc["ok"], doc
    assert "nested below gdb's" in doc["error"]["cause"] and doc["error"]["fix"], doc


@pytest.mark.gdb
@needs_unshare
@host_only
def test_ktrace_in_a_child_pid_namespace_traces_the_inferior_not_the_host_pid_twin():
    """This host's kernel has tracepoints: the sys_enter/sys_exit pair (the in-flight hash is
    keyed by the global thread id, the record says the namespace's), --all (a task outside
    gdb's namespace shows pid 0, gdb and the worker are excluded by their namespace pids),
    the refusal of a nested namespace; both loaders' programs."""
    tp = "ktrace tracepoint:syscalls:sys_enter_getppid"
    out, d = _in_container([*json_wrapped(f"{tp} --ret --run --json"),
                            *json_wrapped(f"{tp} --all --count 3 --json"), *json_wrapped(NESTED)])
    ret, every, refused = _docs(out)
    out, d2 = _in_container([*json_wrapped(f"{tp} --ret --run --json"),
                             *json_wrapped(f"{tp} --all --count 3 --json")],
                            env={"GDB_TOOLKIT_KTRACE_LOADER": "bcc"})
    ret_bcc, every_bcc = _docs(out)
    for doc, pid in ((ret, d), (ret_bcc, d2)):
        events = _inferior_events(doc, pid)
        assert all(e["retval"] == 1 for e in events)       # getppid() in the container: its pid 1
    for doc in (every, every_bcc):
        t = unwrap(doc)
        assert t["count"] == 3 and {e["comm"] for e in t["events"]} == {"nsdecoy"}, t["events"]
        assert {e["pid"] for e in t["events"]} == {0}, t["events"]       # outside gdb's namespace
        assert any("child pid namespace" in n for n in t["notes"]), t["notes"]
    assert unwrap(ret_bcc)["loader"] == unwrap(every_bcc)["loader"] == "bcc"
    assert unwrap(ret)["loader"] == unwrap(every)["loader"] == "assembled"
    _refused(refused)
    assert wait_no_programs(("gtk_kt", "kfunc__", "kretfunc__")) == []


@pytest.mark.guest
@needs_unshare
def test_ktrace_and_ktask_in_a_child_pid_namespace_never_pick_the_host_process_with_that_pid():
    """Debian's kernel in the guest: a kprobe, $ktask and ktask PID read through /proc/kcore."""
    out, d = _in_container([*json_wrapped("ktrace __x64_sys_getppid --run --json"),
                            *json_wrapped("ktask $ktask comm --json"),
                            # the inferior's pid as gdb sees it: d (the decoy's global pid)
                            *json_wrapped("python gdb.execute('ktask %d comm --json' % "
                                          "gdb.selected_inferior().pid)"),
                            "python print('PROCCOMM ' + open('/proc/%d/comm' % gdb.selected_inferior().pid).read())",
                            *json_wrapped(NESTED)])
    trace, by_addr, by_pid, refused = _docs(out)
    task = _inferior_events(trace, d)[-1]["task_address"]
    assert unwrap(trace)["attach_method"] == "kprobe"
    # $ktask is the inferior's task; its kernel pid is not the decoy's, /proc checks its comm
    a = unwrap(by_addr)
    assert a["task_address"] == task and a["comm"] == "nsprobe" and a["pid"] != d, a
    assert a["verified"] and a["proc_comm"] == "nsprobe" and a["namespace_pid"] == d, a
    assert out.split("PROCCOMM ", 1)[1].split()[0] == "nsprobe"
    # ktask PID counts the pid in gdb's namespace: the same task, not the decoy
    p = unwrap(by_pid)
    assert p["task_address"] == task and p["comm"] == "nsprobe" and p["verified"], p
    assert (p["namespace_pid"], p["namespace_tgid"]) == (d, d) and p["pid"] == a["pid"], p
    _refused(refused)
    assert wait_no_programs() == []
    assert _kprobes_on("__x64_sys_getppid") == [] and _kprobes_on("vfs_read") == []


@pytest.mark.gdb
@needs_unshare
@host_only
def test_gdb_on_the_host_attached_to_a_containerized_process_traces_it_by_its_global_pid():
    """The other direction: gdb in the init namespace attaches (by its global pid) to a process
    that is pid 1 of a container.  No translation: the pids are the kernel's; the container's
    number (1) must not be used.  Oracle: the NSpid line of /proc/PID/status (global, then the
    container's)."""
    prog = compile_c(SOURCE, name="nsdecoy", flags=["-g", "-O0"])
    box = subprocess.Popen(["unshare", "--pid", "--fork", str(prog), "forever"])
    pid = None
    try:
        import time

        for _ in range(50):
            kids = open(f"/proc/{box.pid}/task/{box.pid}/children").read().split()
            if kids:
                pid = int(kids[0])
                break
            time.sleep(0.1)
        assert pid, "the container's process did not start"
        nspid = [l.split()[1:] for l in open(f"/proc/{pid}/status") if l.startswith("NSpid:")][0]
        assert nspid == [str(pid), "1"], nspid
        res = subprocess.run(gdb_argv(["tbreak usleep", "continue", "tbreak usleep",
                                       *json_wrapped("ktrace tracepoint:syscalls:sys_enter_getppid "
                                                     "--run --json")], pid=pid),
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    finally:
        if pid:
            os.kill(pid, 9)             # a pid namespace's init ignores SIGTERM from outside
        box.wait()
    doc = _docs(res.stdout)[0]
    t = unwrap(doc)
    assert t["pid"] == pid and t["events"], res.stdout[-3000:]
    assert {(e["pid"], e["tid"], e["comm"]) for e in t["events"]} == {(pid, pid, "nsdecoy")}
    assert not any("namespace" in n for n in t["notes"]), t["notes"]
