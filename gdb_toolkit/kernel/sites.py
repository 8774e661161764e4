"""Classify the live bytes at a kernel code address: kprobe breakpoint, optimized-kprobe
jump, ftrace call or idle NOP, or plain code.  Pure: bytes in, a Site out.

x86_64:  ``cc``             int3 (a kprobe's breakpoint -- or a debugger's, or padding)
         ``e9 rel32``       jmp: an optimized kprobe when it lands in a kprobe insn page
                            (``kprobe_optinsn_page [__builtin__kprobes]``), else a static
                            branch or other patch
         ``e8 rel32``       call: an ftrace site when it calls ftrace_caller,
                            ftrace_regs_caller or an ftrace trampoline
         ``0f 1f 44 00 00`` the 5-byte NOP ftrace leaves at idle fentry sites
arm64:   ``0xd4200080``     brk #4 (BRK64_OPCODE_KPROBES)
         ``mov x9, lr; bl`` an enabled ftrace site (patchable-function-entry), two NOPs idle
"""
import struct
from dataclasses import dataclass

X86_NOP5 = bytes.fromhex("0f1f440000")
X86_ENDBR64 = bytes.fromhex("f30f1efa")
ARM64_BRK_KPROBE = 0xD4200080
ARM64_BRK_MASK = 0xFFE0001F
ARM64_BRK_BASE = 0xD4200000
ARM64_NOP = 0xD503201F
ARM64_MOV_X9_LR = 0xAA1E03E9
ARM64_BTI_C = 0xD503245F
FTRACE_TARGETS = ("ftrace_caller", "ftrace_regs_caller", "ftrace_trampoline", "ftrace_graph_caller",
                  "ftrace_common", "ftrace_stub", "arch_ftrace_ops_list_func",
                  "ftrace_ops_list_func")

INT3, OPTIMIZED, FTRACE_CALL, FTRACE_NOP = "int3", "optimized", "ftrace-call", "ftrace-nop"
BRK, JMP, CALL, PLAIN, OTHER_BRK = "brk", "jmp", "call", "plain", "brk-other"


@dataclass
class Site:
    address: int
    arch: str
    kind: str                 # int3 optimized ftrace-call ftrace-nop brk jmp call plain brk-other
    length: int               # bytes the patch covers
    patched: bool             # the bytes differ from what the compiler emitted
    target: int | None = None
    target_symbol: str | None = None
    description: str = ""

    @property
    def is_kprobe_like(self) -> bool:
        return self.kind in (INT3, OPTIMIZED, BRK)


def _rel32(code: bytes, address: int) -> int:
    return (address + 5 + struct.unpack_from("<i", code, 1)[0]) & ((1 << 64) - 1)


def is_ftrace_target(symbol: str | None) -> bool:
    if not symbol:
        return False
    name = symbol.split("+")[0].split()[0]
    return (name in FTRACE_TARGETS or "__builtin__ftrace" in symbol
            or name.startswith("bpf_trampoline_"))     # ftrace direct call: BPF fentry/fexit


def is_kprobe_insn_page(symbol: str | None) -> bool:
    return bool(symbol) and ("__builtin__kprobes" in symbol or "kprobe_optinsn_page" in symbol
                             or "kprobe_insn_page" in symbol)


def classify(code: bytes, address: int, arch: str = "x86_64", symbolize=None) -> Site:
    """What the bytes at *address* are.  *symbolize(addr)* -> "name+0x.. [mod]" or None."""
    sym = symbolize or (lambda a: None)
    if arch == "aarch64":
        return _classify_arm64(code, address, sym)
    if not code:
        return Site(address, arch, PLAIN, 0, False, description="no bytes")
    if code[0] == 0xCC:
        return Site(address, arch, INT3, 1, True, description="int3 breakpoint")
    if code[0] == 0xE9 and len(code) >= 5:
        t = _rel32(code, address)
        s = sym(t)
        if is_kprobe_insn_page(s):
            return Site(address, arch, OPTIMIZED, 5, True, t, s,
                        "jmp to an optimized-kprobe detour buffer")
        return Site(address, arch, JMP, 5, False, t, s, "jmp rel32 (static branch or code)")
    if code[0] == 0xE8 and len(code) >= 5:
        t = _rel32(code, address)
        s = sym(t)
        if is_ftrace_target(s):
            return Site(address, arch, FTRACE_CALL, 5, True, t, s, "call into ftrace")
        if s and s.split("+")[0] == "__fentry__":
            return Site(address, arch, CALL, 5, False, t, s, "unpatched call __fentry__")
        return Site(address, arch, CALL, 5, False, t, s, "call rel32")
    if code[:5] == X86_NOP5:
        return Site(address, arch, FTRACE_NOP, 5, False, description="5-byte NOP (idle ftrace site)")
    return Site(address, arch, PLAIN, 0, False, description="ordinary instruction")


def _classify_arm64(code: bytes, address: int, sym) -> Site:
    if len(code) < 4:
        return Site(address, "aarch64", PLAIN, 0, False, description="no bytes")
    w0 = struct.unpack_from("<I", code, 0)[0]
    w1 = struct.unpack_from("<I", code, 4)[0] if len(code) >= 8 else None
    if w0 == ARM64_BRK_KPROBE:
        return Site(address, "aarch64", BRK, 4, True, description="brk #4 (kprobe breakpoint)")
    if (w0 & ARM64_BRK_MASK) == ARM64_BRK_BASE:
        imm = (w0 >> 5) & 0xFFFF
        return Site(address, "aarch64", OTHER_BRK, 4, True,
                    description=f"brk #{imm:#x} (not a kprobe: BUG/WARN, kgdb or uprobe)")
    if w0 == ARM64_MOV_X9_LR and w1 is not None and (w1 & 0xFC000000) == 0x94000000:
        imm = w1 & 0x03FFFFFF
        if imm & 0x02000000:
            imm -= 1 << 26
        t = (address + 4 + imm * 4) & ((1 << 64) - 1)
        s = sym(t)
        kind = FTRACE_CALL if is_ftrace_target(s) else CALL
        return Site(address, "aarch64", kind, 8, kind == FTRACE_CALL, t, s,
                    "mov x9, lr; bl " + (s or hex(t)))
    if w0 == ARM64_NOP and w1 == ARM64_NOP:
        return Site(address, "aarch64", FTRACE_NOP, 8, False,
                    description="two NOPs (idle ftrace site)")
    return Site(address, "aarch64", PLAIN, 0, False, description="ordinary instruction")


def fentry_offset(code: bytes, arch: str = "x86_64") -> int:
    """Offset of the ftrace site from a function's start (after ENDBR64 / BTI c)."""
    if arch == "aarch64":
        return 4 if len(code) >= 4 and struct.unpack_from("<I", code)[0] == ARM64_BTI_C else 0
    return 4 if code[:4] == X86_ENDBR64 else 0


def ftrace_nop(arch: str = "x86_64") -> bytes:
    """What an idle ftrace site holds: the compiler's call replaced at boot by this."""
    if arch == "aarch64":
        return struct.pack("<II", ARM64_NOP, ARM64_NOP)
    return X86_NOP5


def kprobe_breakpoint(arch: str = "x86_64") -> bytes:
    return struct.pack("<I", ARM64_BRK_KPROBE) if arch == "aarch64" else b"\xcc"
