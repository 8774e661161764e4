"""The one table renderer of gdb_toolkit.  Pure and fast; needs no tabulate.

Columns have roles, and the answer is never clipped:

* ``address``, ``symbol``, ``location`` (file:line), ``file``, ``number``,
  ``state`` and ``key`` cells are never broken: they print whole (a demangled C++
  name wider than the whole line is cut at its own blanks in the record layout:
  the terminal would otherwise fold it in the middle of an identifier).
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
single ``%``-format call.  Styling (gdb's address/function/filename styles,
state colours) is applied after layout, so escape sequences never count
toward widths.
"""
from itertools import chain

from gdb_toolkit.common.text import _below_indent, cell_lines, display_width, longest_word, wrap_lines

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


def _cells(rows) -> list:
    """Rows as lists of printable strings: a cell holding control characters or undecodable
    bytes (a file or process name) is shown escaped (:func:`_printable`), so it can
    neither break the layout nor send escape sequences to the terminal.  (render_table does
    the same column by column, see :func:`_columns`.)"""
    rows = rows if isinstance(rows, list) else list(rows)
    if not {str}.issuperset(map(type, chain.from_iterable(rows))):
        rows = [r if {str}.issuperset(map(type, r)) else list(map(_text, r)) for r in rows]
    if not "".join(map("".join, rows)).isprintable():
        rows = [r if "".join(r).isprintable() else list(map(_printable, r)) for r in rows]
    return rows


def _columns(rows, n: int) -> list[tuple]:
    """The cells column by column (*n* columns; a short row has empty cells at its end),
    as printable strings (see :func:`_cells`).  Whole-column checks are C-level passes,
    so thousands of rows cost little and only a column holding other values is converted."""
    if not rows:
        return [()] * n
    if set(map(len, rows)) != {n}:
        rows = [tuple(r[:n]) + ("",) * (n - len(r)) for r in rows]
    columns = list(zip(*rows))
    for i, col in enumerate(columns):
        if not {str}.issuperset(map(type, col)):
            col = tuple(map(_text, col))
        if not "".join(col).isprintable():
            col = tuple(map(_printable, col))
        columns[i] = col
    return columns


def _text(value) -> str:
    return value if type(value) is str else ("" if value is None else str(value))


def _printable(text: str) -> str:
    """A cell holding control characters or undecodable bytes, each escaped as
    common.names.escape_name writes it (``\\x1b``, ``\\xff``).  Backslashes are left as they
    are (names.printable_text): a cell is often composed of a raw name and a name escaped
    already (got's target ``esc\\x1b[2Jsym in lib\\x0aesc.so``), whose backslashes
    escape_name doubled (``lib\\\\x0aesc.so``) only because a control byte sat beside it; a
    printable cell keeps its backslashes too, so a name shows the same whatever its cell holds."""
    if text.isprintable():
        return text
    from gdb_toolkit.common.names import printable_text

    return printable_text(text)


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
    rows = rows if isinstance(rows, (list, tuple)) else list(rows)
    if below is not None and len(below) != len(rows):
        raise ValueError("below must have one entry per row")
    # the table column by column: emptiness and widths are C-level passes over a column
    columns_of = _columns(rows, len(cols))
    keep = [i for i, v in enumerate(columns_of) if any(v)]
    if len(keep) != len(cols):
        cols = [cols[i] for i in keep]
        columns_of = [columns_of[i] for i in keep]
    out = [_title(title, width) + "\n"] if title else []
    if styler is not None and not getattr(styler, "enabled", True):
        styler = None
    if not cols:
        return "".join(out)
    cells = list(zip(*columns_of))
    # terminal columns: a column holding wide characters (Chinese names) is measured per cell
    wide = {i for i, v in enumerate(columns_of) if not "".join(v).isascii()}
    natural = [max(len(c.header) if header else 0,
                   max(map(display_width if i in wide else len, v), default=0))
               for i, (c, v) in enumerate(zip(cols, columns_of))]
    widths = _fit(cols, columns_of, natural, width, len(gap))
    if widths is None:
        out.append(_records(cols, cells, width, styler, below))
    else:
        out.append(_grid(cols, cells, widths, natural, styler, below, gap, width, header, wide))
    return "".join(out)


def _title(title: str, width: int | None) -> str:
    """The title wrapped at *width* like prose; a title styled as a whole (one escape
    sequence, the text, the reset: ``ctx.styler("title", text)``) is wrapped inside its
    style, line by line.  Anything else with escape sequences is left as it is."""
    if width is None or display_width(title) <= width:
        return title
    if title.isprintable():
        return "\n".join(wrap_lines(title, width, "", "  "))
    import re

    m = re.fullmatch(r"(\x1b\[[0-9;]*m)([^\x1b]*)(\x1b\[m)", title)
    if m is None or display_width(m.group(2)) <= width:
        return title
    return "\n".join(m.group(1) + ln + m.group(3) for ln in wrap_lines(m.group(2), width, "", "  "))


def _fit(cols, columns_of, natural, width, gap) -> list[int] | None:
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
        words = max(map(longest_word, columns_of[i]), default=0)
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


def _row_format(cols, widths, gap, raw) -> str:
    """The ``%``-format pattern of one table line (the fastest way CPython pads a row):
    each cell padded to its column's width (numbers right-aligned; the last column
    unpadded).  Columns in *raw* take their cell already padded (styled cells: escape
    sequences must not count)."""
    last = len(cols) - 1
    parts = []
    for i, (c, w) in enumerate(zip(cols, widths)):
        if i in raw:
            parts.append("%s")
        elif c.align == "right":
            parts.append(f"%{w}s")
        elif i == last:
            parts.append("%s")
        else:
            parts.append(f"%-{w}s")
    return gap.replace("%", "%%").join(parts)


def _stylers(cols, widths, styler, wide=frozenset()) -> dict:
    """For each styled column (and each column of *wide* characters), a function cell ->
    styled cell padded to the column width (escape sequences and wide characters make
    ``%``-padding wrong)."""
    out = {}
    last = len(cols) - 1
    for i, (c, w) in enumerate(zip(cols, widths)):
        if styler is None or c.role in ("text", "number", "key"):
            continue
        if c.role == "state":
            memo: dict = {}

            def paint(v, c=c, memo=memo):
                s = memo.get(v)
                if s is None:
                    s = memo[v] = styler.state(v, c.states)
                return s
        else:
            def paint(v, role=c.role):
                return styler(role, v)
        size = display_width if i in wide else len
        if c.align == "right":
            out[i] = lambda v, w=w, paint=paint, size=size: " " * (w - size(v)) + paint(v) if v else " " * w
        elif i == last:
            out[i] = lambda v, paint=paint: paint(v) if v else v
        else:
            out[i] = lambda v, w=w, paint=paint, size=size: paint(v) + " " * (w - size(v)) if v else " " * w
    for i in wide - set(out):           # plain wide columns: padded by their display width
        c, w = cols[i], widths[i]
        if c.align == "right":
            out[i] = lambda v, w=w: " " * (w - display_width(v)) + v
        elif i == last:
            out[i] = lambda v: v
        else:
            out[i] = lambda v, w=w: v + " " * (w - display_width(v))
    return out


def _grid(cols, cells, widths, natural, styler, below, gap, width, header=True,
          wide=frozenset()) -> str:
    """The table as a grid.  Rows whose every cell fits its column are one ``str.format``
    call; only rows with a text cell wider than its column are wrapped."""
    last = len(cols) - 1
    lines = [_join([c.header for c in cols], widths, cols, gap, None, last),
             gap.join("-" * w for w in widths)] if header else []
    paint = _stylers(cols, widths, styler, wide) if styler is not None or wide else {}
    fmt = _row_format(cols, widths, gap, paint)
    # text columns narrower than their longest cell: only their rows may need wrapping
    narrow = [i for i, (c, w) in enumerate(zip(cols, widths)) if w < natural[i]]
    if not narrow and not paint and below is None:
        lines.extend([(fmt % r).rstrip() for r in cells])
        return "\n".join(lines) + "\n" if lines else ""
    if paint:
        styled = list(paint.items())

        def line(r):
            r = list(r)
            for i, f in styled:
                r[i] = f(r[i])
            return (fmt % tuple(r)).rstrip()
    else:
        def line(r):
            return (fmt % r).rstrip()
    for n, r in enumerate(cells):
        if narrow and any(display_width(r[i]) > widths[i] for i in narrow):
            parts = [cell_lines(v, widths[i]) if cols[i].role == "text" else [v]
                     for i, v in enumerate(r)]
            height = max(len(p) for p in parts)
            for k in range(height):
                row = [p[k] if k < len(p) else "" for p in parts]
                lines.append(_join(row, widths, cols, gap, styler, last))
        else:
            lines.append(line(r))
        if below is not None and below[n]:
            lines.extend(_below(below[n], width, cols, widths, gap, styler))
    return "\n".join(lines) + "\n" if lines else ""


def _join(row, widths, cols, gap, styler, last) -> str:
    out = []
    for i, v in enumerate(row):
        pad = widths[i] - display_width(v)
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
    leads = [f"{c.header + ':':<{kw}} " for c in cols]
    out = []
    for n, r in enumerate(cells):
        if n:
            out.append("")
        # (column, value, lead, value is a cell: printable, one line)
        fields = [(c, v, lead, True) for c, v, lead in zip(cols, r, leads) if v]
        if below is not None and below[n]:
            fields += [(Col(lab), t, f"{str(lab) + ':':<{kw}} ", False) for lab, t in below[n] if t]
        for c, v, lead, cell in fields:
            if c.role != "text":
                lines = [lead + v]
                short = None if width is None else _below_indent(len(lead), display_width(v), width)
                if short is not None:
                    # wider than the room after its label, narrower than the line: whole on
                    # a line of its own (the terminal would fold it in the middle)
                    out.append(lead.rstrip())
                    out.append(" " * short + (v if styler is None else _style(c, v, styler)))
                    continue
                if width is not None and "::" in v and " " in v and len(lead) + display_width(v) > width:
                    # a demangled C++ name wider than the line: cut at its own blanks (whole
                    # pieces, every line styled), or the terminal folds it mid-identifier
                    lines = wrap_lines(v, width, lead, " " * len(lead))
                    if styler is not None:
                        lines = [ln[:len(lead)] + _style(c, ln[len(lead):], styler) for ln in lines]
                    out.extend(lines)
                    continue
            elif cell and (width is None or len(lead) + display_width(v) <= width):
                lines = [(lead + v).rstrip()]       # what wrap_lines gives a line that fits
            else:
                lines = wrap_lines(v, width, lead, " " * len(lead))
            if styler is not None and len(lines[0]) > len(lead):     # not a label alone
                lines[0] = lead + _style(c, lines[0][len(lead):], styler)
            out.extend(lines)
    return "\n".join(out) + "\n"
