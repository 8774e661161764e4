"""Every command's parser answers common argvs without argparse (common.args: ~3 ms of a
first call); the oracle is argparse itself, built from the same declared arguments, run on
the same argvs in real gdb for every registered command."""
import json

import pytest

from tests.support.gdbrun import run_gdb

pytestmark = pytest.mark.gdb

SCRIPT = r'''
import json, random
from gdb_toolkit.common.args import HelpRequested
from gdb_toolkit.common.errors import UsageError
from gdb_toolkit.gdbsupport.registry import command_objects

def outcome(parse, argv):
    try:
        return ["ok", sorted((k, repr(v)) for k, v in vars(parse(argv)).items())]
    except UsageError as exc:
        return ["usage", str(exc)]
    except HelpRequested as exc:
        return ["help", exc.text]

rng = random.Random(14)
words = ["puts", "full", "summary", "x y", "", "0x10", "main", "1", "--", "-", "-h", "--bogus", "7"]
report = {"commands": 0, "fast": 0, "checked": 0, "diffs": []}
for cmd in command_objects():
    p = cmd.parser
    report["commands"] += 1
    tokens = p.option_strings() + words
    argvs = [[], ["--json"]] + [[rng.choice(tokens) for _ in range(rng.randint(1, 4))] for _ in range(300)]
    for argv in argvs:
        fast = p._parse_fast(argv)
        if fast is None:
            continue
        report["fast"] += 1
        slow = outcome(p.argparse_parser().parse, argv)
        mine = ["ok", sorted((k, repr(v)) for k, v in vars(fast).items())]
        report["checked"] += 1
        if slow != mine:
            report["diffs"].append([cmd.name, argv, slow, mine])
print("@@ARGS" + json.dumps(report))
'''


def test_fast_answers_are_argparses_for_every_command(tmp_path):
    script = tmp_path / "args_check.py"
    script.write_text(SCRIPT)
    res = run_gdb([f"source {script}"], timeout=300)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("@@ARGS"))
    report = json.loads(line[len("@@ARGS"):])
    assert report["commands"] >= 20, report
    assert report["fast"] >= 2 * report["commands"] // 2, report      # got, plt, vg-leaks...: many argvs
    assert report["diffs"] == [], report["diffs"][:5]


def test_first_call_without_options_does_not_import_argparse():
    # 'got' before run (the file view) with no options: parsed without argparse
    res = run_gdb(["python import sys; sys.modules.pop('argparse', None)",
                   "toolkit commands",
                   "python print('@@argparse', 'argparse' in sys.modules)",
                   "toolkit commands --bogus-option"], timeout=60)
    assert "@@argparse False" in res.stdout, res.stdout
    assert "unrecognized arguments: --bogus-option" in res.stdout + res.stderr
