"""Errors reach the terminal as one printable line (issue 11): a hostile name inside a message
(an escape sequence, a newline, a byte that is not UTF-8) is escaped centrally by the command
base class, whatever the domain wrote.  Before, gdb printed an escape sequence raw (a file name
could clear or recolour the user's screen), a newline split the "one-line" error, and a
non-UTF-8 byte turned the error into three lines about a UnicodeEncodeError."""
import pytest

from tests.support.hostile import run_hostile

pytestmark = pytest.mark.gdb


def test_escape_sequence_in_an_argument_is_not_echoed_raw():
    run = run_hostile(["vg-start /nonexistent/ev\x1b[2Jil"], timeout=60)
    assert run.alive, run.describe()
    assert "\x1b" not in run.result.output, run.describe()
    assert "ev\\x1b[2Jil" in run.result.stderr, run.describe()


DRIVER = r'''
import gdb
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.gdbsupport.command import ToolkitCommand
from gdb_toolkit.gdbsupport.registry import register_class

class Hostile(ToolkitCommand):
    """Raise an error naming a hostile file (test only)."""
    name = "toolkit gtk-test-hostile-error"

    def run(self, args):
        raise ToolkitError("cannot read /tmp/lat\udce9in/new\nline/\x1b[2Jclear", "rename it")

register_class(Hostile)
'''


def test_newline_escape_and_non_utf8_bytes_in_a_message(tmp_path):
    """Through the base class, as every domain's ToolkitError goes: gdb prints one printable
    line (before: three lines about a UnicodeEncodeError)."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    run = run_hostile([f"python exec(open({str(script)!r}).read())", "toolkit gtk-test-hostile-error"],
                      timeout=60)
    assert run.alive, run.describe()
    err = run.error_lines
    assert err == ["cannot read /tmp/lat\\xe9in/new\\x0aline/\\x1b[2Jclear. Fix: rename it."], run.describe()


RENDER_DRIVER = r'''
import gdb
from gdb_toolkit.gdbsupport.command import ToolkitCommand
from gdb_toolkit.gdbsupport.registry import register_class

class HostileOutput(ToolkitCommand):
    """Render a name a renderer forgot to escape (test only)."""
    name = "toolkit gtk-test-hostile-output"

    def run(self, args):
        return "lat\udce9in"

    def render(self, report, ctx):
        return f"object: {report}\n"

register_class(HostileOutput)
'''


def test_unescaped_non_utf8_name_in_output_is_not_an_internal_error(tmp_path):
    """The base class's last line of defence: a surrogate left in rendered text prints as
    \\xNN (before: gdb.write raised UnicodeEncodeError -> 'internal error', as vg-errors did
    for a source file named in Latin-1)."""
    script = tmp_path / "driver.py"
    script.write_text(RENDER_DRIVER)
    run = run_hostile([f"python exec(open({str(script)!r}).read())", "toolkit gtk-test-hostile-output"],
                      timeout=60)
    assert run.alive, run.describe()
    assert "object: lat\\xe9in" in run.last_output, run.describe()
    assert "internal error" not in run.result.output, run.describe()
