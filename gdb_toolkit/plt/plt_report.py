"""The ``plt`` report: stubs of each object with run-time addresses and slot states."""
from gdb_toolkit.common.disasm import disassemble
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, record
from gdb_toolkit.plt.slots import AddressSpace, LoadedObject, classify, compile_filter
from gdb_toolkit.plt.stubs import decode_plt
from gdb_toolkit.plt.wording import counted


def _code(stub, bias: int, arch: str, cache: dict) -> list[str]:
    """The stub's instructions decoded at their run-time address (branch targets too),
    cached per (stub, bias): a warm 'plt' on thousands of stubs decodes nothing."""
    if not bias:
        return [i.text for i in stub.insns]
    key = (stub.address, bias)
    hit = cache.get(key)
    if hit is None:
        raw = b"".join(i.raw for i in stub.insns)
        hit = cache[key] = [i.text for i in disassemble(raw, stub.address + bias, arch)]
    return hit


@record
class StubRow:
    object: str
    address: int
    section: str
    kind: str
    slot_address: int | None
    symbol: str                 # displayed (C++ demangled) with version
    reloc_index: int | None
    state: str | None           # the slot's state word, as got says it (unresolved, resolved...)
    target: str | None          # what the slot points to, as got says it (lazy stub .plt+0x16)
    code: list[str]
    symbol_raw: str | None = None   # the raw (mangled) name when it differs


@record
class PltReport:
    mode: str
    stubs: list[StubRow]
    notes: list[str] = field(default_factory=list)


def plt_report(listed: list[LoadedObject], space_objects: list[LoadedObject],
               memory: dict[int, int] | None, mode: str, pattern: str | None,
               relocated: bool = True, demangle=None) -> PltReport:
    """Stubs of *listed* objects.  *demangle*: a function {raw: shown} for C++ names (one
    call for the whole report); REGEX matches raw, versioned and demangled names."""
    from gdb_toolkit.common.names import escape_name

    rx = compile_filter(pattern)
    space = AddressSpace(space_objects) if memory is not None else None
    rows, notes = [], []
    decoded = []
    for obj in listed:
        m = obj.model
        try:
            decoded.append((obj, m.slot_by_address(), decode_plt(m)))
        except ToolkitError as exc:
            notes.append(f"skipped {obj.name}: {exc.cause}")
    shown = {}
    if demangle is not None:
        raw = {spec.symbol for _, specs, stubs in decoded for s in stubs
               if s.slot is not None and (spec := specs.get(s.slot)) is not None and spec.symbol.startswith("_Z")}
        shown = demangle(sorted(raw)) if raw else {}
    targets: set[str] = set()           # mangled target names, demangled in one more call
    for obj, specs, stubs in decoded:
        m, b = obj.model, obj.bias
        cache = m.__dict__.setdefault("_plt_code", {})
        if m.is_static:
            # stubs through an IRELATIVE slot (a .plt.got stub of a link-time-filled slot is not one)
            n = sum(1 for s in stubs if s.kind != "plt0" and s.slot is not None
                    and getattr(specs.get(s.slot), "kind", None) == "IRELATIVE")
            notes.append(f"{m.name} is statically linked: there is no PLT for imports; "
                         f"{'its .plt holds ' + counted(n, 'IRELATIVE (ifunc) stub') if n else 'no ifunc stubs either'}")
        elif not stubs and m._elf.no_section_headers:
            notes.append(f"{m.name} has no section headers: its PLT stubs cannot be located (its slots "
                         f"come from the dynamic segment: 'got --object')")
        elif not stubs:
            notes.append(f"{m.name} has no PLT stubs (built with -fno-plt, or imports nothing)")
        for s in stubs:
            spec = specs.get(s.slot) if s.slot is not None else None
            symbol, raw = s.symbol, None
            if spec is not None and shown.get(spec.symbol, spec.symbol) != spec.symbol:
                raw = symbol
                symbol = escape_name(shown[spec.symbol] + (f"@{spec.version}" if spec.version else ""))
            if rx and not (rx.search(s.symbol or ("" if s.kind != "plt0" else ".plt[0]"))
                           or (spec is not None and rx.search(spec.symbol)) or (raw and rx.search(symbol))):
                continue
            state = target = None
            value = memory.get(s.slot + b) if memory is not None and spec is not None else None
            if value is not None:
                row = classify(spec, obj, value, space, live=True, relocated=relocated)
                state, target = row.state, row.target
                if row.target_symbol and row.target_symbol.startswith("_Z"):
                    targets.add(row.target_symbol)
            rows.append(StubRow(obj.name, s.address + b, s.section, s.kind,
                                s.slot + b if s.slot is not None else None,
                                symbol if s.kind != "plt0" else "(.plt[0]: resolver trampoline)",
                                s.reloc_index, state, target,
                                _code(s, b, m.arch, cache), raw))
    if targets and demangle is not None:
        from gdb_toolkit.plt.demangle import replacer

        fix = replacer(demangle(sorted(targets)))
        for r in rows:
            r.target = fix(r.target)
    if not rows and not notes and pattern:
        notes.append("no PLT stub matched")
    return PltReport(mode, rows, notes)
