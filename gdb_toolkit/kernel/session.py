"""One place that opens a kernel's sources lazily -- memory, symbols, BTF and (for the live
kernel only) its text files -- and answers "what is at this address" questions.

The memory source decides the rest (see memory.py):

| source  | memory                    | symbols (default)                 | BTF (default)             | kprobes/list, tracefs |
|---------|---------------------------|-----------------------------------|---------------------------|-----------------------|
| live    | /proc/kcore               | /proc/kallsyms (+ System.map or   | /sys/kernel/btf/vmlinux   | yes                   |
|         |                           | code for data symbols on arm64)   |                           |                       |
| vmcore  | the dump, page tables     | kallsyms tables in the dump +     | __start_BTF..__stop_BTF   | no: memory only       |
|         |                           | its module list                   | in the dump               |                       |
| gdb     | gdb's target (halted)     | same as vmcore                    | same as vmcore            | no: memory only       |

``--kallsyms FILE`` (a saved /proc/kallsyms of the same boot), ``--system-map FILE`` (slid by
VMCOREINFO's KERNELOFFSET or the running _text) and ``--btf FILE`` override the defaults.
Used by the gdb commands, the benchmark and the guest tests alike.  Nothing is opened until
asked, so ``ksym`` works on a machine without /proc/kcore.
"""
import os
import re

from gdb_toolkit.common.closeable import Closeable
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kprobe_text as T
from gdb_toolkit.kernel.memory import GDB, LIVE, VMCORE

LIVE_KCORE = "/proc/kcore"
LIVE_KALLSYMS = "/proc/kallsyms"
LIVE_BTF = "/sys/kernel/btf/vmlinux"
MAX_BTF = 256 << 20

_BTF_CACHE: dict = {}
_LAYOUT_CACHE: dict = {}
_MEMORY_SYMBOLS: dict = {}          # dump identity -> (kallsyms text, extents, SymbolSource)


def load_btf(path: str):
    from gdb_toolkit.common.safe_open import parsed_once
    from gdb_toolkit.kernel.btf import Btf

    return parsed_once(_BTF_CACHE, path, Btf.load)


def _static_symbols(path: str) -> str:
    """kallsyms-format text from a System.map or a vmlinux ELF's .symtab."""
    from gdb_toolkit.kernel.symbols import load_static_text

    return load_static_text(path)



def _in_64_bits(value: int, text: str) -> int:
    """*value* (from *text*) as a kernel address: one that does not fit 64 bits was wrapped
    silently ($ksym("vfs_read+0x99999999999999999999") named some unrelated address)."""
    if not 0 <= value < 1 << 64:
        raise ToolkitError(f"{text.strip()!r} is outside the 64-bit address space",
                           "give an address up to 0xffffffffffffffff, or a smaller offset")
    return value

class KernelSession(Closeable):
    def __init__(self, kcore: str | None = None, kallsyms: str | None = None,
                 btf: str | None = None, system_map: str | None = None,
                 kprobes_list: str | None = None, tracefs: str | None = None,
                 vmlinux: str | None = None, memory=None, live: bool | None = None):
        """*live* forces the kind for a kcore-shaped copy standing in for /proc/kcore (tests,
        a saved kcore with the running kernel's tracefs/debugfs beside it); by default only
        /proc/kcore itself is live and any other file is a dump."""
        self._memory = memory
        if memory is not None:
            self.kind = memory.kind
            self.kcore_path = getattr(memory, "path", None) or memory.description
        else:
            self.kcore_path = kcore or LIVE_KCORE
            self.kind = LIVE if (live if live is not None else
                                 os.path.abspath(self.kcore_path) == LIVE_KCORE) else VMCORE
        self.kallsyms_path = kallsyms or (LIVE_KALLSYMS if self.kind == LIVE else None)
        self.btf_path = btf or (LIVE_BTF if self.kind == LIVE else None)
        self.system_map_path = system_map
        self.list_path = kprobes_list or T.DEBUGFS_LIST
        self.tracefs = tracefs
        self.vmlinux_path = vmlinux
        self._vmlinux = None
        self._syms = None
        self._btf = None
        self._btf_data = None
        self.walker = None
        self._sym_cache: dict[int, str | None] = {}
        self.notes: list[str] = []

    @property
    def is_live(self) -> bool:
        return self.kind == LIVE

    # -- memory -----------------------------------------------------------------
    @property
    def memory(self):
        if self._memory is None:
            if self.kind == LIVE:
                from gdb_toolkit.kernel.kcore import Kcore

                self._memory = Kcore.open(self.kcore_path)
            else:
                from gdb_toolkit.kernel.vmcore import open_dump

                self._memory = open_dump(self.kcore_path)
        return self._memory

    kcore = memory          # the name the kprobe code grew up with

    @property
    def has_kcore(self) -> bool:
        try:
            self.memory
            return True
        except ToolkitError:
            return False

    def read(self, addr: int, size: int) -> bytes:
        return self.memory.read(addr, size)

    @property
    def arch(self) -> str:
        if self._memory is not None or self.has_kcore:
            a = self.memory.arch
            if a in ("x86_64", "aarch64"):
                return a
        from gdb_toolkit.common.disasm import normalize_arch

        return normalize_arch(os.uname().machine)

    @property
    def source_description(self) -> str:
        what = {LIVE: "the running kernel", VMCORE: "a kernel dump", GDB: "gdb's target"}[self.kind]
        return f"{what}: {self.memory.description if self._memory is not None else self.kcore_path}"

    # -- symbols ----------------------------------------------------------------
    @property
    def symbols(self):
        if self._syms is None:
            self._syms = self._load_symbols()
        return self._syms

    def _load_symbols(self):
        from gdb_toolkit.kernel.symbols import KernelSymbols, SymbolSource

        if self.system_map_path:
            text = _static_symbols(self.system_map_path)
            slide, how = self._slide(text)
            return KernelSymbols(text, self.system_map_path, slide,
                                 SymbolSource("System.map", self.system_map_path, how))
        if self.kallsyms_path:
            syms = self._read_kallsyms(self.kallsyms_path)
            if self.is_live:
                if self.kallsyms_path == LIVE_KALLSYMS:
                    syms.load_module_extents()
                if not syms.restricted and not syms.has_data_symbols:
                    self._add_data_symbol_sources(syms)
            return syms
        return self._memory_symbols()

    def _read_kallsyms(self, path: str):
        from gdb_toolkit.common.names import decode_name
        from gdb_toolkit.common.safe_open import read_regular
        from gdb_toolkit.kernel.symbols import KernelSymbols, SymbolSource

        live = path == LIVE_KALLSYMS and self.is_live
        try:
            text = decode_name(read_regular(path, "kallsyms file", 512 << 20))
        except ToolkitError as exc:
            if live and not os.path.exists(path):
                raise ToolkitError("/proc/kallsyms does not exist: the kernel has no CONFIG_KALLSYMS",
                                   "give a System.map (--system-map PATH)") from None
            raise exc
        from gdb_toolkit.kernel.kallsyms import require_symbol_lines

        require_symbol_lines(text, path)
        kind = "kallsyms" if live else "saved kallsyms"
        syms = KernelSymbols(text, path, 0, SymbolSource(kind, path))
        if syms.restricted:
            raise ToolkitError(f"{path} shows every address as 0 (kernel.kptr_restrict, or not root)",
                               "run gdb as root, sysctl kernel.kptr_restrict=0, or give --system-map")
        if not live and self.kind != LIVE:
            self._check_same_boot(syms, path)
        return syms

    def _check_same_boot(self, syms, path: str) -> None:
        """A saved kallsyms must be of the boot the memory is from: _stext as VMCOREINFO has
        it, or linux_banner pointing at "Linux version"."""
        info = self.memory.vmcoreinfo
        st = syms.lookup("_stext")
        if info.get("SYMBOL(_stext)") and st is not None:
            if int(info["SYMBOL(_stext)"], 16) != st.address:
                raise ToolkitError(f"{path} is not from the boot of {self.memory.description}: "
                                   f"_stext 0x{st.address:x} there, {info['SYMBOL(_stext)']} in "
                                   "VMCOREINFO", "give the kallsyms saved on that boot, or none "
                                   "(the dump's own tables are used)")
            return
        banner = syms.lookup("linux_banner")
        if banner is not None:
            try:
                ok = self.memory.read(banner.address, 14) == b"Linux version "
            except ToolkitError:
                ok = False
            if not ok:
                raise ToolkitError(f"{path} does not match {self.memory.description}: "
                                   "linux_banner does not point at 'Linux version'",
                                   "give the kallsyms saved on that boot")

    def _slide(self, static_text: str) -> tuple[int, str]:
        """KASLR slide of link-time symbols: VMCOREINFO, else the running kernel's _text."""
        from gdb_toolkit.kernel.kallsyms import Kallsyms

        if self.has_kcore and self.memory.kaslr_offset is not None:
            off = self.memory.kaslr_offset
            return off, f"slid by VMCOREINFO's KERNELOFFSET 0x{off:x}"
        if self.is_live and os.path.exists(LIVE_KALLSYMS):
            try:
                live = self._read_kallsyms(LIVE_KALLSYMS)
            except ToolkitError:
                live = None
            if live is not None:
                slide = live.kaslr_offset(system_map=Kallsyms.parse(static_text))
                if slide is not None:
                    return slide, f"slid by 0x{slide:x} (/proc/kallsyms' _text)"
        return 0, "not slid: no KASLR offset known"

    def _add_data_symbol_sources(self, syms) -> None:
        """kallsyms without data symbols (no CONFIG_KALLSYMS_ALL): a System.map of this build,
        then the code that uses a variable."""
        from gdb_toolkit.kernel import code_refs
        from gdb_toolkit.kernel.symbols import SymbolSource, matching_system_map

        release = os.uname().release
        syms.add_supplement(lambda: matching_system_map(syms, release))

        def from_code(name):
            if not self.has_kcore:
                return None
            try:
                btf = self.btf
            except ToolkitError:
                btf = None
            got = code_refs.resolve(name, self.memory.read, syms, self.arch, btf)
            if got is None:
                return None
            return got[0], SymbolSource("code", None, f"{name} {got[1]}")
        syms.add_resolver(from_code)

    def _memory_symbols(self):
        """The kallsyms tables inside the dump / target, and its module list.

        Cached in-process per dump (its path, size and mtime) or per gdb target.  A dump never
        changes: everything is reused.  A halted kernel runs between commands: vmlinux's
        tables are reused while their token index still reads the same, but the module list
        and the kernel's own lists (kprobe pages, ftrace trampolines, BPF programs) are walked
        again every time -- modules come and go -- reusing the symbols of each module whose
        tables are unchanged."""
        from gdb_toolkit.kernel import kallsyms_mem as KM
        from gdb_toolkit.kernel.symbols import KernelSymbols, SymbolSource

        mem = self.memory
        key = self._identity()
        cached = _MEMORY_SYMBOLS.get(key) if key else None
        if cached is not None and cached.get("check"):
            at, want = cached["check"]             # a halted kernel: still the same tables?
            try:
                if mem.read(at, len(want)) != want:
                    cached = None
            except ToolkitError:
                cached = None
        if cached is None:
            tables = KM.tables_from_vmcoreinfo(mem, mem.vmcoreinfo, mem.arch)
            if tables is None:
                start, length = self._image_range()
                tables = KM.find_tables(mem, start, length, mem.arch)
            vm = KM.read_symbols(mem, tables)
            cached = {"vm": KM.kallsyms_text(vm), "modcache": {}, "built": None,
                      "detail": f"the kernel's kallsyms tables ({tables.how}), {tables.num_syms} symbols",
                      "check": (tables.token_index, mem.read(tables.token_index, 512))}
            if not mem.vmcoreinfo:
                syms = KernelSymbols(cached["vm"], f"kallsyms in {mem.description}", 0)
                self._vmcoreinfo_from_memory(syms)
                cached["vmcoreinfo"] = dict(mem.vmcoreinfo)
            if key:
                _MEMORY_SYMBOLS.clear()
                _MEMORY_SYMBOLS[key] = cached
        elif cached.get("vmcoreinfo") and not mem.vmcoreinfo and hasattr(mem, "set_vmcoreinfo"):
            mem.set_vmcoreinfo(cached["vmcoreinfo"])
        built = cached["built"]
        if built is None or self.kind == GDB:
            built = self._module_part(cached)
            cached["built"] = built
        _fingerprint, text, extents, detail, notes = built
        syms = KernelSymbols(text, f"kallsyms in {mem.description}", 0, SymbolSource("memory", None, detail))
        syms.module_extents.update(extents)
        syms.notes += notes
        return syms

    def _module_part(self, cached: dict) -> tuple:
        """(fingerprint, kallsyms text, module extents, source detail, notes): vmlinux's
        symbols (cached["vm"]) + the module list's + the kernel lists' pseudo-modules.  The
        text is rebuilt only when the fingerprint moved."""
        from gdb_toolkit.kernel import kallsyms_mem as KM
        from gdb_toolkit.kernel.symbols import KernelSymbols

        mem = self.memory
        vm_syms = KernelSymbols(cached["vm"], f"kallsyms in {mem.description}", 0)
        self._syms = vm_syms        # the BTF the module walk needs is found by these symbols
        detail, notes, msyms, extents, keys = cached["detail"], [], [], {}, ()
        mods = vm_syms.lookup("modules")
        if mods is not None:
            try:
                walk = KM.module_symbols(mem, mods.address, self.btf, cache=cached["modcache"])
                msyms, extents, keys = walk.symbols, walk.extents, walk.keys
                notes += [f"module list: {n}" for n in walk.notes]
                detail += f"; {len(extents)} modules from the module list"
                live = set(keys)
                for k in [k for k in cached["modcache"] if k not in live]:
                    del cached["modcache"][k]      # unloaded since: do not keep their symbols
            except ToolkitError as exc:
                notes.append(f"module symbols not read: {exc.cause}")
        try:
            builtins = KM.builtin_symbols(mem, vm_syms.address, self.btf)
        except ToolkitError as exc:
            builtins = []
            notes.append(f"kprobe pages, ftrace trampolines, BPF programs not named: {exc.cause}")
        fingerprint = (keys, tuple(builtins))
        old = cached.get("built")
        if old is not None and old[0] == fingerprint:
            return (fingerprint, old[1], extents, detail, notes)
        text = KM.kallsyms_text_join(cached["vm"], msyms + builtins)
        return (fingerprint, text, extents, detail, notes)

    def _vmcoreinfo_from_memory(self, syms) -> None:
        """A halted kernel carries VMCOREINFO too (vmcoreinfo_data): release, KASLR offset,
        build-id for ``kcore``."""
        from gdb_toolkit.kernel.kcore import parse_vmcoreinfo

        mem = self.memory
        s = syms.lookup("vmcoreinfo_data")
        if s is None or not hasattr(mem, "set_vmcoreinfo"):
            return
        try:
            ptr = mem.read_u64(s.address)
            text = mem.read(ptr, 4096).split(b"\0", 1)[0].decode("utf-8", "replace")
        except ToolkitError:
            return
        info = parse_vmcoreinfo(text)
        if "OSRELEASE" in info:
            mem.set_vmcoreinfo(info)

    def _identity(self):
        """What identifies a dump's (or a target's) contents for the in-process symbol cache."""
        mem = self.memory
        if self.kind == VMCORE and getattr(mem, "path", None):
            try:
                st = os.stat(mem.path)
                return (mem.path, st.st_size, st.st_mtime_ns)
            except OSError:
                return None
        if self.kind == GDB:
            return ("gdb", mem.description)
        return None

    def _image_range(self) -> tuple[int, int]:
        """Where the kernel image is, to search for its tables: VMCOREINFO's _stext, or the
        gdb target's anchor (an address in kernel text, e.g. the halted pc)."""
        mem = self.memory
        st = mem.vmcoreinfo.get("SYMBOL(_stext)")
        anchor = int(st, 16) if st else getattr(mem, "anchor", None)
        if anchor is None:
            raise ToolkitError(f"{mem.description} says nothing about where the kernel image is "
                               "(no VMCOREINFO)", "give --kallsyms FILE (a saved /proc/kallsyms of "
                               "that boot) or --system-map FILE")
        base = getattr(mem, "image_start", None) or (anchor & ~((1 << 21) - 1))
        return base, 96 << 20

    def symbol_sources(self) -> list[str]:
        """What the symbols came from (for the reports' ``sources``/notes)."""
        s = self._syms
        if s is None:
            return []
        out = [src.describe() for src in s.sources]
        return out

    def symbol_notes(self) -> list[str]:
        """What the symbols could not include, and why (a module skipped, the module list
        cut short, a module being loaded or removed)."""
        s = self._syms
        return list(getattr(s, "notes", None) or []) if s is not None else []

    # -- BTF ----------------------------------------------------------------------
    @property
    def btf(self):
        if self._btf is None:
            if self.btf_path:
                self._btf = load_btf(self.btf_path)
            else:
                from gdb_toolkit.kernel.btf import Btf

                self._btf = Btf(self._memory_btf_bytes(), f"BTF in {self.memory.description}")
        return self._btf

    def _memory_btf_bytes(self) -> bytes:
        """vmlinux's BTF as the kernel holds it: __start_BTF..__stop_BTF."""
        if self._btf_data is None:
            start = self.address_of("__start_BTF")
            stop = self.address_of("__stop_BTF")
            if start is None or stop is None:
                raise ToolkitError(f"no __start_BTF/__stop_BTF symbols for {self.memory.description}",
                                   "give --btf FILE (/sys/kernel/btf/vmlinux saved from that kernel)")
            if not 24 <= stop - start <= MAX_BTF:
                raise ToolkitError(f"__stop_BTF - __start_BTF is {stop - start} bytes", "give --btf FILE")
            data = b"".join(self.memory.read(a, min(1 << 20, stop - a))
                            for a in range(start, stop, 1 << 20))
            self._btf_data = data
        return self._btf_data

    def module_btf(self, module: str):
        """A module's split BTF (live: /sys/kernel/btf/MODULE; a dump or a halted kernel: the
        module's btf_data in memory), or None."""
        if not self.is_live and self.btf_path is None:
            from gdb_toolkit.kernel import kallsyms_mem as KM
            from gdb_toolkit.kernel.btf import Btf

            head = self.address_of("modules")
            try:
                mod = KM.find_module(self.memory, head, self.btf, module) if head else None
                data = KM.module_btf_bytes(self.memory, mod, self.btf,
                                           self.address_of("btf_modules")) if mod else None
                return Btf(data, f"BTF of {module} in {self.memory.description}", base=self.btf) \
                    if data else None
            except ToolkitError:
                return None
        if self.is_live and self.btf_path == LIVE_BTF:
            from gdb_toolkit.kernel.btf import Btf

            path = f"/sys/kernel/btf/{module}"
            if os.path.exists(path):
                try:
                    return Btf.load(path, base=self.btf)
                except ToolkitError:
                    return None
        return None

    # -- vmlinux --------------------------------------------------------------------
    @property
    def vmlinux(self):
        """The --vmlinux ELF (None when not given) and its KASLR slide, as (Vmlinux, slide).

        The slide is VMCOREINFO's KERNELOFFSET (the kernel's own word), else the running
        ``_text`` against the file's first code address; the file's .symtab is never read."""
        if self.vmlinux_path is None:
            return None
        if self._vmlinux is None:
            from gdb_toolkit.kernel.vmlinux import Vmlinux

            vm = Vmlinux.open(self.vmlinux_path)
            slide = self.memory.kaslr_offset if self.has_kcore else None
            if slide is None:
                text, link = self.address_of("_text"), vm.text_start()
                slide = text - link if text is not None and link is not None else 0
            self._vmlinux = (vm, slide)
        return self._vmlinux

    def close(self):
        if self._memory is not None:
            self._memory.close()
            self._memory = None
        if self._vmlinux is not None:
            self._vmlinux[0].close()
            self._vmlinux = None

    # -- addresses ----------------------------------------------------------------
    def symbolize(self, addr: int) -> str | None:
        """``name+0x10 [mod]`` or None (also when no symbols can be had).  Memoized: many
        probes share targets (the ftrace trampoline, a kprobe insn page)."""
        if addr in self._sym_cache:
            return self._sym_cache[addr]
        try:
            r = self.symbols.describe(addr)
        except ToolkitError:
            r = None
        self._sym_cache[addr] = r
        return r

    def locate(self, addr: int):
        """*addr*'s position as the contract's location object (common.location): symbol,
        offset and object (the module, ``vmlinux`` for the kernel image); symbol None when no
        symbol covers it.  From the same memoized answer as ``symbolize``."""
        from gdb_toolkit.common.location import kernel_location_of

        return kernel_location_of(addr, self.symbolize(addr))

    def address_of(self, name: str) -> int | None:
        try:
            return self.symbols.address(name)
        except ToolkitError:
            return None

    def parse_address(self, text: str) -> int:
        """``0xffff...``, a decimal, ``sym``, ``sym+0x10``, ``mod:sym+8``."""
        t = text.strip()
        if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", t):
            return _in_64_bits(int(t, 0), text)
        if re.fullmatch(r"[0-9a-fA-F]{16}", t):
            return int(t, 16)
        m = re.fullmatch(r"([A-Za-z0-9_.$:]+?)\s*(?:([+-])\s*(0[xX][0-9a-fA-F]+|\d+))?", t)
        name = m.group(1) if m else None
        if not m and "\\" in t:
            # a name as the toolkit printed it (escape_name: ev\xe9il), any bytes
            from gdb_toolkit.common.names import typed_name

            m = re.fullmatch(r"(\S+?)\s*(?:([+-])\s*(0[xX][0-9a-fA-F]+|\d+))?", t)
            name = typed_name(m.group(1)) if m else None
            if name is None:
                m = None
        if not m:
            from gdb_toolkit.common.names import escape_name

            raise ToolkitError(f"cannot read '{escape_name(text)}' as a kernel address or symbol",
                               "give 0xADDRESS, SYMBOL or SYMBOL+OFFSET")
        base = self.symbols.address(name)
        if base is None:
            import difflib
            name = m.group(1).split(":")[-1]
            near = difflib.get_close_matches(name, [s.name for s in self.symbols.symbols
                                                    if s.name[:2] == name[:2]], n=3)
            from gdb_toolkit.common.names import escape_name, printable_text

            raise ToolkitError(f"no kernel symbol '{printable_text(m.group(1))}' in {self.symbols.path}",
                               f"did you mean {', '.join(map(escape_name, near))}" if near else
                               "check the name (ksym NAME), or load its module")
        off = int(m.group(3), 0) if m.group(3) else 0
        return _in_64_bits(base - off if m.group(2) == "-" else base + off, text)

    def function_bounds(self, addr: int) -> tuple[int, int | None]:
        """(start of the symbol containing addr, start of the next symbol)."""
        s = self.symbols.containing(addr)
        if s is None:
            return addr, None
        return s.address, self.symbols.next_symbol_after(s.address)

    # -- kprobes ------------------------------------------------------------------------
    def tracefs_dir(self) -> str | None:
        if not self.is_live:
            return None
        return self.tracefs or T.tracefs_dir()

    def _tracefs(self, name: str) -> str | None:
        d = self.tracefs_dir()
        return T.read_text(os.path.join(d, name)) if d else None

    def listed_probes(self):
        """The kernel's kprobes/list (live only: a dump has no debugfs)."""
        if not self.is_live:
            return None
        text = T.read_text(self.list_path)
        if text is None:
            return None
        return T.parse_kprobes_list(text)

    def all_disarmed(self) -> bool:
        if not self.is_live:
            a = self.address_of("kprobes_all_disarmed")
            try:
                return a is not None and self.memory.read(a, 1) != b"\0"
            except ToolkitError:
                return False
        text = T.read_text(os.path.join(os.path.dirname(self.list_path), "enabled"))
        return text is not None and text.strip() == "0"

    def table_walk(self, notes: list):
        """Walk kprobe_table, or None with a note saying why not."""
        try:
            table = self.symbols.address("kprobe_table")
        except ToolkitError as exc:
            notes.append(f"kprobe_table not walked: {exc.cause}")
            return None
        if table is None:
            why = "; ".join(self.symbols.notes) if getattr(self.symbols, "notes", None) else ""
            notes.append("kprobe_table is not in the symbols (kernel without CONFIG_KALLSYMS_ALL, "
                         "no System.map of this build, and its address could not be read from "
                         "get_kprobe's code)" + (f": {why}" if why else "") +
                         ": handlers and original bytes come only from what kprobes/list shows")
            return None
        src = getattr(self.symbols, "answers", {}).get("kprobe_table")
        if src is not None:
            notes.append(f"kprobe_table from {src.describe()}")
        # imported where a table is walked: a dump whose symbols have no kprobe_table (kdis's
        # probe marks, kprobe-list's error) does without the module (~0.5 ms of a first call)
        from gdb_toolkit.kernel.kprobe_table import TableWalker

        try:
            layout = self.kprobe_layout()
            self.walker = TableWalker(self.memory, layout, self.symbols, self.percpu_offsets())
            return self.walker.walk(table)
        except ToolkitError as exc:
            notes.append(f"kprobe_table not walked: {exc.cause}")
            return None

    def percpu_offsets(self) -> list[int] | None:
        """``__per_cpu_offset[cpu]`` of every possible CPU (for per-CPU counters such as
        trace_kprobe->nhit); None when the symbols or memory are not there."""
        import struct

        try:
            nr_addr = self.symbols.address("nr_cpu_ids")
            table = self.symbols.address("__per_cpu_offset")
            mask_addr = self.symbols.address("__cpu_possible_mask")
        except ToolkitError:
            return None
        try:
            if table is None:
                return [0] if nr_addr is None else None     # a UP kernel has no per-cpu offsets
            nr = self.memory.read_u32(nr_addr) if nr_addr is not None else 1
            if not 0 < nr <= 8192:
                return None
            offs = struct.unpack(f"<{nr}Q", self.memory.read(table, 8 * nr))
            if mask_addr is None:
                return list(offs)
            mask = int.from_bytes(self.memory.read(mask_addr, (nr + 63) // 64 * 8), "little")
            return [o for i, o in enumerate(offs) if mask >> i & 1]
        except ToolkitError:
            return None

    def btf_bytes(self) -> bytes | None:
        """The kernel's raw BTF: the --btf/live file's, or the dump's/target's own
        (__start_BTF..__stop_BTF); None when the file cannot be read."""
        if self.btf_path:
            from gdb_toolkit.common.safe_open import read_regular

            try:
                data = read_regular(self.btf_path, "--btf file", MAX_BTF)
            except ToolkitError:
                return None
            if data[:4] == b"\x7fELF":
                from gdb_toolkit.kernel.btf import _elf_btf_section
                data = _elf_btf_section(data, self.btf_path)
            return data
        return self._memory_btf_bytes()

    def kprobe_layout(self):
        """KprobeLayout for this kernel's BTF, cached in-process and on disk (keyed by a
        hash of the BTF bytes) so later runs need not index BTF at all."""
        import hashlib
        import json

        from gdb_toolkit.common.record import fields

        from gdb_toolkit.kernel.btf import Btf
        from gdb_toolkit.kernel.kprobe_table import KprobeLayout

        if self._btf is not None:
            return KprobeLayout.from_btf(self._btf)
        data = self.btf_bytes()
        if data is None:
            return KprobeLayout.from_btf(self.btf)     # raises the explained error
        key = hashlib.sha1(data).hexdigest()[:20]
        if key in _LAYOUT_CACHE:
            return _LAYOUT_CACHE[key]
        cache = _layout_cache_dir()
        name = f"kprobe-layout-v2-{key}.json"
        layout = None
        if cache is not None:
            try:
                layout = KprobeLayout(**json.loads(cache.read(name)))
            except (ToolkitError, OSError, ValueError, TypeError, AttributeError):
                layout = None
        if layout is None:
            self._btf = Btf(data, self.btf_path or f"BTF in {self.memory.description}")
            layout = KprobeLayout.from_btf(self._btf)
            if cache is not None:
                try:
                    cache.write_atomic(name, json.dumps({f.name: getattr(layout, f.name) for f in fields(layout)}).encode())
                except (ToolkitError, OSError):
                    pass
        _LAYOUT_CACHE[key] = layout
        return layout

    def kprobe_report(self, use_memory: bool = True):
        """Every kprobe, from kprobes/list, tracefs and kernel memory.  The memory reads
        (table walk, containers, strings, live bytes) are one snapshot: each page is read
        from the source once (KernelMemory.snapshot)."""
        if not self.has_kcore:
            return self._kprobe_report(use_memory)
        with self.memory.snapshot():
            return self._kprobe_report(use_memory)

    def _kprobe_report(self, use_memory: bool):
        notes: list[str] = []
        listed = self.listed_probes()
        if not self.is_live:
            notes.append(f"{self.source_description}: no debugfs or tracefs here, so probes, "
                         "flags, events and hit counts come from kernel memory alone")
            if not use_memory:
                raise ToolkitError("--no-memory leaves nothing to read in a dump or a halted "
                                   "kernel (no kprobes/list there)", "drop --no-memory")
        elif listed is None and self.kallsyms_path == LIVE_KALLSYMS and self._symbols_readable() \
                and self.address_of("register_kprobe") is None:
            raise ToolkitError(f"kernel {os.uname().release} has no kprobes "
                               "(no register_kprobe in kallsyms: built without CONFIG_KPROBES)",
                               "boot a kernel with CONFIG_KPROBES=y (Debian's linux-image-amd64)")
        if self.is_live and listed is None:
            kdir = os.path.dirname(self.list_path)
            debugfs = os.path.dirname(kdir)
            if os.path.isdir(debugfs) and not os.access(debugfs, os.X_OK):
                notes.append(f"{self.list_path} is not readable: debugfs is root-only "
                             f"(euid {os.geteuid()})")
            elif not os.path.exists(kdir):
                notes.append(f"{self.list_path} is missing (debugfs not mounted? "
                             "mount -t debugfs none /sys/kernel/debug)")
            else:
                notes.append(f"{self.list_path} is not readable")
        elif listed and all(p.address == 0 for p in listed):
            notes.append("kprobes/list shows zero addresses (kptr_restrict): using memory addresses")
        if not self.is_live and self.address_of("register_kprobe") is None \
                and self.address_of("kprobe_table") is None:
            raise ToolkitError(f"{self.source_description} has no kprobes (no register_kprobe in "
                               "its symbols)", "nothing to list")
        walk = self.table_walk(notes) if use_memory else None
        if listed is None and walk is None:
            raise ToolkitError("no source of kprobes: " + "; ".join(notes),
                               "run gdb as root" if os.geteuid() != 0 and self.is_live else
                               "mount debugfs (mount -t debugfs none /sys/kernel/debug)"
                               if self.is_live else "give --kallsyms/--system-map and --btf")
        events_text = self._tracefs("kprobe_events")
        events = T.parse_kprobe_events(events_text or "")
        profile = T.parse_kprobe_profile(self._tracefs("kprobe_profile") or "")
        read = self.read if self.has_kcore else None
        if read is None:
            notes.append(f"live bytes not read: {self._kcore_error()}")
        # imported once there is something to report: the checks above end a first kdis or
        # kprobe-list on a dump without kprobes in an error without it (~0.5 ms)
        from gdb_toolkit.kernel.kprobes import build_report

        rep = build_report(self.arch, listed, walk, read, self.symbolize, events, profile,
                           self.all_disarmed(), resolve=self.address_of,
                           enrich=self.walker.enrich if walk is not None else None,
                           events_known=events_text is not None)
        rep.notes = notes + rep.notes
        return rep

    def _symbols_readable(self) -> bool:
        try:
            return not self.symbols.restricted
        except ToolkitError:
            return False

    def _kcore_error(self) -> str:
        try:
            self.memory
            return ""
        except ToolkitError as exc:
            return str(exc)


def _layout_cache_dir():
    """~/.cache/gdb_toolkit (owner- and mode-checked), or None when unusable."""
    try:
        from gdb_toolkit.common.private_dirs import open_cache

        return open_cache("kprobe-layouts")
    except (ToolkitError, OSError, ImportError):
        return None
