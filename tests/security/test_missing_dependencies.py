"""Issue 11 item 9: without tabulate, `toolkit doctor` (text), `toolkit commands` and `ksym`
failed, so the doctor could not report the very dependency it exists to report.  A missing
optional module must degrade (or be reported in one line), never raise an internal error.
The oracle is another row of the same table (the doctor must still show its table, with
tabulate reported missing).  The module is hidden from gdb's Python with ``sys.modules[name] = None`` (import then raises
ImportError exactly as if it were not installed)."""
import pytest

from tests.support.hostile import assert_survived, run_hostile

pytestmark = pytest.mark.gdb


def _hide(module: str) -> list[str]:
    return [f"python import sys; sys.modules['{module}'] = None"]


@pytest.mark.parametrize("command,expect", [
    ("toolkit doctor --quick", "capstone"),
    ("toolkit commands", "toolkit doctor"),
    ("toolkit doctor --quick --json", '"tabulate"'),
])
def test_without_tabulate(command, expect):
    run = run_hostile(_hide("tabulate") + [command], timeout=120, pre=())
    assert_survived(run, max_seconds=120, expect=expect)


@pytest.mark.parametrize("module", ["capstone", "elftools", "tabulate"])
@pytest.mark.parametrize("command", ["got", "plt", "plt-walk puts", "stack-diagnose", "toolkit commands"])
def test_missing_module_is_never_an_internal_error(module, command, tmp_path):
    """Each optional module hidden in turn: every command answers (degraded) or says in one line
    what to install -- never a traceback or an internal error."""
    from tests.support.gdbrun import compile_c

    prog = compile_c("#include <stdio.h>\nint main(void) { puts(\"x\"); return 0; }\n",
                     name="nodeps", flags=["-g"])
    run = run_hostile(_hide(module) + ["start", command], program=prog, timeout=120)
    assert_survived(run, max_seconds=120)
