"""GOT slot states: the address space of loaded objects, the binding decision, the classifier.

A slot is *unresolved* when its current value is still the file's value plus the load
bias (it points back into the PLT's lazy stub), *resolved* when ld.so rewrote it on the
first call (lazy binding), *bound-at-load* when ld.so filled it before the code ran
(BIND_NOW, dlopen(RTLD_NOW), LD_BIND_NOW, GLOB_DAT, IRELATIVE, TLS), *null* for an absent
weak symbol, and *not-relocated* when the process stopped before its object was relocated.

Whether an object is bound lazily is decided from the process, not from the file: ld.so
installs the lazy resolver in GOT[2] (and the object's link_map in GOT[1]) only when it
relocates the object lazily; ``-z now``, ``LD_BIND_NOW`` and ``dlopen(RTLD_NOW)`` leave both 0.
"""
# struct.py and bisect.py only re-export CPython's C modules _struct and _bisect; a first
# 'got' imports them directly: each stdlib module found on sys.path costs ~0.1 ms in gdb
import _bisect as bisect
import re
from functools import cached_property

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import SlotFields, field, record
from gdb_toolkit.plt.elf_model import ObjectModel, SlotSpec
from gdb_toolkit.plt.reloc_types import TLS_KINDS

#: slots further apart than this are read separately (a crafted relocation far away costs nothing)
READ_GAP = 4096
#: the most bytes of GOT read from the target for one command
MAX_SLOT_BYTES = 64 << 20


class ProcessEnv(SlotFields):
    """What the process's environment says about binding (read from /proc/PID/environ):
    LD_BIND_NOW, LD_BIND_NOT, the LD_AUDIT modules (whose la_symbind may bind a symbol
    to any address), LD_PROFILE (ld.so profiles that object's PLT calls) and LD_PRELOAD."""
    __slots__ = ('bind_now', 'bind_not', 'known', 'audit', 'profile', 'preload')

    def __init__(self, bind_now=False, bind_not=False, known=False, audit=(), profile=False, preload=()):
        self.bind_now = bind_now
        self.bind_not = bind_not
        self.known = known
        self.audit = tuple(audit)
        self.profile = profile
        self.preload = tuple(preload)


class Binding(SlotFields):
    """How ld.so bound one object in this process, and why we say so.  *no_write*: why ld.so
    resolves its lazy slots on every call without writing them ("LD_BIND_NOT", or
    "_dl_runtime_profile" for an rtld-audit module's la_pltenter/la_pltexit or LD_PROFILE),
    else ""."""
    __slots__ = ('mode', 'reason', 'no_write')

    def __init__(self, mode, reason, no_write=""):
        self.mode = mode
        self.reason = reason
        self.no_write = no_write


@record(eq=False)      # identity: one per mapping (scope lists test membership 100k times)
class LoadedObject:
    path: str
    bias: int
    model: ObjectModel = field(metadata={"json_skip": True}, repr=False)
    namespace: int = 0
    link_map: int | None = None          # address of its struct link_map (None: file view)
    binding: Binding | None = None       # decided from the process (decide_binding)
    order: int = 0                       # position in the dynamic linker's list (lookup order)
    in_memory: bool = False              # no file: the kernel's vDSO, read from the target
    alias: bool = False                  # the same mapping as a base-namespace object (ld.so,
                                         # listed in every dlmopen namespace): looked up, not listed
    relocated: bool = True               # False: mapped but not relocated yet (relocation_probe)
    preloaded: bool = False              # LD_PRELOAD / /etc/ld.so.preload (mark_preloaded)

    @property
    def listable(self) -> bool:
        """Has slots of its own to list (not the vDSO, not a namespace's alias of ld.so)."""
        return not self.in_memory and not self.alias

    @cached_property
    def name(self) -> str:
        base = self.model.name
        return base if not self.namespace else f"{base}[ns{self.namespace}]"

    @cached_property
    def start(self) -> int:
        return self.model.span[0] + self.bias

    @cached_property
    def end(self) -> int:
        return self.model.span[1] + self.bias

    @property
    def bind_not(self) -> bool:
        """LD_BIND_NOT or a profiling resolver: ld.so resolves every lazy call again and never
        writes the slot (``no_write`` says which)."""
        return self.binding is not None and self.binding.mode == "lazy" and bool(self.binding.no_write)

    @property
    def no_write(self) -> str:
        """Why the slots are never written: "LD_BIND_NOT", "_dl_runtime_profile", or ""."""
        return self.binding.no_write if self.bind_not else ""

    @property
    def lazy(self) -> bool:
        """Are this object's JUMP_SLOTs bound on first call in this process?"""
        if self.binding is not None:
            return self.binding.mode in ("lazy", "file-lazy")
        return not self.model.bind_now and not self.model.is_static


def relocation_probe(model: ObjectModel) -> tuple[int, int, int | None] | None:
    """A word that tells whether ld.so has relocated an object yet: (link-time address, the
    word in the file, the word once relocated minus the load bias, or None when it is not
    known in advance).  ld.so lists an object it maps (dlopen's r_debug RT_ADD/RT_CONSISTENT
    stop, gdb's 'catch load') before it relocates it; until then the GOT holds the file's
    words (a GLOB_DAT 0, which is not "a weak symbol defined nowhere").  The word: a RELATIVE
    relocation's (its addend + bias once relocated), else a JUMP_SLOT with a file value (the
    unbiased lazy stub until relocated), else DT_RELR's first address.  None: no such
    relocation."""
    cached = model.__dict__.get("_relocation_probe", False)
    if cached is not False:
        return cached
    model.__dict__["_relocation_probe"] = probe = _find_probe(model)
    return probe


def _find_probe(model: ObjectModel):
    elf = model._elf
    if elf is None or model.is_static:
        return None
    from gdb_toolkit.plt.elf_file import SHF_ALLOC, SHT_REL, SHT_RELA
    from gdb_toolkit.plt.reloc_types import short_name
    lay = elf.layout
    jump = None
    try:
        for sec in elf.sections:        # the first entries of each table: no whole-table decode
            if sec.type not in (SHT_RELA, SHT_REL) or not sec.flags & SHF_ALLOC:
                continue
            st = lay.rela if sec.type == SHT_RELA else lay.rel
            data = elf.section_data(sec)[: 64 * st.size]
            for row in st.iter_unpack(data[: len(data) // st.size * st.size]):
                kind = short_name(elf.machine, row[1] & ((1 << lay.sym_shift) - 1))
                if kind == "RELATIVE":
                    raw = elf.read_vaddr(row[0], model.wordsize)
                    if raw is not None:
                        word = int.from_bytes(raw, "little")
                        return row[0], word, row[2] if sec.type == SHT_RELA else word
                elif kind == "JUMP_SLOT" and jump is None:
                    raw = elf.read_vaddr(row[0], model.wordsize)
                    if raw is not None and int.from_bytes(raw, "little"):
                        jump = (row[0], int.from_bytes(raw, "little"), None)
        # packed relative relocations (-z pack-relative-relocs, DT_RELR): the table's first
        # entry is an address whose word gets + bias, as a REL RELATIVE's does
        relr = elf.dyn_values(36)
        raw = elf.read_vaddr(relr[0], model.wordsize) if relr else None
        first = int.from_bytes(raw, "little") if raw else 1
        if not first & 1:
            raw = elf.read_vaddr(first, model.wordsize)
            if raw is not None:
                word = int.from_bytes(raw, "little")
                return first, word, word
    except ToolkitError:
        return None
    return jump


def is_relocated(probe: tuple[int, int, int | None] | None, bias: int, word: int | None) -> bool:
    """Does the probe's word in memory say the object was relocated?  Unknowable (True)
    without a probe, a readable word, or a load bias (the words are then the same)."""
    if probe is None or word is None or not bias:
        return True
    _, file_word, relocated = probe
    if relocated is not None and word == (relocated + bias) & ((1 << 64) - 1):
        return True
    return word != file_word


def decide_binding(obj: LoadedObject, got12: tuple[int, int] | None, env: ProcessEnv,
                   relocated: bool, live: bool, resolver: str | None = None) -> Binding:
    """The binding mode of *obj* in this process, from GOT[1]/GOT[2] and the environment;
    *resolver*: the name of the function GOT[2] holds, when known."""
    m = obj.model
    if m.is_static:
        return Binding("static", "statically linked: no dynamic linker")
    file_now = m.bind_now
    has_lazy = m.has_plt_relocs
    if not live:
        return Binding("file-now" if file_now else "file-lazy",
                       "DT_FLAGS BIND_NOW / DF_1_NOW in the file" if file_now else "no BIND_NOW flag in the file")
    if not relocated or got12 is None:
        why = "not relocated yet" if not relocated else "GOT[1]/GOT[2] unreadable"
        return Binding("now" if file_now else "lazy", f"{why}: the file says {'now' if file_now else 'lazy'}")
    if not has_lazy:
        return Binding("now", "no JUMP_SLOT relocations: every slot is bound at load")
    g1, g2 = got12
    if g2:
        if env.bind_not:
            return Binding("lazy", f"GOT[2]=0x{g2:x} (the lazy resolver); LD_BIND_NOT is set: "
                                   "ld.so resolves on every call and never writes the slots", "LD_BIND_NOT")
        if resolver and resolver.startswith("_dl_runtime_profile"):
            return Binding("lazy", f"GOT[2]=0x{g2:x} is {resolver}: ld.so profiles this object's calls (an "
                                   "rtld-audit module with la_pltenter/la_pltexit, or LD_PROFILE): every call "
                                   "goes through _dl_profile_fixup, which never writes the slots",
                           "_dl_runtime_profile")
        return Binding("lazy", f"GOT[2]=0x{g2:x}: ld.so installed the lazy resolver (GOT[1]=0x{g1:x} "
                               "is this object's link_map)")
    if file_now:
        return Binding("now", "GOT[1]=GOT[2]=0 and the file has BIND_NOW (-z now): bound at load")
    if m.is_dynamic_linker:
        return Binding("now", "the dynamic linker relocates itself at start-up, all at once")
    if env.bind_now:
        return Binding("now", "GOT[1]=GOT[2]=0: LD_BIND_NOW is set in the process: bound at load")
    if env.known:
        return Binding("now", "GOT[1]=GOT[2]=0 although the file allows lazy binding and LD_BIND_NOW is not "
                              "set: loaded by dlopen with RTLD_NOW (or as a dependency of such an object)")
    return Binding("now", "GOT[1]=GOT[2]=0 although the file allows lazy binding: the process bound it at "
                          "load (dlopen with RTLD_NOW, or LD_BIND_NOW: the environment is not readable here)")


def mark_preloaded(objects: list[LoadedObject]) -> None:
    """Set ``preloaded`` on the objects ld.so loaded for LD_PRELOAD or /etc/ld.so.preload:
    glibc maps them into the base namespace right after the program, before the program's
    DT_NEEDED dependencies (rtld.c: preloads, then _dl_map_object_deps), so they are the
    namespace-0 objects listed between the program and its first dependency (matched by
    soname, file name, or the name ld.so opened it by, as ld.so matches a DT_NEEDED entry)."""
    members = sorted((o for o in objects if o.namespace == 0 and not o.in_memory), key=lambda o: o.order)
    if len(members) < 2 or members[0].model.is_static:
        return
    needed = set(members[0].model.needed)
    needed |= {n.rsplit("/", 1)[-1] for n in needed}
    for o in members[1:]:
        m = o.model
        if m.is_dynamic_linker or m.soname in needed or m.name in needed or o.path in needed or \
                o.path.rsplit("/", 1)[-1] in needed:       # (ld.so's own name for it: the DT_NEEDED one)
            return
        o.preloaded = True


class AddressSpace:
    """Loaded objects sorted by address: which object holds an address, and its symbol."""

    def __init__(self, objects: list[LoadedObject]):
        self.objects = sorted(objects, key=lambda o: o.start)
        self._starts = [o.start for o in self.objects]

    def find(self, addr: int) -> LoadedObject | None:
        """The object holding *addr*.  A mapping listed in several namespaces (glibc's one
        ld.so, in every dlmopen namespace) is its base entry, as LD_DEBUG names it
        (``ld-linux-x86-64.so.2 [0]``), not whichever alias sorts last ('[ns2]' for a slot of
        namespace 0)."""
        i = bisect.bisect_right(self._starts, addr) - 1
        while i >= 0:
            o = self.objects[i]
            if addr < o.end:
                j = i
                while o.alias and j > 0 and self._starts[j - 1] == o.start:
                    j -= 1
                    if not self.objects[j].alias and addr < self.objects[j].end:
                        return self.objects[j]
                return o
            if o.end <= addr and i and self.objects[i - 1].end <= o.start:
                break
            i -= 1
        return None

    def describe(self, addr: int, prefer: str | None = None,
                 version: str = "") -> tuple[str, str | None, str | None]:
        """(text, symbol, object name): ``puts in libc.so.6``, ``libfoo.so:.text+0x1234``;
        names as printed (common.names.escape_name)."""
        from gdb_toolkit.common.names import escape_name

        obj = self.find(addr)
        if obj is None:
            return (f"0x{addr:x} (no loaded object)", None, None)
        hit = obj.model.index.lookup(addr - obj.bias, prefer)
        if hit is None:
            sec = obj.model.section_of(addr - obj.bias)
            where = (f"{sec}+0x{addr - obj.bias - obj.model.sections[sec].addr:x}" if sec
                     else f"+0x{addr - obj.bias:x}")
            return (f"{obj.name}:{where}", None, obj.name)
        if version and not hit.offset and hit.name == prefer:
            # the slot's own name, but is it the version the slot asks for (vfoo@VER_1 slot
            # holding vfoo@@VER_2: both would read "vfoo")?
            shown = obj.model.version_shown(hit.name, addr - obj.bias, version)
            if shown != hit.name:
                return (f"{escape_name(shown)} in {obj.name}", escape_name(hit.name), obj.name)
        # each part escaped once: obj.name is printed already (display_path)
        return (f"{hit.text()} in {obj.name}", escape_name(hit.name), obj.name)

    def describe_bound(self, value: int, spec: SlotSpec, namespace: int = 0):
        """(text, symbol, object name, ifunc) of what a bound slot holds: ``describe`` plus
        the asides -- the ifunc whose resolver chose it (``__strlen_avx2 in libc.so.6
        (chosen by ifunc strlen)``) or the resolver itself, and ``(LD_PRELOAD)``."""
        target, tsym, tobj = self.describe(value, spec.symbol, spec.version)
        ifunc = None
        tgt = self.find(value) if tobj else None
        if spec.symbol and spec.kind in ("JUMP_SLOT", "GLOB_DAT") and tgt is not None:
            if tsym != spec.symbol or tgt.in_memory:
                # an implementation not named like the slot (__strlen_avx2 for strlen, or a
                # stripped library's .text+0x...), or the vDSO's time: an ifunc's choice?
                home = self.ifunc_choice(value, spec.symbol, namespace)
                if home is not None:
                    ifunc = {"symbol": spec.symbol, "object": home.name, "holds": "implementation"}
                    target += (f" (chosen by ifunc {spec.symbol_text})" if home.name == tobj
                               else f" (chosen by ifunc {spec.symbol_text} in {home.name})")
            else:
                # named like the slot: is that name an ifunc, i.e. does the slot hold its
                # resolver?  (the lookup just answered is remembered: no second search)
                hit = tgt.model.index.lookup(value - tgt.bias, spec.symbol)
                if hit is not None and hit.ifunc and not hit.offset:
                    ifunc = {"symbol": spec.symbol, "object": tgt.name, "holds": "resolver"}
                    target += " (the ifunc resolver, not its choice)"
        if tgt is not None and tgt.preloaded:
            target += " (LD_PRELOAD)"
        return target, tsym, tobj, ifunc

    def ifunc_choice(self, addr: int, name: str, namespace: int = 0) -> LoadedObject | None:
        """The object whose ifunc *name* an implementation at *addr* was chosen by: the
        object holding *addr* when it defines *name* as STT_GNU_IFUNC (libc's strlen slot
        holding __strlen_avx2: its resolver returned an address in its own object, the
        audit's rule too) and *addr* is not the resolver itself; for an address in the
        vDSO, the first object of *namespace*'s lookup order defining *name* as an ifunc
        (glibc's time, gettimeofday).  None otherwise.  Hash lookups only."""
        obj = self.find(addr)
        if obj is None or not name:
            return None
        if not obj.in_memory:
            resolvers = obj.model.ifunc_definitions(name)
            return obj if resolvers and addr - obj.bias not in resolvers else None
        for o in sorted((o for o in self.objects if o.namespace == namespace and not o.in_memory),
                        key=lambda o: o.order):
            if o.model.ifunc_definitions(name):
                return o
        return None


@record(slots=True)
class SlotRow:
    object: str
    address: int
    symbol: str                 # displayed (demangled) name with version
    symbol_raw: str | None      # the raw (mangled) name when it differs
    reloc_type: str             # R_X86_64_JUMP_SLOT ...
    kind: str                   # JUMP_SLOT, GLOB_DAT, IRELATIVE, TLSDESC, TLS_TPOFF ...
    value: int
    state: str
    target: str
    target_symbol: str | None
    target_object: str | None
    relro: bool
    read_only_now: bool | None
    file_value: int
    tls: dict | None = None     # TLS slots: {"variable", "object" (whose TLS block), "offset", "resolver", ...}
    preview: str | None = None  # first instruction at the target (--preview)
    audit: dict | None = None   # --audit: {"verdict", "expected", ...}
    target_symbol_raw: str | None = None   # the raw (mangled) target name when it differs
    ifunc: dict | None = None   # an ifunc's choice or resolver: {"symbol", "object" (the ifunc's), "holds"}

    #: words of memory: "0x..." in --json like the slot's address (docs/json.md)
    __json_hex__ = ("value", "file_value")


def compile_filter(pattern: str | None):
    if pattern is None:
        return None
    if not pattern:
        raise ToolkitError("empty regular expression", "give a name or a pattern, e.g. 'puts' or 'mem|str'")
    from gdb_toolkit.common.names import NamePattern, printable_text

    try:
        return NamePattern.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise ToolkitError(f"bad regular expression '{printable_text(pattern)}': {exc}",
                           "give a Python regular expression, e.g. 'mem|str' or '^puts$' "
                           "(names match with and without their @VERSION)") from None


def object_matches(text: str, obj: "LoadedObject") -> bool:
    """``--object TEXT``: part of the object's path, or its name -- as the file system has it or
    as the toolkit printed it (common.names.escape_name: ``lib\\xe9.so``)."""
    from gdb_toolkit.common.names import escape_name, typed_name

    if text in obj.path or text == obj.name or text in escape_name(obj.path):
        return True
    typed = typed_name(text)
    return typed is not None and typed in obj.path


def name_matches(rx, spec: SlotSpec, shown: str) -> bool:
    """A pattern matches the bare name, the name@VERSION and the demangled name, so
    '^puts$' finds puts@GLIBC_2.2.5 and 'std::cout' finds _ZSt4cout."""
    return bool(rx.search(spec.symbol) or rx.search(spec.display) or (shown != spec.display and rx.search(shown)))


def outside_state(value: int, space: "AddressSpace | None") -> str | None:
    """"overwritten" for a relocated slot whose value lies in no loaded object (unmapped, or
    anonymous memory: a hook's trampoline), else None.  ld.so writes a definition it found in
    a loaded object (an ifunc's choice, an rtld-audit module's la_symbind result in that
    module, the vDSO's), never such an address: got's state and got --audit's verdict
    ("overwritten") are this one decision.  None without the process's objects (no space)."""
    if space is None or not value or space.find(value) is not None:
        return None
    return "overwritten"


def classify(spec: SlotSpec, obj: LoadedObject, value: int | None, space: AddressSpace | None,
             *, live: bool, bind_now_env: bool = False, read_only_now: bool | None = None,
             relocated: bool = True, second: int | None = None, shown: str | None = None) -> SlotRow:
    """One row of the ``got`` table. *value* None means "not loaded: use the file";
    *relocated* False says ld.so has not processed its object list yet (stopped at starti);
    *second* is the next word (a TLS descriptor's argument)."""
    m = obj.model
    bias = obj.bias
    relocated = relocated and obj.relocated
    lazy_kind = spec.kind == "JUMP_SLOT" and obj.lazy and not bind_now_env
    initial = spec.file_value + bias if spec.file_value else 0
    tsym = tobj = None
    tls = ifunc = None
    no_ldso = "the start-up code" if m.is_static else "ld.so"
    if value is None:                                   # static view, before run
        value = spec.file_value
        if spec.kind == "JUMP_SLOT" and not m.bind_now and m.section_of(value) in (".plt", ".plt.sec"):
            state, target = "unresolved", f"lazy stub {_section_offset(m, value)}"
        elif spec.kind == "JUMP_SLOT" and not m.bind_now and value and m._elf.no_section_headers:
            state, target = "unresolved", f"lazy stub {obj.name}+0x{value:x} (no section headers)"
        elif spec.kind == "IRELATIVE":
            state, target = "bound-at-load", f"ifunc resolver {spec.symbol_text or hex(spec.addend)} runs at start-up"
        elif spec.kind in TLS_KINDS:
            state, target = "bound-at-load", f"TLS: set by {no_ldso} at load"
            tls = tls_facts(spec, obj, None, None, space)
            target = f"TLS {tls['variable']}: set by ld.so at load"
        else:
            state, target = "bound-at-load", ("set by ld.so at load (BIND_NOW)" if spec.kind == "JUMP_SLOT"
                                              else "set by ld.so at load")
        return SlotRow(obj.name, spec.address, shown or spec.display, None, spec.rtype, spec.kind, value, state,
                       target, None, None, m.in_relro(spec.address), None, spec.file_value, tls)
    if not relocated and value == spec.file_value:
        state, target = "not-relocated", f"{no_ldso} has not relocated this object yet"
    elif spec.kind in TLS_KINDS:
        tls = tls_facts(spec, obj, value, second, space)
        state, target = "bound-at-load", tls["text"]
    elif spec.kind == "IRELATIVE" and spec.file_value and value == initial:
        # still the link-time value: the start-up code (static) or ld.so has not called
        # the ifunc resolver yet (e.g. stopped at starti)
        state, target = "not-relocated", "the ifunc resolver has not run yet (applied at start-up)"
    elif value == 0:
        state, target = "null", "0 (weak symbol not defined anywhere)" if spec.kind != "IRELATIVE" else "0"
    elif bias and spec.file_value and value == spec.file_value and value != initial:
        state, target = "not-relocated", f"{no_ldso} has not relocated this object yet"
    elif spec.kind == "JUMP_SLOT" and value == initial and \
            (sec := m.section_of(spec.file_value)) in (".plt", ".plt.sec"):
        state, target = "unresolved", f"lazy stub {_section_offset(m, spec.file_value, sec)}"
    elif spec.kind == "JUMP_SLOT" and value == initial and obj.lazy and m._elf.no_section_headers:
        # no section headers, so no .plt to check against: a lazy object's slot that still
        # holds its file value + bias has not been through _dl_fixup
        state, target = "unresolved", f"lazy stub {obj.name}+0x{spec.file_value:x} (no section headers)"
    else:
        target, tsym, tobj, ifunc = space.describe_bound(value, spec, obj.namespace) if space else \
            (f"0x{value:x}", None, None, None)
        state = outside_state(value, space) or ("resolved" if lazy_kind else "bound-at-load")
    return SlotRow(obj.name, spec.address + bias, shown or spec.display, None, spec.rtype, spec.kind, value, state,
                   target, tsym, tobj, m.in_relro(spec.address), read_only_now, spec.file_value, tls,
                   ifunc=ifunc)


def tls_module(spec: SlotSpec, obj: LoadedObject, space: AddressSpace | None) -> LoadedObject:
    """The object whose TLS block holds the variable: its own for a local (symbol-less)
    relocation, else the first object of the lookup order that defines it as TLS."""
    if not spec.symbol or space is None:
        return obj
    ordered = sorted((o for o in space.objects if o.namespace == obj.namespace), key=lambda o: o.order)
    for o in ordered:
        for s in o.model.exports.get(spec.symbol, ()):
            if s.type == 6 and (not spec.version or not s.version or s.version == spec.version):
                return o
    return obj


def tls_facts(spec: SlotSpec, obj: LoadedObject, value: int | None, second: int | None,
              space: AddressSpace | None) -> dict:
    """Module, variable and what the slot holds, for every TLS relocation kind (names as
    printed: common.names.escape_name)."""
    from gdb_toolkit.common.names import escape_name

    var = spec.symbol_text
    if spec.symbol and spec.addend:
        var += f"+0x{spec.addend:x}"
    elif not spec.symbol:
        # a local variable: only its offset in this object's TLS block is in the relocation
        local = obj.model.tls_variable(spec.addend)
        var = escape_name(local) if local else f"offset 0x{spec.addend:x}"
    module = tls_module(spec, obj, space)
    out = {"variable": var if spec.symbol or not var.startswith("offset ")
           else f"{var} in the TLS block of {obj.name}", "object": module.name, "text": ""}
    if value is None:
        out["text"] = f"TLS {var} of {module.name}"
        return out
    bits = obj.model.wordsize * 8
    signed = value - (1 << bits) if value >> (bits - 1) else value
    if spec.kind == "TLSDESC":
        resolver = space.describe(value)[0] if space else f"0x{value:x}"
        rname = resolver.split(" in ")[0]
        out.update(resolver=resolver, argument=None if second is None else f"0x{second:x}")   # a word: hex
        if second is None:
            how = "argument unread"
        elif "tlsdesc_return" in rname:
            sarg = second - (1 << bits) if second >> (bits - 1) else second
            how = f"static TLS: offset {'-' if sarg < 0 else '+'}0x{abs(sarg):x} from the thread pointer"
            out["offset"] = sarg
        elif "tlsdesc_dynamic" in rname:
            how = f"dynamic TLS: argument 0x{second:x} -> tlsdesc_dynamic_arg (module, offset)"
            out["dynamic_arg"] = second      # completed by tlsdesc_dynamic() from target memory
        elif "undefweak" in rname:
            how = "undefined weak TLS variable"
        else:
            how = f"argument 0x{second:x}"
        out["text"] = f"TLSDESC {var} of {module.name}: resolver {resolver}, {how}"
    elif spec.kind == "TLS_DTPMOD":
        out["module_id"] = value
        out["text"] = f"TLS module id {value} ({module.name}) for {var}"
    elif spec.kind == "TLS_DTPOFF":
        out["offset"] = signed
        out["text"] = f"TLS {var}: offset 0x{value:x} in {module.name}'s TLS block"
    else:   # TLS_TPOFF: offset from the thread pointer (x86: negative, below the TCB)
        out["offset"] = signed
        out["text"] = f"TLS {var} of {module.name}: thread pointer {'-' if signed < 0 else '+'}0x{abs(signed):x}"
    return out


def _section_offset(m: ObjectModel, addr: int, sec: str | None = None) -> str:
    sec = sec or m.section_of(addr)
    if not sec:
        return f"0x{addr:x}"
    off = addr - m.sections[sec].addr
    if not off and sec == ".plt":
        return ".plt[0] (straight to the resolver trampoline)"
    return f"{sec}+0x{off:x}" if off else sec


@record
class ObjectSummary:
    path: str
    bias: int
    binding: str          # lazy / now / static (from the process), file-lazy/file-now before run
    binding_reason: str
    kind: str             # PIE executable / executable / shared object / static executable
    pie: bool
    relro_range: list[int] | None   # [start, end) of the RELRO range (a slot's `relro`: inside it)
    slot_count: int
    plt: bool
    arch: str
    namespace: int = 0
    stale: str | None = None   # the file on disk is not what the process mapped

    #: l_addr and the RELRO range [start, end): "0x..." in --json like every address
    __json_hex__ = ("bias", "relro_range")


@record
class GotReport:
    mode: str                         # file / live / core / remote
    objects: list[ObjectSummary]
    slots: list[SlotRow]
    notes: list[str] = field(default_factory=list)
    diff: object | None = None        # --diff: a diff.GotDiff
    pairs: list = field(default_factory=list, metadata={"json_skip": True}, repr=False)
    #: got REGEX: the text leaves out the header of an object with no matching slot
    filtered: bool = field(default=False, metadata={"json_skip": True}, repr=False)


def object_kind(m: ObjectModel) -> str:
    if m.is_shared_lib:
        return "shared object"
    if m.is_static:
        return "static-pie executable" if m.is_pie else "static executable"
    return "PIE executable" if m.is_pie else "executable"


def summarize(obj: LoadedObject, nslots: int) -> ObjectSummary:
    m = obj.model
    relro = [m.relro[0] + obj.bias, m.relro[1] + obj.bias] if m.relro else None
    b = obj.binding or Binding("now" if m.bind_now else "lazy", "from the file")
    mode = b.mode.replace("file-", "") if b.mode.startswith("file-") else b.mode
    from gdb_toolkit.common.names import escape_name

    return ObjectSummary(escape_name(obj.path), obj.bias, mode, b.reason, object_kind(m), m.is_pie, relro, nslots,
                         any(n in m.sections for n in (".plt", ".plt.sec", ".plt.got"))
                         # no section headers: DT_JMPREL says there is a PLT, though not where
                         or (m._elf is not None and m._elf.no_section_headers and m.has_plt_relocs),
                         m.arch, obj.namespace)


def read_plan(objects: list[LoadedObject]) -> list[tuple[int, int]]:
    """Run-time [lo, hi) ranges covering every slot (and a TLS descriptor's second word):
    nearby slots share one read, distant ones get their own; bounded in total."""
    points = []
    for obj in objects:
        w = obj.model.wordsize
        for s in obj.model.slots:
            a = s.address + obj.bias
            points.append((a, a + (2 * w if s.kind == "TLSDESC" else w)))
    points.sort()
    ranges: list[list[int]] = []
    for lo, hi in points:
        if ranges and lo - ranges[-1][1] <= READ_GAP:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    total = sum(hi - lo for lo, hi in ranges)
    if total > MAX_SLOT_BYTES:
        raise ToolkitError(f"the GOT slots span {total} bytes of memory", "this object is corrupt or crafted")
    return [(lo, hi) for lo, hi in ranges]


def decode_words(chunks: list[tuple[int, bytes]], wordsize: int) -> dict[int, int]:
    """{run-time address: word} for every aligned word of the chunks read."""
    out: dict[int, int] = {}
    code = "Q" if wordsize == 8 else "I"
    for lo, data in chunks:
        n = len(data) // wordsize * wordsize
        # slots are word-aligned in real files; a crafted misaligned one is read word by word
        words = memoryview(data[:n]).cast(code)
        for i, v in enumerate(words):
            out[lo + i * wordsize] = v
        if lo % wordsize:
            out.update({lo + i: int.from_bytes(data[i:i + wordsize], "little")
                        for i in range(0, n, wordsize)})
    return out


def got_report(objects: list[LoadedObject], memory: dict[int, int] | None, *, mode: str,
               pattern: str | None = None, bind_now_env: bool = False,
               space_objects: list[LoadedObject] | None = None, relocated: bool = True,
               writable: list[tuple[int, int]] | None = None, demangled: dict[str, str] | None = None,
               unreadable: set[int] | None = None) -> GotReport:
    """Classify every slot of *objects*; *memory* maps run-time addresses to the words read
    (None: the file view); *writable* lists the writable address ranges of a live process
    (for "read-only now"); *demangled* maps raw names to displayed ones."""
    rx = compile_filter(pattern)
    space = AddressSpace(space_objects or objects)
    w_sorted = sorted(writable or [])
    w_starts = [a for a, _ in w_sorted]
    demangled = demangled or {}
    rows: list[SlotRow] = []
    pairs: list = []
    summaries = []
    notes = []
    for obj in objects:
        try:
            specs = obj.model.name_irelative().slots
        except ToolkitError as exc:
            notes.append(f"skipped {obj.name}: {exc.cause}")
            continue
        # (display name, shown name) per slot, each computed once
        names = [(s, *_display_and_shown(s, demangled)) for s in specs]
        if rx:
            names = [n for n in names if name_matches(rx, n[0], n[2])]
        summaries.append(summarize(obj, len(names)))
        w = obj.model.wordsize
        bias = obj.bias
        live = memory is not None
        where = space if live else None
        for s, display, shown in names:
            addr = s.address + bias
            value = second = None
            if live:
                value = memory.get(addr)
                if value is None:
                    if unreadable is not None:
                        unreadable.add(addr)
                    continue
                if s.kind == "TLSDESC":
                    second = memory.get(addr + w)
            ro = None
            if writable is not None:
                i = bisect.bisect_right(w_starts, addr) - 1
                ro = not (i >= 0 and addr < w_sorted[i][1])
            row = classify(s, obj, value, where, live=live, bind_now_env=bind_now_env, read_only_now=ro,
                           relocated=relocated, second=second, shown=shown)
            if row.symbol != display:
                row.symbol_raw = display
            rows.append(row)
            pairs.append((obj, s, row))
        if obj.model.is_static:
            notes.append(f"{obj.name} is statically linked: no PLT for imports, no dynamic symbol "
                         f"resolution; only IRELATIVE (ifunc) slots are listed")
        if rx and obj.model.copies:
            # a copy relocation is no GOT slot, but 'got stdout' in a non-PIE program asks about it
            for cname, caddr, csize, rtype in obj.model.copies:
                if rx.search(cname) or rx.search(cname.split("@")[0]):
                    notes.append(f"{cname} in {obj.name}: a copy relocation ({rtype}), not a GOT slot: the "
                                 f"variable itself lives in {obj.name} at 0x{caddr + bias:x} ({csize} bytes; ld.so "
                                 "copied the defining library's initial value there at load), and that library's "
                                 "own GOT slots point at it ('got --all-objects' lists them)")
        if obj.model.dropped:
            notes.append(f"{obj.name}: {obj.model.dropped} relocation(s) point outside every loaded segment "
                         "(corrupt or crafted file): not listed")
    return GotReport(mode, summaries, rows, notes, pairs=pairs)


def _display_and_shown(spec: SlotSpec, demangled: dict[str, str]) -> tuple[str, str]:
    """(name@version as in the file, the same demangled for display)."""
    display = spec.display
    d = demangled.get(spec.symbol) if demangled else None
    if not d or d == spec.symbol:
        return display, display
    from gdb_toolkit.common.names import escape_name

    return display, escape_name(f"{d}@{spec.version}" if spec.version else d)


def demangled_names(report: "GotReport") -> list[str]:
    """The raw names of a report that a demangler could show better: targets and the
    audit's definitions (the slots' own names are demangled before classification)."""
    names = {r.target_symbol for r in report.slots if r.target_symbol and r.target_symbol.startswith("_Z")}
    names |= {s.symbol for _, s, r in report.pairs if r.symbol_raw and s.symbol.startswith("_Z")}
    return sorted(names)


def apply_demangled(report: "GotReport", demangled: dict[str, str]) -> None:
    """Show C++ names demangled everywhere a user reads them: each target (its raw name kept
    in ``target_symbol_raw``) and the audit's sentences."""
    from gdb_toolkit.plt.demangle import replacer

    pairs = {raw: shown for raw, shown in demangled.items() if shown and shown != raw}
    if not pairs:
        return
    fix = replacer(pairs)
    for r in report.slots:
        if r.target_symbol in pairs:
            r.target_symbol_raw = r.target_symbol
            r.target_symbol = pairs[r.target_symbol]
        r.target = fix(r.target)
        if r.audit:
            for key in ("expected", "holds", "why"):
                r.audit[key] = fix(r.audit.get(key))
            if r.audit.get("interposes"):
                r.audit["interposes"] = [fix(t) for t in r.audit["interposes"]]


def tlsdesc_dynamic(row: SlotRow, module_id: int | None, offset: int | None) -> None:
    """Complete a dynamic TLSDESC slot with what its argument points at: glibc's
    struct tlsdesc_dynamic_arg starts with the tls_index {ti_module, ti_offset}."""
    tls = row.tls
    arg = tls.pop("dynamic_arg", None) if tls else None
    if arg is None or module_id is None or offset is None:
        return
    tls["module_id"], tls["offset"] = module_id, offset
    tls["text"] = tls["text"].replace(
        f"argument 0x{arg:x} -> tlsdesc_dynamic_arg (module, offset)",
        f"module {module_id}, offset 0x{offset:x} in its TLS block (tlsdesc_dynamic_arg at 0x{arg:x})")
    row.target = tls["text"]
