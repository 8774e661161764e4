"""The toolkit in a real terminal (tmux) at 80 and 200 columns (issue 14).

Oracles: the same command's --json (what must be shown), the terminal's own screen
(what is shown, row by row), and gdb's styles as set in the session.
"""
import re

import pytest

from tests.support.gdbrun import gdb_json
from tests.support.tmux import ANSI, TmuxGdb

pytestmark = pytest.mark.gdb


def _below(rows: list[str], label: str) -> list[str]:
    """The texts printed under rows as "label: ...", continuation rows joined."""
    out, cur, indent = [], None, None
    for r in rows:
        m = re.match(r"^(\s*)" + re.escape(label) + r": (.*)$", r)
        if m:
            if cur is not None:
                out.append(cur)
            cur, indent = m.group(2), len(m.group(1)) + len(label) + 2
        elif cur is not None and r.startswith(" " * indent) and r.strip() and \
                not re.match(r"^\s*\w[\w ]*: ", r):
            cur += " " + r.strip()
        else:
            if cur is not None:
                out.append(cur)
            cur = None
    if cur is not None:
        out.append(cur)
    return out


@pytest.mark.parametrize("width", [80, 200])
def test_doctor_shows_every_fix_whole(width):
    expected = [c["fix"] for c in gdb_json([], "toolkit doctor --quick")["checks"] if c["fix"]]
    assert expected, "this machine lacks kcore/kprobes: some fix is always shown"
    with TmuxGdb(width=width, height=60) as t:
        rows = t.run("toolkit doctor --quick")
        t.assert_whole(rows, [])
        assert _below(rows, "fix") == expected, "\n".join(rows)
        if width == 200:
            assert all(f in "\n".join(rows) for f in expected)      # each on one row
        assert max(len(r) for r in rows) <= width


def test_doctor_in_batch_has_no_padding():
    from tests.support.gdbrun import run_gdb

    res = run_gdb(["toolkit doctor --quick"])
    assert max(len(ln) for ln in res.stdout.splitlines()) <= 120, res.stdout


def test_toolkit_commands_at_80_columns():
    doc = gdb_json([], "toolkit commands")
    with TmuxGdb(width=80) as t:
        rows = t.run("toolkit commands")
    names = [c["aliases"][0] if c["aliases"] else c["gdb_name"] for c in doc["commands"]]
    t.assert_whole(rows, [n.split()[-1] for n in names])
    for fn in ("$ksym", "$kprobe", "$ktask", "$kretval", "$kevents"):
        assert any(r.lstrip().startswith(fn) for r in rows), (fn, rows)


def test_enter_does_not_repeat_reports():
    with TmuxGdb(width=80) as t:
        first = t.run("toolkit doctor --quick")
        assert first and t.enter() == []
        assert t.run("toolkit commands") and t.enter() == []
        assert t.run("ksym do_sys_openat2 --no-btf") and t.enter() == []
        # gdb's own repeating commands still repeat: the harness sees a repeat when there is one
        t.run("print 1")
        assert any("$2 = 1" in r for r in t.enter())


def test_styles_follow_gdb_settings():
    with TmuxGdb(width=120) as t:
        t.run("set style address foreground magenta")
        rows = t.run("ksym do_sys_openat2 --no-btf", styled=True)
        text = "\n".join(rows)
        assert re.search(r"\x1b\[35m0xffffffff[0-9a-f]+", text), ascii(text)
        rows = t.run("toolkit doctor --quick", styled=True)
        assert "\x1b[32mok" in "\n".join(rows)
        assert any("\x1b[31mmissing" in r for r in rows) or "missing" not in ANSI.sub("", "\n".join(rows))
        t.run("set style enabled off")
        plain = t.run("toolkit doctor --quick", styled=True)
        assert not any("\x1b[" in r for r in plain), plain


def test_help_and_apropos_lines_do_not_fold_at_80():
    from tests.integration.test_command_framework import PENDING_SUMMARIES

    with TmuxGdb(width=80) as t:
        rows = t.run("help toolkit") + t.run("apropos toolkit")
    ours = [r for r in rows if r.startswith("toolkit ") and " -- " in r]
    assert ours
    for r in ours:
        name = r.split(" -- ")[0].split(",")[0][len("toolkit "):]
        if name not in PENDING_SUMMARIES:
            assert len(r) < 80, r
