"""The initial stack read back from a core (stack.initial_stack.find): argv and env found
through the auxv bytes, in memory the input provides.  Layout of an input: 2 bytes = the
length of the auxv part, then the auxv, then the stack memory (ending at TOP).  Invariants:
every argv/env string is printable through escape_name; nothing outside the memory is read."""
import struct

from gdb_toolkit.common.names import escape_name
from gdb_toolkit.stack.initial_stack import find

MAX_LEN = 8192
TOP = 0x10000
DICT = [b"\0" * 8, b"\x06\0\0\0\0\0\0\0", b"\x1f\0\0\0\0\0\0\0", b"HOME=", b"=", b"\xff\xff\0\0\0\0\0\0"]


def fuzz(data: bytes) -> None:
    if len(data) < 2:
        return
    n = struct.unpack_from("<H", data)[0] % 512
    auxv, mem = data[2:2 + n], data[2 + n:]
    base = TOP - len(mem)

    def read(addr, size):
        assert size >= 0
        off = addr - base
        if off < 0 or off + size > len(mem):
            return None
        return mem[off:off + size]

    found = find(read, auxv, TOP, base)
    if found is not None:
        for a in found.argv:
            assert escape_name(a).isprintable()
        for k, v in found.env.items():
            assert escape_name(k).isprintable() and escape_name(v).isprintable()
