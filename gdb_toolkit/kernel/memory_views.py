"""Reports for looking at kernel memory: kcore layout, disassembly, hex dumps, symbols.

Each function takes a KernelSession (or plain data) and returns a record; the gdb
commands kcore, kdis, kx and ksym only render them.
"""
import re
import _struct as struct   # what struct.py re-exports (see plt/slots.py)
from gdb_toolkit.common.record import field, record

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.location import KERNEL_OBJECT, Location
from gdb_toolkit.kernel import sites as S


# -- kcore ----------------------------------------------------------------------------

@record
class SegmentInfo:
    start_address: int        # virtual (kcore) or physical (a dump: see "physical")
    end_address: int
    size: int
    file_offset: int | None
    label: str
    physical: bool = False


@record
class KcoreReport:
    path: str                 # what was opened: /proc/kcore, a vmcore, gdb's target
    arch: str
    release: str | None
    build_id: str | None
    kaslr_offset: int | None
    kaslr_source: str | None
    page_size: int | None
    segments: list
    vmcoreinfo: dict
    notes: list = field(default_factory=list)
    source_kind: str = "live"  # live | vmcore | gdb


# x86_64's module area (MODULES_VADDR..MODULES_END, arch/x86/include/asm/pgtable_64_types.h)
X86_64_MODULES = (0xFFFFFFFFC0000000, 0xFFFFFFFFFF000000)
# arm64's: the 128 MiB below the kernel image at the start of the (48-bit) kernel VA space,
# MODULES_VADDR = _PAGE_END(VA_BITS_MIN) .. MODULES_END (arch/arm64/include/asm/memory.h);
# with RANDOMIZE_MODULE_REGION_FULL modules may also sit in vmalloc space, near the image
AARCH64_MODULES = (0xFFFF800000000000, 0xFFFF800008000000)
# the first symbol inside fs/proc/kcore.c's KCORE_TEXT (_text.._end): arm64's kallsyms has no
# _text (its first text symbol is _stext, 64 KiB in); _sinittext and _etext are inside too
TEXT_MARKERS = ("_text", "_stext", "_sinittext", "_etext")


def kernel_text_address(symbols) -> int | None:
    """An address inside the kernel image's text, from the first marker symbol the source has."""
    for name in TEXT_MARKERS:
        addr = symbols.address(name)
        if addr:
            return addr
    return None


def label_segments(segments, symbols=None, text_addr: int | None = None,
                   arch: str = "x86_64") -> list[str]:
    """A best-effort name for each PT_LOAD: kernel text, modules, vmalloc, direct map..."""
    labels = []
    mod_addrs = []
    if symbols is not None:
        try:
            # real modules' code (per-cpu symbols and the kernel's pseudo-modules excluded)
            mod_addrs = [s.address for s in symbols._tail_index()
                         if s.is_text and s.module and not s.module.startswith("__builtin__")
                         and s.module != "bpf"][:64]
        except (ToolkitError, AttributeError):
            mod_addrs = []
    # arm64's image lies inside its vmalloc range, and kcore lists both: text is the smallest
    text_seg = min((seg for seg in segments if text_addr is not None
                    and seg[0] <= text_addr < seg[0] + seg[1]), key=lambda seg: seg[1], default=None)
    for seg in segments:
        vaddr, size = seg[0], seg[1]
        end = vaddr + size
        if text_seg is not None and (vaddr, size) == (text_seg[0], text_seg[1]):
            labels.append("kernel text")
        elif arch == "x86_64" and vaddr < X86_64_MODULES[1] and end > X86_64_MODULES[0]:
            labels.append("modules")
        elif arch == "aarch64" and AARCH64_MODULES[0] <= vaddr and end <= AARCH64_MODULES[1]:
            labels.append("modules")
        elif any(vaddr <= a < end for a in mod_addrs) and size < 1 << 40:
            labels.append("modules")
        elif size >= 1 << 40:
            labels.append("vmalloc/vmemmap")
        elif vaddr < 0x800000000000:
            labels.append("user")
        else:
            labels.append("RAM / other")
    return labels


def kcore_report(session) -> KcoreReport:
    mem = session.memory
    notes = []
    text_addr, syms = None, None
    try:
        syms = session.symbols
        text_addr = kernel_text_address(syms)
    except ToolkitError as exc:
        notes.append(f"no symbols for labels: {exc.cause}")
    info = mem.vmcoreinfo          # after the symbols: a halted kernel's is read through them
    offset = mem.kaslr_offset
    source = "VMCOREINFO KERNELOFFSET" if offset is not None else None
    if offset is None and syms is not None and mem.arch == "x86_64":
        offset = syms.kaslr_offset(arch=mem.arch)
        source = "_text - 0xffffffff81000000" if offset is not None else None
    if not info:
        notes.append("no VMCOREINFO (kernel older than 4.19, or not a kernel core)" if session.kind
                     != "gdb" else "no VMCOREINFO found in the halted kernel's memory")
    elif session.kind == "gdb":
        notes.append("VMCOREINFO read from the halted kernel's memory (vmcoreinfo_data)")
    regions = mem.regions()
    if regions and regions[0].physical:
        labels = ["physical memory"] * len(regions)
    else:
        labels = label_segments([(r.start, r.size) for r in regions], syms, text_addr, mem.arch)
    segs = [SegmentInfo(r.start, r.end, r.size, r.offset, lab, r.physical)
            for r, lab in zip(regions, labels)]
    page = info.get("PAGESIZE")
    if syms is not None and not session.is_live:
        notes += [f"symbols: {d}" for d in session.symbol_sources()]
        notes += [f"symbols: {d}" for d in session.symbol_notes()]
    rep = KcoreReport(mem.description, mem.arch, info.get("OSRELEASE"), info.get("BUILD-ID"), offset,
                      source, int(page) if page and page.isdigit() else None, segs, dict(info), notes)
    rep.source_kind = session.kind
    return rep


# -- kdis -------------------------------------------------------------------------------

@record
class InsnRow:
    address: int
    location: Location                 # the instruction's position (vfs_write+0x2 as an object)
    raw: bytes
    text: str
    target_location: Location | None = None   # a branch/call target's position
    note: str = ""                  # int3 / ftrace / kprobe cross-check

    @property
    def symbol(self) -> str:
        """``sym+0xoff [mod]`` for the terminal (the JSON says it as ``location``)."""
        return self.location.kernel_text() or ""

    @property
    def target_symbol(self) -> str | None:
        return self.target_location.kernel_text() if self.target_location is not None else None


@record
class KdisReport:
    address: int
    location: Location
    count: int
    insns: list
    kprobe_addresses: list  # registered kprobes within the range
    notes: list = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return self.location.kernel_text() or f"0x{self.address:x}"


_HEX = re.compile(r"0x([0-9a-f]{8,16})")


PADDING_NOTE = ("int3 padding after ret/jmp (alternatives or straight-line-speculation "
                "hardening), not a breakpoint")


def _ends_flow(ins) -> bool:
    """Execution never falls through *ins*: whatever follows it is padding, not code."""
    return ins.mnemonic in ("ret", "retq", "jmp", "ud2", "iret", "iretq") or \
        ins.mnemonic.startswith("ret")


def kdis(session, addr: int, count: int = 16, kprobe_addrs: set[int] | None = None,
         whole_function: bool = False) -> KdisReport:
    from gdb_toolkit.common.disasm import disassemble

    arch = session.arch
    notes = []
    length = count * 15 if arch != "aarch64" else count * 4
    start = addr
    if whole_function:
        try:
            start, end = session.function_bounds(addr)
        except ToolkitError:
            start, end = addr, None
        if end is None or end - start > 1 << 16:
            notes.append("function end unknown; showing the first instructions")
            end = start + length
        length = end - start
        count = 0
    data = _read_some(session, start, length, notes)
    insns = disassemble(data, start, arch, count=count)
    rows = []
    prev = None          # the instruction before, for int3 padding after ret/jmp
    for ins in insns:
        target = None
        m = _HEX.search(ins.op_str)
        if m and ins.mnemonic != "(bad)":
            target = session.locate(int(m.group(1), 16))
            target = target if target.symbol else None
        site = S.classify(data[ins.address - start:ins.address - start + 16], ins.address, arch,
                          session.symbolize)
        note = ""
        listed = ins.address in (kprobe_addrs or ())
        if site.kind == S.INT3 and not listed and prev is not None and _ends_flow(prev):
            note = PADDING_NOTE
        elif site.kind in (S.INT3, S.BRK, S.OPTIMIZED, S.FTRACE_CALL, S.OTHER_BRK) or listed:
            from gdb_toolkit.kernel.kprobes import cross_check
            note = cross_check(site, kprobe_addrs) if site.kind != S.OTHER_BRK else site.description
        elif site.kind == S.FTRACE_NOP and arch != "aarch64":   # arm64: the entry notes below
            sym = session.symbolize(ins.address) or ""
            if "+" not in sym or sym.endswith("+0x4"):
                note = "idle ftrace site (NOP)"
        rows.append(InsnRow(ins.address, session.locate(ins.address), ins.raw, ins.text, target, note))
        if note != PADDING_NOTE:
            prev = ins
    if arch == "aarch64":       # the patchable entry's two slots (sites.py)
        entry = S.arm64_entry_notes(data, start, session.symbolize, kprobe_addrs,
                                    lambda a: session.read(a, 16),
                                    _brk_originals(session, data, start, kprobe_addrs))
        for r in rows:
            r.note = entry.get(r.address, r.note)
    here = sorted(a for a in (kprobe_addrs or ()) if rows and rows[0].address <= a <= rows[-1].address)
    return KdisReport(addr, session.locate(addr), len(rows), rows, here, notes)


def _brk_originals(session, data: bytes, start: int, kprobe_addrs) -> dict[int, bytes] | None:
    """arm64: for each listed kprobe whose brk is in *data*, the instruction it replaced
    (p->opcode, read by kprobe-list's walk) -- only asked when there is one."""
    brk = S.kprobe_breakpoint("aarch64")
    here = [a for a in (kprobe_addrs or ()) if start <= a and a - start + 4 <= len(data)
            and data[a - start:a - start + 4] == brk]
    return probe_originals(session) if here else None


def probe_originals(session) -> dict[int, bytes]:
    """address -> the bytes each armed kprobe replaced, from p->opcode (kprobe-list's walk of
    kernel memory); {} when that cannot be read."""
    try:
        rep = session.kprobe_report()
    except ToolkitError:
        return {}
    return {r.address: r.original for r in rep.probes
            if r.original and r.original_source == "p->opcode"}


def _read_some(session, addr: int, length: int, notes: list) -> bytes:
    """Read up to *length* bytes, shortening at the first page that cannot be read."""
    try:
        return session.read(addr, length)
    except ToolkitError:
        got = b""
        page = 4096
        cur = addr
        while len(got) < length:
            n = min(length - len(got), page - (cur & (page - 1)))
            try:
                got += session.read(cur, n)
            except ToolkitError:
                break
            cur += n
        if not got:
            raise
        notes.append(f"stopped at 0x{addr + len(got):x}: memory past it cannot be read")
        return got


# -- kx -----------------------------------------------------------------------------------

@record
class DumpWord:
    """--words: one 64-bit word of a row."""
    value: str                              # "0x%016x"
    target_location: Location | None        # where it points, when kallsyms names it


@record
class DumpRow:
    address: int
    hex: str
    ascii: str
    words: list = field(default_factory=list)       # [DumpWord], with --words


@record
class KxReport:
    address: int
    location: Location
    size: int
    rows: list
    data: bytes = field(default=b"", metadata={"json_skip": False})
    notes: list = field(default_factory=list)    # human sentences (docs/json.md: every result has them)

    @property
    def symbol(self) -> str:
        return self.location.kernel_text() or f"0x{self.address:x}"


def dump_lines(address: int, data: bytes, per: int = 16):
    """(address, hex, ascii) of each *per*-byte line of a dump.  kx's rows (its JSON) are 16
    bytes; its text uses 8 or 4 when a 16-byte line would not fit the terminal."""
    for off in range(0, len(data), per):
        chunk = data[off:off + per]
        yield address + off, chunk.hex(" "), "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)


def kx(session, addr: int, length: int = 64, words: bool = False) -> KxReport:
    from gdb_toolkit.common.args import check_int_option

    check_int_option("length", length, 1, 1 << 20, "bytes")
    data = session.read(addr, length)
    rows = []
    for address, hex_text, ascii_text in dump_lines(addr, data):
        r = DumpRow(address, hex_text, ascii_text)
        if words:
            chunk = data[address - addr:address - addr + 16]
            for w in range(0, len(chunk) - 7, 8):
                v = struct.unpack_from("<Q", chunk, w)[0]
                loc = session.locate(v) if v >= 0xFF00000000000000 else None
                r.words.append(DumpWord(f"0x{v:016x}", loc if loc and loc.symbol else None))
        rows.append(r)
    return KxReport(addr, session.locate(addr), len(data), rows, data)


# -- ksym ----------------------------------------------------------------------------------

@record
class SymbolMatch:
    """One kallsyms symbol: ``address`` is its start (as kallsyms lists it); where the query
    falls -- an address query's position inside it, else its start -- is ``location``, the
    contract's location object (its ``offset`` from the start).  ``offset`` alone is not in
    the JSON: beside ``address`` it read as a location whose address was not the position."""
    symbol: str
    address: int
    symbol_type: str                 # the kallsyms letter: T t D d B b R r ...
    object: str | None               # the module holding it, "vmlinux" for the kernel image
    offset: int = field(default=0, metadata={"json_skip": True})
    size: int | None = None          # distance to the next symbol
    prototype: str | None = None     # from BTF when it is a function
    btf_kind: str | None = None
    kind: str = ""                   # the letter's category: text data rodata bss weak ...
    location: Location | None = None

    def __post_init__(self):
        self.kind = self.kind or symbol_kind(self.symbol_type)
        self.object = self.object or KERNEL_OBJECT       # the location object's word (ktrace's)
        if self.location is None:
            self.location = Location(self.address + (self.offset or 0), self.symbol, self.offset or 0,
                                     object=self.object)

    @property
    def module(self) -> str | None:
        """The module's name, None for the kernel image."""
        return None if self.object == KERNEL_OBJECT else self.object


# nm(1)'s letters as category words (lower case: local; upper case: global)
_KIND_OF_LETTER = {"t": "text", "i": "text", "w": "weak", "v": "weak", "d": "data", "g": "data",
                   "r": "rodata", "n": "rodata", "b": "bss", "s": "bss", "c": "bss",
                   "a": "absolute", "u": "undefined"}


def symbol_kind(letter: str) -> str:
    """'T' -> 'text', 'd' -> 'data'...: the category a kallsyms/System.map letter names."""
    return _KIND_OF_LETTER.get(letter.lower(), "other") if letter else "other"


@record
class KsymReport:
    query: str
    matches: list
    symbol_source: str              # where the symbols came from (a kallsyms file, ...)
    notes: list = field(default_factory=list)


def ksym(session, query: str, btf: bool = True) -> KsymReport:
    """Symbols by name or address; names in the report as printed (escape_name), and a name
    given as the toolkit printed it (``ev\\xe9il``) finds that symbol."""
    from gdb_toolkit.common.names import escape_name, typed_name

    syms = session.symbols
    matches = []
    raw_names = []                  # the symbols' own names, for BTF
    q = query.strip()
    # an address: 0xHEX, 16 hex digits, a decimal, or SYMBOL+OFFSET (as kdis/kx take them)
    if re.fullmatch(r"0[xX][0-9a-fA-F]+|[0-9a-fA-F]{16}|\d+", q) or re.search(r"[+-]", q):
        addr = session.parse_address(q)
        s = syms.containing(addr)
        if s is not None:
            nxt = syms.next_symbol_after(s.address)
            matches.append(SymbolMatch(escape_name(s.name), s.address, s.type,
                                       escape_name(s.module) if s.module else None, addr - s.address,
                                       nxt - s.address if nxt else None))
            raw_names.append((s.name, s.module))
    else:
        module = None
        name = q
        if ":" in q:
            module, name = q.split(":", 1)
        found = syms.all_named(name)
        if not found and typed_name(name) is not None:
            found = syms.all_named(typed_name(name))        # the name as printed
        if module and typed_name(module) is not None and not any(s.module == module for s in found):
            module = typed_name(module)
        for s in found:
            if module and s.module != module:
                continue
            nxt = syms.next_symbol_after(s.address)
            matches.append(SymbolMatch(escape_name(s.name), s.address, s.type,
                                       escape_name(s.module) if s.module else None, 0,
                                       nxt - s.address if nxt else None))
            raw_names.append((s.name, s.module))
    notes = []
    if btf and matches:
        try:
            base = session.btf
            mods: dict = {}
            for m, (raw, module) in zip(matches, raw_names):
                b = base
                if module:
                    if module not in mods:     # module BTF is split on vmlinux's
                        mods[module] = session.module_btf(module)
                    b = mods[module] or base
                t = b.find(raw, "func") or b.find(raw, "var")
                if t is not None:
                    m.btf_kind = t.kind_name
                    m.prototype = b.c_decl(t.id) if t.kind_name == "func" else \
                        b.c_decl(t.ref, t.name)
        except ToolkitError as exc:
            notes.append(f"no BTF prototypes: {exc.cause}")
    return KsymReport(q, matches, syms.path, notes)
