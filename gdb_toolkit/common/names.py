"""Names that may be any bytes: file paths, process names (/proc/PID/comm, cmdline), names
from core notes and ELF string tables.

The kernel and the file system hand out bytes; the toolkit carries them as ``str`` decoded with
``surrogateescape`` (each undecodable byte becomes a lone surrogate U+DC80..U+DCFF), so that
nothing is lost and ``encode_name`` gives back the exact bytes to open a file with.

For people and for JSON, ``escape_name`` gives one defined, lossless, printable rendering:

- every byte that is not valid UTF-8, every ASCII control character and DEL become ``\\xNN``;
- a backslash becomes ``\\\\`` (so the rendering is unambiguous and ``unescape_name`` inverts it);
- other non-printable code points (C1 controls, bidi overrides, line separators...) become
  ``\\uXXXX`` / ``\\UXXXXXXXX``;
- everything else (spaces, quotes, any printable letter of any script) stays as it is.

So ``/tmp/caf\\xe9`` is a Latin-1 "café", ``evil\\x1b[2J`` a name carrying a terminal escape
sequence (which would otherwise clear the user's screen), and ``a\\nb``... is written ``a\\x0ab``.
Text output and ``--json`` use the same rendering (see docs/security.md, "Names").
"""

from gdb_toolkit.common.errors import ToolkitError

ENCODING = "utf-8"
ERRORS = "surrogateescape"


class BadEscape(ToolkitError, ValueError):
    """Text given to ``unescape_name`` is not an ``escape_name`` rendering."""

    def __init__(self, why: str):
        super().__init__(f"not an escaped name: {why}", "give the name as the toolkit printed it")


def decode_name(raw: bytes | str) -> str:
    """Bytes from /proc, a core note or a file system -> str that keeps every byte."""
    if isinstance(raw, str):
        return raw
    return bytes(raw).decode(ENCODING, ERRORS)


def encode_name(name: str | bytes) -> bytes:
    """The exact bytes of a name decoded with ``decode_name`` (for ``open``, ``os.stat``...)."""
    if isinstance(name, (bytes, bytearray)):
        return bytes(name)
    return name.encode(ENCODING, ERRORS)


def _escape_char(ch: str) -> str:
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:          # an undecodable byte carried by surrogateescape
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    if o <= 0xFFFF:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def escape_name(name: str | bytes) -> str:
    """The printable, lossless rendering of a name (see the module docstring)."""
    if isinstance(name, (bytes, bytearray)):
        name = decode_name(name)
    if name.isprintable() and "\\" not in name:
        return name                      # the common case: nothing to do
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif ch == " " or ch.isprintable():
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return "".join(out)


def printable_text(text: str) -> str:
    """A message made safe for the terminal and for gdb's error printer: every non-printable
    character (control characters, a newline, an undecodable byte) escaped as in ``escape_name``;
    backslashes and everything printable unchanged (display only: not lossless).  gdb prints an
    error holding a surrogate as three lines about a UnicodeEncodeError instead of the error."""
    if text.isprintable():
        return text
    return "".join(ch if ch == " " or ch.isprintable() else _escape_char(ch) for ch in text)


def _controls_escaped(text: str) -> str:
    """*text* with every non-printable character but a newline or a tab escaped as in
    ``escape_name`` (display only: backslashes unchanged, so text that holds names escaped
    already is not escaped twice)."""
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    return "".join(ch if ch in " \n\t" or ch.isprintable() else _escape_char(ch) for ch in text)


def terminal_text(text: str, sequences=()) -> str:
    """A command's whole text output made safe for the terminal: the last line of defence
    behind the renderers (which escape names cell by cell).  Every control character other
    than a newline or a tab -- ESC, CR, BEL, backspace, C1 controls, bidi overrides -- and
    every undecodable byte is written as ``escape_name`` writes it (``\\x1b``), except the
    escape sequences in *sequences*: the styler's own (common.style.Styler.sequences), so a
    name carrying ``\\x1b[2J`` or an OSC title can never reach the terminal, styled or not.
    Text that is printable already (nearly always) is returned as it is, after two C-level
    passes."""
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    if not sequences or "\x1b" not in text:
        return _controls_escaped(text)
    tails = tuple(s[1:] for s in sequences if s.startswith("\x1b"))
    parts = text.split("\x1b")
    out = [_controls_escaped(parts[0])]
    for part in parts[1:]:
        seq = next((t for t in tails if part.startswith(t)), None)
        if seq is None:
            out.append("\\x1b" + _controls_escaped(part))
        else:
            out.append("\x1b" + seq + _controls_escaped(part[len(seq):]))
    return "".join(out)


def needs_escaping(name: str | bytes) -> bool:
    """True when ``escape_name`` changes the name (not printable UTF-8, or has a backslash)."""
    return escape_name(name) != (decode_name(name) if isinstance(name, (bytes, bytearray)) else name)


def unescape_name(text: str) -> bytes:
    """Invert ``escape_name``: the rendering back to the name's bytes.

    Raises BadEscape (a ToolkitError and ValueError) on a malformed escape (``\\q``, ``\\x4``)."""
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "\\":
            j = text.find("\\", i)
            j = n if j < 0 else j
            out += encode_name(text[i:j])
            i = j
            continue
        if i + 1 >= n:
            raise BadEscape("a lone backslash at the end")
        kind = text[i + 1]
        width = {"\\": 0, "x": 2, "u": 4, "U": 8}.get(kind)
        if width is None:
            raise BadEscape(f"unknown escape \\\\{escape_name(kind)}")
        if width == 0:
            out += b"\\"
            i += 2
            continue
        digits = text[i + 2:i + 2 + width]
        if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise BadEscape(f"malformed escape \\\\{kind}{escape_name(digits)}")
        value = int(digits, 16)
        if kind == "x":
            out.append(value)
        elif value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            # escape_name writes undecodable bytes as \xNN: a \u surrogate or a code point
            # beyond Unicode is no rendering of a name (found by tests/fuzz/targets/names.py)
            raise BadEscape(f"\\{kind}{digits} is not a character")
        else:
            out += chr(value).encode(ENCODING)
        i += 2 + width
    return bytes(out)


def unescape_proc_maps_path(text: str) -> str:
    """A path field of /proc/PID/maps (or smaps) as the file's name (a core's NT_FILE note is raw).

    The kernel writes a newline in a mapped file's name as ``\\012`` (seq_file's mangle_path
    escapes only ``\\n``), so a name cannot break the one-line-per-mapping format; this undoes
    that one escape.  Everything else is kept verbatim (a literal backslash is not escaped by the
    kernel, so a name really containing ``\\012`` is indistinguishable, as for every reader of maps).
    """
    return text.replace("\\012", "\n") if "\\012" in text else text


def typed_name(text: str) -> str | None:
    """A name given back as the toolkit printed it (``esc\\x1bok``, ``q\\\\uote``): the name it
    renders (a str as ``decode_name`` gives it, so any bytes), or None when *text* holds no
    escape or is no rendering (``a\\q``).  Text without a backslash is its own name."""
    if "\\" not in text:
        return None
    try:
        return decode_name(unescape_name(text))
    except BadEscape:
        return None


class NamePattern:
    """A name pattern as a user types it: a Python regular expression, matched against the
    raw name and against its printed rendering (``escape_name``), or -- when it holds an
    escape -- the printed text itself, so what the toolkit printed for a name (``ev\\xe9il``,
    ``a\\x1b[2J``, which is no regular expression) finds that name again.  ``search`` as a
    compiled regular expression's."""

    __slots__ = ("text", "rx", "literal")

    def __init__(self, text: str, rx, literal: str | None):
        self.text = text
        self.rx = rx
        self.literal = literal

    @classmethod
    def compile(cls, text: str):
        """The pattern, or re.error when *text* is neither a regular expression nor a
        printed name."""
        import re

        literal = text if typed_name(text) is not None else None
        try:
            rx = re.compile(text)
        except (re.error, OverflowError, RecursionError, ValueError):
            if literal is None:
                raise
            rx = None
        return cls(text, rx, literal)

    def search(self, name: str) -> bool:
        if not name:
            return False
        if self.rx is not None and self.rx.search(name):
            return True
        shown = escape_name(name)
        if shown == name:
            return self.literal is not None and self.literal in shown
        return bool((self.rx is not None and self.rx.search(shown))
                    or (self.literal is not None and self.literal in shown))
