"""``ftrace-site FUNC``: is FUNC's ftrace site patched, and to what.

x86_64: at boot ftrace turns every ``call __fentry__`` into a 5-byte NOP; enabling any ftrace
user (function tracer, kprobe on ftrace, BPF fentry, livepatch) makes it ``call ftrace_caller``
/ ``ftrace_regs_caller`` or a per-ops trampoline.

arm64 (``-fpatchable-function-entry=2``): the compiler emits two NOPs at the entry; at boot
ftrace_init_nop() turns the first into ``mov x9, x30`` (idle: ``mov x9, x30; nop``); tracing
turns the second -- ftrace's record address, func+4 -- into ``bl ftrace_caller`` (a module's
goes through its ftrace PLT).  A kprobe on the function replaces func+0 with ``brk #4``
(arm64 kprobes never use ftrace), so a probed and traced function reads ``brk #4; bl
ftrace_caller``.  See sites.py.

The live bytes come from kcore; tracefs ``enabled_functions`` says who asked for it.
"""
import os
import re

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.location import Location, kernel_location, kernel_location_of
from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.kernel import kprobe_text as T
from gdb_toolkit.kernel import sites as S


@record
class FtraceSiteReport:
    function: str
    function_address: int
    site_address: int
    arch: str
    live: bytes
    state: str                 # idle | patched | not-a-site
    kind: str                  # the Site kind
    description: str
    target_address: int | None
    #: the target as the terminal says it ("ftrace_caller", "ftrace_caller via the module PLT at
    #: 0x..."); the JSON says it as target_location (kprobe-list's key)
    target_symbol: str | None = field(metadata={"json_skip": True})
    original: bytes | None
    traceable: bool | None     # listed in available_filter_functions
    enabled: dict | None       # the enabled_functions entry
    kprobes: list              # kprobes/list lines at the site (arm64: on the patchable entry)
    notes: list = field(default_factory=list)
    entry_address: int | None = None   # arm64: the patchable entry (func, or func+4 after BTI)
    target_location: Location | None = None   # the patched call's target (its final one on arm64)

    def __post_init__(self):
        if self.target_location is None and self.target_address is not None:
            self.target_location = kernel_location_of(self.target_address, self.target_symbol)


# JSON keys (contract v3, as kprobe-list's): the site's bytes are hex strings
json_keys(FtraceSiteReport, {"live": "live_hex", "original": "original_hex"})


#: the kernel's %pS of a trampoline's ops->func in enabled_functions:
#: ``kprobe_ftrace_handler+0x0/0x1b0``, ``my_handler+0x10/0x40 [mymod]``
_PS_SYMBOL = re.compile(r"^([^\s+/\[]+)\+0x([0-9a-fA-F]+)/0x[0-9a-fA-F]+(?: \[([^\]\s]+)\])?$")


def enabled_entry(entry: dict | None, address_of) -> dict | None:
    """An enabled_functions entry (kprobe_text.parse_enabled_functions) for the JSON: its
    handler, the kernel's %pS text, as a location object (contract v4, as kprobe-list's
    handler_location); *address_of(name)* gives the symbol's address (``mod:name`` for a
    module's) or None.  The line itself stays in ``text``."""
    if entry is None:
        return None
    out = {k: v for k, v in entry.items() if k != "handler"}
    text, loc = entry.get("handler"), None
    if text:
        m = _PS_SYMBOL.match(text)
        if m:
            name, off, mod = m.group(1), int(m.group(2), 16), m.group(3)
            base = address_of(f"{mod}:{name}" if mod else name)
            loc = kernel_location(base + off if base is not None else None, name, off, mod)
        else:
            loc = kernel_location_of(None, text)
    out["handler_location"] = loc
    return out


def _traceable(tracefs: str | None, name: str) -> bool | None:
    if not tracefs:
        return None
    text = T.read_text(os.path.join(tracefs, "available_filter_functions"))
    if text is None:
        return None
    text = "\n" + text
    return f"\n{name}\n" in text or f"\n{name} [" in text


def ftrace_site(session, func: str) -> FtraceSiteReport:
    addr = session.parse_address(func)
    sym = session.symbolize(addr) or f"0x{addr:x}"
    name = sym.split("+")[0].split()[0]
    notes = []
    if "+" in sym:
        notes.append(f"{func} is inside {name}; looking at the site at its start")
        try:
            addr = session.symbols.address(name) or addr
        except ToolkitError:
            pass
    code = session.read(addr, 16)
    arch = session.arch
    if arch == "aarch64":
        return _arm64_site(session, name, addr, code, notes)
    off = S.fentry_offset(code, arch)
    site_addr = addr + off
    site = S.classify(code[off:], site_addr, arch, session.symbolize)
    if off:
        what = ("BTI c" if arch != "x86_64" else "ENDBR64" if code[:4] == S.X86_ENDBR64
                else "sealed ENDBR64 (IBT's 4-byte NOP)")
        notes.append(f"the site is at +{off} after the {what}")
    if site.kind == S.FTRACE_NOP:
        state, original = "idle", code[off:off + len(S.ftrace_nop(arch))]
    elif site.kind == S.FTRACE_CALL:
        state, original = "patched", S.ftrace_nop(arch)
    elif site.kind in (S.INT3, S.BRK, S.OPTIMIZED):
        state, original = "patched", None
        notes.append("a kprobe breakpoint sits on the site (not using ftrace)")
    elif site.kind == S.CALL and site.target_symbol and site.target_symbol.startswith("__fentry__"):
        state, original = "not-a-site", None
        notes.append("still the compiler's call __fentry__: ftrace never converted it")
    else:
        state, original = "not-a-site", None
        notes.append("no fentry NOP or ftrace call at the start: the function is notrace, "
                     "inlined elsewhere, or the kernel lacks CONFIG_DYNAMIC_FTRACE")
    tracefs = session.tracefs_dir()
    enabled = None
    if tracefs:
        en = T.parse_enabled_functions(T.read_text(os.path.join(tracefs, "enabled_functions")) or "")
        enabled = enabled_entry(en.get(name), session.address_of)
        if state == "patched" and site.kind == S.FTRACE_CALL and enabled is None:
            notes.append("patched but not in enabled_functions (changed while reading?)")
        if state == "idle" and enabled is not None:
            notes.append("enabled_functions lists it but the site is idle (being updated?)")
    else:
        notes.append("tracefs is not mounted: who enabled the site is unknown" if session.is_live else
                     "no tracefs in a dump or a halted kernel: who enabled the site is unknown")
    listed = []
    try:
        listed = [lp.line for lp in (session.listed_probes() or []) if lp.address == site_addr]
    except ToolkitError:
        pass
    return FtraceSiteReport(name, addr, site_addr, arch, code[off:off + 8], state, site.kind,
                            site.description, site.target, site.target_symbol, original,
                            _traceable(tracefs, name), enabled, listed, notes)


def _code_at(session):
    def read(a):
        return session.read(a, 16)
    return read


def _arm64_site(session, name: str, addr: int, code: bytes, notes: list) -> FtraceSiteReport:
    """arm64: the two-instruction patchable entry; the ftrace site proper is its second slot."""
    replaced = None
    if code[:4] == S.kprobe_breakpoint("aarch64"):
        from gdb_toolkit.kernel.memory_views import probe_originals

        orig = probe_originals(session).get(addr)
        if orig and orig[:4] != S.ftrace_nop("aarch64")[:4]:
            replaced = orig[:4]     # the brk is over the function's own first instruction
    live_code, code = code, (replaced + code[4:] if replaced else code)
    off = S.fentry_offset(code, "aarch64")
    e = S.arm64_entry(code[off:], addr + off, session.symbolize, _code_at(session))
    live = live_code[off:off + 8]
    if replaced:
        notes.append(f"a kprobe's brk #0x4 at +0 replaced the function's own first instruction "
                     f"{replaced.hex(' ')} (p->opcode), not ftrace's mov x9, x30")
    site_addr = e.call_slot_address
    target, target_symbol = e.target, e.target_symbol
    tracefs = session.tracefs_dir()
    traceable = _traceable(tracefs, name)
    # ftrace makes every entry it records 'mov x9, x30; nop' (ftrace_init_nop(), at boot or
    # module load), so NOPs, or a brk over the first of them, are an entry only if ftrace
    # records the function: an assembly routine's own NOPs (copy_page: bti c, then the three
    # NOPs of an alternative_else_nop_endif) are not one
    own_nops = traceable is not True and (
        e.state == S.UNINIT_ENTRY or (e.state == S.IDLE_ENTRY and e.first == "brk"
                                      and traceable is False))
    if off and e.state in (S.TRACED_ENTRY, S.IDLE_ENTRY) and not own_nops:
        notes.append("the patchable entry follows the function's BTI c (+4)")
    if own_nops:
        state, kind, target, target_symbol = "not-a-site", S.PLAIN, None, None
        first = "a kprobe's brk #0x4 and a NOP" if e.first == "brk" else "NOPs"
        description = (f"{first} at +{off:#x}, not a patchable entry: ftrace makes each entry "
                       "it records mov x9, x30; nop")
        why = (f"{name} is not in available_filter_functions" if traceable is False else
               "who traces what is unknown here (no tracefs), but an entry ftrace records "
               "reads mov x9, x30 once ftrace_init() has run")
        notes.append(f"no ftrace site: {why}; the NOPs are the function's own instructions "
                     "(an assembly routine's alternative or padding), not the compiler's "
                     "patchable entry")
        if off:
            notes.append("it starts with BTI c, the landing pad every assembly routine "
                         "(SYM_FUNC_START) has")
        e = S.Arm64Entry(e.address, e.first, e.call_slot, S.NO_ENTRY)
    elif e.state == S.TRACED_ENTRY:
        state, kind = "patched", S.FTRACE_CALL
        description = f"the call slot at +{site_addr - addr:#x} calls into ftrace (bl)"
    elif e.state == S.IDLE_ENTRY:
        state, kind = "idle", S.FTRACE_NOP
        description = (f"nop at +{site_addr - addr:#x}; ftrace_init_nop()'s mov x9, x30 "
                       "before it (idle patchable entry)")
        target = target_symbol = None
    elif e.state == S.UNINIT_ENTRY:          # in ftrace's records, yet still two NOPs
        state, kind = "idle", S.FTRACE_NOP
        description = "the compiler's two NOPs (ftrace has not initialised this entry)"
        notes.append(f"{name} is in available_filter_functions but ftrace_init_nop() has not "
                     "made its entry mov x9, x30 (being updated, or a kernel halted in early boot)")
    else:
        state, kind = "not-a-site", S.PLAIN
        site = S.classify(live, addr + off, "aarch64", session.symbolize)
        description = site.description
        target = target_symbol = None
        if e.call_slot == "call":
            description = f"bl {e.target_symbol or hex(e.target)} at +4 is not an ftrace entry"
        notes.append("no patchable function entry (mov x9, x30 / nop) at the start: the "
                     "function is notrace or inlined, or the kernel lacks "
                     "DYNAMIC_FTRACE_WITH_REGS/ARGS (older arm64 kernels call _mcount after "
                     "the prologue instead)")
    if e.kprobe and not own_nops:
        notes.append(f"a kprobe's brk #0x4 replaced the entry's first instruction (mov x9, x30) "
                     f"at 0x{e.address:x}; arm64 kprobes do not use ftrace, the call slot at "
                     f"+4 is ftrace's own ({'traced' if state == 'patched' else 'idle'})")
    enabled = None
    if tracefs:
        en = T.parse_enabled_functions(T.read_text(os.path.join(tracefs, "enabled_functions")) or "")
        enabled = enabled_entry(en.get(name), session.address_of)
        if state == "patched" and enabled is None:
            notes.append("patched but not in enabled_functions (changed while reading?)")
        if state == "idle" and enabled is not None:
            notes.append("enabled_functions lists it but the call slot is a NOP (being updated?)")
    else:
        notes.append("tracefs is not mounted: who enabled the site is unknown")
    listed = []
    try:
        listed = [lp.line for lp in (session.listed_probes() or [])
                  if e.address <= lp.address < e.address + 8]
    except ToolkitError:
        pass
    return FtraceSiteReport(name, addr, site_addr, "aarch64", live, state, kind, description,
                            target, target_symbol, e.original(), traceable, enabled, listed,
                            notes, entry_address=None if own_nops else e.address)
