"""GOT slot states: the address space of loaded objects, and the classifier.

A slot is *unresolved* when its current value is still the file's value plus the load
bias (it points back into the PLT's lazy stub), *resolved* when ld.so rewrote it on the
first call (lazy binding), *bound-at-load* when ld.so filled it before the program ran
(BIND_NOW, GLOB_DAT, IRELATIVE, TLS), *null* for an absent weak symbol, and
*not-relocated* when the process stopped before ld.so relocated the object.
"""
import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.plt.elf_model import ObjectModel, SlotSpec

TLS_KINDS = {"TPOFF64", "TLS_TPREL64", "DTPMOD64", "TLS_DTPMOD64", "DTPOFF64", "TLS_DTPREL64", "TLSDESC"}


@dataclass
class LoadedObject:
    path: str
    bias: int
    model: ObjectModel = field(metadata={"json_skip": True}, repr=False)

    @cached_property
    def name(self) -> str:
        return self.model.name

    @cached_property
    def start(self) -> int:
        return self.model.span[0] + self.bias

    @cached_property
    def end(self) -> int:
        return self.model.span[1] + self.bias


class AddressSpace:
    """Loaded objects sorted by address: which object holds an address, and its symbol."""

    def __init__(self, objects: list[LoadedObject]):
        self.objects = sorted(objects, key=lambda o: o.start)
        self._starts = [o.start for o in self.objects]

    def find(self, addr: int) -> LoadedObject | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.objects[i].end:
            return self.objects[i]
        return None

    def describe(self, addr: int, prefer: str | None = None) -> tuple[str, str | None, str | None]:
        """(text, symbol, object name): ``puts in libc.so.6``, ``libfoo.so+0x1234``."""
        obj = self.find(addr)
        if obj is None:
            return (f"0x{addr:x} (no loaded object)", None, None)
        hit = obj.model.index.lookup(addr - obj.bias, prefer)
        if hit is None:
            sec = obj.model.section_of(addr - obj.bias)
            where = f"{sec}+0x{addr - obj.bias - obj.model.sections[sec].addr:x}" if sec else f"+0x{addr - obj.bias:x}"
            return (f"{obj.name}:{where}", None, obj.name)
        return (f"{hit.text()} in {obj.name}", hit.name, obj.name)


@dataclass(slots=True)
class SlotRow:
    object: str
    address: int
    symbol: str
    type: str
    value: int
    state: str
    target: str
    target_symbol: str | None
    target_object: str | None
    relro: bool
    read_only_now: bool | None
    file_value: int


def compile_filter(pattern: str | None):
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ToolkitError(f"bad regular expression {pattern!r}: {exc}",
                           "give a Python regular expression, e.g. 'mem|str' or '^puts$'") from None


def classify(spec: SlotSpec, obj: LoadedObject, value: int | None, space: AddressSpace | None,
             *, live: bool, bind_now_env: bool = False, read_only_now: bool | None = None,
             relocated: bool = True) -> SlotRow:
    """One row of the ``got`` table. *value* None means "not loaded: use the file";
    *relocated* False says ld.so has not processed its object list yet (stopped at starti)."""
    m = obj.model
    bias = obj.bias
    lazy_kind = spec.kind == "JUMP_SLOT" and not m.bind_now
    initial = spec.file_value + bias if spec.file_value else 0
    tsym = tobj = None
    if value is None:                                   # static view, before run
        value = spec.file_value
        if lazy_kind and m.section_of(value) in (".plt", ".plt.sec"):
            state, target = "unresolved", f"lazy stub {_section_offset(m, value)}"
        elif spec.kind == "IRELATIVE":
            state, target = "bound-at-load", f"ifunc resolver {spec.symbol or hex(spec.addend)} runs at start-up"
        else:
            state, target = "bound-at-load", ("set by ld.so at load (BIND_NOW)" if spec.kind == "JUMP_SLOT"
                                              else "set by ld.so at load")
        return SlotRow(m.name, spec.address, spec.display, spec.kind, value, state, target, None, None,
                       m.in_relro(spec.address), None, spec.file_value)
    if not relocated and value == spec.file_value:
        state, target = "not-relocated", "ld.so has not relocated this object yet"
    elif spec.kind in TLS_KINDS:
        state, target = "bound-at-load", f"TLS value 0x{value:x}"
    elif spec.kind == "IRELATIVE" and spec.file_value and value == initial:
        # still the link-time value: the start-up code (static) or ld.so has not called
        # the ifunc resolver yet (e.g. stopped at starti)
        state, target = "not-relocated", "the ifunc resolver has not run yet (applied at start-up)"
    elif value == 0:
        state, target = "null", "0 (weak symbol not defined anywhere)" if spec.kind != "IRELATIVE" else "0"
    elif bias and spec.file_value and value == spec.file_value and value != initial:
        state, target = "not-relocated", "ld.so has not relocated this object yet"
    elif spec.kind == "JUMP_SLOT" and value == initial and m.section_of(spec.file_value) in (".plt", ".plt.sec"):
        state, target = "unresolved", f"lazy stub {_section_offset(m, spec.file_value)}"
    else:
        state = "resolved" if lazy_kind and not bind_now_env else "bound-at-load"
        target, tsym, tobj = space.describe(value, spec.symbol) if space else (f"0x{value:x}", None, None)
    return SlotRow(m.name, spec.address + bias, spec.display, spec.kind, value, state, target, tsym, tobj,
                   m.in_relro(spec.address), read_only_now, spec.file_value)


def _section_offset(m: ObjectModel, addr: int) -> str:
    sec = m.section_of(addr)
    if not sec:
        return f"0x{addr:x}"
    off = addr - m.sections[sec].addr
    if not off and sec == ".plt":
        return ".plt[0] (straight to the resolver trampoline)"
    return f"{sec}+0x{off:x}" if off else sec


@dataclass
class ObjectSummary:
    path: str
    bias: int
    binding: str          # lazy / now / static
    kind: str             # PIE executable / executable / shared object / static executable
    pie: bool
    relro: list[int] | None
    slots: int
    plt: bool


@dataclass
class GotReport:
    mode: str                         # file / live / core / remote
    objects: list[ObjectSummary]
    slots: list[SlotRow]
    notes: list[str] = field(default_factory=list)


def summarize(obj: LoadedObject, nslots: int) -> ObjectSummary:
    m = obj.model
    relro = [m.relro[0] + obj.bias, m.relro[1] + obj.bias] if m.relro else None
    kind = ("shared object" if m.is_shared_lib else
            ("static " if m.is_static else "") + ("PIE executable" if m.is_pie else "executable"))
    return ObjectSummary(obj.path, obj.bias, m.binding, kind, m.is_pie, relro, nslots,
                         any(n in m.sections for n in (".plt", ".plt.sec", ".plt.got")))


def got_report(objects: list[LoadedObject], values: dict[str, bytes | None], *, mode: str,
               pattern: str | None = None, bind_now_env: bool = False,
               space_objects: list[LoadedObject] | None = None, relocated: bool = True,
               writable: list[tuple[int, int]] | None = None) -> GotReport:
    """Classify every slot of *objects*; ``values[path]`` is the bulk read of that object's
    slot range (from the lowest slot to the highest + 8), or None for the file view;
    *writable* lists the writable address ranges of a live process (for "read-only now")."""
    rx = compile_filter(pattern)
    space = AddressSpace(space_objects or objects)
    w_sorted = sorted(writable or [])
    w_starts = [a for a, _ in w_sorted]
    rows: list[SlotRow] = []
    summaries = []
    notes = []
    for obj in objects:
        specs = obj.model.name_irelative().slots
        if rx:
            specs = [s for s in specs if rx.search(s.display)]
        summaries.append(summarize(obj, len(specs)))
        blob = values.get(obj.path)
        lo = obj.model.slots[0].address if obj.model.slots else 0
        words = memoryview(blob[: len(blob) // 8 * 8]).cast("Q") if blob is not None else None
        for s in specs:
            if words is None:
                value = None
            else:
                value = words[(s.address - lo) >> 3]
            ro = None
            if writable is not None:
                addr = s.address + obj.bias
                i = bisect.bisect_right(w_starts, addr) - 1
                ro = not (i >= 0 and addr < w_sorted[i][1])
            rows.append(classify(s, obj, value, space if blob is not None else None, live=blob is not None,
                                 bind_now_env=bind_now_env, read_only_now=ro, relocated=relocated))
        if obj.model.is_static:
            notes.append(f"{obj.name} is statically linked: no PLT for imports, no dynamic symbol "
                         f"resolution; only IRELATIVE (ifunc) slots are listed")
    return GotReport(mode, summaries, rows, notes)
