"""Prose for the terminal: wrap to gdb's width without breaking a word, and
aligned ``key: value`` blocks whose values wrap under themselves.  Pure.

A "word" is whatever sits between spaces, so an address, a symbol, a path or
file:line is never split; a word longer than the line is printed whole on its
own line (the terminal folds it, but it stays one copyable token).  No
textwrap import: this is a few lines and keeps first calls cheap.
"""


def wrap_lines(text: str, width: int | None, indent: str = "",
               subsequent_indent: str | None = None) -> list[str]:
    """*text* as lines of at most *width* characters (None: one line per
    paragraph), split only at spaces.  Newlines in *text* are kept."""
    if subsequent_indent is None:
        subsequent_indent = indent
    out: list[str] = []
    first = True
    for para in str(text).split("\n"):
        if not para.isprintable():      # control characters, undecodable bytes of a name
            from gdb_toolkit.common.names import escape_name

            para = escape_name(para)
        lead = indent if first else subsequent_indent
        first = False
        if width is None or len(lead) + len(para) <= width:
            out.append((lead + para).rstrip() if para.strip() else lead.rstrip())
            continue
        line = lead
        empty = True
        for word in para.split():
            if empty:
                line += word
                empty = False
            elif len(line) + 1 + len(word) <= width:
                line += " " + word
            else:
                out.append(line)
                line = subsequent_indent + word
        out.append(line)
    return out


def wrap(text: str, width: int | None, indent: str = "", subsequent_indent: str | None = None) -> str:
    """:func:`wrap_lines` joined, with a final newline."""
    return "\n".join(wrap_lines(text, width, indent, subsequent_indent)) + "\n"


def cell_lines(text: str, width: int) -> list[str]:
    """A table cell folded to *width* at spaces (words are never split)."""
    if len(text) <= width and "\n" not in text:
        return [text]
    return wrap_lines(text, width)


def longest_word(text: str) -> int:
    """Length of the longest space-separated word: the narrowest a wrapped cell can get."""
    if " " not in text and "\n" not in text:
        return len(text)
    return max((len(w) for w in text.split()), default=0)


def key_values(pairs, width: int | None = None, styler=None, indent: str = "") -> str:
    """Aligned ``key: value`` lines; a long value wraps under itself.

    *pairs* are ``(key, value)`` or ``(key, value, role)`` (role: a style role
    of common.style, e.g. "address"); pairs whose value is None are skipped.
    When the keys take more than half the width, values go on their own
    indented lines instead.
    """
    items = [p for p in pairs if p[1] is not None]
    if not items:
        return ""
    kw = max(len(str(p[0])) for p in items) + 1
    out = []
    stacked = width is not None and kw + 1 + len(indent) > width // 2
    for p in items:
        key, value = str(p[0]), str(p[1])
        role = p[2] if len(p) > 2 else None
        if stacked:
            out.append(f"{indent}{key}:")
            lines = wrap_lines(value, width, indent + "    ")
        else:
            lead = f"{indent}{key + ':':<{kw}} "
            lines = wrap_lines(value, width, lead, " " * len(lead))
        if styler is not None and role:
            lines = [_style_tail(ln, len(indent) + (0 if stacked else kw + 1), role, styler)
                     for ln in lines]
        out.extend(lines)
    return "\n".join(out) + "\n"


def _style_tail(line: str, start: int, role: str, styler) -> str:
    head, tail = line[:start], line[start:]
    stripped = tail.lstrip(" ")
    return head + tail[: len(tail) - len(stripped)] + styler(role, stripped)


def notes_block(notes, width: int | None = None, label: str = "note", styler=None) -> str:
    """The ``notes`` of a result as every command prints them: ``note: SENTENCE``, wrapped
    under itself at *width* (docs/json.md: the same sentences as the JSON ``notes``)."""
    out = []
    lead = f"{label}: "
    for n in notes or ():
        lines = wrap_lines(str(n), width, lead, " " * len(lead))
        if styler is not None and lines:
            lines[0] = styler("metadata", lead.rstrip()) + " " + lines[0][len(lead):]
        out.extend(lines)
    return "\n".join(out) + "\n" if out else ""
