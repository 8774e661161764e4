"""What the code did to the stack pointer.  Pure (works on ``common.disasm.Insn`` lists).

- ``find_sp_mover``: the instruction that lowered sp the most before pc -- a run-time sized
  allocation (``sub rsp, rax``, ``sub sp, sp, x1``; clang's ``mov rsp, rcx`` / ``mov sp, x8``
  after computing sp - size) or the biggest fixed ``sub``.
- ``stack_switch``: ``mov rsp, REG`` with a value not computed from sp -- a stack pivot.
- ``frame_explained``: can the function's own instructions produce a frame this big?  A
  frame of 42 TiB in a function that only pushes three registers did not come from that
  function: sp was loaded with a bad value.
- ``detect_clash_probe``: gcc's and clang's ``-fstack-clash-protection`` loops.
- ``static_probe_evidence``: does this code probe the stack (built with stack-clash protection)?
"""
import functools
import re

from gdb_toolkit.common.disasm import Insn
from gdb_toolkit.stack.model import ClashProbe, SpMover

SP = {"x86_64": "rsp", "aarch64": "sp"}
PROBE_STEP_MIN = 0x1000
FRAME_SLACK = 4096 + 128        # red zone, alignment, the return address: never megabytes


def _imm(text: str) -> int | None:
    m = re.fullmatch(r"#?(-?0x[0-9a-f]+|-?\d+)(?:, lsl #(\d+))?", text.strip())
    if not m:
        return None
    value = int(m.group(1), 0)
    return value << int(m.group(2)) if m.group(2) else value


def _ops(insn: Insn) -> list[str]:
    """Operands split at top-level commas (not inside brackets)."""
    out, depth, cur = [], 0, ""
    for ch in insn.op_str:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def sp_decrement(insn: Insn, arch: str) -> tuple[bool, int | None] | None:
    """(dynamic, immediate) when *insn* lowers the stack pointer by a sub, else None.

    x86_64: ``sub rsp, rax`` (dynamic) / ``sub rsp, 0x38``; aarch64: ``sub sp, sp, x1`` /
    ``sub sp, sp, #0x10, lsl #12`` / ``stp x29, x30, [sp, #-0x50]!``.
    """
    if arch == "x86_64":
        ops = _ops(insn)
        if insn.mnemonic != "sub" or len(ops) != 2 or ops[0] != "rsp":
            return None
        imm = _imm(ops[1])
        return (imm is None, imm)
    if insn.mnemonic == "sub" and insn.op_str.startswith("sp, sp, "):
        rest = insn.op_str[len("sp, sp, "):]
        imm = _imm(rest)
        return (imm is None, imm)
    m = re.fullmatch(r"\S+, (?:\S+, )?\[sp, #-(0x[0-9a-f]+|\d+)\]!", insn.op_str)
    if insn.mnemonic in ("stp", "str") and m:
        return (False, int(m.group(1), 0))
    return None


def _writes(insn: Insn, reg: str, arch: str) -> bool:
    ops = _ops(insn)
    if not ops or ops[0] != reg or insn.mnemonic.startswith(("cmp", "test", "st", "push")):
        return False
    return True


def _derived_from_sp(insns: list[Insn], i: int, reg: str, arch: str, window: int = 16) -> bool:
    """Was *reg* (moved into sp at insns[i]) computed from sp shortly before?  Follows the
    chain of instructions writing it (``sub``, ``and``, ``mov R, R2``) back to a read of sp."""
    sp = SP[arch]
    for j in range(i - 1, max(-1, i - 1 - window), -1):
        x = insns[j]
        if not _writes(x, reg, arch):
            continue
        ops = _ops(x)
        srcs = ops[1:]
        if any(s == sp or s.startswith(f"[{sp}") for s in srcs):
            return True                      # mov rcx, rsp / lea rcx, [rsp - 0x10] / mov x8, sp
        arith = x.mnemonic in ("sub", "subs", "and", "ands", "add", "adds", "bic")
        if arith and arch == "aarch64" and srcs and srcs[0] == sp:
            return True                      # sub x8, sp, x9
        if arith and (arch == "x86_64" or (srcs and srcs[0] == reg)):
            continue                         # sub rcx, rdx; and rax, -16 keep following rcx
        if x.mnemonic == "mov" and srcs and re.fullmatch(r"[re]?[a-z0-9]+|x\d+", srcs[0]):
            reg = srcs[0]                    # mov rcx, rax: follow rax
            continue
        return False
    return False


def _mov_to_sp(insn: Insn, arch: str) -> str | None:
    """The source register of ``mov rsp, REG`` / ``mov sp, xN``, else None."""
    if insn.mnemonic != "mov":
        return None
    ops = _ops(insn)
    if len(ops) == 2 and ops[0] == SP[arch] and re.fullmatch(r"[a-z][a-z0-9]+", ops[1]):
        return ops[1]
    return None


def find_sp_mover(insns: list[Insn], pc: int, arch: str) -> SpMover | None:
    """The instruction before *pc* that lowered sp the most: the last run-time sized one (a
    VLA or alloca) if there is one, else the largest immediate ``sub``."""
    dynamic, biggest = None, None
    for i, insn in enumerate(insns):
        if insn.address >= pc:
            break
        d = sp_decrement(insn, arch)
        if d is None:
            src = _mov_to_sp(insn, arch)
            if src and _derived_from_sp(insns, i, src, arch):
                dynamic = insn
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


#: branch mnemonics, compiled on first use (only a dynamic sp mover looks for loops)
BRANCHES = {"x86_64": r"j[a-z]+|loop[a-z]*", "aarch64": r"b(\.[a-z]+)?|cbn?z|tbn?z"}


@functools.cache
def _branch_pattern(arch: str):
    return re.compile(BRANCHES[arch]) if arch in BRANCHES else None


def _branch_target(insn: Insn, arch: str) -> int | None:
    pat = _branch_pattern(arch)
    if pat is None or not pat.fullmatch(insn.mnemonic):
        return None
    last = insn.op_str.split(",")[-1].strip().lstrip("#")
    try:
        return int(last, 16) if last.startswith("0x") else None
    except ValueError:
        return None


def _restores_sp(insn: Insn, arch: str) -> bool:
    """sp set back from a saved value (the end of a VLA's scope): mov rsp, REG / lea rsp, [..]
    / mov sp, xN / add|sub sp, x29, #N."""
    if _mov_to_sp(insn, arch):
        return True
    if arch == "x86_64":
        return insn.mnemonic == "lea" and insn.op_str.startswith("rsp, [")
    return insn.mnemonic in ("add", "sub") and re.match(r"sp, x(29|\d+), ", insn.op_str) is not None


def in_loop(insns: list[Insn], address: int, arch: str) -> bool:
    """Does the frame grow at every iteration of a loop around the instruction at *address*:
    a later branch of the same function jumps back to it or before it, and nothing in
    between sets sp back (a VLA's scope ends each iteration; alloca()'s does not)."""
    first = insns[0].address if insns else 0
    for k, insn in enumerate(insns):
        if insn.address <= address:
            continue
        target = _branch_target(insn, arch)
        if target is not None and first <= target <= address:
            body = [x for x in insns[:k] if target <= x.address]
            if not any(_restores_sp(x, arch) for x in body if x.address != address):
                return True
    return False


FRAME_POINTER = {"x86_64": "rbp", "aarch64": "x29"}


def stack_switch(insns: list[Insn], pc: int, arch: str) -> Insn | None:
    """The last instruction before *pc* that loaded sp with a value not computed from sp
    (``mov rsp, rdi``, ``mov rsp, 0x10000``, ``pop rsp``, ``xchg rsp, rax``): a pivot.
    The epilogue's ``mov rsp, rbp`` / ``mov sp, x29`` is not one."""
    sp, found = SP[arch], None
    for i, insn in enumerate(insns):
        if insn.address >= pc:
            break
        ops = _ops(insn)
        if insn.mnemonic == "mov" and ops[:1] == [sp] and len(ops) == 2:
            src = ops[1]
            if src == FRAME_POINTER[arch]:
                continue
            if re.fullmatch(r"[a-z][a-z0-9]+", src) and _derived_from_sp(insns, i, src, arch,
                                                                          window=i):
                continue                     # sp saved in a register earlier, restored here
            found = insn
        elif arch == "x86_64" and insn.mnemonic in ("pop", "xchg") and sp in ops:
            found = insn
    return found


def static_frame_bytes(insns: list[Insn], pc: int, arch: str) -> int:
    """Bytes the function's fixed instructions before *pc* can take off sp: pushes and
    immediate subs (an upper bound: every path counted)."""
    total = 0
    for insn in insns:
        if insn.address >= pc:
            break
        if arch == "x86_64" and insn.mnemonic in ("push", "pushfq", "call"):
            total += 8
            continue
        if arch == "x86_64" and insn.mnemonic == "and" and _ops(insn)[:1] == ["rsp"]:
            total += abs(_imm(_ops(insn)[1]) or 0)
            continue
        d = sp_decrement(insn, arch)
        if d and not d[0] and d[1]:
            total += d[1]
    return total


def frame_explained(insns: list[Insn], pc: int, arch: str, size: int) -> bool:
    """Can the function's code before *pc* have lowered sp by *size* bytes?  A run-time sized
    allocation or a probing loop explains any size; otherwise the fixed instructions must."""
    mover = find_sp_mover(insns, pc, arch)
    if mover is not None and mover.dynamic:
        return True
    if any(_is_probe(x, arch) for x in insns if x.address < pc + 16):
        return True
    return size <= static_frame_bytes(insns, pc, arch) + FRAME_SLACK


def _index_at(insns: list[Insn], pc: int) -> int | None:
    for i, insn in enumerate(insns):
        if insn.address == pc:
            return i
    return None


def _is_probe(insn: Insn, arch: str) -> bool:
    """A store/or/xor of zero to [sp + off]: the probe of a stack-clash-protection loop
    (gcc x86_64 ``or qword ptr [rsp + 0xff8], 0``, clang ``xor qword ptr [rsp], 0``,
    aarch64 ``str xzr, [sp, #0x400]``)."""
    if arch == "x86_64":
        return insn.mnemonic in ("or", "xor", "mov") and re.fullmatch(
            r"qword ptr \[rsp(?: \+ 0x[0-9a-f]+)?\], 0", insn.op_str) is not None
    return insn.mnemonic == "str" and re.fullmatch(r"xzr, \[sp(?:, #0x[0-9a-f]+)?\]",
                                                   insn.op_str) is not None


def detect_clash_probe(insns: list[Insn], pc: int, arch: str, registers: dict[str, int],
                       cfa: int | None) -> ClashProbe | None:
    """Recognise a ``-fstack-clash-protection`` loop when *pc* is at (or next to) its probe.

    gcc x86_64:  sub rsp, 0x1000; or qword ptr [rsp + 0xff8], 0; cmp rsp, r8; jne loop
    clang x86_64: xor qword ptr [rsp], 0; sub rsp, 0x1000; cmp rbx, rsp; jl loop
    gcc aarch64: sub sp, sp, #0x10, lsl #12; str xzr, [sp, #0x400]; cmp sp, x2; b.ne loop
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
    sub, step = None, None
    for k in (j - 1, j + 1, j - 2, j + 2):
        if 0 <= k < len(insns):
            d = sp_decrement(insns[k], arch)
            if d and not d[0] and d[1] and d[1] >= PROBE_STEP_MIN:
                sub, step = insns[k], d[1]
                break
    if sub is None:
        return None
    target_reg = None
    lo = min(j, insns.index(sub))
    hi = max(j, insns.index(sub))
    # -O2 tests at the loop's bottom (sub; probe; cmp; jne), -O0 at its head
    # (cmp; je out; sub; probe; jmp head), clang before the loop and at its bottom
    for x in insns[hi + 1: hi + 3] + insns[max(0, lo - 4): lo][::-1]:
        if x.mnemonic == "cmp":
            a, _, b = (s.strip() for s in x.op_str.partition(","))
            target_reg = b if a == SP[arch] else a if b == SP[arch] else None
            if target_reg:
                break
    target = registers.get(target_reg) if target_reg else None
    requested = (cfa - target) if (cfa is not None and target is not None and target < cfa) else None
    return ClashProbe(min(sub.address, probe.address), probe.text, step, target_reg, target,
                      requested, sub.address, sub.text)


def static_probe_evidence(insns: list[Insn], arch: str) -> bool:
    """True when the code probes the stack (a probing store next to an sp decrement of at
    least a page): the sign of -fstack-clash-protection."""
    for k, x in enumerate(insns):
        if _is_probe(x, arch):
            for y in insns[max(0, k - 2): k + 3]:
                d = sp_decrement(y, arch)
                if d and not d[0] and d[1] and d[1] >= PROBE_STEP_MIN:
                    return True
    return False


def source_of(address: int, lines: list[tuple[int, str]]) -> str | None:
    """The source line of *address* from a sorted (address, "file:line") table."""
    best = None
    for a, text in lines:
        if a > address:
            break
        best = text
    return best
