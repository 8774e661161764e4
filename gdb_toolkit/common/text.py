"""Prose for the terminal: wrap to gdb's width without breaking a word, and
aligned ``key: value`` blocks whose values wrap under themselves.  Pure.

A "word" is whatever sits between spaces, so an address, a symbol, a path or
file:line is never split; a word longer than the line is printed whole on its
own line (the terminal folds it, but it stays one copyable token).  Some tokens
hold spaces and are words all the same (:func:`words`): a demangled C++ name
(``ns::Map<std::string, int>::get(int, long)``: spaces inside ``<...>`` or a
parameter list opened right after a C++ name), a quoted name, path or command
(``'/srv/my app'``, a shell-quoted command line), a number and its unit
(``8.0 MiB``), and whatever the caller passes in *keep* (a path with a space
that is not quoted).  Widths are terminal columns (:func:`display_width`: an
East Asian wide character takes two).  No textwrap import: this is a few lines
and keeps first calls cheap.
"""

#: characters that may start a token holding spaces (see words()); prose without them
#: takes the plain str.split() path
_GROUPING = frozenset("<([\'\"")
_OPENERS = {"<": ">", "(": ")", "[": "]"}
_CLOSERS = {">": "<", ")": "(", "]": "["}
_QUOTE_ENDS = frozenset(" ,.;:)]")
#: a quoted string with more blanks than this (and no '/') is a sentence, not a token
_QUOTED_WORDS = 6


def _name_char(c: str) -> bool:
    return c.isalnum() or c in "_>)]"


def _spans(para: str, keep=()) -> list[tuple[int, int]]:
    """(start, end) ranges of *para* that are one word although they hold spaces."""
    spans = []
    for k in keep:
        if k and " " in k:
            i = para.find(k)
            while i >= 0:
                spans.append((i, i + len(k)))
                i = para.find(k, i + len(k))
    stack: list[tuple[str, int]] = []
    i, n = 0, len(para)
    word_start = 0
    while i < n:
        c = para[i]
        if c == " " and not stack:
            word_start = i + 1
        elif c == "o" and para.startswith("operator", i) and (i == 0 or not _name_char(para[i - 1])):
            i = _past_operator(para, i + 8)        # operator<<, operator(), operator->: no group
            if para.startswith(" <", i):            # std::operator<< <char>(...): its template
                stack.append(("<", i))
                i += 2
            elif para.startswith("(", i):           # P::operator<(P const&): its parameters
                stack.append(("(", i))
                i += 1
            continue
        elif c in _OPENERS:
            # '<' only right after a name (a template, not "a < b"); '[' right after a name;
            # '(' right after a C++ name (ns::f(int, long), f<T>(int)): a C prototype's
            # parameters ("int open(int dfd, const char *name)") may wrap like prose
            prev = para[i - 1] if i else " "
            if stack or (c == "<" and (prev.isalnum() or prev == "_")) or \
                    (c == "[" and (_name_char(prev) or _short_group(para, i))) or \
                    (c == "(" and _name_char(prev) and _cxx_name(para[word_start:i])):
                stack.append((c, i))
        elif c in _CLOSERS and stack and not (c == ">" and para[i - 1:i] == "-"):
            want = _CLOSERS[c]
            depth = next((d for d in range(len(stack) - 1, -1, -1) if stack[d][0] == want), None)
            if depth is not None:
                start = stack[0][1]
                del stack[depth:]
                if not stack:
                    end = _past_qualifiers(para, i + 1) if c == ")" else i + 1
                    spans.append((start, end))
                    i = end - 1
        elif c in "'\"" and not stack and (i == 0 or para[i - 1] in " (["):
            j = para.find(c, i + 1)
            while j >= 0 and j + 1 < n and para[j + 1] not in _QUOTE_ENDS:
                j = para.find(c, j + 1)
            # a quoted name, path or command stays whole; a quoted sentence wraps like prose
            if j > 0 and (para.count(" ", i, j) <= _QUOTED_WORDS or "/" in para[i:j]):
                spans.append((i, j + 1))
                i = j
        i += 1
    return spans


def _short_group(para: str, i: int) -> bool:
    """A ``[...]`` at *i* that holds a few blanks at most: an instruction's memory operand
    (``[rbp - 4]``, ``qword ptr fs:[rax + 8]``, aarch64 ``[sp, #-0x20]!``), a gdb
    ``[clone .cold]``: one word, or ``mov dword ptr [rbp`` / ``- 4], edi`` reads as two
    instructions.  A bracketed sentence wraps like prose."""
    j = para.find("]", i + 1)
    return j > 0 and "[" not in para[i + 1:j] and para.count(" ", i, j) <= _QUOTED_WORDS


def _cxx_name(name: str) -> bool:
    """A demangled C++ name before a parameter list: qualified, a template, an ABI tag."""
    return "::" in name or name.endswith(">") or "[abi:" in name


#: what may follow a C++ parameter list in a demangled name: f(int) const, g() [clone .cold]
_QUALIFIERS = (" const", " volatile", " &&", " &", " noexcept", " [clone ")


def _past_qualifiers(para: str, i: int) -> int:
    """The index after the qualifiers that follow a parameter list at *i*."""
    while True:
        for q in _QUALIFIERS:
            if para.startswith(q, i):
                j = i + len(q)
                if q == " [clone ":
                    k = para.find("]", j)
                    if k < 0:
                        return i
                    j = k + 1
                elif j < len(para) and (para[j].isalnum() or para[j] == "_"):
                    continue                    # " constant", " &x": prose, not a qualifier
                i = j
                break
        else:
            return i


def _past_operator(para: str, i: int) -> int:
    """The index after a C++ operator's symbol (``operator<<``, ``operator()``, ``operator[]``)."""
    if para.startswith(("()", "[]"), i):
        return i + 2
    while i < len(para) and para[i] in "<>=!+-*/%^&|~,":
        i += 1
    return i


#: units a quantity keeps on its line ("8.0 MiB", "4144 B/frame"), as with a no-break space
_UNITS = frozenset({"B", "KiB", "MiB", "GiB", "TiB", "B/frame", "KiB/frame", "ms", "s", "%"})


def _with_units(ws: list[str]) -> list[str]:
    """*ws* with each unit joined to the number before it."""
    out: list[str] = []
    for w in ws:
        unit = w.rstrip(",.;:)")
        if out and unit in _UNITS and out[-1][-1:].isdigit():
            out[-1] += " " + w
        else:
            out.append(w)
    return out


def words(para: str, keep=()) -> list[str]:
    """The words of one line of prose: split at spaces, except inside the tokens that hold
    spaces (see the module doc; *keep*: exact strings that must stay whole) and between a
    number and its unit."""
    if not keep and _GROUPING.isdisjoint(para):
        ws = para.split()
        return _with_units(ws) if ("B" in para or " s" in para or " %" in para) else ws
    spans = [s for s in _spans(para, keep) if " " in para[s[0]:s[1]]]
    if not spans:
        return _with_units(para.split())
    inside = bytearray(len(para))
    for a, b in spans:
        inside[a:b] = b"\x01" * (b - a)
    out, cur = [], []
    for i, c in enumerate(para):
        if c == " " and not inside[i]:
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(c)
    if cur:
        out.append("".join(cur))
    return _with_units(out)


def _fitting(ws: list[str], room: int, size, keep, widest: int | None = None) -> list[str]:
    """*ws* with each C++ name wider than a whole line (*room* columns) cut at its own blanks
    (``basic_string<char, / std::char_traits<char>, ...``): the terminal would fold it in the
    middle of an identifier (also when *keep* names it).  A name that fits stays whole; a
    quoted string, a path (a '/') or another string of *keep* stays whole at any length: a
    line break inside it would change what is copied."""
    if all(size(w) <= room or " " not in w for w in ws):
        return ws
    out = []
    for w in ws:
        # a string the caller keeps whole (a path, an object's name) stays whole, unless it is
        # a demangled C++ name: the terminal would fold that in the middle of an identifier
        if size(w) > room and (w not in keep or "::" in w):
            out.extend(p for piece in _breakable(w)
                       for p in _cxx_pieces(piece, room if widest is None else widest, size))
        else:
            out.append(w)
    return out


#: where a C++ name piece with no blank may be cut: after a scope, a template or parameter
#: list's opening, a comma
_CXX_CUTS = ("::", "<", "(", ",")


def _cxx_pieces(piece: str, room: int, size) -> list[str]:
    """*piece* (a blank-free part of a C++ name) cut after ``::``, ``<``, ``(`` or ``,`` into
    pieces of at most *room* columns (a whole line but its two-column indent), when it is
    wider: ``ns::detail::processor<std::__cxx11::
    basic_string<char,`` at 60 columns was folded by the terminal inside ``processor``.  A
    piece that is not a C++ name (a mangled name, a path, a quoted string), or a part between
    two cut points still wider than the line, stays whole."""
    if size(piece) <= room or "::" not in piece or piece[:1] in "'\"" or "/" in piece:
        return [piece]
    cuts = sorted({i + len(c) for c in _CXX_CUTS for i in _find_all(piece, c)} - {len(piece)})
    out, start, last = [], 0, 0
    for cut in cuts + [len(piece)]:
        if size(piece[start:cut]) > room and last > start:
            out.append(piece[start:last])
            start = last
        last = cut
    out.append(piece[start:])
    return out


def _find_all(text: str, sub: str):
    i = text.find(sub)
    while i >= 0:
        yield i
        i = text.find(sub, i + len(sub))


def display_width(text: str) -> int:
    """Terminal columns *text* takes: an East Asian wide character (a Chinese file name,
    a UTF-8 C identifier) takes two, a combining mark none.  ASCII text is its length."""
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(0 if combining(c) else 2 if east_asian_width(c) in "WF" else 1 for c in text)


def wrap_lines(text: str, width: int | None, indent: str = "",
               subsequent_indent: str | None = None, keep=()) -> list[str]:
    """*text* as lines of at most *width* characters (None: one line per
    paragraph), split only at spaces between :func:`words` (*keep*: strings
    never split, e.g. a path holding a space).  Newlines in *text* are kept."""
    if subsequent_indent is None:
        subsequent_indent = indent
    out: list[str] = []
    first = True
    for para in str(text).split("\n"):
        if not para.isprintable():      # control characters, undecodable bytes of a name
            # escaped as escape_name writes them; backslashes left alone: prose often quotes a
            # name escaped already beside a raw one (see common.table._printable)
            from gdb_toolkit.common.names import printable_text

            para = printable_text(para)
        lead = indent if first else subsequent_indent
        first = False
        size = len if para.isascii() else display_width
        if width is None or len(lead) + size(para) <= width:
            out.append((lead + para).rstrip() if para.strip() else lead.rstrip())
            continue
        line = lead
        used = len(lead)
        empty = True
        room = width - len(subsequent_indent)
        # a piece of a C++ name is cut at its joints only when no line holds it: one that
        # fits after a short indent goes there whole (_below_indent)
        for word in _fitting(words(para, keep), room, size, keep, width - 2):
            w = size(word)
            if empty:
                short = _below_indent(used, w, width)
                if short is None:
                    line += word
                    used += w
                else:                   # the label alone, the word whole on the next line
                    if line.strip():
                        out.append(line.rstrip())
                    line = " " * short + word
                    used = short + w
                empty = False
            elif used + 1 + w <= width:
                line += " " + word
                used += 1 + w
            else:
                out.append(line)
                short = _below_indent(len(subsequent_indent), w, width)
                line = (subsequent_indent if short is None else " " * short) + word
                used = (len(subsequent_indent) if short is None else short) + w
        out.append(line)
    return out


#: the indent of a word moved under its label (:func:`_below_indent`)
BELOW = 4


def _below_indent(indent: int, w: int, width: int) -> int | None:
    """Where a word of *w* columns goes when it does not fit after an *indent* (a label such
    as ``guard:       `` or a hanging indent) but fits on a line of its own: the indent of
    that line (2 to :data:`BELOW`).  None: leave it where it is (it fits, or no line can
    hold it: the terminal folds it, but it stays one token).  Without this an address range
    after a 13-column label at 40 columns was folded by the terminal in the middle."""
    if indent + w <= width:
        return None
    short = min(BELOW, width - w)
    # at least two blanks: a word at column 0 would read as a key or a paragraph of its own
    return short if 2 <= short < indent else None


def wrap(text: str, width: int | None, indent: str = "", subsequent_indent: str | None = None,
         keep=()) -> str:
    """:func:`wrap_lines` joined, with a final newline."""
    return "\n".join(wrap_lines(text, width, indent, subsequent_indent, keep)) + "\n"


def cell_lines(text: str, width: int) -> list[str]:
    """A table cell folded to *width* at spaces (words are never split)."""
    if display_width(text) <= width and "\n" not in text:
        return [text]
    return wrap_lines(text, width)


def longest_word(text: str) -> int:
    """The narrowest a wrapped cell of *text* can get (:func:`cell_lines`): its longest
    word, except that a C++ name holding blanks counts by its longest piece -- a line too
    narrow for the whole name cuts it at its own blanks (:func:`_fitting`)."""
    if " " not in text and "\n" not in text:
        return display_width(text)
    return max((max(map(display_width, _breakable(w)))
                for line in text.split("\n") for w in words(line)), default=0)


def _breakable(word: str) -> list[str]:
    """The pieces :func:`_fitting` may cut *word* into on a line narrower than it."""
    if " " in word and word[:1] not in "'\"" and "/" not in word:
        return word.split(" ")
    return [word]


#: key_values roles whose value is one token (common.table's unbreakable roles that name things)
WHOLE_ROLES = frozenset({"address", "symbol", "function", "location", "file"})


def key_values(pairs, width: int | None = None, styler=None, indent: str = "", keep=()) -> str:
    """Aligned ``key: value`` lines; a long value wraps under itself.

    *pairs* are ``(key, value)`` or ``(key, value, role)`` (role: a style role
    of common.style, e.g. "address"); pairs whose value is None are skipped.
    A value whose role names one token (address, symbol, file, location) is
    never broken, even when it holds a space (a path, a C++ name); *keep*: strings
    never broken inside any value (e.g. the mapping names a report quotes).
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
        if role in WHOLE_ROLES:
            value = one_line(value)
        kept = (value, *keep) if role in WHOLE_ROLES else keep
        if stacked:
            out.append(f"{indent}{key}:")
            lines = wrap_lines(value, width, indent + "    ", keep=kept)
        else:
            lead = f"{indent}{key + ':':<{kw}} "
            lines = wrap_lines(value, width, lead, " " * len(lead), kept)
        if styler is not None and role:
            start = len(indent) + (0 if stacked else kw + 1)
            # a value moved under its label (wrap_lines' _below_indent) starts before *start*
            lines = [_style_tail(ln, start if stacked or n == 0 or ln[:start].strip() == "" else
                                 len(ln) - len(ln.lstrip(" ")), role, styler)
                     for n, ln in enumerate(lines)]
        out.extend(lines)
    return "\n".join(out) + "\n"


def _style_tail(line: str, start: int, role: str, styler) -> str:
    head, tail = line[:start], line[start:]
    stripped = tail.lstrip(" ")
    return head + tail[: len(tail) - len(stripped)] + styler(role, stripped)


def one_line(text) -> str:
    """*text* with its line breaks shown as ``\\x0a``/``\\x0d`` (escape_name's form): a note is
    one sentence and a file/symbol value one token, so a newline in them comes from a name (a
    path "new\\nline") and must not start a line that looks like the toolkit's own."""
    text = str(text)
    return text.replace("\n", "\\x0a").replace("\r", "\\x0d") if "\n" in text or "\r" in text else text


def notes_block(notes, width: int | None = None, label: str = "note", styler=None) -> str:
    """The ``notes`` of a result as every command prints them: ``note: SENTENCE``, wrapped
    under itself at *width* (docs/json.md: the same sentences as the JSON ``notes``)."""
    out = []
    lead = f"{label}: "
    for n in notes or ():
        lines = wrap_lines(one_line(n), width, lead, " " * len(lead))
        if styler is not None and lines:
            lines[0] = styler("metadata", lead.rstrip()) + " " + lines[0][len(lead):]
        out.extend(lines)
    return "\n".join(out) + "\n" if out else ""
