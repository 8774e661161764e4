"""Terminal styles the gdb way.  Pure: the gdb layer (gdbsupport/style.py)
reads gdb's own ``set style ...`` settings and builds a :class:`Styler`.

Roles name what a piece of text *is*; each maps to one of gdb's styles, so a
user's ``set style address foreground cyan`` colours toolkit output too:

====================  ===========================================
role                  gdb style
====================  ===========================================
address               ``style address``
symbol                ``style function``
location, file        ``style filename``
variable              ``style variable``
title                 ``style title``
highlight             ``style highlight``
metadata              ``style metadata`` (dim remarks)
good / bad / warn     fixed green / red / yellow (state colours)
====================  ===========================================

``state`` is not a style of its own: :func:`state_role` maps a state word
(ok, missing, resolved, unresolved, MISMATCH...) to good/bad/warn.  With
styling off (``set style enabled off``, batch mode, not a terminal, TERM=dumb,
``--json``) the :data:`PLAIN` styler returns text unchanged.
"""

GDB_STYLE_OF_ROLE = {
    "address": "address",
    "symbol": "function",
    "function": "function",
    "location": "filename",
    "file": "filename",
    "variable": "variable",
    "title": "title",
    "highlight": "highlight",
    "metadata": "metadata",
}

#: state colours: gdb has no style for "ok"; these follow what gdb/pwndbg users see
STATE_COLOURS = {"good": "green", "bad": "red", "warn": "yellow"}

#: state words (lower case) -> good / bad / warn; commands may pass their own map
STATE_WORDS = {
    "ok": "good", "yes": "good", "resolved": "good", "bound-at-load": "good", "agree": "good",
    "defined": "good", "pass": "good", "passes": "good", "connected": "good",
    "missing": "bad", "mismatch": "bad", "overwritten": "bad", "no": "bad", "error": "bad", "failed": "bad",
    "undefined": "bad", "unaddressable": "bad", "definite": "bad", "not": "bad",
    "limited": "warn", "unresolved": "warn", "lazy": "warn", "possible": "warn",
    "not-relocated": "warn", "partly defined": "warn", "info": "metadata", "null": "metadata",
}

_SGR_COLOUR = {"black": 0, "red": 1, "green": 2, "yellow": 3, "blue": 4, "magenta": 5,
               "cyan": 6, "white": 7}
_SGR_INTENSITY = {"bold": "1", "dim": "2"}
RESET = "\x1b[m"


def sgr(foreground: str | None = None, background: str | None = None,
        intensity: str | None = None, italic: bool = False, underline: bool = False,
        reverse: bool = False) -> str:
    """The escape sequence that starts a style given as gdb spells it
    (colour names, 'none', 'normal'/'bold'/'dim'); '' for no style at all."""
    codes = []
    if intensity in _SGR_INTENSITY:
        codes.append(_SGR_INTENSITY[intensity])
    if italic:
        codes.append("3")
    if underline:
        codes.append("4")
    if reverse:
        codes.append("7")
    if foreground in _SGR_COLOUR:
        codes.append(str(30 + _SGR_COLOUR[foreground]))
    if background in _SGR_COLOUR:
        codes.append(str(40 + _SGR_COLOUR[background]))
    return f"\x1b[{';'.join(codes)}m" if codes else ""


def state_role(word: str, states: dict | None = None) -> str | None:
    """good/bad/warn/metadata for a state word, or None (leave it plain)."""
    key = str(word).strip().lower()
    table = STATE_WORDS if states is None else states
    role = table.get(key)
    if role is None and states is not None:
        role = STATE_WORDS.get(key)
    if role is None and " " in key:
        role = table.get(key.split()[0]) or STATE_WORDS.get(key.split()[0])
    return role


class Styler:
    """Callable ``styler(role, text)``: *text* wrapped in the escape sequence of
    *role*.  Built from ``{role: escape prefix}``; unknown roles stay plain."""

    enabled = True

    def __init__(self, prefixes: dict[str, str]):
        self.prefixes = {k: v for k, v in prefixes.items() if v}

    def __call__(self, role: str | None, text: str) -> str:
        if not text or role is None:
            return text
        if role == "state":
            role = state_role(text)
            if role is None:
                return text
        prefix = self.prefixes.get(role)
        return f"{prefix}{text}{RESET}" if prefix else text

    def state(self, text: str, states: dict | None = None) -> str:
        """*text* coloured by the state word it is (see STATE_WORDS)."""
        role = state_role(text, states)
        return self(role, text) if role else text

    def sequences(self) -> tuple[str, ...]:
        """Every escape sequence this styler writes (its prefixes and the reset): what the
        output guard (common.names.terminal_text) lets through, longest first."""
        return tuple(sorted(set(self.prefixes.values()) | {RESET}, key=len, reverse=True))


class _Plain(Styler):
    enabled = False

    def __init__(self):
        super().__init__({})

    def __call__(self, role, text):
        return text

    def state(self, text, states=None):
        return text

    def sequences(self):
        return ()


#: the styler of batch mode, pipes, --json and 'set style enabled off'
PLAIN = _Plain()


def default_prefixes() -> dict[str, str]:
    """gdb 13's default styles (for tests and for a gdb that cannot be asked)."""
    out = {"address": sgr("blue"), "symbol": sgr("yellow"), "function": sgr("yellow"),
           "location": sgr("green"), "file": sgr("green"), "variable": sgr("cyan"),
           "title": sgr(intensity="bold"), "highlight": sgr("red"), "metadata": sgr(intensity="dim")}
    out.update({k: sgr(v) for k, v in STATE_COLOURS.items()})
    return out
