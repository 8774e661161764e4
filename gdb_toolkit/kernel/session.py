"""One place that opens the kernel's sources lazily: kcore, kallsyms (or System.map), BTF,
and the kprobe text files -- and answers "what is at this address" questions.

Used by the gdb commands, the benchmark and the guest tests alike.  Nothing is opened
until asked, so ``ksym`` works on a machine without /proc/kcore and BTF lookups work
without kallsyms.
"""
import os
import platform
import re

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kprobe_text as T

_BTF_CACHE: dict = {}
_LAYOUT_CACHE: dict = {}


def load_btf(path: str):
    from gdb_toolkit.kernel.btf import Btf

    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
    except OSError:
        key = (path, None, None)
    if key not in _BTF_CACHE:
        _BTF_CACHE.clear()
        _BTF_CACHE[key] = Btf.load(path)
    return _BTF_CACHE[key]


def _static_symbols(path: str) -> str:
    """kallsyms-format text from a System.map or a vmlinux ELF's .symtab."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ToolkitError(f"cannot read System.map {path}: {exc.strerror}",
                           "give the System.map of the running kernel "
                           "(/boot/System.map-$(uname -r)) or its vmlinux") from None
    if magic == b"\x7fELF":
        from gdb_toolkit.kernel.vmlinux import Vmlinux

        with Vmlinux.open(path) as vm:
            return vm.kallsyms_text()
    with open(path, errors="replace") as f:
        return f.read()


class KernelSession:
    def __init__(self, kcore: str | None = None, kallsyms: str | None = None,
                 btf: str | None = None, system_map: str | None = None,
                 kprobes_list: str | None = None, tracefs: str | None = None,
                 vmlinux: str | None = None):
        self.kcore_path = kcore or "/proc/kcore"
        self.kallsyms_path = kallsyms or "/proc/kallsyms"
        self.btf_path = btf or "/sys/kernel/btf/vmlinux"
        self.system_map_path = system_map
        self.list_path = kprobes_list or T.DEBUGFS_LIST
        self.tracefs = tracefs
        self.vmlinux_path = vmlinux
        self._vmlinux = None
        self._kcore = None
        self._syms = None
        self._btf = None
        self.walker = None
        self._sym_cache: dict[int, str | None] = {}

    # -- sources ----------------------------------------------------------------
    @property
    def kcore(self):
        if self._kcore is None:
            from gdb_toolkit.kernel.kcore import Kcore

            self._kcore = Kcore.open(self.kcore_path)
        return self._kcore

    @property
    def has_kcore(self) -> bool:
        try:
            self.kcore
            return True
        except ToolkitError:
            return False

    @property
    def symbols(self):
        if self._syms is None:
            from gdb_toolkit.kernel.kallsyms import Kallsyms

            if self.system_map_path:
                text = _static_symbols(self.system_map_path)
                offset = self._slide(Kallsyms.parse(text, self.system_map_path))
                self._syms = Kallsyms.parse(text, self.system_map_path, offset)
            else:
                self._syms = Kallsyms.load(self.kallsyms_path)
                if self.kallsyms_path == "/proc/kallsyms":
                    self._syms.load_module_extents()
                if self._syms.restricted:
                    raise ToolkitError(f"{self.kallsyms_path} shows every address as 0 "
                                       "(kernel.kptr_restrict, or not root)",
                                       "run gdb as root, sysctl kernel.kptr_restrict=0, "
                                       "or give --system-map")
        return self._syms

    def _slide(self, static) -> int:
        """KASLR offset of link-time symbols *static*: VMCOREINFO, else kallsyms' _text."""
        from gdb_toolkit.kernel.kallsyms import Kallsyms

        if self.has_kcore and self.kcore.kaslr_offset is not None:
            return self.kcore.kaslr_offset
        if os.path.exists(self.kallsyms_path):
            live = Kallsyms.load(self.kallsyms_path)
            if not live.restricted:
                return live.kaslr_offset(system_map=static) or 0
        return 0

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
            slide = self.kcore.kaslr_offset if self.has_kcore else None
            if slide is None:
                text, link = self.address_of("_text"), vm.text_start()
                slide = text - link if text is not None and link is not None else 0
            self._vmlinux = (vm, slide)
        return self._vmlinux

    @property
    def btf(self):
        if self._btf is None:
            self._btf = load_btf(self.btf_path)
        return self._btf

    @property
    def arch(self) -> str:
        if self._kcore is not None or self.has_kcore:
            a = self.kcore.arch
            if a in ("x86_64", "aarch64"):
                return a
        from gdb_toolkit.common.disasm import normalize_arch

        return normalize_arch(platform.machine())

    def close(self):
        if self._kcore is not None:
            self._kcore.close()
            self._kcore = None
        if self._vmlinux is not None:
            self._vmlinux[0].close()
            self._vmlinux = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- addresses ----------------------------------------------------------------
    def symbolize(self, addr: int) -> str | None:
        """``name+0x10 [mod]`` or None (also when kallsyms cannot be read).  Memoized: many
        probes share targets (the ftrace trampoline, a kprobe insn page)."""
        if addr in self._sym_cache:
            return self._sym_cache[addr]
        try:
            r = self.symbols.describe(addr)
        except ToolkitError:
            r = None
        self._sym_cache[addr] = r
        return r

    def address_of(self, name: str) -> int | None:
        try:
            return self.symbols.address(name)
        except ToolkitError:
            return None

    def parse_address(self, text: str) -> int:
        """``0xffff...``, a decimal, ``sym``, ``sym+0x10``, ``mod:sym+8``."""
        t = text.strip()
        if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", t):
            return int(t, 0)
        if re.fullmatch(r"[0-9a-fA-F]{16}", t):
            return int(t, 16)
        m = re.fullmatch(r"([A-Za-z0-9_.$:]+?)\s*(?:([+-])\s*(0[xX][0-9a-fA-F]+|\d+))?", t)
        if not m:
            raise ToolkitError(f"cannot read {text!r} as a kernel address or symbol",
                               "give 0xADDRESS, SYMBOL or SYMBOL+OFFSET")
        base = self.symbols.address(m.group(1))
        if base is None:
            import difflib
            near = difflib.get_close_matches(m.group(1), [s.name for s in self.symbols.symbols
                                                          if s.name[:2] == m.group(1)[:2]], n=3)
            raise ToolkitError(f"no kernel symbol {m.group(1)!r} in {self.symbols.path}",
                               f"did you mean {', '.join(near)}" if near else
                               "check the name (ksym NAME), or load its module")
        off = int(m.group(3), 0) if m.group(3) else 0
        return base - off if m.group(2) == "-" else base + off

    def read(self, addr: int, size: int) -> bytes:
        return self.kcore.read(addr, size)

    def function_bounds(self, addr: int) -> tuple[int, int | None]:
        """(start of the symbol containing addr, start of the next symbol)."""
        s = self.symbols.containing(addr)
        if s is None:
            return addr, None
        return s.address, self.symbols.next_symbol_after(s.address)

    # -- kprobes ------------------------------------------------------------------------
    def tracefs_dir(self) -> str | None:
        return self.tracefs or T.tracefs_dir()

    def _tracefs(self, name: str) -> str | None:
        d = self.tracefs_dir()
        return T.read_text(os.path.join(d, name)) if d else None

    def listed_probes(self):
        text = T.read_text(self.list_path)
        if text is None:
            return None
        return T.parse_kprobes_list(text)

    def all_disarmed(self) -> bool:
        text = T.read_text(os.path.join(os.path.dirname(self.list_path), "enabled"))
        return text is not None and text.strip() == "0"

    def table_walk(self, notes: list):
        """Walk kprobe_table, or None with a note saying why not."""
        from gdb_toolkit.kernel.kprobe_table import TableWalker

        try:
            table = self.symbols.address("kprobe_table")
        except ToolkitError as exc:
            notes.append(f"kprobe_table not walked: {exc.cause}")
            return None
        if table is None:
            notes.append("kprobe_table is not in kallsyms (kernel without CONFIG_KALLSYMS_ALL): "
                         "handlers and original bytes come only from what kprobes/list shows")
            return None
        try:
            layout = self.kprobe_layout()
            self.walker = TableWalker(self.kcore, layout, self.symbols, self.percpu_offsets())
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
            nr = self.kcore.read_u32(nr_addr) if nr_addr is not None else 1
            if not 0 < nr <= 8192:
                return None
            offs = struct.unpack(f"<{nr}Q", self.kcore.read(table, 8 * nr))
            if mask_addr is None:
                return list(offs)
            mask = int.from_bytes(self.kcore.read(mask_addr, (nr + 63) // 64 * 8), "little")
            return [o for i, o in enumerate(offs) if mask >> i & 1]
        except ToolkitError:
            return None

    def kprobe_layout(self):
        """KprobeLayout for this kernel's BTF, cached in-process and on disk (keyed by a
        hash of the BTF bytes) so later runs need not index BTF at all."""
        import dataclasses
        import hashlib
        import json

        from gdb_toolkit.kernel.kprobe_table import KprobeLayout

        if self._btf is not None:
            return KprobeLayout.from_btf(self._btf)
        try:
            with open(self.btf_path, "rb") as f:
                data = f.read()
        except OSError:
            return KprobeLayout.from_btf(self.btf)     # raises the explained error
        if data[:4] == b"\x7fELF":
            from gdb_toolkit.kernel.btf import _elf_btf_section
            data = _elf_btf_section(data, self.btf_path)
        key = hashlib.sha1(data).hexdigest()[:20]
        if key in _LAYOUT_CACHE:
            return _LAYOUT_CACHE[key]
        cache_dir = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                 os.path.join(os.path.expanduser("~"), ".cache"), "gdb_toolkit")
        path = os.path.join(cache_dir, f"kprobe-layout-v2-{key}.json")
        layout = None
        try:
            with open(path) as f:
                layout = KprobeLayout(**json.load(f))
        except (OSError, ValueError, TypeError):
            pass
        if layout is None:
            from gdb_toolkit.kernel.btf import Btf

            self._btf = Btf(data, self.btf_path)
            layout = KprobeLayout.from_btf(self._btf)
            try:
                os.makedirs(cache_dir, exist_ok=True)
                tmp = f"{path}.{os.getpid()}"
                with open(tmp, "w") as f:
                    json.dump(dataclasses.asdict(layout), f)
                os.replace(tmp, path)
            except OSError:
                pass
        _LAYOUT_CACHE[key] = layout
        return layout

    def kprobe_report(self, use_memory: bool = True):
        from gdb_toolkit.kernel.kprobes import build_report

        notes: list[str] = []
        listed = self.listed_probes()
        if listed is None and os.path.exists(self.kallsyms_path) and \
                self.kallsyms_path == "/proc/kallsyms" and self.address_of("register_kprobe") is None \
                and not self.symbols.restricted:
            raise ToolkitError(f"kernel {platform.release()} has no kprobes "
                               "(no register_kprobe in kallsyms: built without CONFIG_KPROBES)",
                               "boot a kernel with CONFIG_KPROBES=y (Debian's linux-image-amd64)")
        if listed is None:
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
        walk = self.table_walk(notes) if use_memory else None
        if listed is None and walk is None:
            raise ToolkitError("no source of kprobes: " + "; ".join(notes),
                               "run gdb as root" if os.geteuid() != 0 else
                               "mount debugfs (mount -t debugfs none /sys/kernel/debug)")
        events_text = self._tracefs("kprobe_events")
        events = T.parse_kprobe_events(events_text or "")
        profile = T.parse_kprobe_profile(self._tracefs("kprobe_profile") or "")
        read = self.read if self.has_kcore else None
        if read is None:
            notes.append(f"live bytes not read: {self._kcore_error()}")
        rep = build_report(self.arch, listed, walk, read, self.symbolize, events, profile,
                           self.all_disarmed(), resolve=self.address_of,
                           enrich=self.walker.enrich if walk is not None else None,
                           events_known=events_text is not None)
        rep.notes = notes + rep.notes
        return rep

    def _kcore_error(self) -> str:
        try:
            self.kcore
            return ""
        except ToolkitError as exc:
            return str(exc)
