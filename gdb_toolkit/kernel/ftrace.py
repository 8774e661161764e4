"""``ftrace-site FUNC``: is FUNC's fentry site patched, and to what.

At boot ftrace turns every ``call __fentry__`` into a 5-byte NOP (arm64: two NOPs);
enabling any ftrace user (function tracer, kprobe on ftrace, BPF fentry, livepatch)
makes it ``call ftrace_caller`` / ``ftrace_regs_caller`` or a per-ops trampoline.
The live bytes come from kcore; tracefs ``enabled_functions`` says who asked for it.
"""
import os
from dataclasses import dataclass, field

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kprobe_text as T
from gdb_toolkit.kernel import sites as S


@dataclass
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
    target_symbol: str | None
    original: bytes | None
    traceable: bool | None     # listed in available_filter_functions
    enabled: dict | None       # the enabled_functions entry
    kprobes: list              # kprobes/list lines at the site
    notes: list = field(default_factory=list)


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
    off = S.fentry_offset(code, arch)
    site_addr = addr + off
    site = S.classify(code[off:], site_addr, arch, session.symbolize)
    if off:
        notes.append(f"the site is at +{off} after the {'ENDBR64' if arch == 'x86_64' else 'BTI c'}")
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
        enabled = en.get(name)
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
