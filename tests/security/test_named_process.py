"""Issue 11 item 8, cross-cutting: any local user can give a process a name that is not UTF-8
(comm, argv[0], executable path, mapped files), with newlines and terminal escape sequences.
Every command that looks at such a process survives, prints no traceback, and never copies the
raw escape sequence to the user's terminal (names print through common.names.escape_name)."""
import glob
import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.support.crafted import named_process
from gdb_toolkit.common.names import escape_name
from tests.support.hostile import assert_survived, run_hostile

pytestmark = pytest.mark.gdb

ESC = "\x1b[2J"


def _pending(owner, what):
    return [pytest.mark.xfail(reason=f"{what} (issue 11 item 8, branch {owner})", strict=False)]


@pytest.fixture(scope="module")
def hostile_process(tmp_path_factory):
    with named_process(tmp_path_factory.mktemp("named")) as value:
        yield value


@pytest.mark.parametrize("command", [
    "got",
    "plt",
    "stack-diagnose",
])
def test_commands_on_a_process_with_a_hostile_name(command, hostile_process):
    proc, exe, mapped = hostile_process
    run = run_hostile([command], pid=proc.pid, timeout=60)
    assert_survived(run, max_rss_mb=500, max_seconds=30)
    assert ESC not in run.result.output


def _start_valgrind(argv):
    vg = subprocess.Popen(["valgrind", "--vgdb=yes", "--vgdb-error=0", *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    tmp = os.environ.get("TMPDIR") or "/tmp"
    deadline = time.monotonic() + 60
    while not glob.glob(f"{tmp}/vgdb-pipe-from-vgdb-to-{vg.pid}-*"):
        if time.monotonic() > deadline or vg.poll() is not None:
            raise RuntimeError(f"valgrind {vg.pid} did not open its vgdb FIFO")
        time.sleep(0.2)
    return vg


def test_vg_attach_listing_survives_a_hostile_valgrind_process(hostile_process):
    """One user's oddly named valgrind process must not break vg-attach's listing for everyone:
    with an ordinary and a hostile valgrind process running, vg-attach lists both."""
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is not installed (scripts/setup.sh installs it)")
    _, exe, mapped = hostile_process
    procs = []
    try:
        procs.append(_start_valgrind(["/bin/sleep", "600"]))
        procs.append(_start_valgrind([exe, b"x", mapped]))
        run = run_hostile(["vg-attach"], timeout=60)
        assert_survived(run, max_rss_mb=500, max_seconds=30)
        for vg in procs:
            assert str(vg.pid) in run.result.output, run.describe()
        assert ESC not in run.result.output
        # recognisable and lossless: the defined rendering, not U+FFFD
        assert escape_name(exe) in run.result.output, run.describe()
    finally:
        _stop_valgrind(procs)


def _stop_valgrind(procs):
    tmp = os.environ.get("TMPDIR") or "/tmp"
    for vg in procs:
        os.killpg(vg.pid, signal.SIGKILL)
        vg.wait()
        for fifo in glob.glob(f"{tmp}/vgdb-pipe-*-{vg.pid}-*"):   # valgrind killed: its FIFOs stay
            os.unlink(fifo)


def test_vg_attach_to_a_hostile_valgrind_process(hostile_process):
    """vg-attach PID loads the program by its path (a newline and escape in it) and connects."""
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is not installed (scripts/setup.sh installs it)")
    _, exe, mapped = hostile_process
    procs = [_start_valgrind([exe, b"x", mapped])]
    try:
        run = run_hostile([f"vg-attach {procs[0].pid}", "info inferiors"], timeout=60)
        assert_survived(run, max_rss_mb=500, max_seconds=30)
        assert "Remote target" in run.result.output or "remote" in run.result.output, run.describe()
    finally:
        _stop_valgrind(procs)


def test_vg_attach_never_runs_a_command_from_the_program_path(tmp_path):
    """Item 1 as the attacker writes it: a program whose path (from /proc/PID/exe and cmdline)
    holds a newline followed by a gdb command.  vg-attach loads it and connects; nothing runs."""
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is not installed (scripts/setup.sh installs it)")
    pwned = tmp_path / "PWNED"
    name = b"mem leak\nshell touch PWNED\necho "           # relative: gdb runs in tmp_path
    with named_process(tmp_path, name=name) as (_, exe, mapped):
        procs = [_start_valgrind([exe, b"x", mapped])]
        try:
            run = run_hostile([f"vg-attach {procs[0].pid}", "info inferiors"], timeout=60,
                              cwd=tmp_path)
            assert_survived(run, max_rss_mb=500, max_seconds=30)
            assert "Remote target" in run.result.output or "remote" in run.result.output, run.describe()
            assert not pwned.exists(), run.describe()
        finally:
            _stop_valgrind(procs)
