"""Kernel symbols: /proc/kallsyms (with ``[module]`` symbols), System.map, KASLR.

``Kallsyms.load()`` parses the text once; ``address(name)`` and
``symbolize(addr)`` answer from a dict and a sorted address list.  When every
address reads as zero, kernel.kptr_restrict (or a non-root reader) hides them:
``restricted`` says so and lookups raise a ToolkitError explaining the fix.
"""
import bisect
from dataclasses import dataclass

from gdb_toolkit.common.errors import ToolkitError

# x86_64 __START_KERNEL_map + CONFIG_PHYSICAL_START (16 MiB): where _text sits without KASLR
X86_64_TEXT_DEFAULT = 0xFFFFFFFF81000000
# largest distance from a symbol we still call "symbol+off" when the next symbol is far away
MAX_SYMBOL_SPAN = 1 << 20


@dataclass(frozen=True)
class Symbol:
    address: int
    name: str
    type: str          # kallsyms letter: T t D d B b R r W ...
    module: str | None

    @property
    def is_text(self) -> bool:
        return self.type in "TtWw"


def restricted_error(path: str = "/proc/kallsyms") -> ToolkitError:
    import os
    who = "you are not root" if os.geteuid() != 0 else "kernel.kptr_restrict hides them"
    return ToolkitError(f"{path} shows every address as 0 ({who})",
                        "run gdb as root, and/or sysctl kernel.kptr_restrict=0")


class Kallsyms:
    def __init__(self, symbols: list[Symbol], path: str = "<text>"):
        self.path = path
        self.symbols = symbols
        self.restricted = bool(symbols) and all(s.address == 0 for s in symbols)
        self._by_name: dict[str, Symbol] | None = None
        self._sorted: list[Symbol] | None = None
        self._addrs: list[int] | None = None

    # -- loading ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, path: str = "<text>", offset: int = 0) -> "Kallsyms":
        """Parse kallsyms / System.map text; *offset* is added to every address
        (a System.map's link-time addresses + the KASLR slide)."""
        syms = []
        append = syms.append
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            module = parts[3].strip("[]") if len(parts) > 3 else None
            if addr and offset:
                addr = (addr + offset) & ((1 << 64) - 1)
            append(Symbol(addr, parts[2], parts[1], module))
        return cls(syms, path)

    @classmethod
    def load(cls, path: str = "/proc/kallsyms") -> "Kallsyms":
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            if path == "/proc/kallsyms":
                raise ToolkitError("/proc/kallsyms does not exist: the kernel has no CONFIG_KALLSYMS",
                                   "give a System.map (ksym --system-map PATH)") from None
            raise ToolkitError(f"{path} does not exist", "check the path") from None
        except OSError as exc:
            raise ToolkitError(f"cannot read {path}: {exc.strerror}", "run as root") from None
        return cls.parse(text, path)

    @classmethod
    def load_system_map(cls, path: str, kaslr_offset: int = 0) -> "Kallsyms":
        """A System.map (link-time addresses) slid by *kaslr_offset*."""
        try:
            with open(path) as f:
                text = f.read()
        except OSError as exc:
            raise ToolkitError(f"cannot read System.map {path}: {exc.strerror}",
                               "give the System.map of the running kernel "
                               "(/boot/System.map-$(uname -r))") from None
        return cls.parse(text, path, offset=kaslr_offset)

    # -- indexes ------------------------------------------------------------------
    def _index(self):
        if self._by_name is None:
            by_name: dict[str, Symbol] = {}
            for s in self.symbols:
                old = by_name.get(s.name)
                # prefer vmlinux over modules, globals over locals, text over data
                if old is None or (old.module and not s.module) or \
                        (old.type.islower() and s.type.isupper() and bool(old.module) == bool(s.module)):
                    by_name[s.name] = s
            self._by_name = by_name
        return self._by_name

    def _sorted_index(self):
        if self._sorted is None:
            # absolute symbols (type a/A) and zero addresses do not name code or data
            keep = [s for s in self.symbols if s.address and s.type not in "aAUu"]
            keep.sort(key=lambda s: s.address)
            self._sorted = keep
            self._addrs = [s.address for s in keep]
        return self._sorted

    def _check(self):
        if self.restricted:
            raise restricted_error(self.path)

    # -- queries ----------------------------------------------------------------
    def __len__(self):
        return len(self.symbols)

    def lookup(self, name: str, module: str | None = None) -> Symbol | None:
        if module:
            for s in self.symbols:
                if s.name == name and s.module == module:
                    return s
            return None
        return self._index().get(name)

    def address(self, name: str, module: str | None = None) -> int | None:
        """Address of *name* (``mod:name`` picks a module's copy), None when unknown."""
        self._check()
        if module is None and ":" in name:
            module, name = name.split(":", 1)
        s = self.lookup(name, module)
        return s.address if s else None

    def all_named(self, name: str) -> list[Symbol]:
        return [s for s in self.symbols if s.name == name]

    def containing(self, addr: int) -> Symbol | None:
        """The symbol at or just below *addr* (None when *addr* is before every symbol
        or too far past the last one)."""
        self._check()
        syms = self._sorted_index()
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        s = syms[i]
        # several names at one address: prefer text, then global, then vmlinux
        j = i
        while j > 0 and syms[j - 1].address == s.address:
            j -= 1
        same = syms[j:i + 1]
        s = max(same, key=lambda x: (x.is_text, x.type.isupper(), not x.name.startswith("__"),
                                     x.module is None))
        nxt = syms[i + 1].address if i + 1 < len(syms) else None
        limit = (nxt - s.address) if nxt is not None else MAX_SYMBOL_SPAN
        if addr - s.address >= min(limit, MAX_SYMBOL_SPAN):
            return None
        return s

    def symbolize(self, addr: int) -> tuple[str, int, str | None] | None:
        """(name, offset, module or None) for *addr*, or None."""
        s = self.containing(addr)
        if s is None:
            return None
        return (s.name, addr - s.address, s.module)

    def format(self, addr: int) -> str:
        """``name+0x10 [mod]`` or the bare hex address."""
        try:
            r = self.symbolize(addr)
        except ToolkitError:
            r = None
        if r is None:
            return f"0x{addr:x}"
        name, off, mod = r
        text = name + (f"+0x{off:x}" if off else "")
        return text + (f" [{mod}]" if mod else "")

    def next_symbol_after(self, addr: int) -> int | None:
        """Address of the first symbol strictly above *addr* (the end of *addr*'s function)."""
        self._sorted_index()
        i = bisect.bisect_right(self._addrs, addr)
        return self._addrs[i] if i < len(self._addrs) else None

    def modules(self) -> list[str]:
        return sorted({s.module for s in self.symbols if s.module})

    # -- KASLR ---------------------------------------------------------------------
    def kaslr_offset(self, vmcoreinfo: dict[str, str] | None = None,
                     arch: str = "x86_64", system_map: "Kallsyms | None" = None) -> int | None:
        """The KASLR slide: VMCOREINFO's KERNELOFFSET if given, else _text against a
        System.map's _text, else (x86_64) _text against its link address."""
        if vmcoreinfo and vmcoreinfo.get("KERNELOFFSET"):
            return int(vmcoreinfo["KERNELOFFSET"], 16)
        if self.restricted:
            return None
        text = self.address("_text")
        if text is None:
            return None
        if system_map is not None:
            base = system_map.address("_text")
            return None if base is None else text - base
        if arch == "x86_64":
            return text - X86_64_TEXT_DEFAULT
        return None
