"""gdb's ``info auxv`` text (common.procfs.parse_auxv)."""
from gdb_toolkit.common.procfs import parse_auxv
from gdb_toolkit.common.names import decode_name

MAX_LEN = 4096
DICT = [b"AT_PHDR", b"AT_PAGESZ", b"AT_EXECFN", b"0x", b"\"", b"System page size", b"\n"]


def fuzz(data: bytes) -> None:
    for key, value in parse_auxv(decode_name(data)).items():
        assert key.startswith("AT_") and isinstance(value, int)
