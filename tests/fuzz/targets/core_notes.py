"""A process core file's headers and notes (stack.core_notes.parse_core): the bytes are the
file.  Invariants beyond "no exception but ToolkitError": the mappings are sorted, each with
start < end, names printable through escape_name, every NT_FILE name's mapping within the
address space; threads carry ints.  The seeds are small synthetic cores built by
tests/support/core_seeds.py (a kernel core is megabytes; its headers and notes
are what the parser reads)."""
from gdb_toolkit.common.names import escape_name
from gdb_toolkit.stack.core_notes import BytesCore, parse_core

MAX_LEN = 16384
DICT = [b"\x7fELF\x02\x01\x01", b"CORE\x00\x00\x00\x00", b"LINUX\x00\x00\x00", b"\x04\x00\x3e\x00",
        b"\x04\x00\xb7\x00", b"\x01\x00\x00\x00", b"\x04\x00\x00\x00", b"IGIS", b"ELIF",
        b"\x00\x10\x00\x00\x00\x00\x00\x00", b"\xff\xff"]


def fuzz(data: bytes) -> None:
    info = parse_core(BytesCore(data))
    for m in info.mappings:
        assert 0 <= m.start < m.end <= 1 << 64, m
        assert escape_name(m.path).isprintable()
    starts = [m.start for m in info.mappings]
    assert starts == sorted(starts)
    for t in info.threads:
        assert isinstance(t.pid, int) and isinstance(t.cursig, int)
        assert all(0 <= v < 1 << 64 for v in t.registers.values())
    if info.psinfo is not None:
        assert escape_name(info.psinfo.psargs).isprintable()
    assert info.arch in ("x86_64", "aarch64")
