"""Not a real target (the leading underscore keeps it out of --list): a parser that breaks the
rule on purpose, so tests/fuzz/test_fuzz.py can check the framework catches each breach."""
from gdb_toolkit.common.errors import ToolkitError

PER_INPUT_SECONDS = 0.5


def fuzz(data: bytes) -> None:
    if data.startswith(b"BUG"):
        [][1]
    if data.startswith(b"SLOW"):
        while True:
            pass
    if data.startswith(b"BIG"):
        bytearray(8 << 30)
    if data.startswith(b"TWO"):
        raise ToolkitError("first line\nsecond line")
    if data.startswith(b"OK"):
        raise ToolkitError("a clean, one-line refusal")
