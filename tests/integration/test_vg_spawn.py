"""vg-start's valgrind process, whichever way it is spawned (os.posix_spawn through
``setpriv --pdeathsig KILL``, or subprocess.Popen with a prctl in preexec_fn when setpriv cannot):
it dies with gdb (SIGKILL to gdb: only the parent-death signal can do that), it is its own
session, and it inherits none of gdb's descriptors but 0-2.  Oracles: /proc of the processes."""
import contextlib
import os
import re
import shutil
import signal
import time

import pytest

from tests.support.gdbrun import background, compile_c, gdb_argv, run_gdb

pytestmark = [pytest.mark.gdb,
              pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                                 reason="valgrind/vgdb not installed")]

FALLBACK = "python from gdb_toolkit.valgrind import launch; launch._SETPRIV[:] = [None]"
REPORT = ("python import os; from gdb_toolkit.valgrind.gdb_session import SESSIONS; "
          "pid = list(SESSIONS)[0]; "
          "print('VGPID', pid, os.getpid(), sorted(os.readlink(f'/proc/{pid}/fd/{n}') "
          "for n in os.listdir(f'/proc/{pid}/fd') if int(n) < 1000), flush=True)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["setpriv", "fallback"])
def test_valgrind_dies_with_gdb_and_inherits_no_descriptor(tmp_path, how):
    out = tmp_path / "prog.out"
    stray = tmp_path / "stray-descriptor"
    stray.write_text("")
    commands = ([FALLBACK] if how == "fallback" else []) + [
        # an inheritable descriptor in gdb: valgrind must not get it (Popen's close_fds)
        f"python import os; os.set_inheritable(os.open({str(stray)!r}, os.O_RDONLY), True)",
        f"vg-start --stdout {out} /bin/sleep 300", REPORT, "python import time; time.sleep(120)"]
    vg = None
    try:
        with background(gdb_argv(commands), ready="VGPID", timeout=60) as (gdb, lines):
            _, vg, gdb_pid, links = lines[-1].split(" ", 3)
            vg, gdb_pid = int(vg), int(gdb_pid)
            assert gdb_pid == gdb.pid
            with open(f"/proc/{vg}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            assert int(f[1]) == gdb.pid and int(f[3]) == vg     # gdb's child, its own session
            assert str(stray) not in links
            assert links.count(str(out)) >= 2 and "/dev/null" in links     # 1, 2; 0
            # the program sleeps on once gdb is gone: only the parent-death signal ends it
            os.kill(gdb.pid, signal.SIGKILL)        # no clean-up code runs in gdb
            deadline = time.monotonic() + 10
            while _alive(vg) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(vg), f"valgrind {vg} outlived gdb"
    finally:
        if vg is not None:
            with contextlib.suppress(OSError):
                os.kill(vg, signal.SIGKILL)


NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def _free_pid() -> int:
    """A pid no process holds, below pid_max, that the next fork can be given."""
    import random

    with open("/proc/sys/kernel/pid_max") as fh:
        pid_max = int(fh.read())
    while True:
        pid = random.randrange(max(300, pid_max // 2), pid_max - 50)
        if not any(os.path.exists(f"/proc/{p}") for p in range(pid - 1, pid + 3)):
            return pid


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(NS_LAST_PID, os.W_OK),
                    reason="choosing the next pid (/proc/sys/kernel/ns_last_pid) needs root")
def test_vg_start_is_not_fooled_by_a_killed_valgrinds_fifos_at_its_pid(tmp_path):
    """A valgrind killed with SIGKILL leaves its vgdb FIFOs and shared-memory file; when pids
    wrap, the next valgrind given that pid unlinks and re-creates them at its start.  vg-start
    took the old FIFO for the new one's: vgdb opened it and waited there until gdb gave up
    ("cannot connect ...: Interrupted system call" -- seen once in CI).  The oracle: a real
    valgrind killed here leaves the three files (listed back), and the new
    valgrind, given the same pid through ns_last_pid, is connected and answers vg-leaks."""
    prog = compile_c("#include <stdlib.h>\nint main(void) { malloc(40); return 0; }\n",
                     name="reused_pid_prog", flags=["-g"])
    prefix = tmp_path / "vgdb-pipe"            # private: the files planted touch nobody else
    env = {"LOGNAME": "gtk", "HOSTNAME": "reused"}      # the names vgdb and valgrind compute
    for attempt in range(3):
        pid = _free_pid()
        old = _start_and_kill_valgrind(prog, prefix, pid, env)
        if old is None:
            continue                            # another process took the pid: choose again
        stale = [p.name for p in tmp_path.iterdir() if f"-{pid}-by-" in p.name]
        assert len(stale) == 3, sorted(os.listdir(tmp_path))     # 2 FIFOs + shared memory
        res = run_gdb([f"python open({NS_LAST_PID!r}, 'w').write('{pid - 1}')",
                       f"vg-start --timeout 20 {prog} -- --vgdb-prefix={prefix}", "vg-leaks", "kill"],
                      env=env, timeout=120)
        got = re.findall(r"^valgrind pid: +(\d+) ", res.stdout, flags=re.M)
        if got and got != [str(pid)]:
            continue                            # a fork elsewhere came first
        assert got and "cannot connect" not in res.output, res.output
        assert "totals (records):" in res.stdout, res.output     # vg-leaks asked valgrind
        return
    pytest.fail("no attempt gave the new valgrind the killed one's pid (3 tries)")


def _start_and_kill_valgrind(prog, prefix, pid, env) -> int | None:
    """Start valgrind as process *pid* (None if the system gave another), wait for its FIFO,
    SIGKILL it: its vgdb files stay behind."""
    import glob
    import subprocess

    with open(NS_LAST_PID, "w") as fh:
        fh.write(str(pid - 1))
    p = subprocess.Popen(["valgrind", "--vgdb=yes", "--vgdb-error=0", f"--vgdb-prefix={prefix}",
                          "--log-file=/dev/null", str(prog)], env=dict(os.environ, **env),
                         stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not glob.glob(f"{prefix}-from-vgdb-to-{p.pid}-by-*") and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        p.kill()
        p.wait()
    return p.pid if p.pid == pid else None
