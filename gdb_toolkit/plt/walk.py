"""The PLT walkthrough: call site -> stub -> GOT slot -> target, and what the first call
does differently (lazy stub, .plt[0], GOT[1]/GOT[2], the resolver) from later calls."""
from dataclasses import dataclass, field
from collections.abc import Callable   # not typing: its import costs ~3 ms of the first call

from gdb_toolkit.common.disasm import Insn, disassemble
from gdb_toolkit.plt.elf_model import ObjectModel, SlotSpec
from gdb_toolkit.plt.slots import AddressSpace, LoadedObject, SlotRow
from gdb_toolkit.plt.stubs import Stub, direct_target, is_indirect_call, is_indirect_jmp, rip_target

Reader = Callable[[int, int], "bytes | None"]
MAX_SCAN = 8 << 20


@dataclass
class CallSite:
    address: int          # link-time
    function: str         # main+23, or .text+0x40 when stripped
    insn: str
    via: str              # "stub" (call puts@plt) or "got" (-fno-plt: call *GOT(%rip))


@dataclass
class Hop:
    step: str
    address: int
    where: str
    code: list[str]
    note: str = ""


@dataclass
class LiveWrite:
    writer: str               # function that wrote the slot, e.g. _dl_fixup
    writer_object: str
    pc: int
    backtrace: list[str]
    old: int
    new: int
    target: str
    writes: int               # watchpoint hits needed (a lazy-stub rebias counts too)


@dataclass
class WalkReport:
    symbol: str
    object: str
    mode: str
    arch: str
    binding: str
    slot: int
    slot_type: str
    state: str
    value: int
    target: str
    hops: list[Hop] = field(default_factory=list)
    first_call: list[str] = field(default_factory=list)
    later_calls: list[str] = field(default_factory=list)
    live: LiveWrite | None = None
    notes: list[str] = field(default_factory=list)


def function_name(model: ObjectModel, addr: int) -> str:
    hit = model.index.lookup(addr)
    if hit:
        return hit.text()
    sec = model.section_of(addr)
    return f"{sec}+0x{addr - model.sections[sec].addr:x}" if sec else f"0x{addr:x}"


def function_range(model: ObjectModel, addr: int) -> tuple[int, int] | None:
    hit = model.index.lookup(addr)
    if not hit:
        return None
    for s in model.index.aliases(addr - hit.offset):
        if s.size:
            return (s.value, s.value + s.size)
    return None


def scan_calls(insns: list[Insn], arch: str, stub_addrs: set[int], slot: int) -> list[tuple[Insn, str]]:
    """Instructions that call/jump to one of *stub_addrs* or through *slot* directly."""
    out = []
    if arch == "x86_64":
        for ins in insns:
            t = direct_target(ins)
            if t is not None and t in stub_addrs:
                out.append((ins, "stub"))
            elif (is_indirect_call(ins) or is_indirect_jmp(ins)) and rip_target(ins) == slot:
                out.append((ins, "got"))
        return out
    pages: dict[str, int] = {}
    loaded: dict[str, int] = {}
    import re

    for ins in insns:
        t = direct_target(ins)
        if t is not None and t in stub_addrs:
            out.append((ins, "stub"))
            continue
        if ins.mnemonic == "adrp":
            reg, _, imm = ins.op_str.partition(", ")
            try:
                pages[reg] = int(imm.lstrip("#"), 0)
            except ValueError:
                pass
        elif ins.mnemonic == "ldr":
            m = re.match(r"^(x\d+), \[(x\d+)(?:, #(-?0x[0-9a-f]+|-?\d+))?\]$", ins.op_str)
            if m and m.group(2) in pages:
                loaded[m.group(1)] = pages[m.group(2)] + (int(m.group(3), 0) if m.group(3) else 0)
        elif ins.mnemonic in ("blr", "br") and loaded.get(ins.op_str.strip()) == slot:
            out.append((ins, "got"))
    return out


def find_call_site(model: ObjectModel, stubs: list[Stub], spec: SlotSpec,
                   around: int | None = None) -> CallSite | None:
    """A call of the symbol in the function containing *around* (link-time), else the
    first one in .text."""
    targets = {s.address for s in stubs if s.slot == spec.address and s.kind != "lazy"}
    ranges = []
    if around is not None:
        fr = function_range(model, around)
        if fr:
            ranges.append(fr)
    text = model.sections.get(".text")
    if text:
        ranges.append((text.addr, text.addr + min(text.size, MAX_SCAN)))
    for lo, hi in ranges:
        code = model.read(lo, hi - lo)
        if not code:
            continue
        hits = scan_calls(disassemble(code, lo, model.arch), model.arch, targets, spec.address)
        if hits:
            ins, via = hits[0]
            return CallSite(ins.address, function_name(model, ins.address), ins.text, via)
    return None


def _code(model: ObjectModel, link_addr: int, bias: int, size: int, read: Reader | None,
          count: int = 0) -> list[str]:
    data = read(link_addr + bias, size) if read else None
    if data is None:
        data = model.read(link_addr, size)
    if not data:
        return []
    return [f"0x{i.address:x}: {i.text}" for i in disassemble(data, link_addr + bias, model.arch, count)]


def build_walk(obj: LoadedObject, spec: SlotSpec, row: SlotRow, stubs: list[Stub], mode: str,
               call: CallSite | None, space: AddressSpace | None, read: Reader | None,
               got12: tuple[int, int] | None) -> WalkReport:
    """Every hop with its address and disassembly, plus the first-call/later-call story."""
    m, b = obj.model, obj.bias
    rep = WalkReport(spec.display, m.name, mode, m.arch, m.binding, spec.address + b, spec.kind,
                     row.state, row.value, row.target)
    call_stubs = [s for s in stubs if s.slot == spec.address and s.kind != "lazy"]
    lazy = [s for s in stubs if s.slot == spec.address and s.kind == "lazy"]
    plt0 = next((s for s in stubs if s.kind == "plt0"), None)
    if call is not None:
        rep.hops.append(Hop("call site", call.address + b, call.function,
                            _code(m, call.address, b, 16, read, 1),
                            "calls the PLT stub" if call.via == "stub" else
                            "calls through the GOT slot directly (-fno-plt: no stub)"))
    else:
        rep.notes.append(f"no call of {spec.symbol} found in {m.name}'s .text "
                         f"(called only through a function pointer, or not at all)")
    stub = None
    if call_stubs and (call is None or call.via == "stub"):
        stub = call_stubs[0]
        rep.hops.append(Hop("stub", stub.address + b, f"{spec.symbol}@plt ({stub.section})",
                            _code(m, stub.address, b, stub.size, read),
                            "loads the GOT slot and jumps to what it holds"))
    rep.hops.append(Hop("GOT slot", spec.address + b, f"{m.section_of(spec.address)} ({spec.rtype})",
                        [f"0x{spec.address + b:x}: 0x{row.value:x}"], f"{row.state}: {row.target}"))
    lazy_entry = None
    if row.state == "unresolved" or (mode == "file" and row.state == "unresolved"):
        lazy_entry = spec.file_value
    elif spec.kind == "JUMP_SLOT" and not m.bind_now and spec.file_value:
        lazy_entry = spec.file_value
    if lazy_entry is not None:
        lz = lazy[0] if lazy else None
        if lz is not None:
            rep.hops.append(Hop("lazy stub", lz.address + b, f".plt entry {lz.reloc_index}",
                                _code(m, lz.address, b, lz.size, read),
                                "first call only: pushes the relocation index, jumps to .plt[0]"))
        elif plt0 is None or lazy_entry != plt0.address:
            rep.hops.append(Hop("lazy stub", lazy_entry + b, "the stub's second half",
                                _code(m, lazy_entry, b, 16, read, 2),
                                "first call only: pushes the relocation index, jumps to .plt[0]"))
        if plt0 is not None:
            got = m.got_plt_reserved()
            note = ""
            if got is not None and got12 is not None:
                g1, g2 = got12
                g2text = space.describe(g2)[0] if (space and g2) else f"0x{g2:x}"
                note = (f"GOT[1]=0x{g1:x} (this object's link_map), "
                        f"GOT[2]=0x{g2:x} ({g2text})")
            rep.hops.append(Hop(".plt[0]", plt0.address + b, "resolver trampoline",
                                _code(m, plt0.address, b, plt0.size, read), note))
    if row.state in ("resolved", "bound-at-load") and row.value and spec.kind not in ("TPOFF64",):
        tobj = space.find(row.value) if space else None
        if tobj is not None:
            rep.hops.append(Hop("target", row.value, row.target,
                                _code(tobj.model, row.value - tobj.bias, tobj.bias, 16, read, 3)))
    _story(rep, m, spec, row, stub, call, lazy, plt0, got12, space)
    return rep


def _story(rep: WalkReport, m: ObjectModel, spec: SlotSpec, row: SlotRow, stub: Stub | None,
           call: CallSite | None, lazy: list[Stub], plt0: Stub | None, got12, space) -> None:
    name = spec.symbol
    slot = rep.slot
    x86 = m.arch == "x86_64"
    how_call = (f"the call at {call.function}" if call else f"a call of {name}@plt")
    resolver = "the resolver in GOT[2] (_dl_runtime_resolve_xsave(c) on x86_64, _dl_runtime_resolve on aarch64)"
    if got12 and got12[1] and space is not None:
        resolver = f"GOT[2] = {space.describe(got12[1])[0]}"
    if spec.kind == "JUMP_SLOT" and not m.bind_now:
        if x86:
            rep.first_call = [
                f"1. {how_call} enters {name}@plt, which does jmp *0x{slot:x} (the GOT slot).",
                "2. The slot still holds its file value + load bias: the lazy stub, which pushes "
                f"relocation index {spec.index} (entry {spec.index} of .rela.plt = {spec.display}) and jumps to .plt[0].",
                "3. .plt[0] pushes GOT[1] (this object's link_map) and jumps through "
                f"GOT[2]: {resolver}.",
                f"4. _dl_fixup(link_map, {spec.index}) looks {spec.display} up in the loaded objects, "
                f"writes its address into 0x{slot:x} (unless LD_BIND_NOT), then jumps to it.",
            ]
        else:
            rep.first_call = [
                f"1. {how_call} enters {name}@plt: adrp x16 / ldr x17, [x16, #off] loads the GOT slot "
                f"0x{slot:x}, add x16 makes x16 = &slot, br x17.",
                "2. The slot still holds .plt[0] (+ load bias): .plt[0] saves x16/x30, loads GOT[2] "
                f"and branches to it: {resolver}.",
                "3. _dl_runtime_resolve turns x16 (&slot) into the relocation index "
                f"({spec.index}) and calls _dl_fixup(link_map from GOT[1], index).",
                f"4. _dl_fixup writes {name}'s address into 0x{slot:x} and the trampoline branches to it.",
            ]
        rep.later_calls = [f"{how_call} -> {name}@plt -> jmp through 0x{slot:x} -> {name} directly "
                           "(one indirect jump; ld.so is not involved again)."]
    elif spec.kind == "JUMP_SLOT":
        rep.first_call = [f"ld.so bound 0x{slot:x} before the program started (BIND_NOW"
                          f"{', full RELRO: the slot is read-only' if m.in_relro(spec.address) else ''}); "
                          "the first call is like every other call."]
        rep.later_calls = [f"{how_call} -> {name}@plt -> jmp through 0x{slot:x} -> {name}."]
    else:
        via = "calls through the slot itself (-fno-plt)" if call and call.via == "got" else \
            f"goes through {stub.section} ({name}@plt)" if stub else "reads the slot"
        what = "the ifunc resolver's choice" if spec.kind == "IRELATIVE" else f"{name}'s address"
        rep.first_call = [f"{spec.kind}: ld.so wrote {what} into 0x{slot:x} at load time, before main; "
                          f"the code {via}, so there is no lazy resolution."]
        rep.later_calls = [f"the same: every call reads 0x{slot:x} and goes straight to {name}."]
        if row.state == "null":
            rep.first_call = [f"{spec.kind}: {name} is a weak symbol no loaded object defines: ld.so "
                              f"wrote 0 into 0x{slot:x} at load time; code must test it before calling."]
            rep.later_calls = [f"the slot stays 0 unless an object defining {name} is loaded."]
