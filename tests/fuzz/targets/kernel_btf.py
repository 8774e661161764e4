"""BTF (btf.Btf): header, type and string sections, every kind; the C renderer, member paths
and the value decoder (btf_values) on what it parsed.  A 136-byte BTF once hung ksym."""
from gdb_toolkit.kernel import btf as B
from gdb_toolkit.kernel.btf_values import decode

MAX_LEN = 8192
DICT = [b"\x9f\xeb\x01\x00\x18\x00\x00\x00", b"\x00\x00\x00\x01", b"\x00\x00\x00\x02",
        b"\x00\x00\x00\x04", b"\x00\x00\x00\x0c", b"\x00\x00\x00\x0d", b"\x00\x00\x00\x83",
        b"\x00task_struct\x00", b"\x00int\x00"]
PER_INPUT_SECONDS = 4.0


def fuzz(data: bytes) -> None:
    btf = B.Btf(data, "fuzz")
    for tid in range(1, min(btf.count, 64)):
        t = btf.type(tid)
        assert len(btf.c_decl(tid, "x")) < 1 << 22
        btf.type_name(tid)
        if t.kind in (B.STRUCT, B.UNION, B.ENUM, B.TYPEDEF):
            btf.c_definition(tid)
            try:
                size = btf.size_of(tid)
            except B.ToolkitError:
                continue
            if t.kind in (B.STRUCT, B.UNION) and t.members and size < 1 << 16:
                rows = decode(btf, tid, bytes(size), lambda a: None, lambda p: None)
                assert len(rows) < 1 << 16
                m = t.members[0]
                if m.name and t.name:
                    btf.resolve(t.name, m.name)
    btf.find("task_struct")
