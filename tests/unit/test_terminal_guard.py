"""The output guard (common.names.terminal_text): the last line of defence behind the
renderers, through which every command's text output and ktrace's event lines are written.

Oracle: the terminal's control set by code point (C0, DEL, C1: unicodedata's category Cc,
and Cf format characters such as the bidi overrides), and the styler's own sequences."""
import unicodedata

from gdb_toolkit.common.names import terminal_text
from gdb_toolkit.common.style import PLAIN, Styler, default_prefixes


def _controls(text: str) -> list[str]:
    """Characters a terminal acts on rather than shows (newline and tab allowed)."""
    return [c for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf", "Cs")]


HOSTILE = ("name\x1b[2J\x1b]0;pwned\x07 over\rwrite\x08\x7f \x9b31m \u202egnp.exe "
           "\udcff\udcfe end")


def test_printable_output_is_returned_as_it_is():
    text = "slot  0x555555557fd0  puts@GLIBC_2.2.5\n\tcafé ▄▄ 中文 back\\slash\n"
    assert terminal_text(text) is text
    assert terminal_text(text, Styler(default_prefixes()).sequences()) is text


def test_every_control_character_is_escaped_when_styling_is_off():
    out = terminal_text("a " + HOSTILE + "\n", PLAIN.sequences())
    assert _controls(out) == []
    assert "\x1b" not in out
    assert out == ("a name\\x1b[2J\\x1b]0;pwned\\x07 over\\x0dwrite\\x08\\x7f \\u009b31m "
                   "\\u202egnp.exe \\xff\\xfe end\n")
    out.encode("utf-8")             # undecodable bytes no longer make gdb.write raise


def test_only_the_stylers_own_sequences_pass_when_styling_is_on():
    styler = Styler(default_prefixes())
    styled = styler("address", "0x1000") + "  " + styler("symbol", "main") + "  " + HOSTILE
    out = terminal_text(styled, styler.sequences())
    assert out.startswith(styled[:styled.index("name")])        # the styles kept, byte for byte
    assert out.count("\x1b") == 4                               # two prefixes, two resets
    rest = out[out.index("name"):]
    assert _controls(rest) == [] and "\x1b" not in rest
    # a hostile name carrying exactly a style's sequence cannot pass as text either when the
    # renderer escaped it; raw, it may only change a colour (the guard's documented limit)
    assert terminal_text("\x1b[31mx\x1b[m", styler.sequences()).count("\x1b") == 2


def test_text_with_names_escaped_already_is_not_escaped_twice():
    # 'lib\x0aesc.so' is an escape_name rendering (a backslash, not a newline); the raw ESC
    # beside it in the same text is escaped, the rendering left alone
    assert terminal_text("esc\x1b[2Jsym in lib\\x0aesc.so") == "esc\\x1b[2Jsym in lib\\x0aesc.so"
