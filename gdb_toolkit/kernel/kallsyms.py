"""Kernel symbols: /proc/kallsyms (with ``[module]`` symbols), System.map, KASLR.

``Kallsyms.load()`` parses the text once; ``address(name)`` and
``symbolize(addr)`` answer from a dict and a sorted address list.  When every
address reads as zero, kernel.kptr_restrict (or a non-root reader) hides them:
``restricted`` says so and lookups raise a ToolkitError explaining the fix.
"""
import _bisect as bisect   # what bisect.py re-exports (see plt/slots.py)
import os
from gdb_toolkit.common.record import record

from gdb_toolkit.common.errors import ToolkitError

# x86_64 __START_KERNEL_map + CONFIG_PHYSICAL_START (16 MiB): where _text sits without KASLR
X86_64_TEXT_DEFAULT = 0xFFFFFFFF81000000
# largest distance from a symbol we still call "symbol+off" when the next symbol is far away
MAX_SYMBOL_SPAN = 1 << 20
# past a module's last symbol, when the module's extent is not known (no /proc/modules)
MODULE_TAIL_SPAN = 1 << 16
# the kernel's own pseudo-modules: one page each (kprobe insn pages, ftrace trampolines)
BUILTIN_SPAN = 1 << 12


def is_mapping_symbol(name: str) -> bool:
    """An ARM/AArch64 ELF mapping symbol (``$x``, ``$d``, ``$x.12`` ...) or an assembler local
    label (``.L...``): /proc/kallsyms lists a module's (arm64 6.1: a ``$x`` at the start of each
    text section, sharing its address with the first function), but they name no code, and the
    kernel's own lookups skip them (kernel/module/kallsyms.c is_arm_mapping_symbol) -- so
    kprobes/list and available_filter_functions name the function, and so must we."""
    return (name[:2] == ".L" or (name[:1] == "$" and name[1:2] in ("a", "x", "t", "d")
                                  and name[2:3] in ("", ".")))


@record(frozen=True)
class Symbol:
    address: int
    name: str
    type: str          # kallsyms letter: T t D d B b R r W ...
    module: str | None

    @property
    def is_text(self) -> bool:
        return self.type in "TtWw"


_NAMES: dict = {}


def symbol_names(path: str = "/proc/kallsyms", types: str | None = None,
                 modules: bool = True) -> list[str]:
    """Sorted unique names from a kallsyms file, for completion and "is it there" checks.

    *types* keeps only those type letters ("tT": text); *modules* False drops
    ``[module]`` symbols.  Cached per arguments: the file is ~10 MB, and completion
    asks on every key press.
    """
    key = (path, types, modules)
    if key not in _NAMES:
        names = set()
        try:
            from gdb_toolkit.common.safe_open import open_regular

            with open_regular(path, "kallsyms file") as rf, \
                    open(rf.fd, errors="surrogateescape", closefd=False) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 3 or (types is not None and parts[1] not in types) \
                            or (not modules and len(parts) > 3) or is_mapping_symbol(parts[2]):
                        continue
                    names.add(parts[2])
        except (OSError, ToolkitError):
            pass
        _NAMES[key] = sorted(names)
    return _NAMES[key]


def parse_module_extents(text: str) -> dict[str, tuple[int, int]]:
    """/proc/modules: ``name size refcount deps state address`` -> {name: (start, end)}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1].isdigit() and parts[-1].startswith("0x"):
            try:
                base = int(parts[-1], 16)
            except ValueError:
                continue
            if base:
                out[parts[0]] = (base, base + int(parts[1]))
    return out


def require_symbol_lines(text: str, path: str, what: str = "kallsyms file") -> None:
    """ToolkitError unless *text* has at least one ``ADDRESS TYPE NAME`` line: an empty file,
    a trace file or an ELF given as --kallsyms/--system-map is no symbol table (it was
    reported as "no symbol matches" or, all([]) being true, as kptr_restrict zeroes)."""
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and len(parts[1]) == 1:
            try:
                int(parts[0], 16)
            except ValueError:
                continue
            return
    from gdb_toolkit.common.names import escape_name

    why = "it is empty" if not text.strip() else "no line is 'ADDRESS TYPE NAME'"
    raise ToolkitError(f"{what} {escape_name(path)} is not a symbol table ({why})",
                       "give /proc/kallsyms, a copy of it, or a System.map")


def restricted_error(path: str = "/proc/kallsyms") -> ToolkitError:
    import os
    who = "you are not root" if os.geteuid() != 0 else "kernel.kptr_restrict hides them"
    return ToolkitError(f"{path} shows every address as 0 ({who})",
                        "run gdb as root, and/or sysctl kernel.kptr_restrict=0")


class Kallsyms:
    """Symbols from kallsyms-format text.

    Lookups work on the text itself: /proc/kallsyms lists vmlinux symbols sorted by
    address, so ``symbolize`` bisects the text (a few dozen line parses) and ``address``
    is a substring search; only the module/``__builtin__`` tail is parsed into a list.
    Parsing every line happens only when ``symbols`` is asked for.  This keeps a
    lookup cheap even in a slow (TCG) guest.
    """

    def __init__(self, text: str, path: str = "<text>", offset: int = 0):
        self.path = path
        self.text = text if text.endswith("\n") or not text else text + "\n"
        self.offset = offset            # added to every non-zero address (System.map + KASLR)
        # module name -> (start, end) of its memory (/proc/modules), bounding the last symbol
        self.module_extents: dict[str, tuple[int, int]] = {}
        self._end_addr = False
        self._symbols: list[Symbol] | None = None
        self._by_name: dict[str, Symbol] | None = None
        self._tail: list[Symbol] | None = None
        self._tail_addrs: list[int] | None = None
        # vmlinux part: [0, self._split) sorted by address; module lines after it
        i = self.text.find("\t[")
        self._split = len(self.text) if i < 0 else self.text.rfind("\n", 0, i) + 1
        self._sorted_ok = None
        self._unsorted = None
        self.restricted = self._all_zero()

    # -- loading ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, path: str = "<text>", offset: int = 0) -> "Kallsyms":
        """Kallsyms / System.map text; *offset* is added to every address
        (a System.map's link-time addresses + the KASLR slide)."""
        return cls(text, path, offset)

    def load_module_extents(self, path: str = "/proc/modules") -> None:
        """Each loaded module's memory, from /proc/modules (``name size ... 0xADDR``)."""
        from gdb_toolkit.common.safe_open import read_regular_text

        try:
            text = read_regular_text(path, "modules list", 16 << 20)
        except ToolkitError:
            return
        self.module_extents.update(parse_module_extents(text))

    @classmethod
    def load(cls, path: str = "/proc/kallsyms") -> "Kallsyms":
        from gdb_toolkit.common.names import decode_name
        from gdb_toolkit.common.safe_open import read_regular

        if path == "/proc/kallsyms" and not os.path.exists(path):
            raise ToolkitError("/proc/kallsyms does not exist: the kernel has no CONFIG_KALLSYMS",
                               "give a System.map (ksym --system-map PATH)")
        text = decode_name(read_regular(path, "kallsyms file", 512 << 20))
        require_symbol_lines(text, path)
        return cls(text, path)

    @classmethod
    def load_system_map(cls, path: str, kaslr_offset: int = 0) -> "Kallsyms":
        """A System.map (link-time addresses) slid by *kaslr_offset*."""
        from gdb_toolkit.common.names import decode_name
        from gdb_toolkit.common.safe_open import read_regular

        text = decode_name(read_regular(path, "System.map", 512 << 20))
        require_symbol_lines(text, path, "System.map")
        return cls(text, path, offset=kaslr_offset)

    # -- line access ---------------------------------------------------------------
    def _line_at(self, pos: int) -> tuple[Symbol | None, int]:
        """The symbol on the line starting at *pos*, and the next line's start."""
        end = self.text.find("\n", pos)
        if end < 0:
            end = len(self.text)
        return self._parse_line(self.text[pos:end]), end + 1

    def _parse_line(self, line: str) -> Symbol | None:
        parts = line.split()
        if len(parts) < 3:
            return None
        try:
            addr = int(parts[0], 16)
        except ValueError:
            return None
        if addr and self.offset:
            addr = (addr + self.offset) & ((1 << 64) - 1)
        return Symbol(addr, parts[2], parts[1], parts[3].strip("[]") if len(parts) > 3 else None)

    def _all_zero(self) -> bool:
        t = self.text
        if not t.strip():
            return False
        probes = [0, len(t) // 2, max(0, len(t) - 200), self._split // 2]
        for p in probes:
            start = t.rfind("\n", 0, p) + 1 if p else 0
            sym, _ = self._line_at(start)
            if sym is not None and sym.address:
                return False
        return bool(self.symbols) and all(s.address == 0 for s in self.symbols)

    @property
    def symbols(self) -> list[Symbol]:
        """Every symbol as the text lists it, mapping symbols included (slow on big kernels
        in a slow VM; lookups avoid it, and skip mapping symbols)."""
        if self._symbols is None:
            out = []
            for line in self.text.splitlines():
                s = self._parse_line(line)
                if s is not None:
                    out.append(s)
            self._symbols = out
        return self._symbols

    def _tail_index(self):
        if self._tail is None:
            # per-cpu (type a) symbols of modules carry per-cpu offsets, not addresses
            tail = [s for s in (self._parse_line(l) for l in self.text[self._split:].splitlines())
                    if s is not None and s.address and s.type not in "aAUu"
                    and not is_mapping_symbol(s.name)]
            tail.sort(key=lambda s: s.address)
            self._tail = tail
            self._tail_addrs = [s.address for s in tail]
        return self._tail

    def _head_sorted(self) -> bool:
        """True when the vmlinux part is in address order (kallsyms is; a System.map is too)."""
        if self._sorted_ok is None:
            prev, ok = -1, True
            # spot-check 64 evenly spaced lines instead of parsing all
            n = 64
            for k in range(n + 1):
                p = self._split * k // n
                start = self.text.rfind("\n", 0, p) + 1 if p else 0
                if start >= self._split:
                    break
                sym, _ = self._line_at(start)
                if sym is None:
                    continue
                if sym.address < prev:
                    ok = False
                    break
                prev = sym.address
            self._sorted_ok = ok
        return self._sorted_ok

    # -- queries ----------------------------------------------------------------
    def _check(self):
        if self.restricted:
            raise restricted_error(self.path)

    def __len__(self):
        return self.text.count("\n")

    def _find_lines(self, name: str):
        """Symbols named *name*, in file order (vmlinux first), found by substring search
        (never a mapping symbol: they name no code)."""
        if is_mapping_symbol(name):
            return
        t = self.text
        for needle in (f" {name}\n", f" {name}\t"):
            pos = t.find(needle)
            while pos >= 0:
                start = t.rfind("\n", 0, pos) + 1
                sym, _ = self._line_at(start)
                if sym is not None and sym.name == name:
                    yield sym
                pos = t.find(needle, pos + 1)

    def lookup(self, name: str, module: str | None = None) -> Symbol | None:
        best = None
        for s in self._find_lines(name):
            if module is not None:
                if s.module == module:
                    return s
                continue
            if best is None or (best.module and not s.module) or \
                    (best.type.islower() and s.type.isupper() and bool(best.module) == bool(s.module)):
                best = s
        return best

    def address(self, name: str, module: str | None = None) -> int | None:
        """Address of *name* (``mod:name`` picks a module's copy), None when unknown."""
        self._check()
        if module is None and ":" in name:
            module, name = name.split(":", 1)
        s = self.lookup(name, module)
        return s.address if s else None

    def all_named(self, name: str) -> list[Symbol]:
        return list(self._find_lines(name))

    def _head_floor(self, addr: int) -> tuple[list[Symbol], int | None]:
        """Symbols of the vmlinux part at the greatest address <= addr, and the next address."""
        t, lo, hi = self.text, 0, self._split
        if not self._head_sorted():
            if self._unsorted is None:     # unusual text (hand-made): sort once
                syms = sorted((s for s in self.symbols if s.address and not s.module),
                              key=lambda s: s.address)
                self._unsorted = (syms, [s.address for s in syms])
            syms, addrs = self._unsorted
            i = bisect.bisect_right(addrs, addr) - 1
            if i < 0:
                return [], None
            same = [s for s in syms if s.address == syms[i].address]
            return same, next((a for a in addrs[i + 1:] if a > syms[i].address), None)
        # binary search over line starts: find the last line with address <= addr
        best = None
        while lo < hi:
            mid = (lo + hi) // 2
            start = t.rfind("\n", 0, mid) + 1 if mid else 0
            if start < lo:
                start = lo
            sym, nxt = self._line_at(start)
            if sym is None or sym.address <= addr:
                if sym is not None:
                    best = start
                lo = nxt
            else:
                hi = start
        if best is None:
            return [], None
        first, _ = self._line_at(best)
        same, pos = [first], best
        while pos > 0:                          # aliases above
            prev_start = t.rfind("\n", 0, pos - 1) + 1
            s, _ = self._line_at(prev_start)
            if s is None or s.address != first.address:
                break
            same.append(s)
            pos = prev_start
        nxt_addr, pos = None, self._line_at(best)[1]
        while pos < self._split:                # aliases below, then the next symbol
            s, npos = self._line_at(pos)
            if s is not None and s.address != first.address:
                nxt_addr = s.address
                break
            if s is not None:
                same.append(s)
            pos = npos
        return same, nxt_addr

    def containing(self, addr: int) -> Symbol | None:
        """The symbol at or just below *addr* (None when *addr* is before every symbol,
        past the end of the kernel image, or past the end of the module it would belong to)."""
        self._check()
        cands = []
        same, nxt = self._head_floor(addr)
        same = [s for s in same if s.address and s.type not in "aAUu" and not is_mapping_symbol(s.name)]
        end = self._image_end()
        if same and (end is None or addr < end or same[0].address >= end):
            cands.append((same, nxt, MAX_SYMBOL_SPAN))
        tail = self._tail_index()
        i = bisect.bisect_right(self._tail_addrs, addr) - 1
        if i >= 0:
            a = tail[i].address
            group = [s for s in tail[max(0, i - 16):i + 1] if s.address == a]
            j = bisect.bisect_right(self._tail_addrs, a)
            nxt_sym = tail[j] if j < len(tail) else None
            cands.append((group, nxt_sym.address if nxt_sym else None,
                          self._module_span(group[-1], nxt_sym, addr)))
        best = None
        for group, nxt, span in cands:
            s = max(group, key=lambda x: (x.is_text, x.type.isupper(), not x.name.startswith("__"),
                                          x.module is None))
            limit = (nxt - s.address) if nxt is not None else span
            if addr - s.address >= min(limit, span):
                continue
            if best is None or s.address > best.address:
                best = s
        return best

    def _image_end(self) -> int | None:
        """``_end``: nothing of vmlinux lies past it (an address there is a module's, or
        nobody's)."""
        if self._end_addr is False:
            s = self.lookup("_end")
            self._end_addr = s.address if s is not None and not s.module and s.address else None
        return self._end_addr

    def _module_span(self, sym: Symbol, nxt: Symbol | None, addr: int) -> int:
        """How far past *sym* an address may still be *sym*'s: up to the next symbol of the
        same module; past a module's last symbol, only inside the module's extent."""
        mod = sym.module or ""
        if nxt is not None and nxt.module == sym.module:
            return MAX_SYMBOL_SPAN
        ext = self.module_extents.get(mod)
        if ext is not None:
            return max(0, ext[1] - sym.address) if ext[0] <= addr else 0
        if mod.startswith("__builtin__"):
            return BUILTIN_SPAN
        return MODULE_TAIL_SPAN

    def symbolize(self, addr: int) -> tuple[str, int, str | None] | None:
        """(name, offset, module or None) for *addr*, or None."""
        s = self.containing(addr)
        if s is None:
            return None
        return (s.name, addr - s.address, s.module)

    def describe(self, addr: int) -> str | None:
        """``name+0x10 [mod]``, or None when no symbol covers *addr* (or addresses are hidden)."""
        try:
            r = self.symbolize(addr)
        except ToolkitError:
            return None
        if r is None:
            return None
        name, off, mod = r
        return name + (f"+0x{off:x}" if off else "") + (f" [{mod}]" if mod else "")

    def format(self, addr: int) -> str:
        """``name+0x10 [mod]`` or the bare hex address."""
        return self.describe(addr) or f"0x{addr:x}"

    def next_symbol_after(self, addr: int) -> int | None:
        """Address of the first symbol strictly above *addr* (the end of *addr*'s function)."""
        _, nxt = self._head_floor(addr)
        tail = self._tail_index()
        j = bisect.bisect_right(self._tail_addrs, addr)
        cands = [a for a in (nxt, self._tail_addrs[j] if j < len(tail) else None)
                 if a is not None and a > addr]
        return min(cands) if cands else None

    def modules(self) -> list[str]:
        return sorted({s.module for s in self._tail_index() if s.module})

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
