"""Symbolizer and slot classifier (pure core): synthetic values on real binaries, names
checked against nm (the independent symbol oracle)."""
import pytest

from gdb_toolkit.plt.elf_file import STT_FUNC, STT_GNU_IFUNC, Symbol
from gdb_toolkit.plt.elf_model import load_model
from gdb_toolkit.plt.slots import AddressSpace, LoadedObject, classify, compile_filter, got_report
from gdb_toolkit.plt.symbolizer import SymbolIndex
from tests.support.plt_oracles import build_demo, build_hello, nm_symbols

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def test_index_prefers_the_alias_matching_the_relocation_name():
    syms = [Symbol("__memmove_avx_unaligned_erms", 0x100, 0x40, STT_FUNC, 0, 1),
            Symbol("__memcpy_avx_unaligned_erms", 0x100, 0x40, STT_FUNC, 0, 1),
            Symbol("memcpy", 0x200, 0x10, STT_GNU_IFUNC, 1, 1),
            Symbol("puts", 0x300, 0x20, STT_FUNC, 1, 1),
            Symbol("_IO_puts", 0x300, 0x20, STT_FUNC, 1, 1)]
    ix = SymbolIndex(syms)
    assert ix.lookup(0x100, "memcpy").name == "__memcpy_avx_unaligned_erms"
    assert ix.lookup(0x100, "memmove").name == "__memmove_avx_unaligned_erms"
    assert ix.lookup(0x300).name == "puts"                 # global without underscores first
    assert ix.lookup(0x300, "_IO_puts").name == "_IO_puts"
    hit = ix.lookup(0x310)
    assert (hit.name, hit.offset) == ("puts", 0x10)
    assert ix.lookup(0x320) is None and ix.lookup(0x50) is None
    assert ix.lookup(0x200).name == "memcpy"


def test_libc_dynamic_symbols_match_nm():
    model = load_model(LIBC)
    nm = nm_symbols(LIBC, dynamic=True)
    for name in ("puts", "printf", "getpid", "fflush", "dlsym"):
        value = nm[name][0]
        hit = model.index.lookup(value, name)
        assert hit.name == name and hit.offset == 0


def test_ifunc_implementations_are_named_when_debug_symbols_exist():
    model = load_model(LIBC)
    if not model.build_id:
        pytest.skip("libc has no build-id")
    from gdb_toolkit.plt.elf_model import debug_file_for

    if debug_file_for(model.build_id) is None:
        pytest.skip("libc6-dbg not installed")
    nm = nm_symbols(debug_file_for(model.build_id))
    impl = next(n for n in ("__memmove_avx_unaligned_erms", "__memmove_sse2_unaligned_erms") if n in nm)
    hit = model.index.lookup(nm[impl][0], "memmove")
    assert "memmove" in hit.name and hit.offset == 0


@pytest.fixture(scope="module")
def demo():
    exe = build_demo()[0]
    return load_model(str(exe))


def _space(demo, bias):
    libc = load_model(LIBC)
    exe = LoadedObject(demo.path, bias, demo)
    lib = LoadedObject(LIBC, 0x7F0000000000, libc)
    return exe, AddressSpace([exe, lib]), libc


def test_classifier_states(demo):
    bias = 0x555555554000
    exe, space, libc = _space(demo, bias)
    puts = next(s for s in demo.slots if s.symbol == "puts")
    row = classify(puts, exe, puts.file_value + bias, space, live=True)
    assert row.state == "unresolved" and row.target.startswith("lazy stub .plt+")
    puts_libc = nm_symbols(LIBC, dynamic=True)["puts"][0]
    row = classify(puts, exe, 0x7F0000000000 + puts_libc, space, live=True)
    assert (row.state, row.target_symbol, row.target_object) == ("resolved", "puts", "libc.so.6")
    assert classify(puts, exe, 0x7F0000000000 + puts_libc, space, live=True,
                    bind_now_env=True).state == "bound-at-load"
    assert classify(puts, exe, puts.file_value, space, live=True).state == "not-relocated"
    assert classify(puts, exe, None, None, live=False).state == "unresolved"
    gd = next(s for s in demo.slots if s.symbol == "__gmon_start__")
    assert classify(gd, exe, 0, space, live=True).state == "null"
    row = classify(gd, exe, 0x1234, space, live=True)
    assert row.state == "overwritten" and "no loaded object" in row.target    # ld.so never writes it
    assert row.address == gd.address + bias


def test_report_filters_and_reads_values_in_bulk(demo):
    import struct

    bias = 0x555555554000
    exe, space, _ = _space(demo, bias)
    memory = {s.address + bias: s.file_value + bias if s.file_value else 0 for s in demo.slots}
    rep = got_report([exe], memory, mode="live", pattern="^(puts|getpid)$",
                     space_objects=space.objects, writable=[(bias + 0x4000, bias + 0x5000)])
    assert [r.symbol.split("@")[0] for r in rep.slots] == ["puts", "getpid"]
    assert all(r.state == "unresolved" and r.read_only_now is False for r in rep.slots)
    assert rep.objects[0].binding == "lazy" and rep.objects[0].kind == "PIE executable"


def test_bad_regex_is_a_clear_error():
    from gdb_toolkit.common.errors import ToolkitError

    with pytest.raises(ToolkitError, match="bad regular expression"):
        compile_filter("(")


def test_static_report_has_a_note():
    path = build_hello(["-static"], name="hello_static")
    m = load_model(str(path))
    rep = got_report([LoadedObject(str(path), 0, m)], None, mode="file")
    assert rep.notes and "statically linked" in rep.notes[0]
    assert {r.kind for r in rep.slots} == {"IRELATIVE"}
    # stopped at starti: the slots still hold the link-time values, no resolver has run
    spec = m.slots[0]
    obj = LoadedObject(str(path), 0, m)
    row = classify(spec, obj, spec.file_value, AddressSpace([obj]), live=True)
    assert row.state == "not-relocated"


def test_preloads_are_the_objects_between_the_program_and_its_first_dependency():
    """glibc maps LD_PRELOAD objects right after the program, before its DT_NEEDED ones: those
    (and only those, in namespace 0) are marked.  A dependency is recognised by soname, file
    name or the name ld.so opened it by (a file without soname reached through a symlink)."""
    from types import SimpleNamespace

    from gdb_toolkit.plt.slots import LoadedObject, mark_preloaded

    def obj(path, order, ns=0, soname="", needed=(), ldso=False, in_memory=False, name=None):
        model = SimpleNamespace(soname=soname, name=name or path.rsplit("/", 1)[-1], needed=list(needed),
                                is_dynamic_linker=ldso, is_static=False)
        return LoadedObject(path, 0, model, ns, order=order, in_memory=in_memory)

    exe = obj("/p/prog", 0, needed=["liba.so", "libc.so.6"])
    objs = [exe, obj("linux-vdso.so.1", 1, in_memory=True), obj("/p/libpre.so", 2), obj("/p/libpre2.so", 3),
            obj("/p/liba.so", 4, name="liba.so.1.2"), obj("/lib/libc.so.6.real", 5, soname="libc.so.6"),
            obj("/lib/ld-linux-x86-64.so.2", 6, ldso=True), obj("/p/libpre.so", 7, ns=1)]
    mark_preloaded(objs)
    assert [o.path for o in objs if o.preloaded] == ["/p/libpre.so", "/p/libpre2.so"]
    assert not objs[-1].preloaded                                   # another namespace
    plain = [obj("/p/prog", 0, needed=["libc.so.6"]), obj("/lib/libc.so.6", 1, soname="libc.so.6"),
             obj("/lib/ld-linux-x86-64.so.2", 2, ldso=True)]
    mark_preloaded(plain)
    assert not any(o.preloaded for o in plain)
