"""Names of any bytes (common.names): decode/encode and escape/unescape are lossless, the
rendering is printable, and unescaping arbitrary text fails only with BadEscape (ToolkitError)."""
from gdb_toolkit.common import names

MAX_LEN = 1024
DICT = [b"\\x", b"\\u", b"\\U", b"\\\\", b"\xe9", b"\xe2\x80\xa8", b"\x1b[", b"\\012"]


def fuzz(data: bytes) -> None:
    s = names.decode_name(data)
    assert names.encode_name(s) == data
    shown = names.escape_name(data)
    assert shown.isprintable(), shown
    assert names.unescape_name(shown) == data
    assert names.unescape_proc_maps_path(s).count("\n") >= s.count("\n")
    names.unescape_name(s)            # arbitrary text: bytes, or BadEscape
