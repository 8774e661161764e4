"""Classify the live bytes at a kernel code address: kprobe breakpoint, optimized-kprobe
jump, ftrace call or idle NOP, or plain code.  Pure: bytes in, a Site out.

x86_64:  ``cc``             int3 (a kprobe's breakpoint -- or a debugger's, or padding)
         ``e9 rel32``       jmp: an optimized kprobe when it lands in a kprobe insn page
                            (``kprobe_optinsn_page [__builtin__kprobes]``), else a static
                            branch or other patch
         ``e8 rel32``       call: an ftrace site when it calls ftrace_caller,
                            ftrace_regs_caller or an ftrace trampoline
         ``0f 1f 44 00 00`` the 5-byte NOP ftrace leaves at idle fentry sites
arm64:   ``0xd4200080``     brk #4 (BRK64_OPCODE_KPROBES)
         the patchable function entry (``-fpatchable-function-entry=2``, DYNAMIC_FTRACE_WITH_REGS
         or _ARGS), as a running 6.1 kernel really holds it (read through /proc/kcore):
           compiler      ``nop; nop``
           after boot    ``mov x9, x30; nop``       ftrace_init_nop() saved LR in x9: idle
           tracing       ``mov x9, x30; bl ftrace_caller``   the call slot is func+4 (rec->ip)
           kprobe        ``brk #4; <nop | bl ftrace_caller>``   the probe replaces func+0;
                         arm64 has no KPROBES_ON_FTRACE (a probe on func+4 is refused) and no
                         optprobes: a kprobe is always a brk, never an ftrace user or a jump.
         A module's call goes through its ftrace PLT (``adrp x16; add x16; br x16``).
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)
from gdb_toolkit.common.record import record

X86_NOP5 = bytes.fromhex("0f1f440000")
X86_ENDBR64 = bytes.fromhex("f30f1efa")
# IBT's sealed ENDBR64: at boot apply_seal_endbr() overwrites the ENDBR64 of a function nothing
# calls indirectly with a 4-byte NOP (gen_endbr_poison(): "osp nopl (%rax)" 66 0f 1f 00 in 6.2-
# 6.12 -- Debian's 6.12 seals vfs_write so --, "nopl -0x2a(%rax)" 0f 1f 40 d6 in later kernels);
# the kernel still counts it as one (is_endbr(): a probe on such a function lands at +4, where
# its ftrace site is)
X86_ENDBR_POISONS = (bytes.fromhex("660f1f00"), bytes.fromhex("0f1f40d6"))
ARM64_BRK_KPROBE = 0xD4200080
ARM64_BRK_MASK = 0xFFE0001F
ARM64_BRK_BASE = 0xD4200000
ARM64_NOP = 0xD503201F
ARM64_MOV_X9_LR = 0xAA1E03E9
ARM64_BTI_C = 0xD503245F
ARM64_BL_MASK, ARM64_BL = 0xFC000000, 0x94000000
FTRACE_TARGETS = ("ftrace_caller", "ftrace_regs_caller", "ftrace_trampoline", "ftrace_graph_caller",
                  "ftrace_common", "ftrace_stub", "arch_ftrace_ops_list_func",
                  "ftrace_ops_list_func")

INT3, OPTIMIZED, FTRACE_CALL, FTRACE_NOP = "int3", "optimized", "ftrace-call", "ftrace-nop"
BRK, JMP, CALL, PLAIN, OTHER_BRK = "brk", "jmp", "call", "plain", "brk-other"


@record
class Site:
    address: int
    arch: str
    kind: str                 # int3 optimized ftrace-call ftrace-nop brk jmp call plain brk-other
    length: int               # bytes the patch covers
    patched: bool             # the bytes differ from what the compiler emitted
    target: int | None = None
    target_symbol: str | None = None
    description: str = ""

    @property
    def is_kprobe_like(self) -> bool:
        return self.kind in (INT3, OPTIMIZED, BRK)


def _rel32(code: bytes, address: int) -> int:
    return (address + 5 + struct.unpack_from("<i", code, 1)[0]) & ((1 << 64) - 1)


def is_ftrace_target(symbol: str | None) -> bool:
    if not symbol:
        return False
    name = symbol.split("+")[0].split()[0]
    return (name in FTRACE_TARGETS or "__builtin__ftrace" in symbol
            or name.startswith("bpf_trampoline_"))     # ftrace direct call: BPF fentry/fexit


def is_kprobe_insn_page(symbol: str | None) -> bool:
    return bool(symbol) and ("__builtin__kprobes" in symbol or "kprobe_optinsn_page" in symbol
                             or "kprobe_insn_page" in symbol)


def classify(code: bytes, address: int, arch: str = "x86_64", symbolize=None,
             code_at=None) -> Site:
    """What the bytes at *address* are.  *symbolize(addr)* -> "name+0x.. [mod]" or None;
    *code_at(addr)* -> bytes (arm64: to follow a module's ftrace PLT), optional."""
    sym = symbolize or (lambda a: None)
    if arch == "aarch64":
        return _classify_arm64(code, address, sym, code_at)
    if not code:
        return Site(address, arch, PLAIN, 0, False, description="no bytes")
    if code[0] == 0xCC:
        return Site(address, arch, INT3, 1, True, description="int3 breakpoint")
    if code[0] == 0xE9 and len(code) >= 5:
        t = _rel32(code, address)
        s = sym(t)
        if is_kprobe_insn_page(s):
            return Site(address, arch, OPTIMIZED, 5, True, t, s,
                        "jmp to an optimized-kprobe detour buffer")
        return Site(address, arch, JMP, 5, False, t, s, "jmp rel32 (static branch or code)")
    if code[0] == 0xE8 and len(code) >= 5:
        t = _rel32(code, address)
        s = sym(t)
        if is_ftrace_target(s):
            return Site(address, arch, FTRACE_CALL, 5, True, t, s, "call into ftrace")
        if s and s.split("+")[0] == "__fentry__":
            return Site(address, arch, CALL, 5, False, t, s, "unpatched call __fentry__")
        return Site(address, arch, CALL, 5, False, t, s, "call rel32")
    if code[:5] == X86_NOP5:
        return Site(address, arch, FTRACE_NOP, 5, False, description="5-byte NOP (idle ftrace site)")
    return Site(address, arch, PLAIN, 0, False, description="ordinary instruction")


def arm64_bl_target(word: int, address: int) -> int | None:
    """Where ``bl`` at *address* goes (None if *word* is not a bl)."""
    if (word & ARM64_BL_MASK) != ARM64_BL:
        return None
    imm = word & 0x03FFFFFF
    if imm & 0x02000000:
        imm -= 1 << 26
    return (address + imm * 4) & ((1 << 64) - 1)


def arm64_plt_target(code: bytes, address: int) -> int | None:
    """The destination of an arm64 module PLT / veneer at *address*: ``adrp x16, P; add x16,
    x16, #lo; br x16`` (the kernel's struct plt_entry, also its ftrace PLTs).  None otherwise."""
    if len(code) < 12:
        return None
    adrp, add, br = struct.unpack_from("<III", code, 0)
    if (adrp & 0x9F00001F) != 0x90000010 or (add & 0xFFC003FF) != 0x91000210 \
            or br != 0xD61F0200:
        return None
    immlo, immhi = (adrp >> 29) & 3, (adrp >> 5) & 0x7FFFF
    imm = (immhi << 2) | immlo
    if imm & (1 << 20):
        imm -= 1 << 21
    page = (address & ~0xFFF) + (imm << 12)
    return (page + ((add >> 10) & 0xFFF)) & ((1 << 64) - 1)


def _arm64_call(w: int, address: int, sym, code_at=None) -> tuple[int, str | None, bool]:
    """(target, its symbol, is an ftrace entry) of ``bl`` word *w* at *address*; a target with
    no symbol is followed once through a module PLT when *code_at(addr)* can read it."""
    t = arm64_bl_target(w, address)
    s = sym(t)
    if not is_ftrace_target(s) and code_at is not None:
        try:
            final = arm64_plt_target(code_at(t), t)
        except Exception:       # noqa: BLE001 -- unreadable: keep the direct answer
            final = None
        if final is not None and is_ftrace_target(sym(final)):
            return final, f"{sym(final)} via the module PLT at 0x{t:x}", True
    return t, s, is_ftrace_target(s)


def _classify_arm64(code: bytes, address: int, sym, code_at=None) -> Site:
    if len(code) < 4:
        return Site(address, "aarch64", PLAIN, 0, False, description="no bytes")
    w0 = struct.unpack_from("<I", code, 0)[0]
    w1 = struct.unpack_from("<I", code, 4)[0] if len(code) >= 8 else None
    if w0 == ARM64_BRK_KPROBE:
        return Site(address, "aarch64", BRK, 4, True, description="brk #4 (kprobe breakpoint)")
    if (w0 & ARM64_BRK_MASK) == ARM64_BRK_BASE:
        imm = (w0 >> 5) & 0xFFFF
        return Site(address, "aarch64", OTHER_BRK, 4, True,
                    description=f"brk #{imm:#x} (not a kprobe: BUG/WARN, kgdb or uprobe)")
    if w0 == ARM64_MOV_X9_LR and w1 is not None and arm64_bl_target(w1, address + 4) is not None:
        t, s, ftrace = _arm64_call(w1, address + 4, sym, code_at)
        kind = FTRACE_CALL if ftrace else CALL
        return Site(address, "aarch64", kind, 8, ftrace, t, s,
                    "mov x9, x30; bl " + (s or hex(t)) +
                    (" (ftrace call at +4 of the patchable entry)" if ftrace else ""))
    if w0 == ARM64_MOV_X9_LR and w1 == ARM64_NOP:
        return Site(address, "aarch64", FTRACE_NOP, 8, False,
                    description="mov x9, x30; nop (idle patchable entry: ftrace saved LR, "
                                "the call slot at +4 is a NOP)")
    if w0 == ARM64_NOP and w1 == ARM64_NOP:
        return Site(address, "aarch64", FTRACE_NOP, 8, False,
                    description="two NOPs (the compiler's patchable entry, not initialised by "
                                "ftrace)")
    if arm64_bl_target(w0, address) is not None:
        t, s, ftrace = _arm64_call(w0, address, sym, code_at)
        if ftrace:      # the call slot itself (func+4): mov x9, x30 is just before it
            return Site(address, "aarch64", FTRACE_CALL, 4, True, t, s, "bl " + s + " (ftrace call)")
    return Site(address, "aarch64", PLAIN, 0, False, description="ordinary instruction")


# -- the arm64 patchable function entry, as ftrace-site explains it -------------------------

IDLE_ENTRY, TRACED_ENTRY, UNINIT_ENTRY, NO_ENTRY = "idle", "traced", "uninitialised", "none"


@record
class Arm64Entry:
    """The two instructions of a function's patchable entry and what each slot holds now."""
    address: int              # func (+4 after BTI c)
    first: str                # mov-x9 | brk | nop | other
    call_slot: str            # nop | ftrace-call | call | other
    state: str                # idle | traced | uninitialised | none
    target: int | None = None
    target_symbol: str | None = None
    kprobe: bool = False      # a kprobe's brk #4 replaced the first instruction

    @property
    def call_slot_address(self) -> int:
        """ftrace's record address (rec->ip): the second instruction."""
        return self.address + 4

    def original(self) -> bytes | None:
        """The entry's bytes with ftrace idle and no kprobe: what tracing off and every probe
        removed leaves (``mov x9, x30; nop``; two NOPs if ftrace never initialised it)."""
        if self.state == UNINIT_ENTRY:
            return struct.pack("<II", ARM64_NOP, ARM64_NOP)
        if self.state in (IDLE_ENTRY, TRACED_ENTRY):
            return struct.pack("<II", ARM64_MOV_X9_LR, ARM64_NOP)
        return None


def arm64_entry(code: bytes, address: int, sym=None, code_at=None) -> Arm64Entry:
    """Read the patchable entry at *address* (8+ bytes of *code*).

    ``brk #4`` in the first slot is a kprobe over ``mov x9, x30`` when the second slot is the
    NOP or an ftrace call (the pair is unmistakably a patchable entry)."""
    sym = sym or (lambda a: None)
    if len(code) < 8:
        return Arm64Entry(address, "other", "other", NO_ENTRY)
    w0, w1 = struct.unpack_from("<II", code, 0)
    first = {ARM64_MOV_X9_LR: "mov-x9", ARM64_BRK_KPROBE: "brk", ARM64_NOP: "nop"}.get(w0, "other")
    target = tsym = None
    if w1 == ARM64_NOP:
        slot = "nop"
    elif arm64_bl_target(w1, address + 4) is not None:
        target, tsym, ftrace = _arm64_call(w1, address + 4, sym, code_at)
        slot = "ftrace-call" if ftrace else "call"
    else:
        slot = "other"
    if first in ("mov-x9", "brk") and slot == "ftrace-call":
        state = TRACED_ENTRY
    elif first in ("mov-x9", "brk") and slot == "nop":
        state = IDLE_ENTRY
    elif first == "nop" and slot == "nop":
        state = UNINIT_ENTRY
    else:
        state = NO_ENTRY
    return Arm64Entry(address, first, slot, state, target, tsym,
                      kprobe=first == "brk" and state != NO_ENTRY)


def fentry_offset(code: bytes, arch: str = "x86_64") -> int:
    """Offset of the ftrace site from a function's start (after ENDBR64, a sealed one / BTI c)."""
    if arch == "aarch64":
        return 4 if len(code) >= 4 and struct.unpack_from("<I", code)[0] == ARM64_BTI_C else 0
    return 4 if code[:4] == X86_ENDBR64 or code[:4] in X86_ENDBR_POISONS else 0


def ftrace_nop(arch: str = "x86_64") -> bytes:
    """What an idle ftrace site holds on a running kernel: x86_64's 5-byte NOP (the compiler's
    call __fentry__ replaced at boot); arm64's whole patchable entry ``mov x9, x30; nop`` (the
    compiler's two NOPs, the first turned into ``mov x9, x30`` by ftrace_init_nop())."""
    if arch == "aarch64":
        return struct.pack("<II", ARM64_MOV_X9_LR, ARM64_NOP)
    return X86_NOP5


ARM64_KPROBE_NOTE = ("arm64: every kprobe is a brk #0x4 breakpoint; there are no optimized "
                     "(jump) kprobes and kprobes do not use ftrace (no KPROBES_ON_FTRACE: the "
                     "kernel refuses a probe on a traced function's call slot at +4)")


def kprobe_breakpoint(arch: str = "x86_64") -> bytes:
    return struct.pack("<I", ARM64_BRK_KPROBE) if arch == "aarch64" else b"\xcc"


def arm64_entry_notes(data: bytes, start: int, symbolize, kprobe_addrs: set[int] | None = None,
                      code_at=None, originals: dict[int, bytes] | None = None) -> dict[int, str]:
    """kdis notes for the patchable entries in *data* (read at *start*): address -> note.

    A patchable entry starts where a function starts (or 4 bytes later after ``bti c``); its
    first slot holds ftrace's ``mov x9, x30`` (or a kprobe's brk over it), its second the call
    slot (NOP idle, ``bl ftrace_caller`` traced).  Only an entry ftrace initialised is one:
    two NOPs at a function's start on a running kernel are the function's own (ftrace makes
    every entry it records ``mov x9, x30`` at boot or module load; an assembly routine's
    alternative NOPs look the same).  *originals*: address -> the instruction a kprobe's brk
    replaced (p->opcode), so a brk over ``bti c`` or a NOP is not taken for one over
    ``mov x9, x30``."""
    notes: dict[int, str] = {}
    over: set[int] = set()
    if originals:
        buf = bytearray(data)
        for a, word in originals.items():
            o = a - start
            if 0 <= o <= len(buf) - 4 and len(word) >= 4 and \
                    struct.unpack_from("<I", buf, o)[0] == ARM64_BRK_KPROBE:
                buf[o:o + 4] = word[:4]
                over.add(a)
        data = bytes(buf)
    for off in range(0, len(data) - 7, 4):
        addr = start + off
        name = symbolize(addr) or ""
        word = struct.unpack_from("<I", data, off)[0]
        at_start = name and "+" not in name.split(" ")[0]
        after_bti = name.split(" ")[0].endswith("+0x4") and off >= 4 and \
            struct.unpack_from("<I", data, off - 4)[0] == ARM64_BTI_C
        if not (at_start or after_bti) or word == ARM64_BTI_C:
            continue
        e = arm64_entry(data[off:off + 8], addr, symbolize, code_at)
        if e.state in (NO_ENTRY, UNINIT_ENTRY):
            continue
        if addr in over:            # p->opcode was ftrace's mov x9, x30
            first = "kprobe breakpoint over the patchable entry's mov x9, x30"
        elif e.first == "brk":
            if kprobe_addrs is None:
                first = "brk #0x4 (kprobes/list unreadable) over the patchable entry's mov x9, x30"
            elif addr in kprobe_addrs:
                first = "kprobe breakpoint over the patchable entry's mov x9, x30"
            else:
                first = "brk #0x4 but no kprobe listed here (over the patchable entry)"
        else:
            first = "patchable entry: ftrace's mov x9, x30 (saves LR)"
        notes[addr] = first
        if e.call_slot == "nop":
            notes[addr + 4] = "idle ftrace site (NOP)"
        else:
            via = " via the module's ftrace PLT" if "module PLT" in (e.target_symbol or "") else ""
            notes[addr + 4] = f"ftrace call{via} (function tracer / other ftrace user)"
    return notes
