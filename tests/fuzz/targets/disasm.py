"""common.disasm.disassemble on arbitrary bytes, x86_64 and aarch64: the listing is contiguous
from the start address, each instruction's raw bytes are the input's, and decoding stops with
a ``(bad)`` marker rather than an exception."""
from gdb_toolkit.common.disasm import disassemble

MAX_LEN = 256
PER_INPUT_SECONDS = 2.0


def fuzz(data: bytes) -> None:
    if not data:
        return
    arch = "aarch64" if data[0] & 1 else "x86_64"
    code = data[1:]
    base = 0xffffffff81000000 if data[0] & 2 else 0x401000
    insns = disassemble(code, base, arch, count=data[0] >> 4)
    addr = base
    for ins in insns:
        assert ins.address == addr, (hex(ins.address), hex(addr))
        off = ins.address - base
        assert ins.raw == code[off:off + len(ins.raw)]
        addr += ins.size
    assert addr - base <= len(code) + 4
