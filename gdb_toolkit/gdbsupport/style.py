"""gdb's own styles for toolkit output.

gdb 13's Python has no call to style arbitrary text, and ``echo``-ing user
data through gdb's command parser is not allowed (docs/security.md), so the
styler reads gdb's ``style NAME foreground/background/intensity`` settings
and emits the same SGR escape sequences gdb would.  Styling is on only when
gdb would style its own output: ``style enabled`` (gdb turns it off in batch
mode), stdout a terminal, TERM not "dumb".
"""
import os

import gdb

from gdb_toolkit.common.style import PLAIN, STATE_COLOURS, Styler, sgr

_GDB_STYLES = ("address", "function", "filename", "variable", "title", "highlight", "metadata")


def styling_enabled() -> bool:
    try:
        if not gdb.parameter("style enabled"):
            return False
    except (gdb.error, RuntimeError):
        return False
    if os.environ.get("TERM", "") in ("", "dumb"):
        return False
    try:
        return os.isatty(1)
    except OSError:
        return False


def _param(name: str):
    try:
        return gdb.parameter(name)
    except (gdb.error, RuntimeError):
        return None


def gdb_style_prefix(style: str) -> str:
    """The escape sequence gdb uses for ``style STYLE`` now ('' if plain)."""
    fg = _param(f"style {style} foreground")
    bg = _param(f"style {style} background")
    intensity = _param(f"style {style} intensity")
    italic = bool(_param(f"style {style} italic"))      # gdb 14+; None on 13
    underline = bool(_param(f"style {style} underline"))
    reverse = bool(_param(f"style {style} reverse"))
    return sgr(fg, bg, intensity, italic, underline, reverse)


def current_styler() -> Styler:
    """A Styler from gdb's settings, or PLAIN when gdb would not style its own output."""
    if not styling_enabled():
        return PLAIN
    from gdb_toolkit.common.style import GDB_STYLE_OF_ROLE

    prefixes = {s: gdb_style_prefix(s) for s in _GDB_STYLES}
    out = {role: prefixes.get(style, "") for role, style in GDB_STYLE_OF_ROLE.items()}
    out.update({state: sgr(colour) for state, colour in STATE_COLOURS.items()})
    return Styler(out)
