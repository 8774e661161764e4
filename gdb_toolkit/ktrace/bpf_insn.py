"""eBPF instructions and a tiny assembler with labels (pure).

Why not clang: bcc compiles every program with clang against the kernel headers, 4.4 s under
TCG for a ten-line program (bpftrace arms in 2.3 s there), and again for every ktrace.  ktrace's
programs are always the same few shapes -- read registers or tracepoint fields, follow pointers
at BTF offsets with ``bpf_probe_read_kernel``, submit one record -- so bpf_codegen.py emits them
directly with these helpers.  Encoding: include/uapi/linux/bpf.h and
Documentation/bpf/standardization/instruction-set.rst (little-endian hosts: x86_64, arm64).
"""
import struct

# instruction classes
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
# sizes (LD/LDX/ST/STX)
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
SIZE = {1: B, 2: H, 4: W, 8: DW}
MEM, IMM = 0x60, 0x00
# ALU ops
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR, MOV, ARSH = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0)
# jumps
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, CALL, EXIT, JLT, JLE, JSLT, JSLE = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0)
K, X = 0x00, 0x08                   # source: immediate or register
PSEUDO_MAP_FD = 1                   # ld_imm64 src_reg: imm is a map fd

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10

# helper ids (enum bpf_func_id)
MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, PROBE_READ = 1, 2, 3, 4
KTIME_GET_NS, GET_CURRENT_PID_TGID, GET_CURRENT_COMM = 5, 14, 16
PERF_EVENT_OUTPUT, GET_STACKID, GET_CURRENT_TASK, PROBE_READ_KERNEL = 25, 27, 35, 113
GET_NS_CURRENT_PID_TGID = 120       # Linux 5.7+

_INSN = struct.Struct("<BBhi")


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


class Insn:
    """One instruction; *label* names a jump target (Asm.assemble resolves it), *map_name* a
    map whose fd the loader puts in an ld_imm64.  A plain class: the worker imports this
    module at start-up, and dataclasses costs more than the rest of it."""

    __slots__ = ("code", "dst", "src", "off", "imm", "label", "map_name")

    def __init__(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
                 label: str | None = None, map_name: str | None = None):
        self.code, self.dst, self.src, self.off, self.imm = code, dst, src, off, imm
        self.label, self.map_name = label, map_name

    def __eq__(self, other) -> bool:
        return isinstance(other, Insn) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return "Insn(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    def encode(self) -> bytes:
        return _INSN.pack(self.code, (self.src << 4) | self.dst, self.off, _s32(self.imm))


class Asm:
    """Append instructions; ``label(name)`` marks a position; jumps name a label."""

    def __init__(self):
        self.insns: list[Insn] = []
        self.labels: dict[str, int] = {}

    def emit(self, insn: Insn) -> "Asm":
        self.insns.append(insn)
        return self

    def label(self, name: str) -> None:
        if name in self.labels:
            raise ValueError(f"label {name} defined twice")
        self.labels[name] = len(self.insns)

    # -- ALU ------------------------------------------------------------------------------
    def mov(self, dst: int, src: int) -> "Asm":
        return self.emit(Insn(ALU64 | MOV | X, dst, src))

    def movi(self, dst: int, imm: int) -> "Asm":
        """dst = imm (sign-extended 32-bit; larger values go through ld_imm64)."""
        if -(1 << 31) <= imm < (1 << 31):
            return self.emit(Insn(ALU64 | MOV | K, dst, 0, 0, imm))
        return self.ld_imm64(dst, imm)

    def alu(self, op: int, dst: int, src: int) -> "Asm":
        return self.emit(Insn(ALU64 | op | X, dst, src))

    def alui(self, op: int, dst: int, imm: int) -> "Asm":
        if not -(1 << 31) <= imm < (1 << 31):
            raise ValueError(f"immediate {imm} needs 64 bits")
        return self.emit(Insn(ALU64 | op | K, dst, 0, 0, imm))

    def ld_imm64(self, dst: int, value: int) -> "Asm":
        value &= (1 << 64) - 1
        self.emit(Insn(LD | DW | IMM, dst, 0, 0, value & 0xFFFFFFFF))
        return self.emit(Insn(0, 0, 0, 0, value >> 32))

    def ld_map(self, dst: int, map_name: str) -> "Asm":
        self.emit(Insn(LD | DW | IMM, dst, PSEUDO_MAP_FD, 0, 0, map_name=map_name))
        return self.emit(Insn(0))

    # -- memory ---------------------------------------------------------------------------
    def ldx(self, size: int, dst: int, src: int, off: int) -> "Asm":
        return self.emit(Insn(LDX | MEM | SIZE[size], dst, src, off))

    def stx(self, size: int, dst: int, off: int, src: int) -> "Asm":
        return self.emit(Insn(STX | MEM | SIZE[size], dst, src, off))

    def st(self, size: int, dst: int, off: int, imm: int) -> "Asm":
        return self.emit(Insn(ST | MEM | SIZE[size], dst, 0, off, imm))

    # -- control --------------------------------------------------------------------------
    def jmp(self, label: str) -> "Asm":
        return self.emit(Insn(JMP | JA, label=label))

    def jcc(self, op: int, dst: int, src: int, label: str) -> "Asm":
        return self.emit(Insn(JMP | op | X, dst, src, label=label))

    def jcci(self, op: int, dst: int, imm: int, label: str) -> "Asm":
        return self.emit(Insn(JMP | op | K, dst, 0, 0, imm, label=label))

    def call(self, helper: int) -> "Asm":
        return self.emit(Insn(JMP | CALL, imm=helper))

    def exit(self) -> "Asm":
        return self.emit(Insn(JMP | EXIT))

    # -- output ---------------------------------------------------------------------------
    def assemble(self) -> list[Insn]:
        """Resolve labels (jump offsets count instructions after the jump)."""
        out = []
        for i, insn in enumerate(self.insns):
            if insn.label is not None:
                if insn.label not in self.labels:
                    raise ValueError(f"undefined label {insn.label}")
                off = self.labels[insn.label] - i - 1
                if not -(1 << 15) <= off < (1 << 15):
                    raise ValueError("jump too far")
                insn = Insn(insn.code, insn.dst, insn.src, off, insn.imm)
            out.append(insn)
        return out


def encode(insns: list[Insn], map_fds: dict[str, int] | None = None) -> bytes:
    """The program's bytes; ld_imm64 of a map gets that map's fd."""
    out = bytearray()
    for insn in insns:
        if insn.map_name is not None:
            if map_fds is None or insn.map_name not in map_fds:
                raise ValueError(f"no fd for map {insn.map_name}")
            insn = Insn(insn.code, insn.dst, insn.src, insn.off, map_fds[insn.map_name])
        out += insn.encode()
    return bytes(out)


def to_wire(insns: list[Insn]) -> list[list]:
    """JSON-able form (the worker receives programs as data)."""
    return [[i.code, i.dst, i.src, i.off, i.imm, i.map_name] for i in insns]


def from_wire(rows: list) -> list[Insn]:
    out = []
    for row in rows:
        code, dst, src, off, imm, map_name = row
        for v, lo, hi in ((code, 0, 255), (dst, 0, 15), (src, 0, 15), (off, -(1 << 15), (1 << 15) - 1),
                          (imm, -(1 << 32), (1 << 32) - 1)):
            if not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"bad instruction field {v!r}")
        if map_name is not None and not isinstance(map_name, str):
            raise ValueError("bad map name")
        out.append(Insn(code, dst, src, off, imm, map_name=map_name))
    return out
