"""``kprobe-show SYMBOL|ADDR``: one probe in depth.

Live vs original disassembly of the first instructions, every field of the struct
kprobe (and of the aggregate) decoded through BTF, the optimized probe's detour buffer
or the ftrace trampoline disassembled, and for BPF-backed probes the attached
programs' JIT addresses (trace_kprobe -> tp.event -> call.prog_array -> bpf_func,
the walk the seed does by hand in gdb).
"""

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.location import Location
from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.kernel import sites as S


@record
class DisLine:
    address: int
    raw: str                  # the bytes, hex without spaces (as kdis's `raw`)
    text: str
    target_location: Location | None = None    # a branch/call target's position (as kdis's)

    @property
    def target_symbol(self) -> str | None:
        """``sym+0xoff [mod]`` for the terminal."""
        return self.target_location.kernel_text() if self.target_location is not None else None


@record
class StructDump:
    title: str
    address: int
    c_type: str             # struct kprobe, struct optimized_kprobe
    fields: list            # btf_values.FieldValue


@record
class KprobeShowReport:
    address: int
    location: Location              # the probed position (its probes' own location)
    arch: str
    probes: list                    # ProbeReport rows at this address
    live: list                      # DisLine
    original: list                  # DisLine (original bytes + the unchanged rest)
    original_source: str | None
    as_built: list                  # DisLine of the --vmlinux file's bytes (slid by KASLR)
    structs: list                   # StructDump
    detour: list                    # DisLine of the detour buffer / ftrace trampoline
    detour_title: str | None
    bpf: list
    notes: list = field(default_factory=list)

    @property
    def symbol(self) -> str:
        """The probed position as kprobes/list spells it, for the terminal."""
        return self.probes[0].symbol if self.probes else (self.location.kernel_text() or f"0x{self.address:x}")


# JSON keys (contract v3): the disassemblies are `live_insns`/`original_insns` (kdis's `insns`);
# `live_hex`/`original_hex` are a probe's bytes, plt-walk's `live` an object
json_keys(KprobeShowReport, {"live": "live_insns", "original": "original_insns"})


def _dis(session, code: bytes, addr: int, count: int) -> list[DisLine]:
    from gdb_toolkit.common.disasm import disassemble
    import re

    out = []
    for ins in disassemble(code, addr, session.arch, count=count):
        m = re.search(r"0x([0-9a-f]{8,16})", ins.op_str)
        tgt = session.locate(int(m.group(1), 16)) if m and ins.mnemonic != "(bad)" else None
        out.append(DisLine(ins.address, ins.raw.hex(), ins.text, tgt if tgt is not None and tgt.symbol else None))
    return out


def _dump(session, btf, title: str, addr: int, type_name: str) -> StructDump | None:
    from gdb_toolkit.kernel.btf_values import decode

    t = btf.find(type_name)
    if t is None:
        return None
    data = session.read(addr, btf.size_of(t.id))

    def read_string(ptr):
        try:
            return session.kcore.read_cstring(ptr, 64)
        except ToolkitError:
            return None

    from gdb_toolkit.kernel.kprobe_text import describe_flags

    fields = decode(btf, t.id, data, session.symbolize, read_string)
    for f in fields:
        if f.path in ("flags", "kp.flags") and f.raw:
            f.value = f"{f.raw} ({describe_flags(f.raw)})"
    return StructDump(title, addr, f"struct {type_name}", fields)


def kprobe_show(session, query: str, count: int = 6, addr: int | None = None) -> KprobeShowReport:
    """The probe(s) at *query* (a symbol, symbol+off, address; *addr* when the caller has
    already evaluated it, e.g. a gdb expression)."""
    if addr is None:
        addr = session.parse_address(query)
    rep = session.kprobe_report()
    rows = [p for p in rep.probes if p.address == addr]
    notes = []
    if not rows:
        # a symbol name: the probe may sit past an ENDBR, or at sym+off given as sym
        near = [p for p in rep.probes if p.symbol.split("+")[0] == query.split("+")[0]]
        if near and "+" not in query and not query.startswith("0x"):
            addr = near[0].address
            rows = [p for p in rep.probes if p.address == addr]
            if len({p.address for p in near}) > 1:
                notes.append("several probes in " + query + ": " +
                             ", ".join(sorted({p.symbol for p in near})) + "; showing the first")
    if not rows:
        raise ToolkitError(f"no kprobe at {query} (0x{addr:x})",
                           "list them with kprobe-list; kdis shows the bytes anyway")
    first = rows[0]
    walker = session.walker
    if walker is not None:
        for p in rows:
            if p.struct_address:
                try:
                    kp = walker.read_kprobe(p.struct_address, detail=True)
                    p.bpf = kp.bpf_progs
                    p.event = p.event or kp.event
                except ToolkitError as exc:
                    notes.append(f"struct kprobe at 0x{p.struct_address:x}: {exc.cause}")
    live_code = session.read(addr, 16 * count)
    live = _dis(session, live_code, addr, count)
    original, osrc = [], first.original_source
    if first.original is not None:
        code = first.original + live_code[len(first.original):]
        original = _dis(session, code, addr, count)
    structs = []
    try:
        btf = session.btf
        if first.aggregate_address:
            # with CONFIG_OPTPROBES every aggregate is allocated as an optimized_kprobe
            kind = "optimized_kprobe" if btf.find("optimized_kprobe") is not None else "kprobe"
            d = _dump(session, btf, "aggregate probe (in kprobe_table)", first.aggregate_address, kind)
            if d:
                structs.append(d)
        for p in rows:
            if p.struct_address:
                d = _dump(session, btf, f"{p.kind} ({p.event or p.handler or 'no event'})",
                          p.struct_address, "kprobe")
                if d:
                    structs.append(d)
    except ToolkitError as exc:
        notes.append(f"struct fields not decoded: {exc.cause}")
    detour, title = [], None
    site = first.site
    if site is not None and site.kind == S.OPTIMIZED and site.target:
        title = f"detour buffer at 0x{site.target:x} ({site.target_symbol})"
        code = session.read(site.target, 256)
        detour = []
        back = None
        for ln in _dis(session, code, site.target, 0):
            detour.append(ln)
            if ln.text.startswith("jmp") and ln.target_symbol and \
                    not ln.target_symbol.startswith("kprobe_"):
                back = ln
                break
        if back is None:
            notes.append("the detour's jump back was not found in 256 bytes")
    elif site is not None and site.kind == S.FTRACE_CALL and site.target:
        title = f"ftrace trampoline at 0x{site.target:x} ({site.target_symbol})"
        detour = _dis(session, session.read(site.target, 16 * 24), site.target, 24)
    bpf = [b for p in rows for b in p.bpf]
    as_built = []
    if session.vmlinux_path:
        vm, slide = session.vmlinux
        try:
            code = vm.read(addr - slide, 16 * count)
            as_built = _dis(session, code, addr, count)
            if first.original and not code.startswith(first.original):
                notes.append(f"the vmlinux file has {code[:len(first.original)].hex(' ')} where the "
                             f"recovered original is {first.original.hex(' ')} (boot-time patching "
                             "such as ftrace NOPs or alternatives, or another build)")
        except ToolkitError as exc:
            notes.append(f"vmlinux bytes not read: {exc.cause}")
    return KprobeShowReport(addr, first.location, session.arch, rows, live, original, osrc, as_built,
                            structs, detour, title, bpf, notes + rep.notes)
