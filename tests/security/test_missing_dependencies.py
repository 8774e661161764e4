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
    pytest.param("toolkit doctor --quick", "capstone", marks=pytest.mark.xfail(
        reason="doctor text without tabulate (issue 11 item 9 / issue 14 one renderer, branch i14-term)",
        strict=False)),
    pytest.param("toolkit commands", "toolkit doctor", marks=pytest.mark.xfail(
        reason="one renderer without tabulate (issue 14, branch i14-term)", strict=False)),
    pytest.param("toolkit doctor --quick --json", '"tabulate"', marks=[]),
])
def test_without_tabulate(command, expect):
    run = run_hostile(_hide("tabulate") + [command], timeout=120, pre=())
    assert_survived(run, max_seconds=120, expect=expect)
