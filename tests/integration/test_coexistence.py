"""The toolkit beside GEF in one gdb (issue 14): both sets of commands work, whichever loads
first, and the toolkit never silently replaces a command of GEF's (both define ``got``).

Oracles: each extension's own output markers (GEF's "GOT protection:" line, checksec's
"NX" row; the toolkit's slot table header), the kept-name message, and readelf for the
slot that both extensions must show.
"""
import re
import subprocess

import pytest

from tests.support.coexist import gef_script
from tests.support.gdbrun import GDBINIT, REPO, assert_no_traceback, compile_c, gdb_json, run_gdb

pytestmark = pytest.mark.gdb

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def gef():
    path, why = gef_script()
    if path is None:
        pytest.skip(f"GEF unavailable (pwndbg is not on the reachable registries): {why}")
    return path


@pytest.fixture(scope="module")
def prog():
    return compile_c(REPO / "examples" / "plt" / "hello_calls.c", flags=["-g", "-Wl,-z,lazy"])


def puts_slot(prog) -> int:
    out = subprocess.run(["readelf", "-rW", str(prog)], capture_output=True, text=True).stdout
    m = re.search(r"^([0-9a-f]+)\s+\S+\s+R_X86_64_JUMP_SLOT\s+\S+\s+puts", out, re.M)
    return int(m.group(1), 16)


def run_both(gef, prog, first: str, commands):
    order = [f"source {gef}", f"source {GDBINIT}"] if first == "gef" else \
        [f"source {GDBINIT}", f"source {gef}"]
    res = run_gdb([*order, "start", *commands], program=prog, source=False,
                  env={"PYTHONWARNINGS": "ignore"})
    assert_no_traceback(res)
    return res, ANSI.sub("", res.stdout)


@pytest.mark.parametrize("first", ["gef", "toolkit"])
def test_both_sets_of_commands_work(gef, prog, first):
    marks = ["echo @@GOT\\n", "got", "echo @@TOOLKIT-GOT\\n", "toolkit got", "echo @@TK-PLT\\n",
             "tk plt puts", "echo @@CHECKSEC\\n", "checksec", "echo @@KSYM\\n", "ksym --help",
             "echo @@END\\n"]
    res, out = run_both(gef, prog, first, marks)
    parts = dict(re.findall(r"@@([A-Z-]+)\n(.*?)(?=@@|\Z)", out, re.S))
    # 'got' is GEF's either way: loaded first, it is kept; loaded last, it replaces our alias
    assert "GOT protection" in parts["GOT"] and "slot" not in parts["GOT"], parts["GOT"]
    # the toolkit's got under its prefixed name, with the slot readelf names
    slot = puts_slot(prog)
    assert re.search(r"^slot\s+symbol", parts["TOOLKIT-GOT"], re.M), parts["TOOLKIT-GOT"]
    assert re.search(rf"0x[0-9a-f]*{slot & 0xfff:03x}\s+puts@GLIBC", parts["TOOLKIT-GOT"]), parts["TOOLKIT-GOT"]
    assert "puts" in parts["TK-PLT"]
    assert "NX" in parts["CHECKSEC"]                     # GEF's own command
    assert "Usage: ksym" in parts["KSYM"]                # a toolkit short name nobody else has
    kept = [ln for ln in res.stderr.splitlines() if "kept the existing" in ln]
    if first == "gef":
        assert len(kept) == 1 and "got" in kept[0] and "toolkit NAME" in kept[0], res.stderr
    else:
        assert not kept, res.stderr


def test_toolkit_commands_says_which_short_name_was_kept(gef):
    doc = gdb_json([f"source {gef}", f"source {GDBINIT}"], "toolkit commands", source=False,
                   env={"PYTHONWARNINGS": "ignore"})
    by_name = {c["name"]: c for c in doc["commands"]}
    assert by_name["got"]["aliases"] == [] and by_name["plt"]["aliases"] == ["plt"]
    assert any("got" in n for n in doc["notes"])


def test_toolkit_commands_says_when_gef_loaded_later_took_a_short_name(gef):
    """Loaded after the toolkit, GEF replaces the ``got`` alias (gdb says nothing):
    ``toolkit commands`` must not go on listing it as the toolkit's."""
    doc = gdb_json([f"source {GDBINIT}", f"source {gef}"], "toolkit commands", source=False,
                   env={"PYTHONWARNINGS": "ignore"})
    by_name = {c["name"]: c for c in doc["commands"]}
    assert by_name["got"]["aliases"] == [] and by_name["plt"]["aliases"] == ["plt"]
    assert any(n.startswith("got was redefined") for n in doc["notes"]), doc["notes"]
