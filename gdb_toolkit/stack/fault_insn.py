"""The address the faulting instruction accessed, computed from its operands and registers.
Pure (the instruction's text from common.disasm's engine).

Used when nothing recorded the fault address: a core without NT_SIGINFO (qemu-user writes
none), where only ``pr_cursig`` says SIGSEGV.  ``push``/``call`` write at sp - 8; a memory
operand is base + index * scale (or the extended/shifted index) + displacement, plus the
fs/gs base on x86_64; aarch64 pre-index writes at base + offset, post-index at base.

The operands are read from capstone's text (Intel syntax on x86_64: ``qword ptr
fs:[rax + rdx*8 - 0x10]``; ``[x0, w1, sxtw #2]``, ``[sp, #-0x20]!``, ``[x1], #8`` on aarch64),
not from its operand details: the details need the capstone package (~20 ms to import) or a
binding of cs_detail, whose layout differs per architecture and release.  The text gives the
same registers, scale, displacement, extension and shift, except for an x86_64 operand that is
only a displacement, which capstone 4 may print truncated (stack/fault_insn_details.py reads
that one from the details) -- tests/unit/test_fault_insn.py and
the capstone_lite fuzz target compare this module with the package's details
(tests/support/fault_insn_package.py) on real and random code.
"""
from gdb_toolkit.common.record import record


@record
class Access:
    address: int
    text: str                       # the instruction, e.g. "str x1, [x0, x2, lsl #3]"


MASK = (1 << 64) - 1
#: _x86_memory's answer for an operand that is only a displacement (``[0xe5450000]``):
#: capstone 4 prints a negative disp32 of a byte operand truncated (``byte ptr [0x0]`` for
#: 8a 0c 25 00 00 45 e5), so the text cannot be trusted there
_LONE_DISP = object()
#: aarch64 extend operators (capstone's arm64_extender: 1..8) -> (bits, signed)
_EXTEND = {"uxtb": (8, False), "uxth": (16, False), "uxtw": (32, False), "uxtx": (64, False),
           "sxtb": (8, True), "sxth": (16, True), "sxtw": (32, True), "sxtx": (64, True)}


def _reg(regs: dict[str, int], name: str) -> int | None:
    """A register's value, with 32-bit views (eax, w2) of the 64-bit ones."""
    if name in regs:
        return regs[name]
    if name.startswith("w") and f"x{name[1:]}" in regs:
        return regs[f"x{name[1:]}"] & 0xFFFFFFFF
    if name == "wzr" or name == "xzr":
        return 0
    if name.startswith("e") and f"r{name[1:]}" in regs:
        return regs[f"r{name[1:]}"] & 0xFFFFFFFF
    if name.startswith("r") and name.endswith("d") and name[:-1] in regs:
        return regs[name[:-1]] & 0xFFFFFFFF
    return None


def _first_insn(code: bytes, pc: int, arch: str):
    """(address, size, mnemonic, op_str) of the instruction at *pc*, or None: the engine
    itself (no aarch64 renaming or PAC decoding on top, as the package's ``Cs.disasm``)."""
    from gdb_toolkit.common.disasm import _engine

    return next(iter(_engine(arch).disasm_lite(bytes(code[:16]), pc, 1)), None)


def faulting_access(code: bytes, pc: int, arch: str, regs: dict[str, int]) -> Access | None:
    """The memory address the instruction at *pc* (first bytes in *code*) accesses."""
    if arch not in ("x86_64", "aarch64") or not code:
        return None
    insn = _first_insn(code, pc, arch)
    if insn is None:
        return None
    address, size, mnemonic, ops = insn
    text = f"{mnemonic} {ops}".strip()
    if arch == "x86_64":
        sp = regs.get("rsp")
        if mnemonic in ("push", "call", "pushfq") and sp is not None:
            return Access((sp - 8) & MASK, text)
        addr = _x86_memory(_moffs(code[:size]), ops, address + size, regs)
        if addr is _LONE_DISP:
            from gdb_toolkit.stack.fault_insn_details import lone_displacement

            addr = lone_displacement(code[:size], address, regs)
    else:
        addr = _a64_memory(ops, regs)
    return None if addr is None else Access(addr & MASK, text)


#: x86 legacy prefixes (segment, operand/address size, lock, rep)
_PREFIXES = frozenset(b"\x26\x2e\x36\x3e\x64\x65\x66\x67\xf0\xf2\xf3")


def _moffs(raw: bytes) -> bool:
    """The instruction is mov's moffs form (opcodes A0-A3): its address is not a disp32."""
    i = 0
    while i < len(raw) and (raw[i] in _PREFIXES or 0x40 <= raw[i] <= 0x4F):     # and REX
        i += 1
    return i < len(raw) and 0xA0 <= raw[i] <= 0xA3


def _x86_memory(moffs: bool, ops: str, next_pc: int, regs: dict[str, int]) -> int | None:
    """The first memory operand, ``[base + index*scale +/- disp]`` with an optional
    ``seg:`` before it; None without one or with a register not in *regs*.  A lone
    displacement is a disp32, sign-extended (capstone prints its 32 bits), except in the
    moffs form of mov/movabs."""
    start = ops.find("[")
    end = ops.find("]", start)
    if start < 0 or end < 0:
        return None
    addr = 0
    seg = ops[start - 3:start - 1] if ops[start - 1:start] == ":" else None
    regs_used = False
    for sign, term in _terms(ops[start + 1:end]):
        if term[:1].isdigit():
            addr += sign * int(term, 0)
            continue
        regs_used = True
        name, star, scale = term.partition("*")
        if name == "rip" and not star:
            addr += next_pc
        else:
            v = _reg(regs, name)
            if v is None:
                return None
            addr += v * (int(scale) if star else 1)
    if not regs_used and not moffs:
        return _LONE_DISP       # capstone's text can truncate it: read the details instead
    if seg is not None:
        base = regs.get(f"{seg}_base")
        if base is None:
            return None
        addr += base
    return addr


def _terms(inner: str):
    """"rax + rdx*4 - 0x10" -> (1, "rax"), (1, "rdx*4"), (-1, "0x10")."""
    sign = 1
    for tok in inner.split(" "):
        if tok == "+":
            sign = 1
        elif tok == "-":
            sign = -1
        elif tok:
            if tok.startswith("-"):
                sign, tok = -sign, tok[1:]
            yield sign, tok
            sign = 1


def _a64_memory(ops: str, regs: dict[str, int]) -> int | None:
    """The first memory operand: ``[base]``, ``[base, #imm]`` (``!``: pre-index),
    ``[base], #imm`` / ``[base], xM`` (post-index: base), ``[base, index{, ext|lsl {#n}}]``."""
    start = ops.find("[")
    while start >= 0 and not ops[start + 1:start + 2].isalpha():     # a lane index: {v0.s}[1]
        start = ops.find("[", start + 1)
    end = ops.find("]", start)
    if start < 0 or end < 0:
        return None
    parts = ops[start + 1:end].split(", ")
    base = _reg(regs, parts[0])
    if base is None:
        return None
    if ops[end + 1:end + 3] == ", ":                 # post-index: the access is at base
        return base
    addr = base
    rest = parts[1:]
    if rest and rest[0].startswith("#"):
        return addr + int(rest[0][1:], 0)
    if rest:
        v = _reg(regs, rest[0])
        if v is None:
            return None
        op, _, amount = rest[1].partition(" #") if len(rest) > 1 else ("", "", "")
        if op in _EXTEND:
            bits, signed = _EXTEND[op]
            v &= (1 << bits) - 1
            if signed and v >> (bits - 1):
                v -= 1 << bits
        if amount:
            v <<= int(amount, 0)
        addr += v
    return addr
