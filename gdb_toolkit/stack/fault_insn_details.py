"""The address of an x86_64 memory operand that is only a displacement, from the capstone
package's operand details.

capstone 4's text truncates a negative disp32 of a byte-sized operand (``mov cl, byte ptr
[0x0]`` for 8a 0c 25 00 00 45 e5, which reads 0xffffffffe5450000: objdump and the details
agree), so stack/fault_insn.py asks here for that one shape.  Absolute operands are rare in
64-bit code (non-PIE data, -mcmodel=kernel), so the package's ~20 ms import is paid only then.
"""
MASK = (1 << 64) - 1
_md = None


def lone_displacement(raw: bytes, pc: int, regs: dict[str, int]) -> int | None:
    """disp (sign-extended) plus the fs/gs base of the first memory operand of the x86_64
    instruction *raw* at *pc*; None when a needed segment base is unknown."""
    global _md
    from gdb_toolkit.common.disasm import _import_capstone

    cs = _import_capstone()
    if _md is None:
        _md = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64)
        _md.detail = True
    insn = next(iter(_md.disasm(bytes(raw), pc)), None)
    if insn is None:
        return None
    for op in insn.operands:
        if op.type != cs.x86.X86_OP_MEM:
            continue
        addr = op.mem.disp
        if op.mem.segment:          # fs:/gs: (any other segment base is unknown here)
            base = regs.get(f"{insn.reg_name(op.mem.segment)}_base")
            if base is None:
                return None
            addr += base
        return addr & MASK
    return None
