"""PLT stub decoding: each stub of .plt/.plt.sec/.plt.got/.iplt -> the GOT slot it uses.

x86_64: ``jmp *X(%rip)`` (optionally after ``endbr64``, with a ``bnd`` prefix) names the
slot directly; a lazy ``.plt`` entry of an IBT binary (``endbr64; push N; jmp .plt``) names it
through relocation N of .rela.plt.  aarch64: ``adrp x16, PAGE; ldr x17, [x16, #OFF]`` gives
``PAGE + OFF``.  ``.plt[0]`` (push GOT[1]; jmp *GOT[2] / stp x16, x30 ...) is marked "plt0".
"""
import re
from dataclasses import dataclass, field

from gdb_toolkit.common.disasm import Insn, disassemble
from gdb_toolkit.plt.elf_model import ObjectModel

_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")
_IMM = re.compile(r"#?(-?0x[0-9a-f]+|-?\d+)")
_LDR = re.compile(r"^(x\d+), \[(x\d+)(?:, #(-?0x[0-9a-f]+|-?\d+))?\]")


@dataclass
class Stub:
    address: int              # link-time address
    section: str
    kind: str                 # plt0 | stub | lazy
    slot: int | None          # link-time GOT slot address
    symbol: str               # memcpy@GLIBC_2.14 ('' if unknown)
    reloc_index: int | None   # the push N of a lazy stub
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


def is_indirect_jmp(insn: Insn) -> bool:
    return insn.mnemonic.split()[-1] == "jmp" and "[rip" in insn.op_str


def is_indirect_call(insn: Insn) -> bool:
    return insn.mnemonic.split()[-1] == "call" and "[rip" in insn.op_str


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
            m = _IMM.fullmatch(imm.strip())
            if m:
                pages[reg] = int(m.group(1), 0)
        elif ins.mnemonic == "ldr":
            m = _LDR.match(ins.op_str)
            if m and m.group(2) in pages:
                return pages[m.group(2)] + (int(m.group(3), 0) if m.group(3) else 0)
    return None


def _entry_size(model: ObjectModel, name: str, insns: list[Insn]) -> int:
    sec = model.sections[name]
    if sec.entsize and sec.size % sec.entsize == 0 and sec.entsize >= 8:
        return sec.entsize
    if model.arch == "aarch64":
        return 16
    if insns and insns[0].mnemonic == "push" and "[rip" in insns[0].op_str:
        return 16
    if insns and insns[0].mnemonic == "endbr64":
        return 16
    jumps = [i.address for i in insns if is_indirect_jmp(i)]
    if len(jumps) >= 2:
        return jumps[1] - jumps[0]
    return sec.size or 16


def decode_plt(model: ObjectModel) -> list[Stub]:
    """Every stub of every PLT section of *model*, in address order."""
    by_addr = model.name_irelative().slot_by_address()
    plt_relocs = [s for s in model.slots if s.reloc_section in (".rela.plt",)]
    by_index = {s.index: s for s in plt_relocs}
    out: list[Stub] = []
    for sec in model.plt_sections():
        data = model.read(sec.addr, sec.size) or b""
        if not data:
            continue
        insns = disassemble(data, sec.addr, model.arch)
        size = _entry_size(model, sec.name, insns)
        head = 0
        if sec.name == ".plt" and insns:
            if model.arch == "aarch64" and insns[0].mnemonic == "stp":
                head = 32
            elif model.arch == "x86_64" and insns[0].mnemonic == "push" and "[rip" in insns[0].op_str:
                head = 16
        chunks: dict[int, list[Insn]] = {}
        for ins in insns:
            off = ins.address - sec.addr
            chunks.setdefault(0 if off < head else (off - head) // size + (1 if head else 0), []).append(ins)
        for n in sorted(chunks):
            ch = chunks[n]
            start = sec.addr if n == 0 else sec.addr + head + (n - (1 if head else 0)) * size
            stub = Stub(start, sec.name, "stub", None, "", None, ch)
            if model.arch == "x86_64":
                first = ch[0] if ch[0].mnemonic != "endbr64" or len(ch) < 2 else ch[1]
                if n == 0 and sec.name == ".plt" and first.mnemonic == "push" and "[rip" in first.op_str:
                    stub.kind = "plt0"
                    out.append(stub)
                    continue
                for ins in ch:
                    if is_indirect_jmp(ins):
                        stub.slot = rip_target(ins)
                        break
                    if ins.mnemonic == "push" and "[" not in ins.op_str:
                        try:
                            stub.reloc_index = int(ins.op_str, 0)
                        except ValueError:
                            pass
                if stub.slot is None and stub.reloc_index is not None and stub.reloc_index in by_index:
                    stub.slot = by_index[stub.reloc_index].address
                    stub.kind = "lazy"
            else:
                if n == 0 and sec.name == ".plt" and ch[0].mnemonic == "stp":
                    stub.kind = "plt0"
                    out.append(stub)
                    continue
                stub.slot = aarch64_slot(ch)
            if all(i.mnemonic in ("nop", "int3", "(bad)") or i.mnemonic.startswith("nop") for i in ch):
                continue    # padding
            spec = by_addr.get(stub.slot) if stub.slot is not None else None
            if spec is not None:
                stub.symbol = spec.display
                if stub.reloc_index is None and spec.reloc_section == ".rela.plt" and spec.kind == "JUMP_SLOT":
                    stub.reloc_index = spec.index
            out.append(stub)
    out.sort(key=lambda s: s.address)
    return out
