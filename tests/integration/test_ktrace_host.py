"""ktrace/ktask/ktypes on this machine's own kernel (tracepoints only on the 6.18 VM: no kprobes,
no kcore).  Kernel-side truth comes from bpftool, tracefs, /proc/PID/limits and the program itself."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gdb_toolkit.common.procfs import read_limits
from tests.support.gdbrun import (JSON_BEGIN, JSON_END, REPO, assert_no_traceback, gdb_argv, json_wrapped,
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
    assert int(ev["task_address"], 16) >= 1 << 47                           # a kernel address
    # the program was started by gdb started by us: it inherited our stack limit
    soft = read_limits(os.getpid())["Max stack size"].soft                 # None: unlimited
    assert ev["captured"]["signal->rlim[3].rlim_cur"] == soft
    assert int(ev["captured_words"]["signal->rlim[3].rlim_cur"], 16) == (soft if soft is not None else (1 << 64) - 1)
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


def test_ktypes_loads_types_without_symbols_so_null_stays_null(tmp_path):
    """After ktypes every NULL pointer printed as `0x0 <gtk_ktypes_task_struct>`: its object
    defined variables and was loaded at 0.  Oracle: nm finds no symbol in the object, and gdb
    names no address anywhere near 0 while the types work."""
    res = run_gdb([*json_wrapped("ktypes --json"), "p (void *)0", "p (struct task_struct *)0", "info symbol 0",
                   "p (char *)8", "info symbol 0x40", "p sizeof(struct task_struct)"],
                  env={"XDG_CACHE_HOME": str(tmp_path)})
    assert_no_traceback(res)
    obj = res.json_documents()[0]["object_file"]
    nm = subprocess.run(["nm", obj], capture_output=True, text=True)
    assert nm.stdout.strip() == "", nm.stdout                       # no symbol at all
    out = res.stdout
    assert "(void *) 0x0\n" in out and "(struct task_struct *) 0x0\n" in out, out
    assert "<" not in out.split("(void *) 0x0", 1)[1].split("\n", 1)[0]
    assert out.count("No symbol matches") == 2 and "gtk_ktypes" not in out
    assert re.search(r"\$\d+ = \d{3,}", out)                          # the types are there


def test_ktypes_cache_is_private_and_never_follows_planted_links(tmp_path):
    """Issue 11 item 4: the temp-dir fallback `$TMPDIR/gdb_toolkit-ktypes-<uid>/<id>/` had fixed
    names and no owner check: another user's symlink made root write through it and gdb load
    a planted object.  Now: the cache is owner/mode-checked, files are created exclusively
    under random names and renamed; an unusable cache falls back to a private session dir."""
    from gdb_toolkit.ktrace.ktypes_build import build_id

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    shared = tmp_path / "shared"                 # a shared sticky directory, like /tmp
    shared.mkdir()
    os.chmod(shared, 0o1777)
    key = build_id()
    nobody = 65534                               # another user prepared the cache path there
    planted = shared / "gdb_toolkit" / "ktypes" / "v2" / key
    planted.mkdir(parents=True)
    old_style = shared / f"gdb_toolkit-ktypes-{os.getuid()}" / key     # the old fallback's path
    old_style.mkdir(parents=True)
    for d in (planted, old_style):
        for name in ("ktypes.o", "ktypes.c", "vmlinux_btf.h", "ktypes.o.tmp1"):
            (d / name).symlink_to(victim)
            os.lchown(d / name, nobody, nobody)
        while d != shared:
            os.chown(d, nobody, nobody)
            d = d.parent
    res = run_gdb([*json_wrapped("ktypes --json"), "p sizeof(struct task_struct)"],
                  env={"XDG_CACHE_HOME": str(shared), "TMPDIR": str(shared)})
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert victim.read_text() == "precious\n"                        # nothing written through a link
    obj = Path(doc["object_file"])
    assert shared / "gdb_toolkit" not in obj.parents and old_style not in obj.parents, obj
    assert any("not cached across sessions" in n for n in doc["notes"]), doc["notes"]
    assert doc["loaded"] and "$1 = " in res.stdout
    # a good cache: the object is ours, mode 0600 in a 0700 directory, written once and reused
    good = tmp_path / "home-cache"
    res = run_gdb([*json_wrapped("ktypes --json"), *json_wrapped("ktypes --json")],
                  env={"XDG_CACHE_HOME": str(good)})
    first, second = res.json_documents()
    st = os.stat(first["object_file"])
    assert st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0
    assert os.stat(os.path.dirname(first["object_file"])).st_mode & 0o077 == 0
    assert not first["cached"] and second["cached"] and first["object_file"] == second["object_file"]


def test_ktypes_object_gets_a_gdb_index_for_later_loads(tmp_path):
    """After the first build a background helper adds a .gdb_index (later loads skip gdb's scan
    of the DWARF).  Oracles: readelf sees the section; bpftool's raw BTF gives the sizes gdb
    must still print; nm still finds no symbol."""
    raw = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
                         capture_output=True, text=True).stdout
    sizes = {n: int(re.search(rf"STRUCT '{n}' size=(\d+)", raw).group(1)) for n in ("task_struct", "mm_struct")}
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    obj = run_gdb([*json_wrapped("ktypes --json")], env=env).json_documents()[0]["object_file"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and ".gdb_index" not in subprocess.run(
            ["readelf", "-S", obj], capture_output=True, text=True).stdout:
        time.sleep(0.5)
    assert ".gdb_index" in subprocess.run(["readelf", "-S", obj], capture_output=True, text=True).stdout
    assert subprocess.run(["nm", obj], capture_output=True, text=True).stdout.strip() == ""
    res = run_gdb([*json_wrapped("ktypes --json"), "p sizeof(struct task_struct)", "p sizeof(struct mm_struct)",
                   "p (void *)0"], env=env)
    assert res.json_documents()[0]["cached"]
    assert f"$1 = {sizes['task_struct']}" in res.stdout and f"$2 = {sizes['mm_struct']}" in res.stdout
    assert "$3 = (void *) 0x0\n" in res.stdout


def test_ktypes_on_a_full_disk_says_no_space(tmp_path):
    """Issue 11 item 9: on a full cache/temp file system ktypes said something else (an
    internal OSError); it says 'no space left' and where.  A real full tmpfs is the oracle."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass
        res = run_gdb(["ktypes --force", "echo alive\\n"],
                      env={"XDG_CACHE_HOME": str(mnt), "TMPDIR": str(mnt)})
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
    assert_no_traceback(res)
    err = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and "no space left" in err[0] and "internal error" not in err[0], err
    assert "alive" in res.stdout


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
                   "str(os.getpid()), '-f', 'ktrace/worker'], capture_output=True, text=True).stdout.split()))",
                   "python from tests.support.ktrace_oracles import our_programs; print('PROGS', our_programs())"],
                  program=mmap_prog, cwd=str(REPO))
    assert_no_traceback(res)
    out = res.stdout
    assert "armed: continue the program" in out
    assert re.search(r"\[ktrace\] mmap_file pid \d+ task 0xffff[0-9a-f]+ args \{'len': 4194304\}", out), out
    assert "$1 = 1" in out and "1 event(s), ended: stopped" in out
    # the second trace ends when the inferior exits: no programs left while gdb lives; the
    # worker stays warm for the next ktrace (holding nothing in the kernel)
    assert "[ktrace] inferior exited: tracing stopped" in out and "PROGS []" in out, out
    assert "LEFT 1" in out
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


def _trace_all_reads(extra: str = "--timeout 3") -> tuple[dict, int, set[int], int]:
    """Run `ktrace tracepoint:syscalls:sys_enter_read --all` in gdb while a helper reads a pipe
    every 20 ms; return (report, gdb pid, gdb's thread ids, the worker's pid) -- pids and tids
    seen from outside gdb (/proc and the process tree), not from ktrace's report."""
    reader = subprocess.Popen([sys.executable, "-c",
                               "import os, time\nr, w = os.pipe()\nwhile True:\n"
                               "    os.write(w, b'x'); os.read(r, 1); time.sleep(0.02)\n"])
    argv = gdb_argv(["python import os; print('GDBPID', os.getpid())",
                     *json_wrapped(f"ktrace tracepoint:syscalls:sys_enter_read --all --json {extra}")])
    gdb = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True, env=dict(os.environ, TERM="dumb"))
    worker, threads, result = None, set(), {}
    import threading
    drain = threading.Thread(target=lambda: result.update(out=gdb.communicate(timeout=120)))
    drain.start()                                       # the JSON is large: never let gdb block
    try:
        deadline = time.monotonic() + 60
        while gdb.poll() is None and time.monotonic() < deadline:
            out = subprocess.run(["pgrep", "-P", str(gdb.pid), "-f", "gdb_toolkit.ktrace.worker"],
                                 capture_output=True, text=True).stdout.split()
            worker = worker or (int(out[0]) if out else None)
            try:
                threads |= {int(t) for t in os.listdir(f"/proc/{gdb.pid}/task")}
            except OSError:
                pass
            time.sleep(0.1)
        drain.join(120)
        stdout, stderr = result["out"]
    finally:
        reader.kill()
        reader.wait()
    chunk = stdout.split(JSON_BEGIN, 1)[-1].split(JSON_END, 1)[0]
    assert "{" in chunk, stdout + stderr
    doc = unwrap(json.loads(chunk[chunk.index("{"):]))
    assert int(re.search(r"GDBPID (\d+)", stdout).group(1)) == gdb.pid
    doc["_reader"] = reader.pid
    return doc, gdb.pid, threads, worker


def test_all_excludes_gdb_and_the_worker():
    """`ktrace ... --all` on read(2) traced gdb reading the worker's pipe: every event made the
    worker write, which made gdb read (a feedback loop: 22,278 events in 15 s, all from gdb).
    gdb's and the worker's processes, with all their threads, are left out by default."""
    doc, gdb_pid, gdb_threads, worker = _trace_all_reads()
    assert worker, "no worker seen under gdb"
    pids = {e["pid"] for e in doc["events"]}
    tids = {e["tid"] for e in doc["events"]}
    assert doc["_reader"] in pids                                  # --all still traces others
    assert gdb_pid not in pids and worker not in pids, (gdb_pid, worker, len(doc["events"]))
    assert not (tids & gdb_threads), tids & gdb_threads            # none of gdb's threads
    assert any(str(gdb_pid) in n and str(worker) in n for n in doc["notes"]), doc["notes"]


def test_all_with_include_gdb_traces_gdb_too():
    doc, gdb_pid, _, _ = _trace_all_reads("--include-gdb --timeout 1")
    assert gdb_pid in {e["pid"] for e in doc["events"]}            # gdb reading the worker's pipe


def test_bad_arguments_are_refused_before_the_root_worker_starts(tmp_path):
    """`ktrace ... --args x=010` started the root worker, which then died on int('010', 0):
    every argument is checked first.  The oracle: a stand-in worker that records each start."""
    started = tmp_path / "started"
    fake = Path(__file__).resolve().parents[1] / "support" / "fake_ktrace_worker.py"
    env = {"GDB_TOOLKIT_KTRACE_WORKER": f"sh -c 'echo x >> {started}; exec {sys.executable} {fake}'"}
    tp = "ktrace tracepoint:syscalls:sys_enter_getpid --all --timeout 1"
    bad = ["--args x=010", "--args 'x=vma->'", "--args 'x=1+'", "--args x=99999999999999999999999",
           "--args 'a b'", "--capture 'signal->'", "--capture ''", "--timeout nan", "--timeout -1"]
    res = run_gdb([f"{tp} {b}" for b in bad] + ["echo alive\\n"], env=env)
    assert_no_traceback(res)
    assert "alive" in res.stdout and not started.exists(), res.output
    # one line each (a usage error -- '' for --capture -- adds its usage line, as every command's)
    errors = [l for l in res.stderr.splitlines() if l.strip() and not l.startswith("usage: ")]
    assert len(errors) == len(bad), errors
    assert "'010' has a leading 0 (C would read it as octal). Fix: write 10" in errors[0]
    assert all("internal error" not in e for e in errors), errors
    res = run_gdb([f"{tp} --args x=0o10"], env=env)                      # a good one does start it
    assert started.read_text().count("x") == 1, res.output


def test_the_root_worker_runs_isolated_and_leaves_when_idle(tmp_path):
    """The worker is a root interpreter: python -I (no cwd, no PYTHON* variables), started in /,
    with an allow-listed environment (LD_PRELOAD from gdb's environment must not reach it); a
    json.py planted in gdb's cwd is never imported.  Idle, it leaves by itself.  Oracle: the
    worker's own /proc/PID/{cmdline,cwd,environ} read while it runs."""
    planted = tmp_path / "json.py"
    marker = tmp_path / "imported"
    planted.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (tmp_path / "empty").mkdir()
    env = {"LD_PRELOAD": "", "PYTHONPATH": str(tmp_path / "empty"), "PYTHONWARNINGS": "default",
           "GDB_TOOLKIT_KTRACE_IDLE": "2"}
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os, subprocess, time\n"
        "def workers():\n"
        "    return subprocess.run(['pgrep', '-P', str(os.getpid()), '-f', 'ktrace/worker'],\n"
        "                          capture_output=True, text=True).stdout.split()\n"
        "w = workers()\n"
        "print('WORKER', w)\n"
        "p = w[0]\n"
        "print('CMD', open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0')[:3])\n"
        "print('CWD', os.readlink(f'/proc/{p}/cwd'))\n"
        "env = open(f'/proc/{p}/environ', 'rb').read().split(b'\\0')\n"
        "print('ENV', sorted(k.split(b'=')[0].decode() for k in env if k))\n"
        "time.sleep(4)\n"
        "print('LEFT', workers())\n")
    res = run_gdb(["ktrace tracepoint:syscalls:sys_enter_getppid --all --timeout 0.5", f"source {probe}"],
                  env=env, cwd=str(tmp_path))
    assert_no_traceback(res)
    out = res.stdout
    assert "WORKER ['" in out, res.output
    assert "b'-I'" in out.split("CMD", 1)[1].split("\n", 1)[0]
    assert "CWD /\n" in out
    env_line = out.split("ENV", 1)[1].split("\n", 1)[0]
    for bad in ("LD_PRELOAD", "PYTHONPATH", "PYTHONWARNINGS"):
        assert bad not in env_line, env_line
    assert "GDB_TOOLKIT_KTRACE_IDLE" in env_line
    assert not marker.exists()
    assert "LEFT []" in out                                   # it left after 2 s idle
