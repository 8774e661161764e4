"""Issue 11 item 9 (the cross-cutting part): with TMPDIR (and the cache) on a full file system,
commands that write temporary files say "no space left" in one line -- not another, misleading
message -- and leave gdb alive.  A real full tmpfs is the oracle (root only)."""
import os
import subprocess

import pytest

from tests.support.gdbrun import compile_c
from tests.support.hostile import assert_survived, run_hostile

pytestmark = pytest.mark.gdb


@pytest.fixture
def full_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=1777", "tmpfs", str(mnt)], check=True)
    try:
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


@pytest.mark.parametrize("command", [
    "ktypes --force",
    "vg-start {prog}",
])
def test_full_tmpdir_says_no_space(command, full_fs):
    prog = compile_c("int main(void) { return 0; }\n", name="fulltmp")
    env = {"TMPDIR": str(full_fs), "XDG_CACHE_HOME": str(full_fs)}
    run = run_hostile([command.format(prog=prog)], env=env, timeout=120)
    assert_survived(run, max_seconds=120, expect="no space left")
