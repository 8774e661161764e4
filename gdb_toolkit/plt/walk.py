"""The PLT walkthrough: call site -> stub -> GOT slot -> target, and what the first call
does differently (lazy stub, .plt[0], GOT[1]/GOT[2], the resolver) from later calls."""
import functools
import re
from collections.abc import Callable   # not typing: its import costs ~3 ms of the first call

from gdb_toolkit.common.disasm import Insn, disassemble
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.location import Location  # noqa: F401 (the contract's one location record)
from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.plt.elf_model import ObjectModel, SlotSpec
from gdb_toolkit.plt.reloc_types import TLS_KINDS
from gdb_toolkit.plt.slots import AddressSpace, LoadedObject, SlotRow
from gdb_toolkit.plt.stubs import Stub, direct_target, is_indirect_call, is_indirect_jmp, mem_target

Reader = Callable[[int, int], "bytes | None"]
MAX_SCAN = 64 << 20      # bytes of .text scanned (by pattern) for a call site


@record
class CallSite:
    address: int          # link-time
    function: str         # main+23, or .text+0x40 when stripped
    insn: str
    via: str              # "stub" (call puts@plt) or "got" (-fno-plt: call *GOT(%rip))


@record
class Hop:
    step: str
    address: int
    location: Location
    section: str | None       # .text, .plt, .plt.sec, .got.plt ...
    code: list[str]
    note: str = ""
    #: the terminal's words for where the hop is ("puts@plt (.plt)", "resolver trampoline"):
    #: the JSON says it as location + section
    where: str = field(default="", metadata={"json_skip": True})


@record
class LiveWrite:
    location: Location        # the writing instruction: symbol (e.g. _dl_fixup), object, file, line
    backtrace: list[Location]
    old: int
    new: int
    target: str
    writes: int               # watchpoint hits needed (a lazy-stub rebias counts too)

    #: the slot's contents before and after: "0x..." in --json
    __json_hex__ = ("old", "new")


# JSON key (contract v5, docs/json.md): counts end in `_count`
json_keys(LiveWrite, {"writes": "write_count"})


@record
class WalkReport:
    symbol: str
    object: str
    mode: str
    arch: str
    binding: str
    slot_address: int
    kind: str                 # JUMP_SLOT, GLOB_DAT, IRELATIVE ... (got's kind)
    reloc_type: str           # R_X86_64_JUMP_SLOT ... (got's reloc_type, readelf's name)
    state: str
    value: int
    target: str
    hops: list[Hop] = field(default_factory=list)
    first_call: list[str] = field(default_factory=list)
    later_calls: list[str] = field(default_factory=list)
    live: LiveWrite | None = None
    notes: list[str] = field(default_factory=list)
    binding_reason: str = ""
    chosen_because: str = ""                    # why this slot (several objects/versions import it)
    candidates: list[dict] = field(default_factory=list)   # the other slots of that name
    symbol_raw: str | None = None               # the raw (mangled) name when it differs

    #: the slot's contents: "0x..." in --json, like got's value
    __json_hex__ = ("value",)


@functools.cache
def _mangled():
    """C++ mangled names in text, compiled when a sentence holds "_Z" (a C program's never)."""
    return re.compile(r"(?<![A-Za-z0-9_.$])_Z[A-Za-z0-9_.$]+")


def mangled_names(rep: WalkReport) -> set[str]:
    """Every C++ mangled name in the report's sentences (the symbol, the caller, targets)."""
    texts = [rep.symbol, rep.target, *rep.first_call, *rep.later_calls, *rep.notes, rep.chosen_because]
    texts += [t for h in rep.hops for t in (h.where, h.note, h.location.symbol)]
    if rep.live is not None:
        texts += [rep.live.target, *(f.symbol for f in (rep.live.location, *rep.live.backtrace))]
    return {m.group(0) for t in texts if t and "_Z" in t for m in _mangled().finditer(t)}


def demangle_walk(rep: WalkReport, demangled: dict[str, str]) -> None:
    """Show the walk's C++ names demangled (the symbol's raw name kept in symbol_raw)."""
    from gdb_toolkit.plt.demangle import replacer

    fix = replacer(demangled)
    shown = fix(rep.symbol)
    if shown != rep.symbol:
        rep.symbol_raw, rep.symbol = rep.symbol, shown
    rep.target = fix(rep.target)
    rep.first_call = [fix(t) for t in rep.first_call]
    rep.later_calls = [fix(t) for t in rep.later_calls]
    rep.notes = [fix(t) for t in rep.notes]
    rep.chosen_because = fix(rep.chosen_because)
    for h in rep.hops:
        h.where, h.note, h.location.symbol = fix(h.where), fix(h.note), fix(h.location.symbol)
    for c in rep.candidates:
        c["symbol"] = fix(c["symbol"])
    if rep.live is not None:
        rep.live.target = fix(rep.live.target)
        for f in (rep.live.location, *rep.live.backtrace):
            f.symbol = fix(f.symbol)


def symbol_at(model: ObjectModel, addr: int, obj: str | None = None, bias: int = 0) -> Location:
    """The location of link-time *addr* in *model* (run-time address = addr + bias) by its
    symbol table; symbol and offset None when no symbol covers it."""
    from gdb_toolkit.common.names import escape_name

    hit = model.index.lookup(addr)
    return Location(addr + bias, escape_name(hit.name) if hit else None, hit.offset if hit else None,
                    object=obj or model.name)


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


def scan_calls(insns: list[Insn], arch: str, stub_addrs: set[int], slot: int,
               got_base: int | None = None) -> list[tuple[Insn, str]]:
    """Instructions that call/jump to one of *stub_addrs* or through *slot* directly."""
    out = []
    if arch in ("x86_64", "i386"):
        for ins in insns:
            t = direct_target(ins)
            if t is not None and t in stub_addrs:
                out.append((ins, "stub"))
            elif (is_indirect_call(ins) or is_indirect_jmp(ins)) and mem_target(ins, got_base) == slot:
                out.append((ins, "got"))
        return out
    pages: dict[str, int] = {}
    loaded: dict[str, int] = {}
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
            m = _ldr_x().match(ins.op_str)
            if m and m.group(2) in pages:
                loaded[m.group(1)] = pages[m.group(2)] + (int(m.group(3), 0) if m.group(3) else 0)
        elif ins.mnemonic in ("blr", "br") and loaded.get(ins.op_str.strip()) == slot:
            out.append((ins, "got"))
    return out


@functools.cache
def _ldr_x():
    """aarch64's ``ldr xN, [xM, #OFF]``, compiled when an aarch64 stub is walked."""
    return re.compile(r"^(x\d+), \[(x\d+)(?:, #(-?0x[0-9a-f]+|-?\d+))?\]$")


def _candidates(code: bytes, base: int, arch: str, stub_addrs: set[int], slot: int,
                got_base: int | None) -> list[int]:
    """Addresses in *code* whose bytes encode a call/jump to a stub or through the slot:
    found by byte pattern, so nothing is disassembled but the hits (a large or crafted
    .text costs a scan, not a disassembly)."""
    hits = []
    if arch in ("x86_64", "i386"):
        for m in _X86_REL.finditer(code):
            p = m.start()
            if p + 5 > len(code):
                break
            rel = int.from_bytes(code[p + 1:p + 5], "little", signed=True)
            t = (base + p + 5 + rel) & ((1 << 64) - 1 if arch == "x86_64" else 0xFFFFFFFF)
            if t in stub_addrs:
                hits.append(base + p)
        for m in _X86_IND.finditer(code):
            p = m.start()
            if p + 6 > len(code):
                break
            modrm = code[p + 1]
            disp = int.from_bytes(code[p + 2:p + 6], "little", signed=True)
            if arch == "x86_64" and modrm in (0x15, 0x25):
                t = base + p + 6 + disp
            elif arch == "i386" and modrm in (0x15, 0x25):
                t = disp & 0xFFFFFFFF
            elif arch == "i386" and modrm in (0x93, 0xA3) and got_base is not None:
                t = (got_base + disp) & 0xFFFFFFFF
            else:
                continue
            if t == slot:
                hits.append(base + p)
        return sorted(hits)
    if arch == "aarch64":
        bl, blr = _a64_calls()
        for m in bl.finditer(code):
            p = m.start() - 3
            if p % 4 or p < 0:
                continue
            w = int.from_bytes(code[p:p + 4], "little")
            imm = w & 0x3FFFFFF
            if imm & 0x2000000:
                imm -= 1 << 26
            if (base + p + 4 * imm) in stub_addrs:
                hits.append(base + p)
        for m in blr.finditer(code):
            p = m.start()
            if p % 4 == 0:
                hits.append(base + p)        # verified by decoding the adrp/ldr before it
        return sorted(hits)
    if arch == "arm":
        # Thumb-2 bl/blx (Debian's armhf code is Thumb): two halfwords 11110 S imm10, 11 J1 x J2 imm11
        for p in range(0, len(code) - 3, 2):
            h1 = int.from_bytes(code[p:p + 2], "little")
            h2 = int.from_bytes(code[p + 2:p + 4], "little")
            if h1 & 0xF800 != 0xF000 or h2 & 0xC000 != 0xC000:
                continue
            s_, j1, j2 = (h1 >> 10) & 1, (h2 >> 13) & 1, (h2 >> 11) & 1
            i1, i2 = 1 - (j1 ^ s_), 1 - (j2 ^ s_)
            imm = (s_ << 24) | (i1 << 23) | (i2 << 22) | ((h1 & 0x3FF) << 12) | ((h2 & 0x7FF) << 1)
            if s_:
                imm -= 1 << 25
            pc = base + p + 4
            blx = not h2 & 0x1000
            t = ((pc & ~3) + (imm & ~3) if blx else pc + imm) & 0xFFFFFFFF
            if t in stub_addrs:
                hits.append(base + p)
        for p in range(0, len(code) - 3, 4):
            if code[p + 3] & 0x0F in (0x0B, 0x0A):                  # bl / b <imm24>
                w = int.from_bytes(code[p:p + 4], "little")
                imm = w & 0xFFFFFF
                if imm & 0x800000:
                    imm -= 1 << 24
                if ((base + p + 8 + 4 * imm) & 0xFFFFFFFF) in stub_addrs:
                    hits.append(base + p)
    return hits


_X86_REL = re.compile(rb"[\xe8\xe9]", re.S)
_X86_IND = re.compile(rb"\xff[\x15\x25\x93\xa3]", re.S)


@functools.cache
def _a64_calls():
    """(bl/b, blr/br x16/x17) byte patterns, compiled when aarch64 code is scanned."""
    return (re.compile(rb"[\x94-\x97\x14-\x17]", re.S),
            re.compile(rb"[\x00\x20\x40\x60\x80\xa0\xc0\xe0][\x00-\x03][\x1f\x3f]\xd6", re.S))


def _verify(model: ObjectModel, addr: int, stub_addrs: set[int], slot: int,
            got_base: int | None) -> tuple[Insn, str] | None:
    """Decode the instruction(s) at a candidate: a real call/jump there, from an instruction
    boundary of its function when the symbol table says where that starts."""
    arch = model.arch
    if arch == "arm":       # Thumb or ARM: the pattern check is the decode (capstone runs in ARM mode)
        raw = model.read(addr, 4) or b""
        return Insn(addr, 4, raw, "bl", f"0x{min(stub_addrs):x}" if stub_addrs else "?"), "stub"
    lo = addr
    fr = function_range(model, addr) if arch in ("x86_64", "i386") else None
    if fr and fr[1] - fr[0] <= 1 << 16:
        lo = fr[0]
    elif arch == "aarch64":
        lo = max(addr - 16, 0)
    code = model.read(lo, addr - lo + 16)
    if not code:
        # the candidate ends its segment (a tail jump at the end of the last function before
        # .fini's page end): read up to the segment's end, not 16 bytes past the candidate
        seg = model._elf.segment_of(lo) if model._elf is not None else None
        end = seg.vaddr + seg.filesz if seg is not None else 0
        shortest = 4 if arch == "aarch64" else 5       # b/bl imm26; jmp/call rel32
        code = model.read(lo, end - lo) if addr + shortest <= end else None
        if not code:
            return None
    for ins, via in scan_calls(disassemble(code, lo, arch), arch, stub_addrs, slot, got_base):
        if ins.address == addr:
            return ins, via
    return None


def find_call_site(model: ObjectModel, stubs: list[Stub], spec: SlotSpec,
                   around: int | None = None) -> CallSite | None:
    """A call of the symbol in the function containing *around* (link-time), else the
    first one in .text."""
    targets = {s.address for s in stubs if s.slot == spec.address and s.kind != "lazy"}
    got_base = model.got_plt_reserved()
    ranges = []
    if around is not None:
        fr = function_range(model, around)
        if fr and fr[1] - fr[0] <= 1 << 20:
            ranges.append(fr)
    text = model.sections.get(".text")
    if text and text.type != 8:
        ranges.append((text.addr, text.addr + min(text.size, MAX_SCAN)))
    for lo, hi in ranges:
        try:
            seg = model._elf.segment_of(lo, hi - lo)
            if seg is None or lo - seg.vaddr + (hi - lo) > seg.filesz:
                continue
            code = model._elf._read(seg.offset + lo - seg.vaddr, hi - lo, "the code")
        except ToolkitError:
            continue
        for cand in _candidates(code, lo, model.arch, targets, spec.address, got_base):
            hit = _verify(model, cand, targets, spec.address, got_base)
            if hit:
                ins, via = hit
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
    binding = obj.binding.mode.replace("file-", "") if obj.binding else m.binding
    rep = WalkReport(spec.display, obj.name, mode, m.arch, binding, spec.address + b, spec.kind,
                     spec.rtype, row.state, row.value, row.target)
    if obj.binding is not None:
        rep.binding_reason = obj.binding.reason
    call_stubs = [s for s in stubs if s.slot == spec.address and s.kind != "lazy"]
    lazy = [s for s in stubs if s.slot == spec.address and s.kind == "lazy"]
    plt0 = next((s for s in stubs if s.kind == "plt0"), None)
    if call is not None:
        rep.hops.append(Hop("call site", call.address + b, symbol_at(m, call.address, obj.name, b),
                            m.section_of(call.address),
                            _code(m, call.address, b, 16, read, 1) if m.arch != "arm" else
                            [f"0x{call.address + b:x}: {call.insn} (Thumb bl/blx or ARM bl to the stub)"],
                            ("jumps to the PLT stub (a tail call)" if call.insn.startswith(("jmp", "b "))
                             else "calls the PLT stub") if call.via == "stub" else
                            "calls through the GOT slot directly (-fno-plt: no stub)", where=call.function))
    elif m._elf is not None and m._elf.no_section_headers:
        rep.notes.append(f"{m.name} has no section headers: its .text and PLT cannot be located, so no "
                         f"call site or stub is shown (the slot comes from the dynamic segment)")
    else:
        rep.notes.append(f"no call of {spec.symbol_text} found in {m.name}'s .text "
                         f"(called only through a function pointer, or not at all)")
    stub = None
    if call_stubs and (call is None or call.via == "stub"):
        stub = call_stubs[0]
        rep.hops.append(Hop("stub", stub.address + b, Location(stub.address + b, f"{spec.symbol_text}@plt", 0,
                                                               object=obj.name),
                            stub.section, _code(m, stub.address, b, stub.size, read),
                            "loads the GOT slot and jumps to what it holds",
                            where=f"{spec.symbol_text}@plt ({stub.section})"))
    got_section = m.section_of(spec.address)
    rep.hops.append(Hop("GOT slot", spec.address + b, Location(spec.address + b, None, None, object=obj.name),
                        got_section, [f"0x{spec.address + b:x}: 0x{row.value:x}"], f"{row.state}: {row.target}",
                        where=f"{got_section} ({spec.rtype})"))
    lazy_entry = None
    if row.state == "unresolved" or (mode == "file" and row.state == "unresolved"):
        lazy_entry = spec.file_value
    elif spec.kind == "JUMP_SLOT" and obj.lazy and spec.file_value:
        lazy_entry = spec.file_value
    if lazy_entry is not None:
        lz = lazy[0] if lazy else None
        when = (f"every call ({obj.no_write}: the slot is never written)" if obj.bind_not else "first call only")
        what = f"{when}: pushes the relocation {'offset' if m.arch == 'i386' else 'index'}, jumps to .plt[0]"
        if lz is not None:
            rep.hops.append(Hop("lazy stub", lz.address + b, Location(lz.address + b, None, None, object=obj.name),
                                lz.section, _code(m, lz.address, b, lz.size, read), what,
                                where=f".plt entry {lz.reloc_index}"))
        elif plt0 is None or lazy_entry != plt0.address:
            half = next((s for s in stubs if s.address <= lazy_entry < s.address + s.size), None)
            at = (Location(lazy_entry + b, f"{spec.symbol_text}@plt", lazy_entry - half.address,
                           object=obj.name) if half is not None and half.kind == "stub"
                  else Location(lazy_entry + b, None, None, object=obj.name))
            rep.hops.append(Hop("lazy stub", lazy_entry + b, at, m.section_of(lazy_entry),
                                _code(m, lazy_entry, b, 16, read, 2), what, where="the stub's second half"))
        if plt0 is not None:
            got = m.got_plt_reserved()
            note = ""
            if got is not None and got12 is not None and not obj.relocated and not any(got12):
                note = "GOT[1], GOT[2] not set yet: ld.so has not relocated this object"
            elif got is not None and got12 is not None:
                g1, g2 = got12
                g2text = space.describe(g2)[0] if (space and g2) else f"0x{g2:x}"
                note = (f"GOT[1]=0x{g1:x} (this object's link_map), "
                        f"GOT[2]=0x{g2:x} ({g2text})")
            rep.hops.append(Hop(".plt[0]", plt0.address + b, Location(plt0.address + b, None, None, object=obj.name),
                                plt0.section, _code(m, plt0.address, b, plt0.size, read), note,
                                where="resolver trampoline"))
    if row.state in ("resolved", "bound-at-load", "overwritten") and row.value and spec.kind not in TLS_KINDS:
        tobj = space.find(row.value) if space else None
        if tobj is not None:
            rep.hops.append(Hop("target", row.value, symbol_at(tobj.model, row.value - tobj.bias, tobj.name, tobj.bias),
                                tobj.model.section_of(row.value - tobj.bias),
                                _code(tobj.model, row.value - tobj.bias, tobj.bias, 16, read, 3), where=row.target))
    _story(rep, obj, spec, row, stub, call, lazy, plt0, got12, space)
    bad = _impossible_target(obj, spec, row, space)
    if bad:
        rep.notes.append(bad)
    return rep


def _impossible_target(obj: LoadedObject, spec: SlotSpec, row: SlotRow, space: AddressSpace | None) -> str | None:
    """A slot value ld.so never writes, so the story's "later calls go to NAME" is not what
    happens: an address in no loaded object, or in the slot's own object's PLT other than
    the slot's lazy stub (a jump back into the PLT).  'got --audit' says the rest."""
    if space is None or not row.value or row.state not in ("resolved", "bound-at-load", "overwritten") or \
            spec.kind not in ("JUMP_SLOT", "GLOB_DAT"):
        return None
    if space.find(row.value) is None:
        where = "inside no loaded object"
    else:
        holder = space.find(row.value)
        if holder is not obj or holder.model.section_of(row.value - holder.bias) not in (".plt", ".plt.sec"):
            return None
        if any(c.value + obj.bias == row.value for c in obj.model.canonical_plt.get(spec.symbol, ())):
            return None     # a non-PIE program's canonical PLT entry: the function's address here
        where = f"in {obj.name}'s own PLT ({row.target})"
    return (f"WARNING: the slot holds 0x{row.value:x}, {where}: ld.so never writes that for "
            f"{spec.display}, so the next call through it goes there, not to {spec.symbol_text} "
            f"(overwritten? 'got --audit' checks)")


def _story(rep: WalkReport, obj: LoadedObject, spec: SlotSpec, row: SlotRow, stub: Stub | None,
           call: CallSite | None, lazy: list[Stub], plt0: Stub | None, got12, space) -> None:
    m = obj.model
    name = spec.symbol_text
    slot = rep.slot_address
    how_call = (f"the call at {call.function}" if call else f"a call of {name}@plt")
    resolver = {"x86_64": "_dl_runtime_resolve_xsave(c)", "i386": "_dl_runtime_resolve",
                "aarch64": "_dl_runtime_resolve", "arm": "_dl_runtime_resolve"}.get(m.arch, "the resolver")
    resolver = f"the resolver in GOT[2] ({resolver})"
    if got12 and got12[1] and space is not None:
        resolver = f"GOT[2] = {space.describe(got12[1])[0]}"
    bind_not = obj.bind_not
    # an ifunc: ld.so calls its resolver and writes (and jumps to) the implementation it returns
    ifunc = row.ifunc if row.ifunc and row.ifunc.get("holds") == "implementation" else None
    impl = row.target.split(" (chosen by")[0] if ifunc else name      # "__strlen_avx2 in libc.so.6"
    chose = (f"calls the resolver of the ifunc {name} in {ifunc['object']}, " if ifunc else "")
    write = (f"does NOT write the slot ({obj.no_write}), then jumps to it" if bind_not else
             f"{chose}writes {'the implementation it returns (' + impl + ')' if ifunc else 'its address'} "
             f"into 0x{slot:x}, then jumps to it")
    if obj.no_write == "_dl_runtime_profile":
        write = ("calls the audit modules' la_pltenter (and la_pltexit on return), does NOT write the "
                 "slot (_dl_profile_fixup never does), then jumps to it")
    if spec.kind == "JUMP_SLOT" and obj.lazy:
        if m.arch in ("x86_64", "i386"):
            jmp = f"jmp *0x{slot:x}" + (" (%ebx-relative: %ebx holds this object's GOT)" if m.arch == "i386"
                                        and m.is_pie or m.is_shared_lib and m.arch == "i386" else "")
            # i386 pushes the byte offset of the relocation in .rel.plt (8-byte entries) and
            # _dl_fixup takes it as is; x86_64 pushes (and _dl_fixup takes) the index
            arg = spec.index * 8 if m.arch == "i386" else spec.index
            push = (f"pushes relocation offset {arg} (entry {spec.index} of .rel.plt"
                    if m.arch == "i386" else f"pushes relocation index {arg} (entry {spec.index} of .rela.plt")
            rep.first_call = [
                f"1. {how_call} enters {name}@plt, which does {jmp} (the GOT slot).",
                f"2. The slot still holds its file value + load bias: the lazy stub, which {push} = "
                f"{spec.display}) and jumps to .plt[0].",
                "3. .plt[0] pushes GOT[1] (this object's link_map) and jumps through "
                f"GOT[2]: {resolver}.",
                f"4. {'_dl_profile_fixup' if obj.no_write == '_dl_runtime_profile' else '_dl_fixup'}"
                f"(link_map, {arg}) looks {spec.display} up in the loaded objects, {write}.",
            ]
        elif m.arch == "arm":
            rep.first_call = [
                f"1. {how_call} enters {name}@plt: add ip, pc / add ip, ip / ldr pc, [ip, #off]! loads "
                f"the GOT slot 0x{slot:x} into pc, leaving ip = &slot.",
                f"2. The slot still holds .plt[0] (+ load bias): .plt[0] pushes lr and jumps through {resolver}.",
                f"3. _dl_runtime_resolve turns ip (&slot) into the relocation index ({spec.index}) and "
                f"calls _dl_fixup(link_map from GOT[1], index), which {write}.",
            ]
        else:
            rep.first_call = [
                f"1. {how_call} enters {name}@plt: adrp x16 / ldr x17, [x16, #off] loads the GOT slot "
                f"0x{slot:x}, add x16 makes x16 = &slot, br x17.",
                "2. The slot still holds .plt[0] (+ load bias): .plt[0] saves x16/x30, loads GOT[2] "
                f"and branches to it: {resolver}.",
                "3. _dl_runtime_resolve turns x16 (&slot) into the relocation index "
                f"({spec.index}) and calls _dl_fixup(link_map from GOT[1], index).",
                f"4. _dl_fixup finds {name} and {write}.",
            ]
        if bind_not:
            rep.later_calls = [f"every call goes through the lazy stub and "
                               f"{'_dl_profile_fixup' if obj.no_write == '_dl_runtime_profile' else '_dl_fixup'} "
                               f"again: {obj.no_write} keeps 0x{slot:x} unwritten."]
        else:
            rep.later_calls = [f"{how_call} -> {name}@plt -> jmp through 0x{slot:x} -> {impl} directly "
                               "(one indirect jump; ld.so is not involved again)."]
    elif spec.kind == "JUMP_SLOT":
        why = obj.binding.reason if obj.binding else "BIND_NOW"
        relro = ", full RELRO: the slot is read-only" if m.in_relro(spec.address) else ""
        rep.first_call = [f"bound at load: ld.so wrote 0x{slot:x} while relocating {m.name}, before its code "
                          f"ran ({why}{relro}); the first call is like every other call: no lazy "
                          "resolution, GOT[1]/GOT[2] are not used."]
        rep.later_calls = [f"{how_call} -> {name}@plt -> jmp through 0x{slot:x} -> {impl}."]
    else:
        via = "calls through the slot itself (-fno-plt)" if call and call.via == "got" else \
            f"goes through {stub.section} ({name}@plt)" if stub else "reads the slot"
        what = ("the ifunc resolver's choice" if spec.kind == "IRELATIVE" else
                f"the ifunc {name}'s choice ({impl})" if ifunc else f"{name}'s address")
        who = "the start-up code" if m.is_static else "ld.so"
        rep.first_call = [f"{spec.kind}: {who} wrote {what} into 0x{slot:x} at load time, before main; "
                          f"the code {via}, so there is no lazy resolution."]
        rep.later_calls = [f"the same: every call reads 0x{slot:x} and goes straight to {name}."]
        if row.state == "null":
            rep.first_call = [f"{spec.kind}: {name} is a weak symbol no loaded object defines: ld.so "
                              f"wrote 0 into 0x{slot:x} at load time; code must test it before calling."]
            rep.later_calls = [f"the slot stays 0: ld.so relocates it once, so a library defining {name} "
                               "loaded later (dlopen, even RTLD_GLOBAL) does not change it; dlsym() finds "
                               "such a definition."]


@record
class SlotChoice:
    obj: LoadedObject
    spec: SlotSpec
    because: str
    others: list[tuple[LoadedObject, SlotSpec]]


_DATA_TYPES = (1, 6)      # STT_OBJECT, STT_TLS


def _demangled_matches(pool, name: str, demangle) -> list:
    """(object, slot) pairs whose demangled name is *name* (``std::foo()`` or
    ``std::foo()@GLIBCXX_3.4``): the name got shows for a C++ import."""
    base, ver = name, ""
    head, at, tail = name.rpartition("@")
    if at and head and tail and not any(c in tail for c in "() <>,:"):
        base, ver = head, tail.lstrip("@")
    raw = set()
    for o in pool:
        try:
            raw.update(s.symbol for s in o.model.slots if s.symbol.startswith("_Z"))
        except ToolkitError:
            continue
    shown = demangle(sorted(raw)) if raw else {}
    wanted = {r for r, d in shown.items() if d == base}
    out = []
    for o in pool:
        try:
            out += [(o, s) for s in o.model.slots if s.symbol in wanted and (not ver or s.version == ver)]
        except ToolkitError:
            continue
    return out


def choose_slot(objects: list[LoadedObject], name: str, here: LoadedObject | None = None,
                object_filter: str | None = None, demangle=None) -> SlotChoice | None:
    """The slot ``plt-walk NAME`` walks, and why; the other slots of that name are kept to
    be listed.  An import (JUMP_SLOT, then GLOB_DAT) wins over an IRELATIVE slot (a
    library's internal ifunc); the object of the selected frame wins over the program,
    which wins over the other objects in load order.  Data symbols are refused."""
    if not name or not name.strip() or name.startswith("@"):
        raise ToolkitError("no symbol given", "name an imported function, e.g. 'plt-walk puts'")
    from gdb_toolkit.common.names import printable_text
    from gdb_toolkit.plt.slots import object_matches

    pool = [o for o in objects if not object_filter or object_matches(object_filter, o)]
    if object_filter and not pool:
        raise ToolkitError(f"no loaded object matches '{printable_text(object_filter)}'",
                           "give part of a path listed by 'got --all-objects'")
    found = []
    for o in pool:
        try:
            found += [(o, s) for s in o.model.slots_named(name)]
        except ToolkitError:
            if o is pool[0] and len(pool) == 1 or (o.order == 0 and o.namespace == 0):
                raise           # the program itself is unreadable: say why, not "no slot"
            continue
    if not found and demangle is not None and not name.startswith("_Z") and any(c in name for c in ":( <"):
        found = _demangled_matches(pool, name, demangle)       # a C++ name as got shows it
    if not found:
        return None
    calls = [(o, s) for o, s in found if s.kind not in ("TLSDESC",) and s.symbol_type not in _DATA_TYPES]
    if not calls:
        o, s = found[0]
        raise ToolkitError(f"{s.display} is a data symbol ({'TLS variable' if s.symbol_type == 6 else 'object'}"
                           f", {s.kind} slot in {o.name}): nothing calls it through the PLT",
                           f"'got {printable_text(name.split('@')[0])}' shows its slot and value")

    def rank(pair):
        o, s = pair
        kind = 0 if s.kind in ("JUMP_SLOT", "GLOB_DAT") else 2
        where = 0 if (here is not None and o is here) else 1 if o.order == 0 and o.namespace == 0 else 2
        return (kind, where, o.namespace, o.order, s.kind != "JUMP_SLOT", s.address)

    calls.sort(key=rank)
    obj, spec = calls[0]
    kind, where = rank(calls[0])[:2]
    if where == 0:
        because = f"the selected frame is in {obj.name}, which calls it through its own slot"
    elif where == 1:
        because = "the program's own import"
    else:
        because = f"the first loaded object that imports it ({obj.name})"
    if kind == 2:
        because += f"; no object imports it, this is {obj.name}'s internal {spec.kind} slot"
    others = [(o, s) for o, s in found if not (o is obj and s is spec)]
    return SlotChoice(obj, spec, because, others)


def completion_names(model: ObjectModel) -> list[str]:
    """Names plt-walk can walk in *model*: imported functions (JUMP_SLOT / GLOB_DAT of a
    function or untyped symbol), not data, TLS or the untyped weak hooks (__gmon_start__,
    _ITM_*); a weak function (__cxa_finalize, called through .plt.got) is a function."""
    out = set()
    for s in model.slots:
        if s.kind not in ("JUMP_SLOT", "GLOB_DAT") or not s.symbol or s.symbol_type in _DATA_TYPES:
            continue
        if s.weak and s.kind == "GLOB_DAT" and s.symbol_type != 2:     # 2: STT_FUNC
            continue
        out.add(s.symbol_text)        # as printed, and as plt-walk accepts it back
    return sorted(out)
