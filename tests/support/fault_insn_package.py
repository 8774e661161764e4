"""The oracle of gdb_toolkit/stack/fault_insn.py: its former implementation, which reads the
operands from the capstone package's operand details (detail=True) instead of capstone's
text.  tests/unit/test_fault_insn.py and the capstone_lite fuzz target compare the two.

Used when nothing recorded the fault address: a core without NT_SIGINFO (qemu-user writes
none), where only ``pr_cursig`` says SIGSEGV.  ``push``/``call`` write at sp - 8; a memory
operand is base + index * scale (or the extended/shifted index) + displacement, plus the
fs/gs base on x86_64; aarch64 pre-index writes at base + offset, post-index at base.
"""
from gdb_toolkit.stack.fault_insn import Access


_engines: dict = {}
MASK = (1 << 64) - 1


def _engine(arch: str):
    if arch not in _engines:
        from gdb_toolkit.common.disasm import _import_capstone

        cs = _import_capstone()
        md = (cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64) if arch == "x86_64"
              else cs.Cs(cs.CS_ARCH_ARM64, cs.CS_MODE_ARM))
        md.detail = True
        _engines[arch] = (cs, md)
    return _engines[arch]


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


def faulting_access(code: bytes, pc: int, arch: str, regs: dict[str, int]) -> Access | None:
    """The memory address the instruction at *pc* (first bytes in *code*) accesses."""
    if arch not in ("x86_64", "aarch64") or not code:
        return None
    cs, md = _engine(arch)
    insn = next(iter(md.disasm(bytes(code[:16]), pc)), None)
    if insn is None:
        return None
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    if arch == "x86_64":
        sp = regs.get("rsp")
        if insn.mnemonic in ("push", "call", "pushfq") and sp is not None:
            return Access((sp - 8) & MASK, text)
        for op in insn.operands:
            if op.type != cs.x86.X86_OP_MEM:
                continue
            addr = op.mem.disp
            if op.mem.base:
                name = insn.reg_name(op.mem.base)
                if name == "rip":
                    addr += insn.address + insn.size
                else:
                    v = _reg(regs, name)
                    if v is None:
                        return None
                    addr += v
            if op.mem.index:
                v = _reg(regs, insn.reg_name(op.mem.index))
                if v is None:
                    return None
                addr += v * op.mem.scale
            if op.mem.segment:
                seg = insn.reg_name(op.mem.segment)
                base = regs.get(f"{seg}_base")
                if base is None:
                    return None
                addr += base
            return Access(addr & MASK, text)
        return None
    a64 = cs.arm64
    for op in insn.operands:
        if op.type != a64.ARM64_OP_MEM:
            continue
        base = _reg(regs, insn.reg_name(op.mem.base)) if op.mem.base else 0
        if base is None:
            return None
        post_index = getattr(insn, "writeback", False) and any(
            o.type == a64.ARM64_OP_IMM for o in insn.operands[insn.operands.index(op) + 1:])
        if post_index:
            return Access(base & MASK, text)
        addr = base + op.mem.disp
        if op.mem.index:
            name = insn.reg_name(op.mem.index)
            v = _reg(regs, name)
            if v is None:
                return None
            if op.ext in (5, 6, 7, 8):           # SXTB/SXTH/SXTW/SXTX
                bits = {5: 8, 6: 16, 7: 32, 8: 64}[op.ext]
                v &= (1 << bits) - 1
                if v >> (bits - 1):
                    v -= 1 << bits
            elif op.ext in (1, 2, 3):            # UXTB/UXTH/UXTW
                v &= (1 << {1: 8, 2: 16, 3: 32}[op.ext]) - 1
            if op.shift.value:
                v <<= op.shift.value
            addr += v
        return Access(addr & MASK, text)
    return None
