"""Names of any bytes (common.names): decode/encode and escape/unescape are lossless, the
rendering is printable, and unescaping arbitrary text fails only with BadEscape (ToolkitError).
The printed form can be typed back (docs/json.md "Typing a name back"): as one word of a
command line (common.args.name_word, then split_name_words or split_expression_words) it
arrives as printed, names the same bytes (typed_name), and as a pattern finds the name."""
from gdb_toolkit.common import args, names

MAX_LEN = 1024
DICT = [b"\\x", b"\\u", b"\\U", b"\\\\", b"\xe9", b"\xe2\x80\xa8", b"\x1b[", b"\\012", b" ", b"'", b'"']


def fuzz(data: bytes) -> None:
    s = names.decode_name(data)
    assert names.encode_name(s) == data
    shown = names.escape_name(data)
    assert shown.isprintable(), shown
    assert names.unescape_name(shown) == data
    assert names.unescape_proc_maps_path(s).count("\n") >= s.count("\n")
    names.unescape_name(s)            # arbitrary text: bytes, or BadEscape
    if shown and not shown.isspace():
        word = args.name_word(shown)
        assert args.split_name_words(word) == [shown], (word, args.split_name_words(word))
        assert args.split_expression_words(word) == [shown], (word, args.split_expression_words(word))
        typed = names.typed_name(shown)
        assert typed is None and "\\" not in shown or typed == s, (shown, typed)
        try:
            pattern = names.NamePattern.compile(shown)
        except Exception:             # neither a regular expression nor a printed name ('a(')
            assert "\\" not in shown, shown
        else:
            assert pattern.search(s) or "\\" not in shown, shown    # a plain name is a regex
    args.split_name_words(s)          # arbitrary text: words, never an exception
