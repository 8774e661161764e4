"""A tracepoint's tracefs ``format`` file (ktrace.tp_format.parse_format), as ktrace reads it to
find the fields --args names.  Invariants: every field has a non-empty C identifier as its name,
an offset and a size a BPF program can use (bounded: a crafted file must not yield offsets the
code generator cannot encode), and names are unique."""
from gdb_toolkit.common.names import decode_name
from gdb_toolkit.ktrace.tp_format import MAX_OFFSET, MAX_SIZE, parse_format

MAX_LEN = 8192
DICT = [b"field:", b"offset:", b"size:", b"signed:", b";\t", b"unsigned long ", b"int ",
        b"char comm[16]", b"__data_loc char[] name", b"\n", b"99999999999999999999"]


def fuzz(data: bytes) -> None:
    fields = parse_format(decode_name(data))
    for name, (off, size, signed) in fields.items():
        assert name.isidentifier(), name
        assert 0 <= off <= MAX_OFFSET and 0 < size <= MAX_SIZE and isinstance(signed, bool)
