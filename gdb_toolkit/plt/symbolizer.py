"""Address -> symbol name, with a sorted per-object index.

Built once per object from its .dynsym, .symtab and (when installed) the separate debug
file's .symtab, so ifunc implementations such as ``__memmove_avx_unaligned_erms`` have
names even in a stripped libc.  Among aliases at one address the one matching the
relocation's name wins (``memcpy`` -> ``__memcpy_avx_unaligned_erms`` rather than its
``__memmove_...`` twin), then globals over locals, public names over glibc's internal ones.
Names stay undecoded offsets into their string table until a lookup hits them: building
libc's index (10k symbols) costs a sort, not 10k string decodes.  And it is built only when
needed: ``got`` on a small program names four addresses in libc, each the start of a symbol.
``LazySymbolIndex`` answers those with the same answer the index gives: an address where
the symbol the slot is bound to starts (``puts`` -> puts) through the dynamic symbol
table's hash, reading no other table (a stripped library's debug file stays closed); any
other start of a symbol (an ifunc's implementation) by searching the tables' value columns
for the address.  The index is built for an address inside a symbol, after EXACT_LOOKUPS
lookups, or for ``aliases``.
"""
import _bisect as bisect   # see slots.py

from gdb_toolkit.common.record import SlotFields
from gdb_toolkit.plt.elf_file import STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, Symbol, _cstr
_KEEP = (STT_FUNC, STT_GNU_IFUNC, STT_OBJECT)


class Hit(SlotFields):
    """*ifunc*: the symbol named is an STT_GNU_IFUNC (at its address: the resolver)."""
    __slots__ = ('name', 'offset', 'ifunc')

    def __init__(self, name, offset, ifunc=False):
        self.name = name
        self.offset = offset
        self.ifunc = ifunc

    def text(self) -> str:
        """``name+off`` as printed (common.names.escape_name: a name may be any bytes)."""
        from gdb_toolkit.common.names import escape_name

        name = escape_name(self.name)
        return name if not self.offset else f"{name}+{self.offset}"


class SymbolIndex:
    """Sorted rows (value, size, type, bind, name, table); ``lookup`` is a bisect plus a
    short walk back.  *name* is a str (table -1) or an offset into ``strtabs[table]``."""

    def __init__(self, symbols: list[Symbol] = (), raw: list[tuple[bytes, list[tuple]]] = ()):
        rows = [(s.value, s.size, s.type, s.bind, s.name, -1) for s in symbols
                if s.shndx and s.value and s.type in _KEEP and s.name]
        self._strtabs = []
        for strtab, table in raw:
            t = len(self._strtabs)
            self._strtabs.append(strtab)
            rows += [(v, sz, ty, b, off, t) for v, sz, ty, b, off in table]
        rows.sort(key=lambda r: r[0])
        self._values = [r[0] for r in rows]
        self._rows = rows
        self._memo: dict = {}

    def __len__(self) -> int:
        return len(self._rows)

    def _name(self, row) -> str:
        return row[4] if row[5] < 0 else _cstr(self._strtabs[row[5]], row[4])

    def _symbol(self, row) -> Symbol:
        return Symbol(self._name(row), row[0], row[1], row[2], row[3], 1)

    def aliases(self, addr: int) -> list[Symbol]:
        lo = bisect.bisect_left(self._values, addr)
        hi = bisect.bisect_right(self._values, addr)
        return [self._symbol(r) for r in self._rows[lo:hi]]

    #: answers remembered per (address, preferred name): a warm 'got' on 3000 slots asks again
    MEMO = 1 << 16

    def lookup(self, addr: int, prefer: str | None = None) -> Hit | None:
        """The symbol containing *addr* (exact match or inside [value, value+size))."""
        key = (addr, prefer)
        memo = self._memo
        if key in memo:
            return memo[key]
        hit = self._lookup(addr, prefer)
        if len(memo) < self.MEMO:
            memo[key] = hit
        return hit

    def _lookup(self, addr: int, prefer: str | None) -> Hit | None:
        values, rows = self._values, self._rows
        i = bisect.bisect_right(values, addr) - 1
        for j in range(i, max(i - 64, -1), -1):
            r = rows[j]
            value = r[0]
            if value == addr or addr < value + r[1]:
                lo = bisect.bisect_left(values, value, 0, j + 1)
                hi = bisect.bisect_right(values, value, j)
                if hi - lo == 1:
                    return Hit(self._name(r), addr - value, r[2] == STT_GNU_IFUNC)
                group = rows[lo:hi]
                if prefer is not None:
                    mine = [x for x in group if self._name(x) == prefer]
                    if mine:
                        return Hit(prefer, addr - value, any(x[2] == STT_GNU_IFUNC for x in mine))
                best = min((self._symbol(x) for x in group), key=lambda a: _rank(a, prefer))
                return Hit(best.name, addr - best.value, best.type == STT_GNU_IFUNC)
        return None


def _rank(s: Symbol, prefer: str | None) -> tuple:
    if prefer:
        if s.name == prefer:
            return (0, 0, len(s.name))
        if prefer in s.name:
            return (1, 0, len(s.name))
    # glibc's internal aliases (__libc_memmove beside memmove) last: users know the public name
    return (2, s.name.startswith("__libc_"), 0 if s.bind else 1, s.name.startswith("_"), len(s.name))


class LazySymbolIndex:
    """A SymbolIndex over raw symbol tables (elf_file.SymbolTableBytes), built on demand.

    Until then a lookup answers, exactly as the index would:
      - an address where a dynamic symbol named *prefer* starts: that name (the index picks
        *prefer* among the symbols starting there); *named* finds those symbols through the
        dynamic symbol table's hash section, no other table is read;
      - else from the table rows whose value is the address itself, in table order -- the
        rows the index would consider for an address that starts a symbol -- picked as the
        index does."""

    EXACT_LOOKUPS = 8

    def __init__(self, tables, extra: list[Symbol] = (), named=None):
        """*tables*: the symbol tables, or a function returning them (called on the first
        lookup that needs them: a stripped library's debug file is read only then);
        *named*: name -> the dynamic symbol table's rows of that name (None: no hash)."""
        self._tables = tables
        self._extra = list(extra)       # symbols not in any table (a program's canonical PLT entries)
        self._named = named
        self._full: SymbolIndex | None = None
        self._exact_left = self.EXACT_LOOKUPS
        self._answers: dict = {}        # (addr, prefer) -> Hit: a warm 'got' asks again

    def _load(self) -> list:
        if callable(self._tables):
            self._tables = self._tables()
        return self._tables

    def _index(self) -> SymbolIndex:
        if self._full is None:
            self._full = SymbolIndex(self._extra, raw=[(t.strtab, t.rows()) for t in self._load()])
            self._tables = self._named = None
        return self._full

    def __len__(self) -> int:
        return len(self._index())

    def aliases(self, addr: int) -> list[Symbol]:
        return self._index().aliases(addr)

    def lookup(self, addr: int, prefer: str | None = None) -> Hit | None:
        if self._full is None:
            key = (addr, prefer)
            hit = self._answers.get(key)
            if hit is not None:
                return hit
            if self._exact_left > 0:
                self._exact_left -= 1
                mine = [r for r in self._named(prefer) if r[0] == addr] if prefer and self._named is not None else ()
                if mine:
                    hit = self._answers[key] = Hit(prefer, 0, any(r[2] == STT_GNU_IFUNC for r in mine))
                    return hit
                at = [(t.strtab, t.rows_at(addr)) for t in self._load()]
                extra = [s for s in self._extra if s.value == addr]
                if extra or any(rows for _, rows in at):
                    hit = self._answers[key] = SymbolIndex(extra, raw=at).lookup(addr, prefer)
                    return hit
        return self._index().lookup(addr, prefer)
