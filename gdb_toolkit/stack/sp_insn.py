"""Which instruction moved the stack pointer, and is this a stack-clash probing loop.  Pure.

Works on capstone output (``common.disasm.Insn``) for x86_64 and aarch64.
"""
import re

from gdb_toolkit.common.disasm import Insn
from gdb_toolkit.stack.model import ClashProbe, SpMover

SP = {"x86_64": "rsp", "aarch64": "sp"}


def _imm(text: str) -> int | None:
    m = re.fullmatch(r"#?(-?0x[0-9a-f]+|-?\d+)(?:, lsl #(\d+))?", text.strip())
    if not m:
        return None
    value = int(m.group(1), 0)
    return value << int(m.group(2)) if m.group(2) else value


def sp_decrement(insn: Insn, arch: str) -> tuple[bool, int | None] | None:
    """(dynamic, immediate) when *insn* lowers the stack pointer by a sub, else None.

    x86_64: ``sub rsp, rax`` (dynamic) / ``sub rsp, 0x38``; aarch64: ``sub sp, sp, x1`` /
    ``sub sp, sp, #0x10, lsl #12`` / ``stp x29, x30, [sp, #-0x50]!``.
    """
    ops = [o.strip() for o in insn.op_str.split(",", 1)] if arch == "x86_64" else None
    if arch == "x86_64":
        if insn.mnemonic != "sub" or len(ops) != 2 or ops[0] != "rsp":
            return None
        imm = _imm(ops[1])
        return (imm is None, imm)
    if insn.mnemonic == "sub" and insn.op_str.startswith("sp, sp, "):
        rest = insn.op_str[len("sp, sp, "):]
        imm = _imm(rest)
        return (imm is None, imm)
    m = re.fullmatch(r"\S+, \S+, \[sp, #-(0x[0-9a-f]+|\d+)\]!", insn.op_str)
    if insn.mnemonic in ("stp", "str") and m:
        return (False, int(m.group(1), 0))
    return None


def find_sp_mover(insns: list[Insn], pc: int, arch: str) -> SpMover | None:
    """The instruction before *pc* that lowered sp the most: the last dynamic ``sub`` (a VLA
    or alloca) if there is one, else the largest immediate ``sub``."""
    dynamic, biggest = None, None
    for insn in insns:
        if insn.address >= pc:
            break
        d = sp_decrement(insn, arch)
        if d is None:
            continue
        is_dyn, imm = d
        if is_dyn:
            dynamic = insn
        elif biggest is None or (imm or 0) > biggest[1]:
            biggest = (insn, imm or 0)
    chosen = dynamic or (biggest[0] if biggest else None)
    if chosen is None:
        return None
    return SpMover(chosen.address, chosen.text, chosen is dynamic)


def _index_at(insns: list[Insn], pc: int) -> int | None:
    for i, insn in enumerate(insns):
        if insn.address == pc:
            return i
    return None


def _is_probe(insn: Insn, arch: str) -> bool:
    """A store/or of zero to [sp + off]: the probe of a stack-clash-protection loop."""
    if arch == "x86_64":
        return insn.mnemonic == "or" and re.fullmatch(
            r"qword ptr \[rsp(?: \+ 0x[0-9a-f]+)?\], 0", insn.op_str) is not None
    return insn.mnemonic == "str" and re.fullmatch(r"xzr, \[sp(?:, #0x[0-9a-f]+)?\]",
                                                   insn.op_str) is not None


def detect_clash_probe(insns: list[Insn], pc: int, arch: str, registers: dict[str, int],
                       cfa: int | None) -> ClashProbe | None:
    """Recognise gcc's -fstack-clash-protection loop when *pc* is at (or next to) its probe.

    x86_64:  sub rsp, 0x1000; or qword ptr [rsp + 0xff8], 0; cmp rsp, r8; jne loop
    aarch64: sub sp, sp, #0x10, lsl #12; str xzr, [sp, #0x400]; cmp sp, x2; b.ne loop
    The compare register holds the stack pointer the loop is heading for, so the full
    requested allocation is known even though the loop stopped part-way.
    """
    i = _index_at(insns, pc)
    if i is None:
        return None
    window = insns[max(0, i - 2): i + 3]
    probe = next((x for x in window if _is_probe(x, arch)), None)
    if probe is None:
        return None
    j = insns.index(probe)
    sub = insns[j - 1] if j > 0 else None
    d = sp_decrement(sub, arch) if sub else None
    if not d or d[0] or not d[1] or d[1] < 0x1000:
        return None
    target_reg = None
    # -O2 tests at the loop's bottom (sub; probe; cmp; jne), -O0 at its head
    # (cmp; je out; sub; probe; jmp head): look after the probe, then before the sub
    for x in insns[j + 1: j + 3] + insns[max(0, j - 4): j - 1][::-1]:
        if x.mnemonic == "cmp":
            a, _, b = (s.strip() for s in x.op_str.partition(","))
            target_reg = b if a == SP[arch] else a if b == SP[arch] else None
            if target_reg:
                break
    target = registers.get(target_reg) if target_reg else None
    requested = (cfa - target) if (cfa is not None and target is not None and target < cfa) else None
    return ClashProbe(sub.address, probe.text, d[1], target_reg, target, requested)


def source_of(address: int, lines: list[tuple[int, str]]) -> str | None:
    """The source line of *address* from a sorted (address, "file:line") table."""
    best = None
    for a, text in lines:
        if a > address:
            break
        best = text
    return best
