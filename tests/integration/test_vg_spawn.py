"""vg-start's valgrind process, whichever way it is spawned (os.posix_spawn through
``setpriv --pdeathsig KILL``, or subprocess.Popen with a prctl in preexec_fn when setpriv cannot):
it dies with gdb (SIGKILL to gdb: only the parent-death signal can do that), it is its own
session, and it inherits none of gdb's descriptors but 0-2.  Oracles: /proc of the processes."""
import contextlib
import os
import shutil
import signal
import time

import pytest

from tests.support.gdbrun import background, gdb_argv

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
