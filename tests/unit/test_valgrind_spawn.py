"""valgrind.launch.start_valgrind: os.posix_spawn through setpriv --pdeathsig, with the
subprocess.Popen meanings vg-start relies on (pid, poll, wait, returncode); the oracle is
subprocess.Popen itself on the same programs, and setpriv's own --help."""
import os
import shutil
import subprocess
import time

import pytest

from gdb_toolkit.valgrind import launch

needs_setpriv = pytest.mark.skipif(launch.setpriv_pdeathsig() is None,
                                   reason="no setpriv with --pdeathsig (util-linux < 2.33): Popen fallback")


def test_setpriv_detection_agrees_with_its_help():
    path = shutil.which("setpriv", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        assert launch.setpriv_pdeathsig() is None
        return
    helptext = subprocess.run([path, "--help"], capture_output=True, text=True).stdout
    assert (launch.setpriv_pdeathsig() == path) == ("--pdeathsig" in helptext)


@pytest.mark.parametrize("script", ["exit 3", "exit 0", "kill -9 $$", "kill -15 $$"])
def test_status_as_popen_gives_it(script):
    argv = ["/bin/sh", "-c", script]
    with open(os.devnull, "rb") as null:
        ours = launch.start_valgrind(argv, null.fileno(), None)
        theirs = subprocess.Popen(argv, stdin=null)
    assert ours.wait(timeout=10) == theirs.wait(timeout=10)
    assert ours.returncode == theirs.returncode and ours.poll() == theirs.returncode


def test_poll_wait_timeout_and_lost_status():
    with open(os.devnull, "rb") as null:
        p = launch.start_valgrind(["/bin/sleep", "30"], null.fileno(), None)
    try:
        assert p.poll() is None and p.returncode is None
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            p.wait(timeout=0.2)
        assert time.monotonic() - t < 2
    finally:
        os.kill(p.pid, 9)
    assert p.wait() == -9
    # reaped by someone else (gdb's own waitpid): Popen says 0, and so do we
    with open(os.devnull, "rb") as null:
        q = launch.start_valgrind(["/bin/sh", "-c", "exit 5"], null.fileno(), None)
    os.waitpid(q.pid, 0)
    assert q.poll() == 0


@needs_setpriv
def test_spawned_child_has_own_session_parent_death_signal_and_no_stray_fd(tmp_path):
    """The exec'd program (setpriv is gone: same pid) is a session leader, gets SIGKILL when its
    parent dies (/proc/PID/status has no pdeathsig: the kernel's prctl answer, asked in the
    child itself by a Python it runs), and inherits only 0-2 (an inheritable fd is closed)."""
    out = tmp_path / "out"
    stray = os.open("/etc/hostname", os.O_RDONLY)
    os.set_inheritable(stray, True)
    code = ("import ctypes, os; l = ctypes.CDLL(None); s = ctypes.c_int(); "
            "l.prctl(2, ctypes.byref(s), 0, 0, 0); "
            "print(os.getpid(), os.getsid(0), s.value, sorted(os.listdir('/proc/self/fd')), flush=True)")
    try:
        with open(os.devnull, "rb") as null, open(out, "ab") as fh:
            p = launch.start_valgrind(["/usr/bin/python3", "-I", "-c", code], null.fileno(), fh.fileno())
    finally:
        os.close(stray)
    assert p.wait(timeout=30) == 0
    pid, sid, sig, fds = out.read_text().split(" ", 3)
    assert int(pid) == p.pid and int(sid) == p.pid
    assert int(sig) == 9
    assert fds.strip() == "['0', '1', '2', '3']"     # 3: listdir's own directory descriptor
