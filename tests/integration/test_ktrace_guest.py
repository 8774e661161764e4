"""The seed's two workflows on Debian's 6.1 kernel (kprobes, kcore, BTF), inside the QEMU guest,
and nothing left attached after each way tracing can end.  bcc compiles slowly under TCG, so
each test compiles once.  Oracles: /proc/kallsyms, /proc/PID/limits, bpftool, kprobe_events."""
import re
import os
import signal
import subprocess
import time

import pytest

from tests.support.gdbrun import gdb_argv, json_wrapped, marked_documents, run_gdb, unwrap
from tests.support.ktrace_oracles import example, kprobe_events, our_programs, wait_gone, wait_no_programs

pytestmark = pytest.mark.guest

TIMEOUT = 900


def _docs(res) -> list:
    return [unwrap(d) for d in marked_documents(res.stdout)]


def _kallsyms() -> dict[int, str]:
    out = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            a, _, name = line.split()[:3]
            out.setdefault(int(a, 16), name)
    return out


def _kallsyms_object(address: int) -> str:
    """The module /proc/kallsyms names for the first symbol at *address* (``[ext4]``), or
    ``vmlinux`` for the kernel image (the contract's `object`)."""
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if int(parts[0], 16) == address:
                return parts[3].strip("[]") if len(parts) > 3 else "vmlinux"
    raise AssertionError(f"0x{address:x} is not in /proc/kallsyms")


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
    assert mine[-1]["arg_words"]["len"] == "0x400000"             # ... as the register held it
    assert all(isinstance(v, int) or v is None for e in mine for v in e["args"].values())
    # the task address read back through kcore is the traced process
    assert task["task_address"] == mine[-1]["task_address"]
    assert task["pid"] == trace["pid"] and task["comm"] == "mmap_file" and task["verified"]
    cb = next(f for f in task["fields"] if f["member_path"] == "mm->get_unmapped_area")
    target = int(cb["value"], 16)
    assert target in _kallsyms(), cb                     # a function the kernel itself names
    # v4: the target is a location object (symbol, offset, object), as kx's words say it
    loc = cb["target_location"]
    assert (loc["symbol"], loc["offset"], int(loc["address"], 16)) == (_kallsyms()[target], 0, target), cb
    assert loc["object"] == _kallsyms_object(target) and loc["symbol"] in cb["text"], cb
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
        assert trace["traced_function"] == "expand_downwards" and "inlined" in trace["why"]
    assert trace["attach_method"] == "kprobe+kretprobe"
    assert "SIGSEGV" in trace["stop_reason"]
    buf = 1920 * 1080 * 8
    failed = [e for e in trace["events"] if e["retval"] == -12]
    assert failed, trace["events"]
    size = failed[-1]["args"]["size"]
    assert buf <= size <= buf + (1 << 20), size                       # ~15.9 MiB
    from gdb_toolkit.common.procfs import parse_limits
    limits = parse_limits(res.stdout.split("LIMITS", 1)[1])
    rlim = task["fields"][0]["integer"]
    assert rlim == limits["Max stack size"].soft
    assert task["pid"] == trace["pid"] and task["comm"] == "teststack"
    # the pid found by walking init_task.tasks through kcore is the same task_struct
    assert by_pid["task_address"] == task["task_address"] and by_pid["found_by"].startswith("task list walk")
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


def test_all_on_vfs_read_leaves_out_gdb_and_the_worker():
    """The issue's case: `ktrace vfs_read --all` traced gdb reading the worker's pipe (22,278
    events in 15 s, all gdb's).  gdb's pid comes from gdb itself, the worker's from the process
    tree; a reader process of ours must still be seen."""
    reader = subprocess.Popen(["/usr/bin/python3", "-c",
                               "import os, time\nr, w = os.pipe()\nwhile True:\n"
                               "    os.write(w, b'x'); os.read(r, 1); time.sleep(0.05)\n"])
    try:
        res = run_gdb(["python import os; print('GDBPID', os.getpid())",
                       *json_wrapped("ktrace vfs_read --all --timeout 4 --json"),
                       "python import subprocess, os; print('WORKER', subprocess.run(['pgrep', '-P', "
                       "str(os.getpid())], capture_output=True, text=True).stdout.split())"],
                      timeout=TIMEOUT)
    finally:
        reader.kill()
        reader.wait()
    (doc,) = _docs(res)
    import re
    gdb_pid = int(re.search(r"GDBPID (\d+)", res.stdout).group(1))
    workers = [int(p) for p in re.search(r"WORKER \[(.*)\]", res.stdout).group(1).replace("'", "").split(", ") if p]
    assert doc["attach_method"] == "kprobe" and len(workers) == 1
    pids = {e["pid"] for e in doc["events"]}
    assert reader.pid in pids
    assert gdb_pid not in pids and workers[0] not in pids, (gdb_pid, workers, len(doc["events"]))


def test_assembled_programs_match_bcc_compiled_ones():
    """The same trace through both loaders: the programs ktrace assembles itself and the C that
    bcc compiles must see the same arguments, fields and return value of one mmap(2)."""
    prog = example("mmap_file")
    cmd = ("ktrace do_mmap --args len,prot=arg3 --capture signal->rlim[3].rlim_cur --capture pid "
           "--ret --run --json")
    docs = {}
    for loader in ("assembled", "bcc"):
        res = run_gdb(["break after_mmap", "start /etc/passwd > /dev/null", *json_wrapped(cmd)],
                      program=prog, timeout=TIMEOUT, env={"GDB_TOOLKIT_KTRACE_LOADER": loader})
        (docs[loader],) = _docs(res)
    a, b = docs["assembled"], docs["bcc"]
    assert a["loader"] == "assembled" and b["loader"] == "bcc"
    ea = [e for e in a["events"] if e["args"]["len"] == 1 << 22]       # mmap_file.c maps 4 MiB
    eb = [e for e in b["events"] if e["args"]["len"] == 1 << 22]
    assert len(ea) == len(eb) == 1, (a, b)
    ea, eb = ea[0], eb[0]
    assert ea["args"]["prot"] == eb["args"]["prot"] == 1            # PROT_READ
    assert ea["captured"]["pid"] == ea["pid"] and eb["captured"]["pid"] == eb["pid"]
    assert ea["captured"]["signal->rlim[3].rlim_cur"] == eb["captured"]["signal->rlim[3].rlim_cur"]
    assert ea["retval"] >= 1 << 40 and eb["retval"] >= 1 << 40     # a user address
    assert int(ea["retval_word"], 16) == ea["retval"] and int(eb["retval_word"], 16) == eb["retval"]
    _leftovers_clean("do_mmap")


def test_ktypes_with_kcore_null_is_null_and_fields_match_ktask():
    """17.6: after `ktypes` + `core-file /proc/kcore` the frame line said
    `0x0000000000000000 in gtk_ktypes_task_struct ()` and every NULL pointer printed with that
    name.  The same field read through gdb's types and through ktask (BTF offsets) must agree,
    and match /proc/1/limits."""
    res = run_gdb([*json_wrapped("ktask 1 comm signal->rlim[3].rlim_cur --json"), "ktypes",
                   "core-file /proc/kcore", "p (void *)0", "info symbol 0",
                   "p ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur",
                   "p ((struct task_struct *)$ktask)->comm"], timeout=TIMEOUT)
    (task,) = _docs(res)
    out = res.stdout
    assert "gtk_ktypes" not in res.output, res.output
    assert "(void *) 0x0\n" in out and "No symbol matches 0." in out
    from gdb_toolkit.common.procfs import read_limits
    rlim = read_limits(1)["Max stack size"].soft
    assert task["fields"][1]["integer"] == rlim and int(task["fields"][1]["value"], 16) == rlim
    assert re.search(rf"^\$\d+ = {rlim}$", out, re.M), out
    assert re.search(r'^\$\d+ = "' + re.escape(task["comm"]) + r'"', out, re.M), out
