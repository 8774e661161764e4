"""/proc/PID/limits text (common.procfs.parse_limits)."""
from gdb_toolkit.common import procfs
from gdb_toolkit.common.names import decode_name

MAX_LEN = 4096
DICT = [b"Limit                     Soft Limit           Hard Limit           Units     \n",
        b"Max stack size            ", b"unlimited", b"bytes", b"8388608"]


def fuzz(data: bytes) -> None:
    for lim in procfs.parse_limits(decode_name(data)).values():
        assert lim.soft is None or lim.soft >= 0
