"""Put the kprobe facts together: the kernel's list, the structs in kprobe_table, the
live bytes at each address, tracefs events and hit counts.  Pure: every input is data
or a callback (``read(addr, n) -> bytes``, ``symbolize(addr) -> str | None``).

For each probe: how the site looks now (int3 / optimized jmp / ftrace call / disarmed),
whether that agrees with the kernel's own flags, and the original instruction bytes
(``p->opcode`` [+ ``optinsn.copied_insn``], the ftrace NOP, or the live bytes of a
disarmed probe).
"""

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.location import Location, kernel_location, kernel_location_of, split_kernel_text
from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.kernel import sites as S
from gdb_toolkit.kernel.kprobe_text import ListedProbe, TraceEvent, flags_from_bits

LIVE_BYTES = 16


@record
class ProbeReport:
    address: int
    location: Location                # where: do_sys_openat2+0x7 [module] as the location object
    #: the terminal's words for it, as kprobes/list spells them ("do_sys_openat2+0x0 [ext4]")
    symbol: str = field(metadata={"json_skip": True})
    kind: str                         # kprobe | kretprobe
    flags: list[str]                  # the kernel's: GONE DISABLED OPTIMIZED FTRACE
    state: str                        # what the live bytes show: int3, optimized, ftrace, disarmed ...
    expected: str | None              # what the flags say the bytes should show
    consistent: bool
    live: bytes
    original: bytes | None
    original_source: str | None
    site: S.Site | None = field(metadata={"json_skip": True})
    #: the handlers' positions (contract v4: location objects, as every code position; the
    #: terminal's text is the properties handler/post_handler/ret_handler below)
    handler_location: Location | None  # pre_handler (kprobe_dispatcher, pre_handler_kretprobe, ...)
    post_handler_location: Location | None = None
    ret_handler_location: Location | None = None    # kretprobe's handler
    event: str | None = None          # owning tracefs event (group/event)
    event_tracefs: bool | None = None # event is in tracefs kprobe_events; False: only in memory
                                      # (a perf/BPF probe's local event); None: not known
    hit_count: int | None = None      # the kernel's nhit / kprobe_profile's hits
    miss_count: int | None = None     # nmissed
    struct_address: int | None = None
    aggregate_address: int | None = None
    detour_address: int | None = None
    site_kind: str | None = None      # int3 optimized ftrace-call ftrace-nop brk jmp call plain
    target_address: int | None = None # the patched jmp/call's target ...
    target_location: Location | None = None   # ... and its position
    bpf: list = field(default_factory=list)
    found_in: str = "list"            # list | memory | list+memory
    notes: list = field(default_factory=list)

    @property
    def target_symbol(self) -> str | None:
        """The target as the kernel spells it (``kprobe_optinsn_page+0x7c``), for the terminal."""
        return self.target_location.kernel_text() if self.target_location is not None else None

    # the handlers as kallsyms spells them (``kprobe_dispatcher``, ``my_pre [mymod]``), for the
    # terminal; None when the pointer is null (or no symbol names it: the address is in the JSON)
    handler = property(lambda self: _handler_text(self.handler_location))
    post_handler = property(lambda self: _handler_text(self.post_handler_location))
    ret_handler = property(lambda self: _handler_text(self.ret_handler_location))


def _handler_text(loc: Location | None) -> str | None:
    return loc.kernel_text() if loc is not None else None


def handler_location(address: int | None, name: str | None) -> Location | None:
    """A handler pointer's position from its kallsyms spelling (KprobeStruct's *_handler_name);
    None for a null pointer."""
    return kernel_location_of(address, name) if address else None


@record
class KprobeListReport:
    arch: str
    probes: list
    sources: list                     # what was read: kprobes/list, kprobe_table, kprobe_events ...
    notes: list
    all_disarmed: bool = False


# JSON keys (contract v3, docs/json.md): the bytes are hex strings "live_hex"/"original_hex"
# (plt-walk's `live` is an object, kprobe-show's `live_insns` a disassembly)
json_keys(ProbeReport, {"live": "live_hex", "original": "original_hex"})


def expected_state(flags: list[str], arch: str, all_disarmed: bool = False) -> str | None:
    if "GONE" in flags:
        return None
    if "DISABLED" in flags or all_disarmed:
        return "disarmed"
    if "OPTIMIZED" in flags:
        return "optimized"
    if "FTRACE" in flags:
        return "ftrace"
    return "brk" if arch == "aarch64" else "int3"


def state_of(site: S.Site) -> str:
    return {S.INT3: "int3", S.BRK: "brk", S.OPTIMIZED: "optimized", S.FTRACE_CALL: "ftrace",
            S.FTRACE_NOP: "ftrace-nop"}.get(site.kind, "unpatched" if not site.patched else site.kind)


def agrees(expected: str | None, state: str, site: S.Site) -> bool:
    if expected is None:
        return True
    if expected == "disarmed":
        # a disarmed probe leaves the original bytes; an ftrace site may still call ftrace
        # for other users (function tracer, other probes), so only a breakpoint/detour is wrong
        return state not in ("int3", "brk", "optimized")
    if expected == "optimized" and state == "int3":
        return True               # queued: see OPTIMIZE_QUEUED
    return expected == state


# kernel/kprobes.c optimize_kprobe() sets KPROBE_FLAG_OPTIMIZED when it queues the probe; the
# kprobe_optimizer work writes the jmp later, after OPTIMIZE_DELAY and an RCU-tasks grace period
OPTIMIZE_QUEUED = ("queued for jump optimization: the kernel flags a probe OPTIMIZED when it queues "
                   "it, its optimizer writes the jmp after an RCU-tasks grace period")


def insn_length(code: bytes, arch: str, cover: int = 1) -> int:
    """Bytes of the whole instructions at the start of *code* covering *cover* bytes."""
    if arch == "aarch64":
        return max(4, (cover + 3) // 4 * 4)
    from gdb_toolkit.common.disasm import disassemble

    n = 0
    for ins in disassemble(code, 0, arch):
        if ins.mnemonic == "(bad)":
            break
        n = ins.address + ins.size
        if n >= cover:
            break
    return n if n >= cover else cover


def original_bytes(arch: str, state: str, live: bytes, kp=None, top=None,
                   flags: list[str] = ()) -> tuple[bytes | None, str | None]:
    """(original bytes at the probe address, where they came from).

    Uses the kernel's own bookkeeping for lengths (``ainsn.size``, ``optinsn.size``) so
    no disassembler is needed; capstone only when those are missing."""
    src = top if top is not None else kp
    known_len = None
    if src is not None and src.ainsn_size and 0 < src.ainsn_size <= 15:
        known_len = src.ainsn_size
    if "FTRACE" in flags:
        return S.ftrace_nop(arch), "ftrace NOP (what an idle fentry site holds)"
    if state not in ("int3", "brk", "optimized"):
        why = "the probe is disarmed" if {"DISABLED", "GONE"} & set(flags) else "not patched now"
        n = known_len or insn_length(live, arch)
        return live[:n], f"live bytes ({why})"
    if src is None or not src.opcode:
        return None, None
    if state == "optimized" and src.copied_insn is not None:
        head = src.opcode[:1] + src.copied_insn
        code = head + live[len(head):]
        n = src.detour_len if src.detour_len and len(head) <= src.detour_len <= len(code) else \
            insn_length(code, arch, len(head))
        return code[:n], "p->opcode + optinsn.copied_insn"
    if state in ("int3", "optimized") and arch == "x86_64":
        code = src.opcode[:1] + live[1:]
        return code[:known_len or insn_length(code, arch)], "p->opcode"
    if state == "brk" and arch == "aarch64":
        return src.opcode[:4], "p->opcode"
    return None, None


def _where(sym: str | None, off: int, mod: str | None, addr: int) -> str:
    if not sym:
        return f"0x{addr:x}"
    return f"{sym}+0x{off:x}" + (f" [{mod}]" if mod else "")


class EventIndex:
    """tracefs kprobe events indexed by (p|r, symbol, offset) and by address: the fallback
    when a probe's own trace_kprobe cannot be read from memory."""

    def __init__(self, events: list[TraceEvent], resolve=None):
        self.events = list(events)
        self.by_sym: dict = {}
        self.by_addr: dict = {}
        self.unresolved = []
        self.resolve = resolve
        self.named: dict[str, TraceEvent] = {}
        self.short_count: dict[str, int] = {}
        for ev in self.events:
            self.named.setdefault(ev.name, ev)
            self.short_count[ev.event] = self.short_count.get(ev.event, 0) + 1
            if ev.address is not None:
                self.by_addr.setdefault((ev.probe_type, ev.address), []).append(ev)
            elif ev.symbol:
                self.by_sym.setdefault((ev.probe_type, ev.symbol, ev.offset), []).append(ev)
                self.unresolved.append(ev)
        self._resolved = None

    def candidates(self, probe_type: str, addr: int, sym: str | None, off: int) -> list[TraceEvent]:
        """Every tracefs event that targets this (type, address)."""
        want = "r" if probe_type == "kretprobe" else "p"
        out = list(self.by_addr.get((want, addr), []))
        if sym:
            out += [e for e in self.by_sym.get((want, sym, off), []) if e not in out]
        if self.resolve is not None and self.unresolved:
            if self._resolved is None:      # symbol -> address, once, only when needed
                self._resolved = {}
                for e in self.unresolved:
                    base = self.resolve(f"{e.module}:{e.symbol}" if e.module else e.symbol)
                    if base is not None:
                        self._resolved.setdefault((e.probe_type, base + e.offset), []).append(e)
            out += [e for e in self._resolved.get((want, addr), []) if e not in out]
        return out

    def match(self, probe_type: str, addr: int, sym: str | None, off: int) -> TraceEvent | None:
        c = self.candidates(probe_type, addr, sym, off)
        return c[0] if c else None

    def by_name(self, name: str) -> TraceEvent | None:
        return self.named.get(name)


def match_event(events: list[TraceEvent], probe_type: str, addr: int, sym: str | None,
                off: int, resolve=None) -> TraceEvent | None:
    return EventIndex(events, resolve).match(probe_type, addr, sym, off)


def _kind(kp) -> str:
    return "r" if kp.pre_handler_name == "pre_handler_kretprobe" else "k"


def pair_probes(lines: list, structs: list) -> tuple[list, list]:
    """Pair the kprobes/list lines at one address with the struct kprobes found there.

    The kernel prints an aggregate's children in its ``p->list`` order, which is the order
    the walk reads them: when the counts and the kinds agree the pairing is exact.
    Otherwise (the table changed between the two reads) pair by kind, in order.  Returns
    ([(line, struct or None)], structs left over)."""
    if len(lines) == len(structs) and all(lp.kind == _kind(kp) for lp, kp in zip(lines, structs)):
        return list(zip(lines, structs)), []
    pool = list(structs)
    pairs = []
    for lp in lines:
        kp = next((c for c in pool if _kind(c) == lp.kind), None)
        if kp is not None:
            pool.remove(kp)
        pairs.append((lp, kp))
    return pairs, pool


def gone_where(lp: ListedProbe, kp, event: TraceEvent | None) -> tuple[str, Location]:
    """Where a [GONE] probe was: its address now belongs to nothing (or to something else),
    so name it by what the probe asked for (the trace_kprobe's target, or the event's):
    (the terminal's words, the location)."""
    if lp.symbol:
        return lp.where, kernel_location(lp.address, lp.symbol, lp.offset, lp.module)
    target = (kp.tk_symbol if kp is not None else None) or (event.target if event else None)
    off = kp.offset if kp is not None else (event.offset if event else 0)
    if target and not target.startswith("0x"):
        mod, _, name = target.rpartition(":")
        name = name.split("+")[0]
        return f"{name}+0x{off:x}" + (f" [{mod}]" if mod else ""), kernel_location(lp.address, name, off, mod or None)
    return f"0x{lp.address:x} (in a module that is unloaded)", kernel_location(lp.address)


def build_report(arch: str, listed: list[ListedProbe] | None, walk=None, read=None,
                 symbolize=None, events: list[TraceEvent] = (), profile: dict | None = None,
                 all_disarmed: bool = False, resolve=None, enrich=None,
                 events_known: bool = True) -> KprobeListReport:
    """Join the list, the table walk, the live bytes and the tracefs facts.

    One row per probe, as the kernel's list has.  Each probe's event, hit count and BPF
    programs come from its own trace_kprobe in memory; tracefs (kprobe_events,
    kprobe_profile) only confirms them, or stands in when memory was not read -- and then
    says when several events could be the one.  Probes found in memory but missing from the
    list (or vice versa: a registration racing the walk) are kept, with a note.
    """
    notes: list[str] = []
    sources = []
    if listed is not None:
        sources.append("kprobes/list")
    if walk is not None:
        sources.append("kprobe_table")
        notes += walk.notes
    profile = profile or {}
    sym = symbolize or (lambda a: None)
    tops = {}
    members: dict[int, list] = {}
    if walk is not None:
        for p in walk.probes:
            tops[p.addr] = p
            members[p.addr] = list(p.children) if p.aggregate else [p]
    by_addr: dict[int, list] = {}
    for lp in listed or []:
        by_addr.setdefault(lp.address, []).append(lp)
    addrs = list(by_addr) + [a for a in tops if a not in by_addr]
    event_index = EventIndex(list(events), resolve)
    rows = []
    for addr in addrs:
        top = tops.get(addr)
        pool = list(members.get(addr, []))
        lps = list(by_addr.get(addr, []))
        if not lps and top is not None:     # memory only (no debugfs, or kptr hidden there)
            topfl = flags_from_bits(top.flags)
            for kp in pool:
                own = flags_from_bits(kp.flags)
                # as report_probe() prints them: a gone probe is not also called disabled
                fl = [f for f in own if f == "GONE" or (f == "DISABLED" and "GONE" not in own)] + \
                    [f for f in topfl if f in ("OPTIMIZED", "FTRACE")]
                name, off, mod = split_kernel_text(sym(addr))
                lps.append(ListedProbe(addr, _kind(kp), name, off, mod, fl, "(memory)"))
        gone = all("GONE" in lp.flags for lp in lps)
        live, site, state = b"", None, "unknown"
        if gone:
            state = "gone"                  # the module and its code are gone: nothing to read
        elif read is not None:
            try:
                live = read(addr, LIVE_BYTES)
            except ToolkitError as exc:
                notes.append(f"0x{addr:x}: {exc.cause}")
        if live:
            site = S.classify(live, addr, arch, sym)
            state = state_of(site)
        pairs, left = pair_probes(lps, pool)
        for lp, kp in pairs:
            rows.append(_row(arch, lp, kp, top, addr, live, site, state, all_disarmed, sym,
                             event_index, profile, events_known, walk is not None,
                             sum(1 for x in lps if x.kind == lp.kind)))
        for kp in left:   # in memory but not in the list
            notes.append(f"struct kprobe at 0x{kp.struct_addr:x} for 0x{addr:x} is not in kprobes/list")
    rows.sort(key=lambda r: (r.symbol, r.kind))
    if all_disarmed:
        notes.append("kprobes are globally disarmed (/sys/kernel/debug/kprobes/enabled is 0)")
    if arch == "aarch64" and rows:
        notes.append(S.ARM64_KPROBE_NOTE)
    return KprobeListReport(arch, rows, sources, notes, all_disarmed)


def _row(arch, lp, kp, top, addr, live, site, state, all_disarmed, sym, event_index, profile,
         events_known, walked, same_kind) -> ProbeReport:
    ptype = "kretprobe" if lp.kind == "r" else "kprobe"
    from_memory = lp.line == "(memory)"
    exp = expected_state(lp.flags, arch, all_disarmed)
    ok = True if site is None else agrees(exp, state, site)
    row_notes = []
    gone = "GONE" in lp.flags
    # the event: the probe's own trace_kprobe when it was read, else tracefs by target
    ev_name, in_tracefs, hits, misses, tev = None, None, None, None, None
    if kp is not None and kp.event:
        ev_name, in_tracefs, hits = kp.event, kp.event_dynamic, kp.nhit
        misses = kp.nmissed
        tev = event_index.by_name(ev_name) if in_tracefs is not False else None
        if in_tracefs is None:
            in_tracefs = (tev is not None) if events_known else None
        elif in_tracefs and events_known and tev is None:
            row_notes.append(f"{ev_name} is on the kernel's dyn_event list but not in kprobe_events "
                             "(removed while reading?)")
    elif kp is None or kp.pre_handler_name in ("kprobe_dispatcher", "pre_handler_kretprobe"):
        cands = event_index.candidates(ptype, addr, lp.symbol, lp.offset)
        if len(cands) == 1 and same_kind == 1:
            tev = cands[0]
            ev_name, in_tracefs = tev.name, True
            if event_index.short_count.get(tev.event) == 1 and tev.event in profile:
                hits, misses = profile[tev.event]
        elif cands:
            row_notes.append("tracefs event: one of " + ", ".join(c.name for c in cands) +
                             " (several probes here; exact attribution needs kprobe_table in memory)")
    if kp is not None and misses is None:
        misses = kp.nmissed
    if gone:
        where, loc = gone_where(lp, kp, tev)
        original, osrc = None, "none: the module is unloaded, its code no longer exists"
    else:
        if lp.symbol is None:
            text = sym(addr)
            where, loc = text or f"0x{addr:x}", kernel_location_of(addr, text)
        else:
            where, loc = _where(lp.symbol, lp.offset, lp.module, addr), \
                kernel_location(addr, lp.symbol, lp.offset, lp.module)
        original, osrc = original_bytes(arch, state, live, kp, top, lp.flags) if live else (None, None)
    r = ProbeReport(
        address=addr, location=loc, symbol=where, kind=ptype, flags=list(lp.flags), state=state,
        expected=exp, consistent=ok, live=live, original=original, original_source=osrc,
        site=site, handler_location=handler_location(kp.pre_handler, kp.pre_handler_name) if kp else None,
        post_handler_location=handler_location(kp.post_handler, kp.post_handler_name) if kp else None,
        ret_handler_location=handler_location(kp.kretprobe_handler, kp.kretprobe_handler_name) if kp else None,
        event=ev_name, event_tracefs=in_tracefs, hit_count=hits, miss_count=misses,
        struct_address=kp.struct_addr if kp else None,
        aggregate_address=top.struct_addr if top is not None and top.aggregate else None,
        detour_address=site.target if site is not None and site.kind == S.OPTIMIZED else None,
        site_kind=site.kind if site is not None else None,
        target_address=site.target if site is not None else None,
        target_location=(kernel_location_of(site.target, site.target_symbol)
                         if site is not None and site.target is not None else None),
        bpf=list(kp.bpf_progs) if kp else [],
        found_in=("memory" if from_memory else "list+memory" if kp is not None else "list"),
        notes=row_notes,
    )
    if ok and exp == "optimized" and state == "int3":
        r.notes.append(OPTIMIZE_QUEUED)
    if not ok:
        r.notes.append(f"the kernel's flags say {exp}, the live bytes show {state} "
                       "(changed while reading, or patched by something else)")
    if walked and kp is None and not from_memory:
        r.notes.append("not found in kprobe_table (registered or removed while reading?)")
    if ptype == "kretprobe" and kp is not None and kp.kretprobe_handler_name is None \
            and kp.pre_handler_name != "pre_handler_kretprobe":
        r.notes.append("listed as kretprobe but its pre_handler is not pre_handler_kretprobe")
    return r


@record
class SiteScan:
    """Not every int3/call is a kprobe: a breakpoint-like byte with no probe behind it."""
    address: int
    site: S.Site
    kprobe: bool
    verdict: str


def cross_check(site: S.Site, kprobe_addrs: set[int] | None) -> str:
    """Is the patched-looking site a kprobe?  *kprobe_addrs* None: the list is unreadable."""
    if kprobe_addrs is None:
        unknown = {S.INT3: "int3 (kprobes/list unreadable: kprobe or not is unknown)",
                   S.BRK: "brk (kprobes/list unreadable: kprobe or not is unknown)",
                   S.OPTIMIZED: "jmp into a kprobe insn page: an optimized kprobe",
                   S.FTRACE_CALL: "ftrace call"}
        return unknown.get(site.kind, "")
    at = site.address in kprobe_addrs
    if site.kind in (S.INT3, S.BRK):
        return "kprobe breakpoint" if at else \
            "breakpoint but no kprobe here (debugger, kgdb, text_poke in progress, or padding)"
    if site.kind == S.OPTIMIZED:
        return "optimized kprobe" if at else "jmp into a kprobe insn page but no kprobe listed here"
    if site.kind == S.FTRACE_CALL:
        return "ftrace call (kprobe on ftrace)" if at else "ftrace call (function tracer / other ftrace user)"
    if at:
        return "kprobe registered here but the site is not armed"
    return ""
