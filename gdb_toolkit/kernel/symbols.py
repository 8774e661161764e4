"""Kernel symbols from every source that has them, saying which one answered.

One table (``KernelSymbols``, a Kallsyms) with a primary source and supplements consulted
only for names the primary lacks:

- live kernel: /proc/kallsyms (+ /proc/modules extents).  A kernel without
  CONFIG_KALLSYMS_ALL (Debian's arm64) lists no data symbols there: a System.map of the same
  build is found automatically (/boot, /usr/lib/debug/boot, /lib/modules/R/build; Debian's
  /boot one is a placeholder) and slid to the running KASLR offset by text symbols, which
  must all agree; failing that, a few data symbols are read from the code that uses them
  (``kprobe_table`` from ``get_kprobe``), each checked against the memory it names.
- a dump or a halted kernel: the kernel's own kallsyms tables in its memory (VMCOREINFO's
  addresses, or found by structure) and its module list; or a saved /proc/kallsyms of the
  same boot, or a System.map slid by VMCOREINFO's KERNELOFFSET.

``sources`` lists what was used; ``answers`` which source gave each supplementary name.
"""
import os
from gdb_toolkit.common.record import field, record

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel.kallsyms import Kallsyms, Symbol

# data symbols the kernel commands need (checked to decide that kallsyms lacks data symbols)
DATA_PROBES = ("init_task", "kprobe_table", "linux_banner")
SAMPLE_TEXT_SYMBOLS = 64


@record
class SymbolSource:
    kind: str                      # kallsyms | saved kallsyms | System.map | vmlinux | memory | code
    path: str | None = None
    detail: str = ""

    def describe(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"{self.kind}{where}" + (f" ({self.detail})" if self.detail else "")


class KernelSymbols(Kallsyms):
    """A Kallsyms whose missing names may come from supplementary sources."""

    def __init__(self, text: str, path: str = "<text>", offset: int = 0,
                 source: SymbolSource | None = None):
        super().__init__(text, path, offset)
        self.sources: list[SymbolSource] = [source or SymbolSource("kallsyms", path)]
        self._supplements: list = []        # [loader() -> (Kallsyms, SymbolSource) | None]
        self._loaded: list[tuple[Kallsyms, SymbolSource]] = []
        self._resolvers: list = []          # [(name) -> (address, SymbolSource) | None]
        self.answers: dict[str, SymbolSource] = {}
        self._found: dict[str, Symbol | None] = {}
        self.notes: list[str] = []

    def add_supplement(self, loader) -> None:
        """*loader()* returns (Kallsyms, SymbolSource) or None; called on the first miss."""
        self._supplements.append(loader)

    def add_resolver(self, resolver) -> None:
        """*resolver(name)* returns (address, SymbolSource) or None."""
        self._resolvers.append(resolver)

    def _tables(self):
        while self._supplements:
            loader = self._supplements.pop(0)
            try:
                got = loader()
            except ToolkitError as exc:
                self.notes.append(exc.cause)
                got = None
            if got is not None:
                self._loaded.append(got)
                self.sources.append(got[1])
        return self._loaded

    def lookup(self, name: str, module: str | None = None) -> Symbol | None:
        s = super().lookup(name, module)
        if s is not None or module is not None:
            return s
        if name in self._found:
            return self._found[name]
        found = None
        for table, src in self._tables():
            s = table.lookup(name)
            if s is not None and s.address:
                found, self.answers[name] = s, src
                break
        if found is None:
            for resolve in self._resolvers:
                try:
                    got = resolve(name)
                except ToolkitError as exc:
                    self.notes.append(exc.cause)
                    got = None
                if got is not None:
                    addr, src = got
                    found, self.answers[name] = Symbol(addr, name, "d", None), src
                    if src not in self.sources:
                        self.sources.append(src)
                    break
        self._found[name] = found
        return found

    def all_named(self, name: str) -> list[Symbol]:
        out = super().all_named(name)
        if not out:
            s = self.lookup(name)
            out = [s] if s is not None else []
        return out

    def containing(self, addr: int) -> Symbol | None:
        best = super().containing(addr)
        for table, _src in self._loaded:
            try:
                s = table.containing(addr)
            except ToolkitError:
                continue
            if s is not None and (best is None or s.address > best.address):
                best = s
        return best

    @property
    def has_data_symbols(self) -> bool:
        return any(Kallsyms.lookup(self, n) is not None for n in DATA_PROBES)


# -- System.map matching -----------------------------------------------------------------------

def is_placeholder(text: str) -> bool:
    """Debian's /boot/System.map: one line saying the real one is in the -dbg package."""
    head = text[:400]
    return text.count("\n") < 8 and ("real System.map" in head or "ffffffffffffffff" in head)


def match_system_map(static: Kallsyms, live: Kallsyms,
                     samples: int = SAMPLE_TEXT_SYMBOLS) -> tuple[int, int, int]:
    """(slide, agreeing, checked): slide the map by _text and check text symbols spread over
    the running kernel's list sit at the same slid addresses."""
    lt, st = live.lookup("_text"), static.lookup("_text")
    if lt is None or st is None:
        raise ToolkitError("no _text in one of the symbol tables", "give a System.map of this build")
    slide = (lt.address - st.address) & ((1 << 64) - 1)
    if slide >= 1 << 63:
        slide -= 1 << 64
    lines = live.text[:live._split].splitlines()
    step = max(1, len(lines) // samples)
    agree = checked = 0
    for line in lines[::step][:samples]:
        s = live._parse_line(line)
        if s is None or not s.is_text or s.name.startswith(("__", "_text")):
            continue
        checked += 1
        want = static.lookup(s.name)
        if want is not None and (want.address + slide) & ((1 << 64) - 1) == s.address:
            agree += 1
    return slide, agree, checked


def system_map_candidates(release: str) -> list[str]:
    return [f"/boot/System.map-{release}", f"/usr/lib/debug/boot/System.map-{release}",
            f"/lib/modules/{release}/build/System.map", f"/lib/modules/{release}/System.map",
            f"/usr/lib/debug/lib/modules/{release}/vmlinux"]


def load_static_text(path: str) -> str:
    """kallsyms-format text of a System.map or a vmlinux ELF's .symtab (regular files only)."""
    from gdb_toolkit.common.names import decode_name
    from gdb_toolkit.common.safe_open import open_regular

    with open_regular(path, "System.map") as f:
        magic = f.read_range(0, min(4, f.size))
        if magic == b"\x7fELF":
            pass
        else:
            from gdb_toolkit.kernel.kallsyms import require_symbol_lines

            text = decode_name(f.read_all(512 << 20))
            require_symbol_lines(text, path, "System.map")
            return text
    from gdb_toolkit.kernel.vmlinux import Vmlinux

    with Vmlinux.open(path) as vm:
        return vm.kallsyms_text()


def matching_system_map(live: Kallsyms, release: str, paths: list[str] | None = None):
    """The first candidate System.map whose text symbols all agree with the running kernel's
    (after the KASLR slide), as (Kallsyms slid, SymbolSource); else None with the reasons."""
    reasons = []
    for path in paths or system_map_candidates(release):
        if not os.path.exists(path):
            continue
        try:
            text = load_static_text(path)
        except ToolkitError as exc:
            reasons.append(exc.cause)
            continue
        if is_placeholder(text):
            reasons.append(f"{path} is a placeholder (Debian ships the real one in "
                           f"linux-image-{release}-dbg)")
            continue
        static = Kallsyms.parse(text, path)
        try:
            slide, agree, checked = match_system_map(static, live)
        except ToolkitError as exc:
            reasons.append(f"{path}: {exc.cause}")
            continue
        if checked and agree == checked:
            src = SymbolSource("System.map", path, f"matches the running build: {agree}/{checked} "
                               f"text symbols agree; slid by 0x{slide & ((1 << 64) - 1):x}")
            return Kallsyms.parse(text, path, slide), src
        reasons.append(f"{path} is another build ({agree}/{checked} text symbols agree)")
    raise ToolkitError("no System.map of this build" + (": " + "; ".join(reasons) if reasons else
                       " (none found in /boot, /usr/lib/debug/boot, /lib/modules)"),
                       "give --system-map FILE (the real one is in the kernel's -dbg package)")
