"""The kernel's kallsyms tables in memory (kallsyms_mem): found by structure, as for a halted
kernel, then decoded.  The bytes are memory at a kernel address."""
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kallsyms_mem as KM
from gdb_toolkit.kernel.memory import CallbackMemory

MAX_LEN = 65536
DICT = [b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00", b"\x00\x00\x00\x00", b"T_text",
        b"\xff\xff\xff\x81"]
PER_INPUT_SECONDS = 4.0
BASE = 0xFFFFFFFF81000000


def fuzz(data: bytes) -> None:
    def read(addr, n):
        if addr < BASE or addr + n > BASE + len(data) or n < 0:
            raise ToolkitError(f"0x{addr:x} not here", None)
        return data[addr - BASE:addr - BASE + n]
    mem = CallbackMemory(read, "x86_64", "fuzz", page_cache=False)
    t = KM.find_tables(mem, BASE, len(data), "x86_64")
    syms = KM.read_symbols(mem, t)
    assert len(syms) <= t.num_syms
