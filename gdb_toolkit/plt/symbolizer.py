"""Address -> symbol name, with a sorted per-object index.

Built once per object from its .dynsym, .symtab and (when installed) the separate debug
file's .symtab, so ifunc implementations such as ``__memmove_avx_unaligned_erms`` have
names even in a stripped libc.  Among aliases at one address the one matching the
relocation's name wins (``memcpy`` -> ``__memcpy_avx_unaligned_erms`` rather than its
``__memmove_...`` twin), then globals over locals.
"""
import bisect
from dataclasses import dataclass

from gdb_toolkit.plt.elf_file import STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, Symbol

_KEEP = (STT_FUNC, STT_GNU_IFUNC, STT_OBJECT)


@dataclass
class Hit:
    name: str
    offset: int          # addr - symbol value
    is_ifunc: bool = False

    def text(self) -> str:
        return self.name if not self.offset else f"{self.name}+{self.offset}"


class SymbolIndex:
    """Sorted (value, symbol) arrays; ``lookup`` is a bisect plus a short walk back."""

    def __init__(self, symbols: list[Symbol]):
        keep = [s for s in symbols if s.shndx and s.value and s.type in _KEEP and s.name]
        keep.sort(key=lambda s: s.value)
        self._values = [s.value for s in keep]
        self._syms = keep

    def __len__(self) -> int:
        return len(self._syms)

    def aliases(self, addr: int) -> list[Symbol]:
        lo = bisect.bisect_left(self._values, addr)
        hi = bisect.bisect_right(self._values, addr)
        return self._syms[lo:hi]

    def lookup(self, addr: int, prefer: str | None = None) -> Hit | None:
        """The symbol containing *addr* (exact match or inside [value, value+size))."""
        i = bisect.bisect_right(self._values, addr) - 1
        for j in range(i, max(i - 64, -1), -1):
            s = self._syms[j]
            if s.value == addr or addr < s.value + s.size:
                lo = bisect.bisect_left(self._values, s.value, 0, j + 1)
                hi = bisect.bisect_right(self._values, s.value, j)
                best = s if hi - lo == 1 else min(self._syms[lo:hi], key=lambda a: _rank(a, prefer))
                return Hit(best.name, addr - best.value, best.type == STT_GNU_IFUNC)
        return None

    def by_name(self, name: str) -> list[Symbol]:
        return [s for s in self._syms if s.name == name]


def _rank(s: Symbol, prefer: str | None) -> tuple:
    if prefer:
        if s.name == prefer:
            return (0, 0, len(s.name))
        if prefer in s.name:
            return (1, 0, len(s.name))
    # glibc's internal aliases (__libc_memmove beside memmove) last: users know the public name
    return (2, s.name.startswith("__libc_"), 0 if s.bind else 1, s.name.startswith("_"), len(s.name))
