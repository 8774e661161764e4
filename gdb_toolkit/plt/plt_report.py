"""The ``plt`` report: stubs of each object with run-time addresses and slot states."""
import struct
from dataclasses import dataclass, field

from gdb_toolkit.common.disasm import disassemble
from gdb_toolkit.plt.slots import AddressSpace, LoadedObject, classify, compile_filter
from gdb_toolkit.plt.stubs import decode_plt


def _code(stub, bias: int, arch: str) -> list[str]:
    """The stub's instructions decoded at their run-time address (branch targets too)."""
    if not bias:
        return [i.text for i in stub.insns]
    raw = b"".join(i.raw for i in stub.insns)
    return [i.text for i in disassemble(raw, stub.address + bias, arch)]


@dataclass
class StubRow:
    object: str
    address: int
    section: str
    kind: str
    slot: int | None
    symbol: str
    reloc_index: int | None
    state: str | None
    target: str | None
    code: list[str]


@dataclass
class PltReport:
    mode: str
    stubs: list[StubRow]
    notes: list[str] = field(default_factory=list)


def plt_report(listed: list[LoadedObject], space_objects: list[LoadedObject],
               values: dict[str, bytes] | None, mode: str, pattern: str | None,
               relocated: bool = True) -> PltReport:
    rx = compile_filter(pattern)
    space = AddressSpace(space_objects) if values is not None else None
    rows, notes = [], []
    for obj in listed:
        m, b = obj.model, obj.bias
        specs = m.slot_by_address()
        blob = values.get(obj.path) if values else None
        lo = m.slots[0].address if m.slots else 0
        stubs = decode_plt(m)
        if m.is_static:
            n = sum(1 for s in stubs if s.kind != "plt0")
            notes.append(f"{m.name} is statically linked: there is no PLT for imports; "
                         f"{'its .plt holds ' + str(n) + ' IRELATIVE (ifunc) stubs' if n else 'no ifunc stubs either'}")
        elif not stubs:
            notes.append(f"{m.name} has no PLT stubs (built with -fno-plt, or imports nothing)")
        for s in stubs:
            if rx and not rx.search(s.symbol or ("" if s.kind != "plt0" else ".plt[0]")):
                continue
            state = target = None
            if blob and s.slot in specs:
                value = struct.unpack_from("<Q", blob, s.slot - lo)[0]
                row = classify(specs[s.slot], obj, value, space, live=True, relocated=relocated)
                state, target = row.state, row.target
            rows.append(StubRow(m.name, s.address + b, s.section, s.kind,
                                s.slot + b if s.slot is not None else None,
                                s.symbol if s.kind != "plt0" else "(.plt[0]: resolver trampoline)",
                                s.reloc_index, state if state is None else f"{state}: {target}", target,
                                _code(s, b, m.arch)))
    if not rows and not notes and pattern:
        notes.append("no PLT stub matched")
    return PltReport(mode, rows, notes)
