"""The seed's two workflows on Debian's 6.1 kernel (kprobes, kcore, BTF), inside the QEMU guest,
and nothing left attached after each way tracing can end.  bcc compiles slowly under TCG, so
each test compiles once.  Oracles: /proc/kallsyms, /proc/PID/limits, bpftool, kprobe_events."""
import json
import os
import signal
import subprocess
import time

import pytest

from tests.support.gdbrun import JSON_BEGIN, JSON_END, gdb_argv, json_wrapped, run_gdb, unwrap
from tests.support.ktrace_oracles import example, kprobe_events, our_programs, wait_gone, wait_no_programs

pytestmark = pytest.mark.guest

TIMEOUT = 900


def _docs(res) -> list:
    out = []
    for chunk in res.stdout.split(JSON_BEGIN)[1:]:
        chunk = chunk.split(JSON_END, 1)[0]
        start = 0 if chunk.lstrip().startswith("{") else chunk.index("\n{")
        out.append(unwrap(json.loads(chunk[start:])))
    return out


def _kallsyms() -> dict[int, str]:
    out = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            a, _, name = line.split()[:3]
            out.setdefault(int(a, 16), name)
    return out


KPROBES_LIST = "/sys/kernel/debug/kprobes/list"


def _kprobes_on(function: str) -> list[str]:
    """The kernel's own list of registered kprobes (debugfs) for *function*."""
    with open(KPROBES_LIST) as f:
        return [l for l in f if f" {function}+0x0" in l]


def _leftovers_clean(function: str = "vfs_read"):
    assert wait_no_programs(("gtk_kt", "kfunc__", "kretfunc__")) == []
    events = kprobe_events()
    assert "gtk" not in events and "_bcc_" not in events, events    # bcc's kprobe_events names
    for fn in (function, "thp_get_unmapped_area", "expand_downwards"):
        assert _kprobes_on(fn) == [], fn


def test_mmap_workflow_names_the_get_unmapped_area_callback():
    from tests.support.guest_ext4 import ext4_mount

    prog = example("mmap_file")
    with ext4_mount() as mnt:           # ext4's f_op->get_unmapped_area is thp_get_unmapped_area
        data = mnt / "data"
        data.write_bytes(b"x" * (4 << 20))
        res = run_gdb(["break after_mmap", f"start {data} > /dev/null",
                       *json_wrapped("ktrace thp_get_unmapped_area --args len --run --json"),
                       *json_wrapped("ktask $ktask pid comm mm->get_unmapped_area --json")],
                      program=prog, timeout=TIMEOUT)
    trace, task = _docs(res)
    assert trace["attach_method"] == "kprobe" and trace["traced_function"] == "thp_get_unmapped_area"
    mine = [e for e in trace["events"] if e["pid"] == trace["pid"]]
    assert mine and all(e["comm"] == "mmap_file" for e in mine)
    assert mine[-1]["args"]["len"] == 1 << 22                     # the program's mmap length
    # the task address read back through kcore is the traced process
    assert task["task"] == mine[-1]["task"]
    assert task["pid"] == trace["pid"] and task["comm"] == "mmap_file" and task["verified"]
    cb = next(f for f in task["fields"] if f["path"] == "mm->get_unmapped_area")
    assert cb["value"] in _kallsyms(), cb                # a function the kernel itself names
    assert _kallsyms()[cb["value"]] in cb["text"]
    _leftovers_clean()


def test_stack_overflow_workflow_size_retval_and_rlimit():
    prog = example("teststack")
    res = run_gdb(["start > /dev/null",
                   *json_wrapped("ktrace acct_stack_growth --ret --args size --run --json"),
                   *json_wrapped("ktask $ktask signal->rlim[3].rlim_cur --json"),
                   *json_wrapped("python gdb.execute('ktask %d comm --json' % gdb.selected_inferior().pid)"),
                   "python import gdb; print('LIMITS' + open('/proc/%d/limits' % gdb.selected_inferior().pid).read())"],
                  program=prog, timeout=TIMEOUT)
    trace, task, by_pid = _docs(res)
    inlined = "acct_stack_growth" not in set(_kallsyms().values())
    if inlined:
        assert trace["traced_function"] == "expand_downwards" and "inlined" in trace["note"]
    assert trace["attach_method"] == "kprobe+kretprobe"
    assert "SIGSEGV" in trace["stop_reason"]
    buf = 1920 * 1080 * 8
    failed = [e for e in trace["events"] if e["retval"] == -12]
    assert failed, trace["events"]
    size = failed[-1]["args"]["size"]
    assert buf <= size <= buf + (1 << 20), size                       # ~15.9 MiB
    from gdb_toolkit.common.procfs import parse_limits
    limits = parse_limits(res.stdout.split("LIMITS", 1)[1])
    rlim = task["fields"][0]["value"]
    assert rlim == limits["Max stack size"].soft
    assert task["pid"] == trace["pid"] and task["comm"] == "teststack"
    # the pid found by walking init_task.tasks through kcore is the same task_struct
    assert by_pid["task"] == task["task"] and by_pid["found_by"].startswith("task list walk")
    assert by_pid["fields"][0]["value"] == "teststack" and by_pid["verified"]
    _leftovers_clean()


def test_no_leftovers_after_worker_sigkill_ctrl_c_and_gdb_sigkill():
    from gdb_toolkit.ktrace.api import TraceSpec, start
    s = start(TraceSpec("vfs_read", method="kprobe", ret=True))
    assert sorted(our_programs()) == ["gtk_kt_entry", "gtk_kt_exit"]
    kinds = sorted(l.split()[1] for l in _kprobes_on("vfs_read"))
    assert kinds == ["k", "r"], _kprobes_on("vfs_read")          # a kprobe and a kretprobe, really
    os.kill(s.proc.pid, signal.SIGKILL)
    assert wait_gone(s.proc.pid)
    _leftovers_clean()
    s.stop()
    # Ctrl-C: the same path as gdb's (SIGINT to the worker, which detaches and says 'end')
    s = start(TraceSpec("vfs_read", method="kprobe"))
    end = s.stop()
    assert end["reason"] == "stopped" and end["detached"]
    _leftovers_clean()
    # gdb SIGKILL: PR_SET_PDEATHSIG takes the worker down
    prog = example("mmap_file")
    argv = gdb_argv(["start", "ktrace vfs_read --method kprobe", "shell sleep 600"], program=prog)
    gdb = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        worker, deadline = None, time.monotonic() + TIMEOUT
        while worker is None and time.monotonic() < deadline:
            out = subprocess.run(["pgrep", "-P", str(gdb.pid), "-f", "gdb_toolkit.ktrace.worker"],
                                 capture_output=True, text=True).stdout.split()
            worker = int(out[0]) if out and our_programs() else None
            time.sleep(0.5)
        assert worker
        os.kill(gdb.pid, signal.SIGKILL)
        assert wait_gone(worker, 60)
        _leftovers_clean()
    finally:
        try:
            os.killpg(gdb.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        gdb.wait(timeout=60)
