"""scripts/setup.d steps honour the switches the README documents (issue 14)."""
import os
import subprocess

from tests.support.gdbrun import REPO

GUEST = REPO / "scripts" / "setup.d" / "guest.sh"


def traced(env: dict) -> str:
    """The commands guest.sh would run (bash -x trace), with the preparation itself
    replaced by a no-op so nothing is downloaded or built."""
    script = GUEST.read_text().replace("/usr/bin/python3 -m tests.guest prepare", "true PREPARE")
    proc = subprocess.run(["bash", "-x", "-c", script, str(GUEST)], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_demo_guest_zero_skips_guest_preparation():
    assert "PREPARE" not in traced({"GDB_TOOLKIT_DEMO_GUEST": "0", "GDB_TOOLKIT_SKIP_GUEST": ""})
    assert "PREPARE" not in traced({"GDB_TOOLKIT_SKIP_GUEST": "1", "GDB_TOOLKIT_DEMO_GUEST": ""})
    assert "PREPARE" in traced({"GDB_TOOLKIT_DEMO_GUEST": "1", "GDB_TOOLKIT_SKIP_GUEST": ""})
