"""Put the kprobe facts together: the kernel's list, the structs in kprobe_table, the
live bytes at each address, tracefs events and hit counts.  Pure: every input is data
or a callback (``read(addr, n) -> bytes``, ``symbolize(addr) -> str | None``).

For each probe: how the site looks now (int3 / optimized jmp / ftrace call / disarmed),
whether that agrees with the kernel's own flags, and the original instruction bytes
(``p->opcode`` [+ ``optinsn.copied_insn``], the ftrace NOP, or the live bytes of a
disarmed probe).
"""
from dataclasses import dataclass, field

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import sites as S
from gdb_toolkit.kernel.kprobe_text import ListedProbe, TraceEvent, flags_from_bits

LIVE_BYTES = 16


@dataclass
class ProbeReport:
    address: int
    where: str                        # do_sys_openat2+0x7 [module]
    type: str                         # kprobe | kretprobe
    flags: list[str]                  # the kernel's: GONE DISABLED OPTIMIZED FTRACE
    state: str                        # what the live bytes show: int3, optimized, ftrace, disarmed ...
    expected: str | None              # what the flags say the bytes should show
    consistent: bool
    live: bytes
    original: bytes | None
    original_source: str | None
    site: S.Site | None
    handler: str | None               # pre_handler (kprobe_dispatcher, pre_handler_kretprobe, ...)
    post_handler: str | None = None
    ret_handler: str | None = None    # kretprobe's handler
    event: str | None = None          # owning tracefs event (group/event)
    event_tracefs: bool | None = None # event is in tracefs kprobe_events; False: only in memory
                                      # (a perf/BPF probe's local event); None: not known
    hits: int | None = None
    misses: int | None = None
    struct_addr: int | None = None
    aggregate_addr: int | None = None
    detour: int | None = None
    bpf: list = field(default_factory=list)
    source: str = "list"              # list | memory | list+memory
    notes: list = field(default_factory=list)


@dataclass
class KprobeListReport:
    arch: str
    probes: list
    sources: list                     # what was read: kprobes/list, kprobe_table, kprobe_events ...
    notes: list
    all_disarmed: bool = False


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
    return expected == state


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
    """tracefs kprobe events indexed by (p|r, symbol, offset) and by address."""

    def __init__(self, events: list[TraceEvent], resolve=None):
        self.by_sym: dict = {}
        self.by_addr: dict = {}
        self.unresolved = []
        self.resolve = resolve
        for ev in events:
            if ev.address is not None:
                self.by_addr.setdefault((ev.probe_type, ev.address), ev)
            elif ev.symbol:
                self.by_sym.setdefault((ev.probe_type, ev.symbol, ev.offset), ev)
                self.unresolved.append(ev)
        self._resolved = None

    def match(self, probe_type: str, addr: int, sym: str | None, off: int) -> TraceEvent | None:
        want = "r" if probe_type == "kretprobe" else "p"
        ev = self.by_addr.get((want, addr))
        if ev is None and sym:
            ev = self.by_sym.get((want, sym, off))
        if ev is None and self.resolve is not None and self.unresolved:
            if self._resolved is None:      # symbol -> address, once, only when needed
                self._resolved = {}
                for e in self.unresolved:
                    base = self.resolve(e.symbol)
                    if base is not None:
                        self._resolved.setdefault((e.probe_type, base + e.offset), e)
            ev = self._resolved.get((want, addr))
        return ev


def match_event(events: list[TraceEvent], probe_type: str, addr: int, sym: str | None,
                off: int, resolve=None) -> TraceEvent | None:
    return EventIndex(events, resolve).match(probe_type, addr, sym, off)


def build_report(arch: str, listed: list[ListedProbe] | None, walk=None, read=None,
                 symbolize=None, events: list[TraceEvent] = (), profile: dict | None = None,
                 all_disarmed: bool = False, resolve=None, enrich=None,
                 events_known: bool = True) -> KprobeListReport:
    """Join the list, the table walk, the live bytes and the tracefs facts.

    One row per probe, as the kernel's list has (several probes at one address share the
    aggregate's site).  Probes found in memory but missing from the list (or vice versa:
    a registration racing the walk) are kept, with a note.
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
    # struct kprobes by address: top-level (maybe aggregate) and its members
    tops = {}
    members: dict[int, list] = {}
    if walk is not None:
        for p in walk.probes:
            tops[p.addr] = p
            members[p.addr] = list(p.children) if p.aggregate else [p]
    addrs = []
    for lp in listed or []:
        if lp.address not in addrs:
            addrs.append(lp.address)
    for a in tops:
        if a not in addrs:
            addrs.append(a)
    live_cache: dict[int, bytes] = {}
    event_index = EventIndex(list(events), resolve)
    rows = []
    for addr in addrs:
        top = tops.get(addr)
        pool = list(members.get(addr, []))
        lps = [lp for lp in (listed or []) if lp.address == addr]
        if not lps and top is not None:     # memory only (no debugfs, or kptr hidden there)
            for kp in pool:
                kind = "r" if kp.pre_handler_name == "pre_handler_kretprobe" else "k"
                name = sym(addr)
                fl = flags_from_bits(kp.flags)
                topfl = flags_from_bits(top.flags)
                fl = [f for f in fl if f in ("GONE", "DISABLED")] + \
                    [f for f in topfl if f in ("OPTIMIZED", "FTRACE")]
                lps.append(ListedProbe(addr, kind, None, 0, None, fl, f"(memory) {name or hex(addr)}"))
        live = b""
        if read is not None:
            if addr not in live_cache:
                try:
                    live_cache[addr] = read(addr, LIVE_BYTES)
                except ToolkitError as exc:
                    live_cache[addr] = b""
                    notes.append(f"0x{addr:x}: {exc.cause}")
            live = live_cache[addr]
        site = S.classify(live, addr, arch, sym) if live else None
        state = state_of(site) if site else "unknown"
        for lp in lps:
            ptype = "kretprobe" if lp.kind == "r" else "kprobe"
            kp = None
            for cand in pool:
                is_ret = cand.pre_handler_name == "pre_handler_kretprobe"
                if is_ret == (lp.kind == "r"):
                    kp = cand
                    pool.remove(cand)
                    break
            exp = expected_state(lp.flags, arch, all_disarmed)
            if site is None:
                ok = True
            else:
                ok = agrees(exp, state, site)
            original, osrc = original_bytes(arch, state, live, kp, top, lp.flags) if live else (None, None)
            symname, off, mod = lp.symbol, lp.offset, lp.module
            if symname is None and sym(addr):
                where = sym(addr)
            else:
                where = _where(symname, off, mod, addr)
            m = event_index.match(ptype, addr, symname, off)
            ev_name = m.name if m else None
            if kp is not None and enrich is not None and (ev_name is None or ptype == "kretprobe"):
                enrich(kp)      # the container tells the event (perf/BPF probes) and ret handler
            if kp is not None and kp.event:
                ev_name = kp.event
            in_tracefs = True if m is not None else (False if ev_name and events_known else None)
            hits = misses = None
            if ev_name and in_tracefs is not False:     # kprobe_profile lists tracefs events only
                short = ev_name.split("/")[-1]
                if short in profile:
                    hits, misses = profile[short]
            r = ProbeReport(
                address=addr, where=where, type=ptype, flags=list(lp.flags), state=state,
                expected=exp, consistent=ok, live=live, original=original, original_source=osrc,
                site=site, handler=kp.pre_handler_name if kp else None,
                post_handler=kp.post_handler_name if kp else None,
                ret_handler=kp.kretprobe_handler_name if kp else None,
                event=ev_name, event_tracefs=in_tracefs, hits=hits, misses=misses,
                struct_addr=kp.struct_addr if kp else None,
                aggregate_addr=top.struct_addr if top is not None and top.aggregate else None,
                detour=site.target if site is not None and site.kind == S.OPTIMIZED else None,
                bpf=list(kp.bpf_progs) if kp else [],
                source=("list+memory" if kp is not None and not lp.line.startswith("(memory)")
                        else "memory" if lp.line.startswith("(memory)") else "list"),
            )
            if kp is not None and kp.nmissed and misses is None:
                r.misses = kp.nmissed
            if not ok:
                r.notes.append(f"the kernel's flags say {exp}, the live bytes show {state} "
                               "(changed while reading, or patched by something else)")
            if walk is not None and kp is None and not lp.line.startswith("(memory)"):
                r.notes.append("not found in kprobe_table (registered or removed while reading?)")
            if ptype == "kretprobe" and kp is not None and kp.kretprobe_handler_name is None \
                    and kp.pre_handler_name != "pre_handler_kretprobe":
                r.notes.append("listed as kretprobe but its pre_handler is not pre_handler_kretprobe")
            rows.append(r)
        for kp in pool:   # in memory but not in the list
            notes.append(f"struct kprobe at 0x{kp.struct_addr:x} for 0x{addr:x} is not in kprobes/list")
    rows.sort(key=lambda r: (r.where, r.type))
    if all_disarmed:
        notes.append("kprobes are globally disarmed (/sys/kernel/debug/kprobes/enabled is 0)")
    if arch == "aarch64" and rows:
        notes.append(S.ARM64_KPROBE_NOTE)
    return KprobeListReport(arch, rows, sources, notes, all_disarmed)


@dataclass
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
