"""common.capstone_lite against the capstone package (the oracle) on arbitrary bytes: the same
(address, size, mnemonic, op_str) listing for x86_64, i386, aarch64 and ARM, at ordinary and
wrapping addresses, with and without a count, whatever the batch size cs_disasm runs on.

Also, for x86_64 and aarch64, stack/fault_insn's address of the first instruction's memory
access (read from capstone's text) against its former implementation on the package's
operand details (tests/support/fault_insn_package.py), with registers drawn from the code.

Byte 0: bits 0-1 arch, bits 2-3 the start address, bits 4-5 count (0, 1, 3, 8), bits 6-7 the
batch size (4096, 1, 2, 7); the rest is the code."""
from gdb_toolkit.common import capstone_lite
from gdb_toolkit.common.disasm import _import_capstone
from gdb_toolkit.stack.fault_insn import faulting_access
from tests.support.fault_insn_package import faulting_access as package_access

MAX_LEN = 512
PER_INPUT_SECONDS = 2.0
ARCHES = (("x86_64", "ARCH_X86", "MODE_64"), ("i386", "ARCH_X86", "MODE_32"),
          ("aarch64", "ARCH_ARM64", "MODE_ARM"), ("arm", "ARCH_ARM", "MODE_ARM"))
ADDRESSES = (0x401000, 0xffffffff81000000, (1 << 64) - 6, 0)
COUNTS = (0, 1, 3, 8)
BATCHES = (capstone_lite.BATCH, 1, 2, 7)
_engines: dict = {}
REGISTERS = {"x86_64": "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip fs_base "
                       "gs_base".split(),
             "aarch64": [f"x{i}" for i in range(31)] + ["sp"]}


def _pair(i: int):
    if i not in _engines:
        cs = _import_capstone()
        lib = capstone_lite.load()
        assert lib is not None, "capstone_lite does not bind the installed package's library"
        _, a, m = ARCHES[i]
        md = cs.Cs(getattr(cs, "CS_" + a), getattr(cs, "CS_" + m))
        md.detail = False
        _engines[i] = (lib.open(getattr(capstone_lite, a), getattr(capstone_lite, m)), md)
    return _engines[i]


def fuzz(data: bytes) -> None:
    if not data:
        return
    lite, pkg = _pair(data[0] & 3)
    address, count = ADDRESSES[data[0] >> 2 & 3], COUNTS[data[0] >> 4 & 3]
    code = data[1:]
    want = list(pkg.disasm_lite(code, address, count))
    saved, capstone_lite.BATCH = capstone_lite.BATCH, BATCHES[data[0] >> 6]
    try:
        got = lite.disasm_lite(code, address, count)
    finally:
        capstone_lite.BATCH = saved
    assert got == want, (ARCHES[data[0] & 3][0], hex(address), count, got[:3], want[:3])
    arch = ARCHES[data[0] & 3][0]
    if arch in REGISTERS:
        # register values: 8-byte words of the code after the first 16 bytes (missing: absent)
        words = [int.from_bytes(code[16 + 8 * i:24 + 8 * i], "little")
                 for i in range(max(0, len(code) - 16) // 8)]
        regs = dict(zip(REGISTERS[arch], words))
        want = package_access(code, address, arch, regs)
        assert faulting_access(code, address, arch, regs) == want, (arch, code[:16].hex(), want)
