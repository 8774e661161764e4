"""Commands are registered from the generated command table (issue 14's load budget): no
command module is imported at load, each is imported on its command's first use, and a table
that does not match the sources is never trusted.

Oracles: the table rebuilt from the command classes in a separate gdb (scripts/
command_table.py), Python's sys.modules, gdb's own `help` and `complete` output, and a copy
of the package with one command's summary edited."""
import json
import shutil
import subprocess
import sys

import pytest

from gdb_toolkit.common.schemas import validate_document
from tests.support.gdbrun import GDB, REPO, GdbResult, assert_no_traceback, json_wrapped, run_gdb

pytestmark = pytest.mark.gdb

STATE = ("python import sys, json; from gdb_toolkit.gdbsupport import registry; "
         "print('@@STATE' + json.dumps({'source': registry.source, 'modules': sorted(m for m in "
         "sys.modules if m.endswith(('gdb_commands', 'toolkit_command')))}))")


def state(res) -> list[dict]:
    return [json.loads(ln[len("@@STATE"):]) for ln in res.stdout.splitlines()
            if ln.startswith("@@STATE")]


def test_the_table_matches_the_command_classes():
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "command_table.py")],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr + res.stdout


def test_load_imports_no_command_module_and_first_use_imports_one():
    res = run_gdb([STATE, "help got", "help function ksym", STATE, "complete got --al", STATE,
                   "toolkit commands", STATE, "vg-leaks --help", STATE])
    assert_no_traceback(res)
    at_load, after_help, after_complete, after_listing, after_first_use = state(res)
    plt, toolkit, vg = ("gdb_toolkit.plt.gdb_commands", "gdb_toolkit.gdbsupport.toolkit_command",
                        "gdb_toolkit.valgrind.gdb_commands")
    assert at_load == {"source": "table", "modules": []}
    assert after_help["modules"] == []                  # help text is the table's
    assert "GOT slots, their state and binding now" in res.stdout
    assert '$ksym("name") -- a kernel symbol\'s address' in res.stdout
    assert after_complete["modules"] == [plt]           # completing got loads got's module
    assert "got --all-objects" in res.stdout
    assert after_listing["modules"] == [toolkit, plt]   # the listing is the table's too
    assert "vg-leaks   Leak check by allocation site" in res.stdout
    assert after_first_use["modules"] == [toolkit, plt, vg]


def test_every_command_s_help_is_its_class_s(tmp_path):
    """gdb's help for each name (from the table) equals the help the class generates."""
    script = tmp_path / "help.py"
    script.write_text(
              "import gdb, json\n"
              "from gdb_toolkit.gdbsupport import registry\n"
              "out = []\n"
              "for e in registry.entries():\n"
              "    cls = e.load()\n"
              "    want = cls.help_text() if e.kind == 'command' else cls.__doc__\n"
              "    got = gdb.execute('help ' + ('function ' + e.name if e.kind == 'function' "
              "else e.gdb_name), to_string=True)\n"
              "    out.append([e.name, got.strip().endswith(want.strip())])\n"
              "print('@@HELP' + json.dumps(out))\n")
    res = run_gdb([f"source {script}"])
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("@@HELP"))
    checked = json.loads(line[len("@@HELP"):])
    assert len(checked) >= 27, checked
    assert [n for n, same in checked if not same] == []


@pytest.mark.parametrize("damage", ["edited command", "merge markers in the table"])
def test_a_stale_table_is_not_trusted(tmp_path, damage):
    """A command edited after the table was made, or a table a merge left broken: the load
    builds the entries from the modules (the edited help shows), instead of giving gdb the
    table's old text or failing."""
    copy = tmp_path / "checkout"
    shutil.copytree(REPO / "gdb_toolkit", copy / "gdb_toolkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    plt = copy / "gdb_toolkit" / "plt" / "gdb_commands.py"
    text = plt.read_text()
    assert 'summary = "GOT slots, their state and binding now"' in text
    plt.write_text(text.replace('summary = "GOT slots, their state and binding now"',
                                'summary = "GOT slots (edited after the table was made)"'))
    if damage == "merge markers in the table":
        table = copy / "gdb_toolkit" / "gdbsupport" / "command_table.py"
        table.write_text("<<<<<<< HEAD\n" + table.read_text() + "=======\n>>>>>>> other\n")
    res = subprocess.run([GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
                          "-ex", f"source {copy / 'gdb_toolkit' / 'gdbinit.py'}", "-ex", STATE,
                          "-ex", "help got"], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    res = GdbResult(res.stdout, res.stderr, res.returncode)
    assert_no_traceback(res)
    (st,) = [json.loads(ln[len("@@STATE"):]) for ln in res.stdout.splitlines()
             if ln.startswith("@@STATE")]
    assert st["source"] == "modules"
    assert "GOT slots (edited after the table was made)" in res.stdout
    assert "GOT slots, their state and binding now" not in res.stdout


def test_a_command_whose_module_cannot_load_fails_in_one_line(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text(
              "from gdb_toolkit.gdbsupport.registry import Entry, RegisteredCommand\n"
              "RegisteredCommand(Entry('command', 'toolkit gtk-test-broken', "
              "'gdb_toolkit.no_such_module', 'Nothing', 'A command whose module is missing (test)'))\n")
    res = run_gdb([f"source {script}", "toolkit gtk-test-broken", "complete toolkit gtk-test-broken --",
                   *json_wrapped("toolkit gtk-test-broken --json")])
    assert_no_traceback(res)
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
    line = ("toolkit gtk-test-broken: cannot load gdb_toolkit.no_such_module: "
            "ModuleNotFoundError: No module named 'gdb_toolkit.no_such_module'. "
            "Fix: reinstall gdb_toolkit or report it with GDB_TOOLKIT_DEBUG=1 output.")
    assert errors == [line, line], res.stderr
    (doc,) = res.envelopes()                            # --json: the error as its one document
    assert validate_document(doc) == [] and doc["error"]["kind"] == "internal"
    assert doc["error"]["message"] == line


@pytest.mark.parametrize("argument, cause", [
    ("bogus --json", 'Undefined toolkit command: "bogus"'),
    ("--json", "toolkit itself has no --json"),
])
def test_the_toolkit_prefix_answers_json_with_one_document(argument, cause):
    res = run_gdb([*json_wrapped(f"toolkit {argument}"), "echo still-alive\\n"])
    (doc,) = res.envelopes()
    assert validate_document(doc) == [] and doc["ok"] is False
    assert doc["command"] == "toolkit" and doc["error"]["cause"] == cause
    assert cause in res.stderr and "still-alive" in res.stdout
