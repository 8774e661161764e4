"""ktrace and ktask with a multi-threaded inferior, in the QEMU guest (Debian's kernel: kprobes,
/proc/kcore).  --pid filters the thread group (every thread's events, no other process); each
event names its thread (tid = gdb's LWP); `ktask --thread` is the selected gdb thread's own
task_struct, not the group leader's.  Oracles: gdb's ptid (ptrace's LWP), the kernel's
/proc/PID/task/TID/comm (each thread names itself), the program's own call counts."""

import pytest

from tests.support.gdbrun import compile_c, json_wrapped, marked_documents, run_gdb, unwrap
from tests.support.ktrace_oracles import wait_no_programs

pytestmark = pytest.mark.guest

SOURCE = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>
void in_thread(void) { __asm__ volatile("" ::: "memory"); }
static void *worker(void *arg)
{
    pthread_setname_np(pthread_self(), "thr_worker");
    for (int i = 0; i < 3; i++) getppid();
    in_thread();
    return 0;
}
int main(void)
{
    pthread_t t;
    for (int i = 0; i < 2; i++) getppid();
    pthread_create(&t, 0, worker, 0);
    pthread_join(t, 0);
    return 0;
}
"""


def _docs(out: str) -> list:
    return [unwrap(d) for d in marked_documents(out)]


def test_threads_events_name_their_thread_and_ktask_thread_is_the_selected_threads_task():
    prog = compile_c(SOURCE, name="thrprobe", flags=["-g", "-O0", "-pthread"])
    res = run_gdb(["break in_thread", "start > /dev/null",
                   *json_wrapped("ktrace __x64_sys_getppid --run --json"),
                   "python t = gdb.selected_thread(); print('SEL %d %d' % (t.ptid[0], t.ptid[1]))",
                   "python print('PCOMM ' + open('/proc/%d/task/%d/comm' % gdb.selected_thread().ptid[:2]).read())",
                   *json_wrapped("ktask --thread comm pid tgid --json"),
                   "thread 1",
                   *json_wrapped("ktask --thread comm --json")],
                  program=prog, timeout=900)
    out = res.stdout
    trace, worker_task, main_task = _docs(out)
    pid, lwp = map(int, out.split("SEL ", 1)[1].split()[:2])
    assert lwp != pid and out.split("PCOMM ", 1)[1].split()[0] == "thr_worker"
    ev = sorted(trace["events"], key=lambda e: e["time_ns"])
    # the whole thread group, each event named by its thread; 2 calls in main, 3 in the worker
    assert [(e["pid"], e["tid"], e["comm"]) for e in ev] == \
        [(pid, pid, "thrprobe")] * 2 + [(pid, lwp, "thr_worker")] * 3, ev
    # ktask --thread: the selected thread's (the worker's) task: the one its events came from
    assert worker_task["task_address"] == ev[-1]["task_address"], worker_task
    assert (worker_task["pid"], worker_task["tgid"], worker_task["comm"]) == (lwp, pid, "thr_worker")
    assert worker_task["verified"] and "task list walk" in worker_task["found_by"]
    # after `thread 1`: the leader's task, the one main's events came from
    assert main_task["task_address"] == ev[0]["task_address"] != worker_task["task_address"]
    assert (main_task["pid"], main_task["comm"], main_task["verified"]) == (pid, "thrprobe", True)
    assert wait_no_programs() == []
