"""Issue 11 item 4 (clean up), cross-cutting: after gdb exits, the toolkit left nothing in TMPDIR
-- not after a successful vg-start, not after a killed one, not after a failed one (every
vg-start used to leave vg-toolkit-PID.log behind).  The oracle is an empty private TMPDIR."""
import os

import pytest

from tests.support.gdbrun import compile_c
from tests.support.hostile import assert_survived, run_hostile

pytestmark = pytest.mark.gdb

PROG = "#include <stdio.h>\nint main(void) { puts(\"x\"); return 0; }\n"


@pytest.mark.parametrize("commands", [
    ["vg-start {prog}", "continue"],
    ["vg-start {prog}", "kill"],
    ["vg-start /nonexistent/program"],
    ["vg-start --timeout 0.01 {prog}"],
    ["stack-diagnose"],
    ["toolkit doctor --quick"],
], ids=["vg-start-run-to-end", "vg-start-killed", "vg-start-missing-program", "vg-start-timeout",
        "stack-diagnose-no-process", "doctor"])
def test_nothing_left_in_tmpdir(commands, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    prog = compile_c(PROG, name="cleanup_prog", flags=["-g"])
    run = run_hostile([c.format(prog=prog) for c in commands], env={"TMPDIR": str(tmpdir)},
                      timeout=120)
    assert run.alive, run.describe()
    assert "Traceback" not in run.result.output and "internal error" not in run.result.output
    assert sorted(os.listdir(tmpdir)) == [], run.describe()
