"""PLT stub decoding: each stub of .plt/.plt.sec/.plt.got/.iplt -> the GOT slot it uses.

x86_64: ``jmp *X(%rip)`` (optionally after ``endbr64``, with a ``bnd`` prefix) names the
slot directly; a lazy ``.plt`` entry of an IBT binary (``endbr64; push N; jmp .plt``) names it
through relocation N of .rela.plt.  i386: ``jmp *ABS`` (non-PIC) or ``jmp *OFF(%ebx)``
(PIC: %ebx holds the GOT, DT_PLTGOT) and ``push N`` with N the relocation's byte offset in
.rel.plt.  aarch64: ``adrp x16, PAGE; ldr x17, [x16, #OFF]`` gives ``PAGE + OFF``.  arm:
``add ip, pc, #A; add ip, ip, #B; ldr pc, [ip, #C]!`` gives ``stub + 8 + A + B + C``.
``.plt[0]`` (push GOT[1]; jmp *GOT[2] / stp x16, x30 ...) is marked "plt0".

Only as many bytes as the relocations can use are decoded (a crafted file claiming a
256 MiB .plt costs nothing), and the result is cached per object model.
"""
import functools
import re

from gdb_toolkit.common.disasm import Insn, disassemble
from gdb_toolkit.common.record import field, record
from gdb_toolkit.plt.elf_file import SHT_NOBITS, BadElf
from gdb_toolkit.plt.elf_model import ObjectModel

_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")


def _compiled_on_first_use(pattern: str):
    """A function returning *pattern* compiled, compiled the first time it is called: the
    other architectures' operand patterns cost nothing until a stub of theirs is read
    (~100 us each of an x86_64 program's first 'plt'/'plt-walk')."""
    return functools.cache(lambda: re.compile(pattern))


_ebx = _compiled_on_first_use(r"\[ebx(?: ([+-]) (0x[0-9a-f]+|\d+))?\]")
_abs = _compiled_on_first_use(r"\[(0x[0-9a-f]+|\d+)\]")
_imm = _compiled_on_first_use(r"#?(-?0x[0-9a-f]+|-?\d+)")
_ldr = _compiled_on_first_use(r"^(x\d+), \[(x\d+)(?:, #(-?0x[0-9a-f]+|-?\d+))?\]")


#: bytes of PLT per slot we are willing to decode (largest real entry: 16; arm long: 16)
BYTES_PER_SLOT = 32
# aarch64 encodings the PLT shapes are recognised by (bytes, not capstone's text: a BTI pad
# is 'hint #0x22' or 'bti c' depending on who named it)
A64_STP_X16_X30_PRE = 0xA9BF7BF0     # stp x16, x30, [sp, #-16]!  (.plt[0]: save x16 and lr)
A64_BR_X17 = 0xD61F0220              # br x17  (every stub and .plt[0] end with it)


@record
class Stub:
    address: int              # link-time address
    section: str
    kind: str                 # plt0 | stub | lazy
    slot: int | None          # link-time GOT slot address
    symbol: str               # memcpy@GLIBC_2.14 ('' if unknown)
    reloc_index: int | None   # the relocation index of a lazy stub (i386: push N / 8)
    insns: list[Insn] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(i.size for i in self.insns)


def rip_target(insn: Insn) -> int | None:
    """Absolute address of a ``[rip +/- disp]`` memory operand."""
    m = _RIP.search(insn.op_str)
    if not m:
        return None
    disp = int(m.group(2), 0)
    return insn.address + insn.size + (disp if m.group(1) == "+" else -disp)


def mem_target(insn: Insn, got_base: int | None) -> int | None:
    """The memory operand's address: rip-relative (x86_64), absolute or %ebx-relative (i386)."""
    t = rip_target(insn)
    if t is not None:
        return t
    m = _ebx().search(insn.op_str)
    if m:
        if got_base is None:
            return None
        disp = int(m.group(2), 0) if m.group(2) else 0
        return got_base + (disp if m.group(1) != "-" else -disp)
    m = _abs().search(insn.op_str)
    return int(m.group(1), 0) if m else None


def _is_mem(insn: Insn) -> bool:
    return "[" in insn.op_str and ("rip" in insn.op_str or "ebx" in insn.op_str or _abs().search(insn.op_str) is not None)


def is_indirect_jmp(insn: Insn) -> bool:
    return insn.mnemonic.split()[-1] == "jmp" and _is_mem(insn)


def is_indirect_call(insn: Insn) -> bool:
    return insn.mnemonic.split()[-1] == "call" and _is_mem(insn)


def direct_target(insn: Insn) -> int | None:
    """Target of ``call/jmp/bl/b 0x...`` (direct), else None."""
    mn = insn.mnemonic.split()[-1]
    if mn not in ("call", "jmp", "bl", "b"):
        return None
    m = re.fullmatch(r"#?(0x[0-9a-f]+)", insn.op_str.strip())
    return int(m.group(1), 16) if m else None


def aarch64_slot(insns: list[Insn]) -> int | None:
    """``adrp xN, PAGE`` followed by ``ldr xM, [xN, #OFF]`` -> PAGE + OFF."""
    pages: dict[str, int] = {}
    for ins in insns:
        if ins.mnemonic == "adrp":
            reg, _, imm = ins.op_str.partition(", ")
            m = _imm().fullmatch(imm.strip())
            if m:
                pages[reg] = int(m.group(1), 0)
        elif ins.mnemonic == "ldr":
            m = _ldr().match(ins.op_str)
            if m and m.group(2) in pages:
                return pages[m.group(2)] + (int(m.group(3), 0) if m.group(3) else 0)
    return None


def _arm_imm(word: int) -> int:
    rot = ((word >> 8) & 0xF) * 2
    imm = word & 0xFF
    return ((imm >> rot) | (imm << (32 - rot))) & 0xFFFFFFFF if rot else imm


def arm_slot(insns: list[Insn]) -> int | None:
    """``add ip, pc, #A; add ip, ip, #B; ...; ldr pc, [ip, #C]!`` -> address + 8 + A + B + C."""
    if not insns:
        return None
    total, start = 0, insns[0].address
    for ins in insns:
        w = int.from_bytes(ins.raw, "little") if len(ins.raw) == 4 else 0
        if w & 0x0FFFF000 in (0x028FC000, 0x028CC000):         # add ip, pc|ip, #imm
            total += _arm_imm(w)
        elif w & 0x0FFFF000 == 0x05BCF000:                      # ldr pc, [ip, #imm]!
            return (start + 8 + total + (w & 0xFFF)) & 0xFFFFFFFF
        elif w & 0x0FFFF000 == 0x059CF000:                      # ldr pc, [ip, #imm]
            return (start + 8 + total + (w & 0xFFF)) & 0xFFFFFFFF
    return None


def _a64_word(insn: Insn) -> int | None:
    return int.from_bytes(insn.raw, "little") if len(insn.raw) == 4 else None


def _entry_size(model: ObjectModel, name: str, insns: list[Insn]) -> int:
    sec = model.sections[name]
    if sec.entsize and sec.size % sec.entsize == 0 and sec.entsize >= 8:
        return sec.entsize
    if model.arch == "aarch64":
        # 16 bytes, 24 with BTI/PAC entries (bti c; adrp; ldr; add; br; nop): the spacing of
        # the stubs' 'br x17' after .plt[0] says which
        brs = [i.address for i in insns if _a64_word(i) == A64_BR_X17]
        if len(brs) >= 3 and brs[2] - brs[1] in (16, 24, 32):
            return brs[2] - brs[1]
        return 16
    if model.arch == "arm":
        return 12
    if insns and insns[0].mnemonic == "push" and "[" in insns[0].op_str:
        return 16
    if insns and insns[0].mnemonic in ("endbr64", "endbr32"):
        return 16
    jumps = [i.address for i in insns if is_indirect_jmp(i)]
    if len(jumps) >= 2:
        return jumps[1] - jumps[0]
    return sec.size or 16


def _plt_head(model: ObjectModel, name: str, insns: list[Insn]) -> int:
    if name != ".plt" or not insns:
        return 0
    first = insns[0]
    if model.arch == "aarch64":
        from gdb_toolkit.common.arm64_names import is_bti

        # .plt[0]: stp x16, x30, [sp, #-16]! ..., after a BTI landing pad in a BTI PLT
        words = [_a64_word(i) for i in insns[:2]]
        lead = words[1] if words[0] is not None and is_bti(words[0]) and len(words) > 1 else words[0]
        return 32 if lead == A64_STP_X16_X30_PRE else 0
    if model.arch in ("x86_64", "i386") and first.mnemonic == "push" and "[" in first.op_str:
        return 16
    if model.arch == "arm" and first.raw == b"\x04\xe0\x2d\xe5":      # push {lr} (str lr, [sp, #-4]!)
        return 20
    return 0


def decode_plt(model: ObjectModel) -> list[Stub]:
    """Every stub of every PLT section of *model*, in address order (cached)."""
    cached = getattr(model, "_stubs", None)
    if cached is not None:
        return cached
    out = _decode(model)
    model._stubs = out
    return out


def _decode(model: ObjectModel) -> list[Stub]:
    by_addr = model.name_irelative().slot_by_address()
    plt_relocs = [s for s in model.slots if s.reloc_section in (".rela.plt", ".rel.plt")]
    by_index = {s.index: s for s in plt_relocs}
    budget = (len(model.slots) + 4) * BYTES_PER_SLOT
    got_base = model.got_plt_reserved()
    out: list[Stub] = []
    for sec in model.plt_sections():
        if sec.type == SHT_NOBITS or not sec.size:
            continue
        size = min(sec.size, budget)
        if model._elf.segment_of(sec.addr, size) is None:
            raise BadElf(model.path, f"section {sec.name} lies outside every loaded segment")
        data = model._elf._read(sec.offset, size, f"section {sec.name}")
        insns = disassemble(data, sec.addr, model.arch)
        size = _entry_size(model, sec.name, insns)
        head = _plt_head(model, sec.name, insns)
        chunks: dict[int, list[Insn]] = {}
        for ins in insns:
            off = ins.address - sec.addr
            chunks.setdefault(0 if off < head else (off - head) // size + (1 if head else 0), []).append(ins)
        for n in sorted(chunks):
            ch = chunks[n]
            while len(ch) > 1 and not any(ch[-1].raw):
                ch.pop()        # zero padding (i386 .plt[0] ends in 4 zero bytes): not code
            start = sec.addr if n == 0 else sec.addr + head + (n - (1 if head else 0)) * size
            stub = Stub(start, sec.name, "stub", None, "", None, ch)
            if n == 0 and head:
                stub.kind = "plt0"
                out.append(stub)
                continue
            if model.arch in ("x86_64", "i386"):
                for ins in ch:
                    if is_indirect_jmp(ins):
                        stub.slot = mem_target(ins, got_base)
                        break
                    if ins.mnemonic == "push" and "[" not in ins.op_str:
                        try:
                            n_push = int(ins.op_str, 0)
                        except ValueError:
                            continue
                        stub.reloc_index = n_push // 8 if model.arch == "i386" else n_push
                if stub.slot is None and stub.reloc_index is not None and stub.reloc_index in by_index:
                    stub.slot = by_index[stub.reloc_index].address
                    stub.kind = "lazy"
            elif model.arch == "arm":
                stub.slot = arm_slot(ch)
            else:
                stub.slot = aarch64_slot(ch)
            if all(i.mnemonic in ("nop", "int3", "(bad)") or i.mnemonic.startswith("nop") or not any(i.raw)
                   for i in ch):
                continue    # padding
            spec = by_addr.get(stub.slot) if stub.slot is not None else None
            if spec is not None:
                stub.symbol = spec.display
                if stub.reloc_index is None and spec.reloc_section in (".rela.plt", ".rel.plt") \
                        and spec.kind == "JUMP_SLOT":
                    stub.reloc_index = spec.index
            out.append(stub)
    out.sort(key=lambda s: s.address)
    return out
