"""The ELF model (pure core) against readelf/objdump/nm on every binary kind."""
import pytest

from gdb_toolkit.plt.elf_model import load_model
from tests.support.plt_oracles import (build_demo, build_hello, build_lib, nm_symbols, objdump_stubs,
                                       readelf_bind_now, readelf_relocs, readelf_relro,
                                       readelf_sections, stripped_copy)

SLOT_TYPES = {"JUMP_SLOT", "GLOB_DAT", "IRELATIVE"}

X86_VARIANTS = {
    "pie-lazy": ["-Wl,-z,lazy"],
    "pie-now": ["-Wl,-z,now"],
    "nopie-lazy": ["-no-pie", "-Wl,-z,lazy"],
    "nopie-norelro": ["-no-pie", "-Wl,-z,norelro", "-Wl,-z,lazy"],
    "fno-plt": ["-fno-plt"],
    "ibt": ["-fcf-protection", "-Wl,-z,ibtplt", "-Wl,-z,lazy"],
    "static": ["-static"],
}


def _binary(kind):
    if kind == "aarch64":
        return build_hello(["-Wl,-z,lazy"], compiler="aarch64-linux-gnu-gcc", name="hello_a64"), "aarch64"
    if kind == "aarch64-now":
        return build_hello(["-Wl,-z,now"], compiler="aarch64-linux-gnu-gcc", name="hello_a64now"), "aarch64"
    if kind == "stripped":
        return stripped_copy(build_demo()[0]), "x86_64"
    if kind == "demo":
        return build_demo()[0], "x86_64"
    if kind == "lib":
        return build_lib("libpltlib.so", "pltlib.c"), "x86_64"
    return build_hello(X86_VARIANTS[kind], name=f"hello_{kind}"), "x86_64"


ALL = [*X86_VARIANTS, "aarch64", "aarch64-now", "stripped", "demo", "lib"]


@pytest.mark.parametrize("kind", ALL)
def test_slots_match_readelf(kind):
    path, arch = _binary(kind)
    model = load_model(str(path))
    expected = {(r["offset"], r["type"], r["name"], r["version"])
                for r in readelf_relocs(path, arch) if r["type"] in SLOT_TYPES and r["name"] or
                r["type"] in ("JUMP_SLOT", "IRELATIVE")}
    got = {(s.address, s.kind, s.symbol if s.kind != "IRELATIVE" else "", s.version)
           for s in model.slots if s.kind in SLOT_TYPES}
    expected = {(o, t, n if t != "IRELATIVE" else "", v) for o, t, n, v in expected}
    # GLOB_DAT of weak undefined symbols etc. are all in .got: the sets must agree exactly
    assert got == expected
    assert model.arch == arch


@pytest.mark.parametrize("kind", ALL)
def test_binding_relro_and_kind_match_readelf(kind):
    path, arch = _binary(kind)
    model = load_model(str(path))
    assert model.bind_now == readelf_bind_now(path, arch)
    assert model.relro == readelf_relro(path, arch)
    secs = readelf_sections(path, arch)
    for name in (".plt", ".plt.sec", ".plt.got", ".got", ".got.plt"):
        assert (name in model.sections) == (name in secs)
        if name in secs:
            assert (model.sections[name].addr, model.sections[name].size) == secs[name]
    assert model.is_static == (kind == "static")
    assert model.is_shared_lib == (kind == "lib")
    assert model.stripped == (".symtab" not in secs)


def test_lazy_file_values_point_at_the_push_of_each_stub():
    path, _ = _binary("pie-lazy")
    model = load_model(str(path))
    stubs = {s["name"].split("@")[0]: a for a, s in objdump_stubs(path).items()}
    for s in model.slots:
        if s.kind == "JUMP_SLOT":
            assert s.file_value == stubs[s.symbol] + 6      # jmp *slot(%rip) is 6 bytes


def test_aarch64_lazy_file_values_point_at_plt0():
    path, arch = _binary("aarch64")
    model = load_model(str(path))
    plt = readelf_sections(path, arch)[".plt"][0]
    jumps = [s for s in model.slots if s.kind == "JUMP_SLOT"]
    assert jumps and all(s.file_value == plt for s in jumps)


def test_versions_and_ifunc_names():
    path, _ = _binary("demo")
    model = load_model(str(path))
    names = {s.display for s in model.slots}
    assert "memcpy@GLIBC_2.14" in names and "puts@GLIBC_2.2.5" in names and "lib_hello" in names
    # our own ifunc: the IRELATIVE slot is named after the ifunc whose resolver is the addend
    irel = [s for s in model.slots if s.kind == "IRELATIVE"]
    nm = nm_symbols(path)
    assert [s.symbol for s in irel] == ["add"]
    assert nm["add"] == (irel[0].addend, "i")


def test_static_binary_lists_irelative_named_after_ifuncs():
    path, _ = _binary("static")
    model = load_model(str(path))
    rel = [r for r in readelf_relocs(path) if r["type"] == "IRELATIVE"]
    assert len(model.slots) == len(rel) > 0
    nm = nm_symbols(path)
    ifuncs = {v[0]: k for k, v in nm.items() if v[1] == "i"}
    for s in model.slots:
        assert s.kind == "IRELATIVE"
        assert nm[s.symbol][0] == s.addend or s.addend in ifuncs


def test_cache_is_keyed_by_mtime(tmp_path):
    import os
    import shutil

    src, _ = _binary("pie-lazy")
    copy = tmp_path / "prog"
    shutil.copy(src, copy)
    a = load_model(str(copy))
    assert load_model(str(copy)) is a
    os.utime(copy, ns=(1, 1))
    assert load_model(str(copy)) is not a


def test_not_elf_and_missing_file_are_clear_errors(tmp_path):
    from gdb_toolkit.common.errors import ToolkitError

    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(ToolkitError, match="not an ELF file"):
        load_model(str(bad))
    with pytest.raises(ToolkitError, match="cannot read"):
        load_model(str(tmp_path / "missing"))


def test_slots_named_honours_a_given_version():
    path, _ = _binary("demo")
    m = load_model(str(path))
    ver = next(r["version"] for r in readelf_relocs(path) if r["name"] == "memcpy")
    assert [s.display for s in m.slots_named("memcpy")] == [f"memcpy@{ver}"]
    assert [s.display for s in m.slots_named(f"memcpy@{ver}")] == [f"memcpy@{ver}"]
    assert m.slots_named("memcpy@GLIBC_9.99") == []      # not silently another version


def test_static_pie_is_static():
    import subprocess

    from gdb_toolkit.plt.slots import LoadedObject, got_report

    path = build_hello(["-static-pie"], name="hello_static-pie")
    phdrs = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True).stdout
    dyn = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True).stdout
    assert "INTERP" not in phdrs and "(NEEDED)" not in dyn and "DYNAMIC" in phdrs   # the oracle
    m = load_model(str(path))
    assert m.is_static and m.is_pie and m.binding == "static"
    rep = got_report([LoadedObject(str(path), 0, m)], None, mode="file")
    assert rep.objects[0].kind == "static-pie executable"
    assert any("statically linked" in n for n in rep.notes)
    assert {r.kind for r in rep.slots} == {"IRELATIVE"} == {
        r["type"] for r in readelf_relocs(path) if r["section"] == ".rela.plt"}
