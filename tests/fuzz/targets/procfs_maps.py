"""/proc/PID/maps text (common.procfs.parse_maps): the worked example of docs/testing.md.

Invariants beyond "no exception but ToolkitError": every mapping has start <= end, and a
mapping's path is exactly what followed the fifth field of its line (with \\012 undone)."""
from gdb_toolkit.common import procfs
from gdb_toolkit.common.names import decode_name, escape_name

MAX_LEN = 8192
DICT = [b"-", b" r-xp ", b" rw-p ", b"00000000 ", b"08:01 ", b"[stack]", b"[heap]", b"[vdso]",
        b" (deleted)", b"\\012", b"\n", b"ffffffffff600000"]


def fuzz(data: bytes) -> None:
    maps = procfs.parse_maps(decode_name(data))
    for m in maps:
        assert m.start <= m.end, m
        assert escape_name(m.path).isprintable()
        procfs.find_mapping(maps, m.start)
