"""Names for the AArch64 instructions capstone 4 leaves anonymous or cannot decode.

Capstone 4 (Debian 12's) prints the pointer-authentication and branch-target hints as
``hint #0x19`` and cannot decode ARMv8.3's non-hint PAC instructions at all (``retaa``,
``blraa``...), which arm64 kernels (ARM64_PTR_AUTH_KERNEL) and ``-mbranch-protection``
programs are full of.  The names are the architecture's (and objdump's/gdb's).  Pure.
"""

# HINT #imm (0xd503201f | imm << 5) that have a name since ARMv8.1-v8.5
HINTS = {
    0x00: "nop", 0x01: "yield", 0x02: "wfe", 0x03: "wfi", 0x04: "sev", 0x05: "sevl",
    0x07: "xpaclri", 0x08: "pacia1716", 0x0A: "pacib1716", 0x0C: "autia1716",
    0x0E: "autib1716", 0x10: "esb", 0x11: "psb csync", 0x12: "tsb csync", 0x14: "csdb",
    0x18: "paciaz", 0x19: "paciasp", 0x1A: "pacibz", 0x1B: "pacibsp",
    0x1C: "autiaz", 0x1D: "autiasp", 0x1E: "autibz", 0x1F: "autibsp",
    0x20: "bti", 0x22: "bti c", 0x24: "bti j", 0x26: "bti jc",
}

# ARMv8.3 instructions with fixed encodings
FIXED = {
    0xD65F0BFF: "retaa", 0xD65F0FFF: "retab",
    0xD69F0BFF: "eretaa", 0xD69F0FFF: "eretab",
}


def _x(n: int, sp_ok: bool = False) -> str:
    if n == 31:
        return "sp" if sp_ok else "xzr"
    return f"x{n}"


def hint_name(imm: int) -> str | None:
    return HINTS.get(imm)


def hint_imm(word: int) -> int | None:
    """The #imm of a HINT instruction (nop, bti c, paciasp... all are HINTs), else None.

    Callers that classify code should test encodings, not capstone's text: the same
    instruction reads ``hint #0x22`` raw and ``bti c`` once named (see rename())."""
    return (word >> 5) & 0x7F if (word & 0xFFFFF01F) == 0xD503201F else None


def is_bti(word: int) -> bool:
    """``bti``, ``bti c``, ``bti j`` or ``bti jc`` (a branch-target landing pad)."""
    return hint_imm(word) in (0x20, 0x22, 0x24, 0x26)


def decode_pac(word: int) -> tuple[str, str] | None:
    """(mnemonic, operands) of an ARMv8.3 PAC instruction capstone 4 cannot decode."""
    if word in FIXED:
        return FIXED[word], ""
    # BRAAZ/BRABZ/BLRAAZ/BLRABZ: 1101011 0 0 0 op 11111 0000 1 M Rn 11111
    if (word & 0xFF9FF81F) == 0xD61F081F:
        link = "l" if word & (1 << 21) else ""
        key = "b" if word & (1 << 10) else "a"
        return f"b{link}ra{key}z", _x((word >> 5) & 31)
    # BRAA/BRAB/BLRAA/BLRAB Xn, Xm|SP: 1101011 1 0 0 op 11111 0000 1 M Rn Rm
    if (word & 0xFF9FF800) == 0xD71F0800:
        link = "l" if word & (1 << 21) else ""
        key = "b" if word & (1 << 10) else "a"
        return f"b{link}ra{key}", f"{_x((word >> 5) & 31)}, {_x(word & 31, True)}"
    # PAC*/AUT*/XPAC* (data processing, 1 source): 1 1 0 11010110 00001 00 Z opc Rn Rd
    if (word & 0xFFFFC000) == 0xDAC10000:
        z, opc = (word >> 13) & 1, (word >> 10) & 7
        rn, rd = (word >> 5) & 31, word & 31
        names = ["pacia", "pacib", "pacda", "pacdb", "autia", "autib", "autda", "autdb"]
        if z == 0:
            return names[opc], f"{_x(rd)}, {_x(rn, True)}"
        if rn == 31:
            return names[opc][:-1] + "z" + names[opc][-1], _x(rd)
        return None
    if (word & 0xFFFFFBE0) == 0xDAC143E0:       # XPACI / XPACD Xd
        return ("xpacd" if word & (1 << 10) else "xpaci"), _x(word & 31)
    return None


def rename(word: int, mnemonic: str, op_str: str) -> tuple[str, str]:
    """The architecture's name for a decoded ``hint #imm``; anything else unchanged."""
    if mnemonic == "hint" and op_str.startswith("#"):
        try:
            name = hint_name(int(op_str[1:], 0))
        except ValueError:
            name = None
        if name:
            return name, ""
    return mnemonic, op_str
