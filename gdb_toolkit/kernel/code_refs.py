"""A data symbol's address read from the code that uses it, checked against memory.

Without CONFIG_KALLSYMS_ALL (Debian's arm64) kallsyms has no data symbols, and Debian's
/boot/System.map is a placeholder.  But the functions that use a variable are in kallsyms,
and their instructions hold its address: ``get_kprobe`` indexes ``kprobe_table`` (x86_64:
``mov rax, [rax*8 + disp32]``; arm64: ``adrp x1, page; add x1, x1, #lo12``).  Each candidate
address a function references is kept only if the memory there has the variable's shape
(every non-empty ``kprobe_table`` bucket's first probe points back at its bucket).

Pure: ``read(addr, n)``, the symbol table and the architecture come in.
"""
import re
import struct

from gdb_toolkit.common.errors import ToolkitError

MASK64 = (1 << 64) - 1


def _canonical(p: int) -> bool:
    return 0xFF00000000000000 <= p < 0xFFFFFFFFFFFFF000


def data_refs(code: bytes, addr: int, arch: str, limit: int = 400) -> list[int]:
    """Addresses *code* (at *addr*) refers to as data, in instruction order."""
    from gdb_toolkit.common.disasm import disassemble

    out = []
    if arch == "aarch64":
        pages: dict[str, int] = {}
        for ins in disassemble(code, addr, arch, count=limit):
            ops = [o.strip() for o in ins.op_str.split(",")]
            if ins.mnemonic == "adrp" and len(ops) == 2:
                m = re.match(r"#?(0x[0-9a-f]+)", ops[1])
                if m:
                    pages[ops[0]] = int(m.group(1), 16)
            elif ins.mnemonic == "add" and len(ops) == 3 and ops[1] in pages:
                m = re.match(r"#(0x[0-9a-f]+|\d+)", ops[2])
                if m:
                    out.append((pages[ops[1]] + int(m.group(1), 0)) & MASK64)
            elif ins.mnemonic.startswith("ldr") and len(ops) >= 2:
                m = re.match(r"\[(x\d+)(?:, #(0x[0-9a-f]+|\d+))?\]", ",".join(ops[1:]).replace(" ", "")
                             .replace(",#", ", #"))
                if m and m.group(1) in pages:
                    out.append((pages[m.group(1)] + int(m.group(2) or "0", 0)) & MASK64)
        return out
    for ins in disassemble(code, addr, arch, count=limit):
        if ins.mnemonic == "(bad)":
            break
        m = re.search(r"\[rip ([+-]) (0x[0-9a-f]+)\]", ins.op_str)
        if m:
            d = int(m.group(2), 16)
            out.append((ins.address + ins.size + (d if m.group(1) == "+" else -d)) & MASK64)
            continue
        m = re.search(r"\[[^\]]*?([+-]) (0x[0-9a-f]{7,8})\]", ins.op_str)
        if m:
            d = int(m.group(2), 16)
            if d >= 0x40000000:                     # a kernel address as sign-extended disp32
                out.append((-d if m.group(1) == "-" else d) & MASK64)
            continue
        m = re.search(r"\b(0xffff[0-9a-f]{12})\b", ins.op_str)
        if m:
            out.append(int(m.group(1), 16))
    return out


def looks_like_kprobe_table(read, cand: int, buckets: int = 64) -> bool | None:
    """True: every non-empty bucket's first node has pprev == &bucket; None: all empty (the
    shape cannot be checked); False: not a kprobe table."""
    try:
        heads = struct.unpack(f"<{buckets}Q", read(cand, 8 * buckets))
    except (ToolkitError, struct.error):
        return False
    used = 0
    for i, node in enumerate(heads):
        if not node:
            continue
        if not _canonical(node):
            return False
        try:
            pprev = struct.unpack("<Q", read(node + 8, 8))[0]
        except ToolkitError:
            return False
        if pprev != cand + 8 * i:
            return False
        used += 1
    return True if used else None


# data symbol -> (functions using it, shape check)
RECIPES = {
    "kprobe_table": (("get_kprobe",), looks_like_kprobe_table),
}


def resolve(name: str, read, symbols, arch: str):
    """(address, how it was found) of data symbol *name* from its users' code, or None."""
    recipe = RECIPES.get(name)
    if recipe is None:
        return None
    funcs, check = recipe
    weak = None
    for fn in funcs:
        s = symbols.lookup(fn)
        if s is None:
            continue
        end = symbols.next_symbol_after(s.address) or s.address + 512
        try:
            code = read(s.address, max(16, min(end - s.address, 1024)))
        except ToolkitError:
            continue
        for cand in dict.fromkeys(data_refs(code, s.address, arch)):
            verdict = check(read, cand)
            if verdict:
                return cand, f"from {fn}'s code (0x{cand:x}; its shape checked in memory)"
            if verdict is None and weak is None:
                weak = (cand, f"from {fn}'s code (0x{cand:x}; empty, so its shape is unchecked)")
    return weak
