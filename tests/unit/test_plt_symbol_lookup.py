"""The lazy symbol index answers as the full index does (the oracle), without reading what
it does not need: names through the dynamic symbol table's hash section (GNU and SysV,
checked against nm), addresses through the tables' value columns (checked against a plain
scan of every row), crafted hash sections never give a wrong name."""
import random
import struct
import subprocess

import pytest

from gdb_toolkit.plt.elf_file import SHT_DYNSYM, SymbolHash, SymbolTableBytes, _cstr
from gdb_toolkit.plt.elf_model import _build_index, debug_file_for, load_model
from gdb_toolkit.plt.symbolizer import LazySymbolIndex
from tests.support.gdbrun import compile_c
from tests.support.plt_oracles import nm_symbols

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
LD_SO = "/lib64/ld-linux-x86-64.so.2"


# 300 functions and objects, some aliased, one ifunc: chains of several entries per bucket
_LIB = "".join(f"int f{i}(int x) {{ return x + {i}; }}\nint v{i} = {i};\n" for i in range(300)) + \
    "int alias0(int) __attribute__((alias(\"f0\")));\n" \
    "static int impl(int x) { return x; }\nstatic void *pick(void) { return (void *)impl; }\n" \
    "int chosen(int) __attribute__((ifunc(\"pick\")));\n"


def _lib(style):
    return str(compile_c(_LIB, name=f"libsyms_{style}.so", flags=["-shared", "-fPIC", f"-Wl,--hash-style={style}"]))


@pytest.fixture(scope="module")
def sysv_lib():
    return _lib("sysv")


@pytest.fixture(scope="module")
def gnu_lib():
    return _lib("gnu")


def _queries(tables, n, seed, inside=True):
    """(address, preferred name) pairs: symbol starts with their own, no, another and an
    unknown name; addresses inside symbols and between them (which build the full index)."""
    rnd = random.Random(seed)
    rows = [(r, _cstr(t.strtab, r[4])) for t in tables for r in t.rows()]
    rnd.shuffle(rows)
    names = [nm for _, nm in rows]
    out = []
    for (value, size, *_), nm in rows[:n]:
        out += [(value, nm), (value, None), (value, rnd.choice(names)), (value, nm + "_x")]
        if inside:
            out += [(value + max(size // 2, 1), nm), (value + size, None)]
    return out


@pytest.mark.parametrize("path", [LIBC, LD_SO, "sysv", "gnu"])
def test_lazy_lookups_equal_the_full_index(path, sysv_lib, gnu_lib):
    path = {"sysv": sysv_lib, "gnu": gnu_lib}.get(path, path)
    model = load_model(path)
    base = _build_index(model)
    tables = base._load()
    full = _build_index(model)._index()
    assert base._named is not None
    for addr, prefer in _queries(tables, 1500, 13, inside=path != LIBC):
        lazy = LazySymbolIndex(tables, base._extra, base._named)   # a fresh one: never the full index
        a, b = lazy.lookup(addr, prefer), full.lookup(addr, prefer)
        assert (a and (a.name, a.offset)) == (b and (b.name, b.offset)), (path, hex(addr), prefer)


def _readelf_dynamic(path):
    """{name: {values}} of the defined functions, ifuncs and objects of .dynsym (readelf)."""
    out = {}
    text = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].endswith(":") and parts[3] in ("FUNC", "OBJECT", "IFUNC") \
                and parts[6] != "UND" and int(parts[1], 16):
            out.setdefault(parts[7].split("@")[0], set()).add(int(parts[1], 16))
    return out


@pytest.mark.parametrize("kind", ["gnu", "sysv"])
def test_every_defined_dynamic_symbol_is_found_by_name(kind, sysv_lib, gnu_lib):
    for path in ([LIBC, gnu_lib] if kind == "gnu" else [sysv_lib]):
        named = _build_index(load_model(path))._named
        expected = _readelf_dynamic(path)
        assert len(expected) > (1000 if path == LIBC else 600)
        for name, values in expected.items():
            assert values == {r[0] for r in named(name)}, (path, name)
        assert named("no_such_symbol_here") == []


def test_a_named_answer_reads_no_debug_file():
    model = load_model(LIBC)
    if not model.stripped or debug_file_for(model.build_id) is None:
        pytest.skip("libc is not stripped, or libc6-dbg is not installed")
    model._index = None
    model.debug_file = None
    puts = nm_symbols(LIBC, dynamic=True)["puts"][0]
    hit = model.index.lookup(puts, "puts")
    assert (hit.name, hit.offset) == ("puts", 0)
    assert model.debug_file is None and callable(model.index._tables)
    impl = nm_symbols(debug_file_for(model.build_id))
    name = next(n for n in ("__memmove_avx_unaligned_erms", "__memmove_sse2_unaligned_erms") if n in impl)
    assert "memmove" in model.index.lookup(impl[name][0], "memmove").name
    assert model.debug_file == debug_file_for(model.build_id)


def test_rows_at_equals_a_scan_of_every_row():
    model = load_model(LIBC)
    tables = _build_index(model)._load()
    for t in tables:
        by_value = {}
        for r in t.rows():
            by_value.setdefault(r[0], []).append(r)
        for value in list(by_value)[::7]:
            assert t.rows_at(value) == by_value[value]
        assert t.rows_at(0) == [] and t.rows_at(1 << 63) == [] and t.rows_at(-1) == []


def test_rows_at_on_elf32_and_misaligned_hits():
    from gdb_toolkit.plt.elf_file import LAYOUT32, LAYOUT64, STT_FUNC

    # ELF32 entries: the value's bytes also appear in other fields and off-boundary
    ents = [struct.pack("<IIIBBH", 1, 0x1234, 0x1234, STT_FUNC | 0x10, 0, 1),
            struct.pack("<IIIBBH", 0x1234, 0x99, 0x1234, STT_FUNC, 0, 1),
            struct.pack("<IIIBBH", 1, 0x1234, 4, 0x10 | 1, 0, 0)]          # undefined: not a row
    t = SymbolTableBytes(b"\0a\0", b"".join(ents) + b"\x34\x12", LAYOUT32)
    assert t.rows_at(0x1234) == [(0x1234, 0x1234, STT_FUNC, 1, 1)]
    ents = [struct.pack("<IBBHQQ", 1, STT_FUNC, 0, 1, 0x12345678, 0x12345678),
            struct.pack("<IBBHQQ", 1, STT_FUNC, 0, 1, 0x1234567800000000 | 0x12345678, 0)]
    t = SymbolTableBytes(b"\0a\0", b"".join(ents), LAYOUT64)
    assert t.rows_at(0x12345678) == [(0x12345678, 0x12345678, STT_FUNC, 0, 1)]


def test_crafted_hash_sections_never_name_a_wrong_symbol():
    model = load_model(LIBC)
    elf = model._elf
    dynsym = elf.symbol_table(next(i for i, sec in enumerate(elf.sections) if sec.type == SHT_DYNSYM))
    full = LazySymbolIndex([dynsym])._index()
    rnd = random.Random(7)
    queries = _queries([dynsym], 60, 3, inside=False)
    crafted = [SymbolHash(b"", True, 8), SymbolHash(b"\xff" * 64, True, 8), SymbolHash(b"\xff" * 64, False, 8),
               SymbolHash(struct.pack("<4I", 1, 0, 0, 0) + struct.pack("<I", 1) + b"\0" * 8, True, 8),
               # SysV: one bucket, a chain that loops 1 -> 2 -> 1 ...
               SymbolHash(struct.pack("<6I", 1, 3, 1, 0, 2, 1), False, 8)]
    crafted += [SymbolHash(bytes(rnd.getrandbits(8) for _ in range(rnd.choice((16, 64, 4096)))),
                           rnd.random() < 0.5, 8) for _ in range(20)]
    for table in crafted:
        named = lambda name, table=table: dynsym.rows_named(name, table)
        for addr, prefer in queries:
            lazy = LazySymbolIndex([dynsym], named=named)
            a, b = lazy.lookup(addr, prefer), full.lookup(addr, prefer)
            assert (a and (a.name, a.offset)) == (b and (b.name, b.offset))
