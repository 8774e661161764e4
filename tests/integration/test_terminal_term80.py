"""term80's adversarial pass over issue 14's terminal rules, with cases not in the issue:
prose that starts with an option, names carrying control bytes, escapes, widths narrower
than an address, gdb's styling on.

Oracles: the command's own source text (the words its description must print, in order),
readelf/nm (the bytes of a symbol), the width arithmetic itself.
"""
import ast
import re

import pytest

from tests.support.gdbrun import REPO, run_gdb

pytestmark = pytest.mark.gdb


def _description(domain: str, command_name: str) -> str:
    """The ``description`` a command class declares, read from its source with ast (the
    words its help must print, in this order)."""
    tree = ast.parse((REPO / "gdb_toolkit" / domain / "gdb_commands.py").read_text())
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        attrs = {t.id: n.value for n in cls.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)}
        if "name" in attrs and ast.literal_eval(attrs["name"]) == command_name:
            return ast.literal_eval(attrs["description"])
    raise AssertionError(f"no command {command_name} in {domain}")


@pytest.mark.parametrize("domain,command", [("valgrind", "vg-start"), ("ktrace", "ktrace"),
                                            ("doctor", "toolkit doctor"),
                                            ("valgrind", "vg-attach")])
@pytest.mark.parametrize("width,form", [(50, "--help"), (80, "help")])
def test_help_prose_starting_with_an_option_is_not_a_hanging_list_item(domain, command, width, form):
    """A description line of running prose that happens to start with an option
    (vg-start: '--vgdb-prefix=P after "--" are honoured.  Its stdout/stderr go to gdb's
    terminal') was taken for a definition-list item: its sentence after the double space
    hung 13 columns in under itself, mid-paragraph ('             terminal'), and every
    source line of ktrace's '--pid ...' / '--args ...' sentences became its own ragged
    paragraph.  These descriptions have no list: no line of them is indented, and the
    words are the declared ones, in order (``help NAME``: gdb prints it as it is, made for
    80 columns; ``NAME --help``: wrapped to gdb's width)."""
    desc = _description(domain, command)
    assert not any(ln.startswith(" ") for ln in desc.splitlines())   # no list items declared
    res = run_gdb([f"set width {width}", f"help {command}" if form == "help" else f"{command} --help"])
    lines = res.stdout.splitlines()
    first = desc.split()[0]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(first + " "))
    end = next(i for i in range(start, len(lines))
               if lines[i].startswith(("positional", "options:", "Example")))
    body = [ln for ln in lines[start:end] if ln.strip()]
    indented = [ln for ln in body if ln.startswith(" ")]
    assert not indented, "\n".join(lines[start:end])
    assert " ".join(body).split() == desc.split()
    assert all(len(ln) <= width or " " not in ln for ln in body), "\n".join(body)
