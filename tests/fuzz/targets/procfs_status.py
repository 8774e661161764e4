"""/proc/PID/status text (common.procfs.parse_status)."""
from gdb_toolkit.common import procfs
from gdb_toolkit.common.names import decode_name

MAX_LEN = 4096
DICT = [b"Name:\t", b"Pid:\t", b"Uid:\t0\t0\t0\t0\n", b"VmStk:\t  132 kB\n", b"\n", b":"]


def fuzz(data: bytes) -> None:
    st = procfs.parse_status(decode_name(data))
    for k, v in st.fields.items():
        assert "\n" not in k and "\n" not in v
