"""Adversarial arguments to every command (issue 11 item 9 class): unbalanced quotes, a lone
backslash, huge numbers and repetition counts, 5000-character words, shell syntax, non-UTF-8
text.  Whatever the argument, the command answers with a one-line error or a result: no
traceback, no "internal error", gdb keeps running its command list, and nothing is left in
TMPDIR after gdb exits."""
import os

import pytest

from tests.support.gdbrun import compile_c, gdb_json, run_gdb

pytestmark = pytest.mark.gdb

COMMANDS = ["toolkit doctor --quick", "toolkit commands", "kcore", "kprobe-list", "kprobe-show",
            "kdis", "kx", "ksym", "ftrace-site", "got", "plt", "plt-walk", "stack-diagnose",
            "ktask", "ktypes", "ktrace --timeout 2", "vg-leaks", "vg-who", "vg-block", "vg-vbits", "vg-check",
            "vg-errors", "vg-attach", "vg-watch", "vg-start"]
ARGS = ["'", '"unbalanced', "\\", "a{99999999999}", "x" * 5000, "$(touch /tmp/gtk-sweep-pwned)",
        "-1", "0x", "--json --json", "-- --", "9" * 30, "''", "\u00e9\u202e\x7f", "%n%s%x",
        "--top=--", "--count=--", "--timeout=--", "-n--"]
PENDING: dict[str, str] = {}      # command -> branch whose fix is pending (item 9)


@pytest.mark.parametrize("command", [
    pytest.param(c, marks=[pytest.mark.xfail(reason=f"item 9, branch {PENDING[c]}", strict=False)]
                 if c in PENDING else []) for c in COMMANDS])
def test_hostile_arguments(command, tmp_path):
    prog = compile_c("#include <stdio.h>\nint main(void) { puts(\"x\"); return 0; }\n",
                     name="sweep", flags=["-g"])
    seq = []
    for i, a in enumerate(ARGS):
        seq += [f"echo @@{i}\\n", f"{command} {a}"]
    tmpdir = tmp_path / "tmp"           # item 4 (clean up), also after every failure
    tmpdir.mkdir()
    res = run_gdb(["start", *seq, "echo @@END\\n"], program=prog, timeout=300, cwd=tmp_path,
                  env={"TMPDIR": str(tmpdir)})
    assert "@@END" in res.stdout, res.output[-3000:]
    bad = [ln for ln in res.output.splitlines() if "internal error" in ln or "Traceback" in ln]
    assert not bad, bad
    assert not os.path.exists("/tmp/gtk-sweep-pwned")
    assert sorted(os.listdir(tmpdir)) == [], f"{command} left files in TMPDIR"


def test_the_sweep_covers_every_command():
    """A command added later is swept too: the list above must name every registered command."""
    doc = gdb_json([], "toolkit commands")
    doc = doc.get("result", doc)                      # the envelope, or its result
    names = {c["name"] for c in doc["commands"]}
    swept = {c.replace(" --quick", "").replace(" --timeout 2", "") for c in COMMANDS}
    assert names <= swept, f"add to COMMANDS: {sorted(names - swept)}"
