"""ktrace/ktask/ktypes on this machine's own kernel (tracepoints only on the 6.18 VM: no kprobes,
no kcore).  Kernel-side truth comes from bpftool, tracefs, /proc/PID/limits and the program itself."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from gdb_toolkit.common.procfs import read_limits
from tests.support.gdbrun import (JSON_BEGIN, JSON_END, assert_no_traceback, gdb_argv, json_wrapped,
                                  run_gdb, unwrap)
from tests.support.ktrace_oracles import example, our_programs, wait_gone, wait_no_programs

pytestmark = [pytest.mark.gdb,
              pytest.mark.skipif(os.geteuid() != 0, reason="BPF needs root"),
              pytest.mark.skipif(os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1", reason="host tests")]

HAS_KPROBES = os.path.exists("/sys/bus/event_source/devices/kprobe")


def run_json(setup, command, **kw):
    """The JSON document of *command*; with --run gdb prints the stop location first."""
    res = run_gdb([*setup, *json_wrapped(command + " --json")], **kw)
    chunk = res.stdout.split(JSON_BEGIN, 1)[-1].split(JSON_END, 1)[0]
    assert "\n{" in chunk, res.output
    return unwrap(json.loads(chunk[chunk.index("\n{"):]))


@pytest.fixture(scope="module")
def mmap_prog():
    return example("mmap_file")


def test_tracepoint_mode_reports_inferior_event_and_capture(mmap_prog):
    setup = ["break after_mmap", "start > /dev/null"]
    doc = run_json(setup, "ktrace tracepoint:syscalls:sys_enter_mmap --args len --ret "
                          "--capture signal->rlim[3].rlim_cur --run", program=mmap_prog)
    assert doc["attach_method"] == "tracepoint+sys_exit"
    mine = [e for e in doc["events"] if e["args"].get("len") == 1 << 22]   # the program's own mmap
    assert len(mine) == 1, doc["events"]
    ev = mine[0]
    assert ev["comm"] == "mmap_file" and ev["pid"] == doc["pid"]
    assert ev["task"] >= 1 << 47                                             # a kernel address
    # the program was started by gdb started by us: it inherited our stack limit
    assert ev["fields"]["signal->rlim[3].rlim_cur"] == read_limits(os.getpid())["Max stack size"].soft
    assert wait_no_programs() == []


def test_function_falls_back_when_kprobes_missing_and_sets_vars(mmap_prog):
    if HAS_KPROBES:
        pytest.skip("this kernel has kprobes")
    res = run_gdb(["break after_mmap", "start", "ktrace thp_get_unmapped_area --args len --run",
                   "p $kevents", "p $ktask", "output $kretval"], program=mmap_prog)
    assert_no_traceback(res)
    out = res.stdout
    assert "not used: kprobe:thp_get_unmapped_area: no kprobes in this kernel (CONFIG_KPROBES is not set)" in out
    assert "tracepoint on syscalls:sys_enter_mmap (requested thp_get_unmapped_area)" in out
    m = re.search(r"pid (\d+) mapped", out)
    assert m and re.search(rf"\+[\d.]+ms\s+{m.group(1)}\s+{m.group(1)}\s+mmap_file", out), out
    assert "$1 = 1" in out and re.search(r"\$2 = \((void|struct task_struct) \*\) 0xffff", out)


def test_kprobe_method_fails_with_the_reason(mmap_prog):
    if HAS_KPROBES:
        pytest.skip("this kernel has kprobes")
    res = run_gdb(["start", "ktrace thp_get_unmapped_area --method kprobe", "echo alive\\n"], program=mmap_prog)
    assert_no_traceback(res)
    err = [l for l in res.stderr.splitlines() if l.startswith("cannot trace")]
    assert len(err) == 1 and "CONFIG_KPROBES is not set" in err[0] and "Fix: boot a kernel" in err[0]
    assert "alive" in res.stdout and our_programs() == []


def test_bad_input_is_one_line():
    res = run_gdb(["ktrace", "ktrace 'bad name'", "ktrace vfs_read --run", "ktrace --stop",
                   "ktrace vfs_read --count 0 --all", "ktask", "ktask 0x10 comm", "echo alive\\n"])
    assert_no_traceback(res)
    err = res.stderr
    assert "a kernel function or tracepoint:CAT:NAME is required" in err
    assert "bad kernel function name" in err
    assert "ktrace --run needs a process, but none is running" in err
    assert "no ktrace is armed" in err
    assert "--count must be positive" in err
    assert "alive" in res.stdout


def test_ktask_without_kcore_offers_capture_mode():
    if os.path.exists("/proc/kcore"):
        pytest.skip("this kernel has /proc/kcore")
    res = run_gdb(["ktask 1 comm"])
    assert_no_traceback(res)
    assert "CONFIG_PROC_KCORE" in res.stderr and "--capture" in res.stderr


def test_ktypes_gives_gdb_the_btf_layout(tmp_path):
    raw = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
                         capture_output=True, text=True).stdout
    size = int(re.search(r"STRUCT 'task_struct' size=(\d+)", raw).group(1))
    res = run_gdb(["ktypes", "p sizeof(struct task_struct)", "ktypes"],
                  env={"XDG_CACHE_HOME": str(tmp_path)})
    assert_no_traceback(res)
    assert f"$1 = {size}" in res.stdout
    assert "built in" in res.stdout and res.stdout.count("ktypes:") == 2


def test_worker_sigkill_and_ctrl_c_leave_nothing():
    from gdb_toolkit.ktrace.api import TraceSpec, start
    s = start(TraceSpec("tracepoint:syscalls:sys_enter_mmap"))
    assert our_programs() == ["gtk_kt_tp"]
    os.kill(s.proc.pid, signal.SIGKILL)
    assert wait_gone(s.proc.pid)
    assert wait_no_programs() == []                 # the kernel dropped them with the fds
    s.stop()
    s = start(TraceSpec("tracepoint:syscalls:sys_enter_mmap"))
    end = s.stop()                                  # SIGINT: the worker detaches itself
    assert end["reason"] == "stopped" and end["detached"] and our_programs() == []


def test_gdb_sigkill_takes_the_worker_down(mmap_prog):
    argv = gdb_argv(["start", "ktrace tracepoint:syscalls:sys_enter_mmap --json", "shell sleep 60"],
                    program=mmap_prog)
    gdb = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    worker = None
    deadline = time.monotonic() + 60
    while worker is None and time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-P", str(gdb.pid), "-f", "gdb_toolkit.ktrace.worker"],
                             capture_output=True, text=True).stdout.split()
        worker = int(out[0]) if out and our_programs() else None
        time.sleep(0.2)
    try:
        assert worker, "worker never armed"
        os.kill(gdb.pid, signal.SIGKILL)
        assert wait_gone(worker), "worker outlived gdb"
        assert wait_no_programs() == []
    finally:
        try:
            os.killpg(gdb.pid, signal.SIGKILL)       # gdb's leftovers (the shell's sleep)
        except ProcessLookupError:
            pass
        gdb.communicate(timeout=30)


def test_armed_while_user_continues_then_stop(mmap_prog):
    res = run_gdb(["break after_mmap", "start > /dev/null", "ktrace tracepoint:syscalls:sys_enter_mmap --args len",
                   "continue", "p $kevents", "ktrace --stop", "ktrace tracepoint:syscalls:sys_enter_mmap",
                   "continue", "python import os, subprocess; print('LEFT', len(subprocess.run(['pgrep', '-P', "
                   "str(os.getpid()), '-f', 'ktrace.worker'], capture_output=True, text=True).stdout.split()))"],
                  program=mmap_prog)
    assert_no_traceback(res)
    out = res.stdout
    assert "armed: continue the program" in out
    assert re.search(r"\[ktrace\] mmap_file pid \d+ task 0xffff[0-9a-f]+ args \{'len': 4194304\}", out), out
    assert "$1 = 1" in out and "1 event(s), ended: stopped" in out
    # the second trace ends when the inferior exits: no worker, no programs left
    assert "[ktrace] inferior exited: tracing stopped" in out and "LEFT 0" in out
    assert wait_no_programs() == []


def test_completion_of_kernel_functions_and_tracepoints():
    res = run_gdb(["complete ktrace thp_get_unmapp", "complete ktrace tracepoint:syscalls:sys_enter_mma",
                   "complete ktrace --cou"])
    assert "ktrace thp_get_unmapped_area" in res.stdout
    assert "ktrace tracepoint:syscalls:sys_enter_mmap" in res.stdout
    assert "ktrace --count" in res.stdout


def test_ktask_variable_keeps_all_64_bits_without_a_program():
    """gdb with no file is i386 (4-byte pointers): $ktask must not lose the address's top half
    (`ktask $ktask` then looked up pid 0x40204200)."""
    addr = 0xff2e6ed040204200
    res = run_gdb(["show architecture",
                   f"python from gdb_toolkit.ktrace.gdb_commands import set_task_var; set_task_var({addr})",
                   "p/x $ktask",
                   "python from gdb_toolkit.gdbsupport.facts import eval_int; print('EVAL %x' % eval_int('$ktask'))"])
    assert_no_traceback(res)
    assert "i386" in res.stdout                     # the situation this test is about
    assert f"EVAL {addr:x}" in res.stdout, res.output
    assert f"0x{addr:x}" in res.stdout


def test_bad_pid_is_one_line_and_arms_nothing():
    """--pid 0 used to trace every process (0 is falsy) and --pid -5 / a pid that does not
    exist armed a probe that could never fire."""
    tp = "ktrace tracepoint:syscalls:sys_enter_getpid --timeout 1"
    res = run_gdb([f"{tp} --pid 0", f"{tp} --pid -5", f"{tp} --pid 999999999", "echo alive\\n"])
    assert_no_traceback(res)
    assert "alive" in res.stdout and "armed" not in res.output, res.output
    err = res.stderr.splitlines()
    assert any(l.startswith("--pid 0 is not a process id. Fix: ") for l in err), err
    assert any(l.startswith("--pid -5 is not a process id. Fix: ") for l in err), err
    assert any(l.startswith("no process 999999999. Fix: ") for l in err), err
