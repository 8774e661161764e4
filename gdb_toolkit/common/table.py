"""The one table renderer of gdb_toolkit.  Pure and fast; needs no tabulate.

Columns have roles, and the answer is never clipped:

* ``address``, ``symbol``, ``location`` (file:line), ``file``, ``number``,
  ``state`` and ``key`` cells are never broken: they print whole.
* ``text`` cells (free text) wrap at spaces to fit the width; a word is never
  split.
* A column whose every cell is empty is dropped.
* When the table still does not fit (the unbreakable columns plus the
  narrowest wrapped text exceed the width), it switches to a record layout:
  one ``header: value`` line per field, a blank line between rows.
* Rows may carry lines printed below them (``below``): long fields such as the
  doctor's fix, wrapped to the full width, always whole.

Layout (tabulate's "simple" format, which users of the toolkit already know)::

    slot            symbol            state
    --------------  ----------------  ----------
    0x555555557fd0  puts@GLIBC_2.2.5  unresolved

Thousands of rows cost a few milliseconds: when nothing wraps each row is a
single ``str.format`` call.  Styling (gdb's address/function/filename styles,
state colours) is applied after layout, so escape sequences never count
toward widths.
"""
from gdb_toolkit.common.text import cell_lines, longest_word, wrap_lines

UNBREAKABLE = frozenset({"address", "symbol", "location", "file", "number", "state", "key"})
ROLES = UNBREAKABLE | {"text"}
#: a wrapped text column is never made narrower than this (unless its words are shorter)
MIN_TEXT = 12
#: with no width (batch mode, pipes) free-text columns wrap at this width
UNLIMITED_TEXT = 80
GAP = "  "


class Col:
    """A column: its header, its role (see module doc), alignment, and for
    ``state`` columns an optional ``{word: good|bad|warn}`` map."""

    __slots__ = ("header", "role", "align", "states")

    def __init__(self, header: str, role: str = "text", align: str = "left",
                 states: dict | None = None):
        if role not in ROLES:
            raise ValueError(f"unknown column role {role!r} (one of {sorted(ROLES)})")
        self.header = str(header)
        self.role = role
        self.align = "right" if role == "number" and align == "left" else align
        self.states = states

    def __repr__(self):
        return f"Col({self.header!r}, {self.role!r})"


def _cells(rows) -> list[list[str]]:
    """Rows as lists of printable strings: a cell holding control characters or undecodable
    bytes (a file or process name) is shown as common.names.escape_name renders it, so it can
    neither break the layout nor send escape sequences to the terminal."""
    out = [r if all(type(v) is str and v.isprintable() for v in r) else
           [_printable("" if v is None else str(v)) for v in r] for r in rows]
    return out


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    from gdb_toolkit.common.names import escape_name

    return escape_name(text)


def render_table(columns, rows, width: int | None = None, title: str | None = None,
                 styler=None, below=None, gap: str = GAP, header: bool = True) -> str:
    """Render *rows* (lists of cells, any type; None is empty) under *columns*
    (:class:`Col` or header strings, which are ``text`` columns).

    *width*: the terminal's columns (None: unlimited, as in batch mode).
    *styler*: a common.style.Styler (None: plain).  *below*: for each row, a
    list of ``(label, text)`` lines printed under it (or None).  *header*:
    False leaves out the header and its underline (listings).
    """
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    cells = _cells(rows)
    if below is not None and len(below) != len(cells):
        raise ValueError("below must have one entry per row")
    keep = [i for i in range(len(cols)) if any(r[i] for r in cells)]
    if len(keep) != len(cols):
        cols = [cols[i] for i in keep]
        cells = [[r[i] for i in keep] for r in cells]
    out = [title + "\n"] if title else []
    if styler is not None and not getattr(styler, "enabled", True):
        styler = None
    if not cols:
        return "".join(out)
    natural = [len(c.header) if header else 0 for c in cols]
    for r in cells:
        for i, v in enumerate(r):
            if len(v) > natural[i]:
                natural[i] = len(v)
    widths = _fit(cols, cells, natural, width, len(gap))
    if widths is None:
        out.append(_records(cols, cells, width, styler, below))
    else:
        out.append(_grid(cols, cells, widths, styler, below, gap, width, header))
    return "".join(out)


def _fit(cols, cells, natural, width, gap) -> list[int] | None:
    """Column widths that fit *width*, shrinking only text columns; None when
    even the narrowest wrapping does not fit (record layout then)."""
    total = sum(natural) + gap * (len(cols) - 1)
    if width is None:
        # no terminal (batch, pipes): nothing to fit, but one long free-text cell must not
        # pad every other line to its length: text columns wrap at UNLIMITED_TEXT
        return [min(n, UNLIMITED_TEXT) if c.role == "text" else n for c, n in zip(cols, natural)]
    if total <= width:
        return natural
    text = [i for i, c in enumerate(cols) if c.role == "text"]
    if not text:
        return None
    fixed = sum(natural[i] for i in range(len(cols)) if i not in text) + gap * (len(cols) - 1)
    floor = {}
    for i in text:
        words = max((longest_word(r[i]) for r in cells), default=0)
        head = len(cols[i].header) if natural[i] >= len(cols[i].header) else 0
        floor[i] = min(natural[i], max(head, words, min(MIN_TEXT, natural[i])))
    room = width - fixed
    if room < sum(floor.values()):
        return None
    widths = list(natural)
    for i in text:
        widths[i] = floor[i]
    spare = room - sum(floor.values())
    # what is left goes in equal shares to the columns still narrower than their content
    growing = [i for i in text if widths[i] < natural[i]]
    while spare > 0 and growing:
        share = max(1, spare // len(growing))
        for i in list(growing):
            give = min(share, natural[i] - widths[i], spare)
            widths[i] += give
            spare -= give
            if widths[i] >= natural[i]:
                growing.remove(i)
            if not spare:
                break
    return widths


def _grid(cols, cells, widths, styler, below, gap, width, header=True) -> str:
    last = len(cols) - 1
    heads = [c.header for c in cols]
    lines = [_join(heads, widths, cols, gap, None, last), gap.join("-" * w for w in widths)] \
        if header else []
    wraps = any((header and w < len(c.header)) or w < max((len(r[i]) for r in cells), default=0)
                for i, (c, w) in enumerate(zip(cols, widths)))
    right = any(c.align == "right" for c in cols)
    if not wraps and styler is None and not right:
        fmt = gap.join(f"{{:<{w}}}" for w in widths[:-1]) + (gap if last else "") + "{}"
        if below is None:
            lines.extend([fmt.format(*r).rstrip() for r in cells])
        else:
            for r, extra in zip(cells, below):
                lines.append(fmt.format(*r).rstrip())
                if extra:
                    lines.extend(_below(extra, width, cols, widths, gap, styler))
        return "\n".join(lines) + "\n" if lines else ""
    for n, r in enumerate(cells):
        parts = [cell_lines(v, widths[i]) if cols[i].role == "text" else [v] for i, v in enumerate(r)]
        height = max(len(p) for p in parts)
        for k in range(height):
            row = [p[k] if k < len(p) else "" for p in parts]
            lines.append(_join(row, widths, cols, gap, styler, last))
        if below is not None and below[n]:
            lines.extend(_below(below[n], width, cols, widths, gap, styler))
    return "\n".join(lines) + "\n"


def _join(row, widths, cols, gap, styler, last) -> str:
    out = []
    for i, v in enumerate(row):
        pad = widths[i] - len(v)
        c = cols[i]
        shown = v if styler is None or not v else _style(c, v, styler)
        if c.align == "right":
            out.append(" " * pad + shown)
        elif i == last:
            out.append(shown)
        else:
            out.append(shown + " " * pad)
    return gap.join(out).rstrip()


def _style(col: Col, text: str, styler) -> str:
    if col.role == "state":
        return styler.state(text, col.states)
    if col.role in ("text", "number", "key"):
        return text
    return styler(col.role, text)


def _below(extra, width, cols, widths, gap, styler) -> list[str]:
    """Lines under a row: ``label: text`` indented under the second column."""
    indent = " " * (widths[0] + len(gap)) if len(widths) > 1 and widths[0] < 40 else "  "
    out = []
    for label, text in extra:
        if not text:
            continue
        lead = f"{indent}{label}: "
        lines = wrap_lines(text, width, lead, " " * len(lead))
        if styler is not None:
            lines[0] = lines[0].replace(f"{label}:", styler("metadata", f"{label}:"), 1)
        out.extend(lines)
    return out


def _records(cols, cells, width, styler, below) -> str:
    """One field per line, a blank line between rows: for tables too wide for the terminal."""
    extra_labels = {str(lab) for b in (below or ()) if b for lab, _ in b}
    kw = max([len(c.header) for c in cols] + [len(x) for x in extra_labels]) + 1
    out = []
    for n, r in enumerate(cells):
        if n:
            out.append("")
        fields = [(c, v) for c, v in zip(cols, r) if v]
        fields += [(Col(lab), t) for lab, t in (below[n] if below is not None and below[n] else ()) if t]
        for c, v in fields:
            lead = f"{c.header + ':':<{kw}} "
            if c.role == "text":
                lines = wrap_lines(v, width, lead, " " * len(lead))
            else:
                lines = [lead + v]
            if styler is not None:
                lines[0] = lead + _style(c, lines[0][len(lead):], styler)
            out.extend(lines)
    return "\n".join(out) + "\n"
