"""The README's main command is the demo: every step must run and show real output.

Guest parts are skipped here (GDB_TOOLKIT_DEMO_GUEST=0): the guest tests cover the kernel
commands, and one QEMU boot per suite is enough.
"""
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.gdbrun import GDBINIT, REPO

pytestmark = pytest.mark.gdb

STEPS = sorted((REPO / "demo" / "steps").glob("*.sh"))

# what each step must show, from the commands' own output
EXPECT = {
    "00_doctor.sh": ["check", "status", "capstone"],
    "10_plt.sh": ["JUMP_SLOT", "_dl_fixup", "OVERWRITTEN: puts"],
    "20_stack.sh": ["VERDICT", "RLIMIT_STACK", "sub rsp, rax"],
    "30_kernel.sh": ["prototype: int do_sys_openat2(", "offsets +"],
    "35_kernel_arm64.sh": ["qemu-system-aarch64"],      # the live part: the arm64 guest test
    "40_valgrind.sh": ["loss records", "memleak1", "Invalid write of size 1", "leak snapshots over",
                       "+1,111"],
    "50_ktrace.sh": ["1 event(s)", "(struct task_struct *) 0x"],
}


def test_every_step_has_expectations():
    assert {s.name for s in STEPS} == set(EXPECT)


@pytest.mark.parametrize("step", STEPS, ids=lambda p: p.name)
def test_demo_step_runs(step: Path, tmp_path):
    env = dict(os.environ, GDBINIT_PY=str(GDBINIT), DEMO_BUILD=str(tmp_path),
               GDB_TOOLKIT_DEMO_GUEST="0")
    proc = subprocess.run(["bash", str(step)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out and "internal error" not in out, out[-3000:]
    for text in EXPECT[step.name]:
        assert text in out, f"{step.name} did not show {text!r}:\n{out[-3000:]}"
