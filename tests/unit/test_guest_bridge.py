"""The host-side pytest bridge, driven through real pytest runs in a scratch directory.

The guest itself is replaced by either nothing (no qemu on PATH: tests must FAIL with the
reason) or a stand-in that runs the in-guest pytest command on this host, so the whole
report path (in-guest reporter -> JSON -> host outcomes) is exercised without booting.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CONFTEST = f'''
import os, subprocess, sys
sys.path.insert(0, {str(REPO)!r})
import tests.guest.vm as vm
from tests.guest.pytest_bridge import Bridge

def pytest_configure(config):
    config.addinivalue_line("markers", "guest: real kernel")
    config.addinivalue_line("markers", "guest_arm64: real arm64 kernel")
    config.pluginmanager.register(Bridge(), "bridge")

LOCKUP = "[  540.665076] watchdog: BUG: soft lockup - CPU#1 stuck for 45s! [python3:141]"
BOOTS = []

if os.environ.get("FAKE_GUEST") in ("1", "timeout", "panic", "panic-twice", "stall"):
    def fake_run_in_guest(argv, timeout, cwd, xfer, log, **kw):
        arch = kw.get("arch")
        mode = os.environ["FAKE_GUEST"]
        BOOTS.append(argv)
        log("fake guest: running " + " ".join(argv[:3]) + " arch=" + getattr(arch, "name", "x86_64"))
        env = dict(os.environ, GDB_TOOLKIT_IN_GUEST="1", GDB_TOOLKIT_GUEST_XFER=str(xfer))
        # timeout: only the first test got to run; panic: the kernel dies after it (the
        # second boot runs normally); panic-twice: the second boot dies too
        dies = (mode == "timeout" or (mode in ("panic", "stall") and len(BOOTS) == 1)
                or mode == "panic-twice")
        if dies and len(BOOTS) == 1:
            argv = argv + ["-k", "g_pass"]
        elif dies:
            argv = argv + ["-k", "g_fail"]
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        if dies and mode == "stall":    # the watchdog ended a silent guest: nothing on its console
            why = "guest stalled: no heartbeat for 181 s (its kernel stopped scheduling)"
            return vm.GuestResult(status=None, output=p.stdout, boot_seconds=1.0,
                                  console=p.stdout, error=why, stalled=why, kernel="fake",
                                  accel="none")
        if dies:
            trouble = "" if mode == "timeout" else LOCKUP + "\\nKernel panic - not syncing: softlockup: hung tasks\\n"
            return vm.GuestResult(status=None, output=p.stdout, boot_seconds=1.0,
                                  console=p.stdout + trouble,
                                  error="guest timed out after 9 s" if mode == "timeout"
                                  else "guest exited (qemu status 0) without reporting a status",
                                  kernel="fake", accel="none")
        return vm.GuestResult(status=p.returncode, output=p.stdout, boot_seconds=0.0,
                              console=p.stdout + p.stderr, kernel="fake", accel="none")
    vm.run_in_guest = fake_run_in_guest
'''

TESTS = '''
import os, pytest

def test_host_only():
    assert os.environ.get("GDB_TOOLKIT_IN_GUEST") != "1"

@pytest.mark.guest
def test_g_pass():
    assert os.environ["GDB_TOOLKIT_IN_GUEST"] == "1"

@pytest.mark.guest
def test_g_fail():
    assert 6 * 7 == 43, "guest says no"

@pytest.mark.guest
def test_g_skip():
    pytest.skip("no bcc in guest")

@pytest.mark.guest
@pytest.mark.parametrize("n", [1, 2])
def test_g_param(n):
    assert n == 1

@pytest.mark.guest
class TestGroup:
    def test_in_class(self):
        pass
'''


@pytest.fixture()
def scratch(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_sample.py").write_text(TESTS)
    return tmp_path


def _pytest(scratch, *args, **env):
    tmp = scratch / "tmp"        # the bridge's temp dirs and console log land here
    tmp.mkdir(exist_ok=True)
    full = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(tmp))
    for k in ("GDB_TOOLKIT_IN_GUEST", "GDB_TOOLKIT_SKIP_GUEST", "FAKE_GUEST"):
        full.pop(k, None)
    full.update(env)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                           "--rootdir", str(scratch), "-o", "addopts=", *args, str(scratch)],
                          cwd=scratch, env=full, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


LOCKUP_TEXT = "watchdog: BUG: soft lockup - CPU#1 stuck for 45s!"


def _line(out, status, name):
    return any(l.startswith(status) and name in l for l in out.splitlines())


def test_no_qemu_makes_every_guest_test_fail_with_the_reason(scratch):
    rc, out = _pytest(scratch, PATH="/nonexistent")
    assert rc == 1, out
    assert _line(out, "PASSED", "test_host_only"), out
    for name in ("test_g_pass", "test_g_fail", "test_g_skip", "test_g_param[1]", "test_in_class"):
        assert _line(out, "FAILED", name), out
    assert "qemu-system-x86_64 not found" in out
    assert out.count("guest: booting") == 1          # one attempt for the whole session


def test_skip_env_skips_with_reason(scratch):
    rc, out = _pytest(scratch, GDB_TOOLKIT_SKIP_GUEST="1", PATH="/nonexistent")
    assert rc == 0, out
    assert "6 skipped" in out and "GDB_TOOLKIT_SKIP_GUEST=1" in out
    assert "guest: booting" not in out


def test_subset_without_guest_tests_never_boots(scratch):
    rc, out = _pytest(scratch, "-k", "host_only", PATH="/nonexistent")
    assert rc == 0 and "1 passed" in out and "guest: booting" not in out, out


def test_guest_outcomes_are_reported_per_test(scratch):
    rc, out = _pytest(scratch, FAKE_GUEST="1")
    assert rc == 1, out
    assert out.count("fake guest: running") == 1
    assert _line(out, "PASSED", "test_host_only")
    assert _line(out, "PASSED", "test_g_pass")
    assert _line(out, "PASSED", "test_g_param[1]")
    assert _line(out, "PASSED", "test_in_class")
    assert _line(out, "FAILED", "test_g_fail")
    assert _line(out, "FAILED", "test_g_param[2]")
    assert _line(out, "SKIPPED", "in guest: no bcc in guest")
    assert "guest says no" in out and "[guest: failed]" in out
    assert "6 guest tests reported" in out or "6/6 guest tests reported" in out


def test_subset_boots_only_for_selected_guest_tests(scratch):
    rc, out = _pytest(scratch, "-k", "g_pass or host_only", FAKE_GUEST="1")
    assert rc == 0, out
    assert "1/1 guest tests reported" in out and "2 passed" in out


def test_inside_the_guest_tests_run_for_real(scratch):
    rc, out = _pytest(scratch, "-k", "g_fail or g_pass", GDB_TOOLKIT_IN_GUEST="1",
                      PATH="/nonexistent")
    assert rc == 1 and "guest: booting" not in out, out
    assert _line(out, "PASSED", "test_g_pass") and _line(out, "FAILED", "test_g_fail")


def test_a_guest_kernel_that_dies_mid_run_gets_one_second_boot_for_the_unfinished_tests(scratch):
    rc, out = _pytest(scratch, FAKE_GUEST="panic")
    assert rc == 1, out                                         # test_g_fail fails for real
    assert out.count("fake guest: running") == 2, out
    assert _line(out, "PASSED", "test_g_pass") and _line(out, "PASSED", "test_in_class"), out
    assert _line(out, "FAILED", "test_g_fail") and "guest says no" in out, out
    assert _line(out, "SKIPPED", "no bcc in guest"), out
    # loud: the first boot's trouble is in the summary and its console is kept
    assert "kernel died mid-run (" + "[  540.665076] watchdog: BUG: soft lockup" in out, out
    assert "second boot for 5 test(s) after: [  540.665076] watchdog: BUG: soft lockup" in out, out
    logs = sorted(p.name for p in (scratch / "tmp").iterdir())
    assert len(logs) == 2 and any("-boot1-" in n for n in logs), logs
    assert LOCKUP_TEXT in (scratch / "tmp" / next(n for n in logs if "-boot1-" in n)).read_text()


def test_a_second_kernel_death_fails_the_rest_with_the_kernels_report(scratch):
    """The second boot finished a test and died: a third boot (CI saw the x86_64 TCG guest die
    twice in one run), which finishes nothing and dies too -- no fourth: not a loop."""
    rc, out = _pytest(scratch, FAKE_GUEST="panic-twice")
    assert rc == 1 and out.count("fake guest: running") == 3, out
    assert "again in a second boot" in out and "again in a third boot" in out, out
    assert "; second boot for 5 test(s) after:" in out and "; third boot for" in out, out
    assert _line(out, "PASSED", "test_g_pass"), out                  # from the first boot
    assert _line(out, "FAILED", "test_g_fail") and "guest says no" in out, out    # the second
    for name in ("test_g_param[1]", "test_in_class"):                  # never finished
        assert _line(out, "FAILED", name), out
    assert "the kernel's first report" in out or "guest console (tail)" in out, out
    assert "Kernel panic - not syncing" in out, out


def test_a_guest_the_watchdog_found_stalled_gets_another_boot_for_the_unfinished_tests(scratch):
    """CI saw the x86_64 guest hang with nothing on its console: the heartbeat watchdog ends
    it, and a stall counts as the kernel's death (another boot), not as a timeout."""
    rc, out = _pytest(scratch, FAKE_GUEST="stall")
    assert rc == 1 and out.count("fake guest: running") == 2, out
    assert _line(out, "PASSED", "test_g_pass") and _line(out, "PASSED", "test_in_class"), out
    assert _line(out, "FAILED", "test_g_fail") and "guest says no" in out, out
    assert "second boot for 5 test(s) after: guest stalled: no heartbeat for 181 s" in out, out


def test_guest_timeout_keeps_finished_results_and_fails_the_rest(scratch):
    rc, out = _pytest(scratch, FAKE_GUEST="timeout")
    assert rc == 1, out
    assert _line(out, "PASSED", "test_g_pass")
    for name in ("test_g_fail", "test_g_skip", "test_g_param[1]", "test_in_class"):
        assert _line(out, "FAILED", name), out
    assert "guest timed out after 9 s" in out
    leftovers = sorted(p.name for p in (scratch / "tmp").iterdir())
    assert len(leftovers) == 1 and leftovers[0].startswith("gdb_toolkit-guest-console-"), leftovers


ARM64_TESTS = '''
import os, pytest

@pytest.mark.guest
def test_x86_only():
    assert os.environ["GDB_TOOLKIT_IN_GUEST"] == "1"

@pytest.mark.guest_arm64
def test_arm_pass():
    assert os.environ["GDB_TOOLKIT_IN_GUEST"] == "1"

@pytest.mark.guest_arm64
def test_arm_fail():
    assert False, "arm64 guest says no"
'''


@pytest.fixture()
def scratch_arm(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_arm.py").write_text(ARM64_TESTS)
    return tmp_path


def test_one_boot_per_architecture_each_reports_its_own_tests(scratch_arm):
    rc, out = _pytest(scratch_arm, FAKE_GUEST="1")
    assert rc == 1, out
    assert out.count("fake guest: running") == 2, out
    assert out.count("arch=x86_64") == 1 and out.count("arch=arm64") == 1, out
    assert _line(out, "PASSED", "test_x86_only") and _line(out, "PASSED", "test_arm_pass"), out
    assert _line(out, "FAILED", "test_arm_fail") and "arm64 guest says no" in out, out
    assert "Debian's arm64 kernel" in out and "Debian's x86_64 kernel" in out


def test_no_qemu_fails_each_architecture_with_its_reason(scratch_arm):
    rc, out = _pytest(scratch_arm, PATH="/nonexistent")
    assert rc == 1, out
    for name in ("test_x86_only", "test_arm_pass", "test_arm_fail"):
        assert _line(out, "FAILED", name), out
    assert "qemu-system-aarch64 not found: apt-get install qemu-system-arm" in out
    assert "qemu-system-x86_64 not found" in out


def test_skip_one_architecture(scratch_arm):
    rc, out = _pytest(scratch_arm, FAKE_GUEST="1", GDB_TOOLKIT_SKIP_GUEST="arm64")
    assert rc == 0, out
    assert out.count("fake guest: running") == 1 and "arch=x86_64" in out
    assert _line(out, "PASSED", "test_x86_only")
    assert _line(out, "SKIPPED", "GDB_TOOLKIT_SKIP_GUEST=arm64: arm64 guest"), out
