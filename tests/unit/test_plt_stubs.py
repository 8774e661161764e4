"""PLT stub decoding (capstone) against objdump -d and readelf -rW."""
import pytest

from gdb_toolkit.plt.elf_model import load_model
from gdb_toolkit.plt.stubs import decode_plt
from gdb_toolkit.plt.walk import find_call_site
from tests.support.plt_oracles import (build_demo, build_hello, objdump_calls, objdump_stubs,
                                       readelf_relocs, readelf_sections)


def _slots_by_name(path, arch="x86_64"):
    return {r["name"]: r["offset"] for r in readelf_relocs(path, arch)
            if r["type"] in ("JUMP_SLOT", "GLOB_DAT") and r["name"]}


@pytest.mark.parametrize("flags,name", [
    (["-Wl,-z,lazy"], "pie-lazy"),
    (["-no-pie", "-Wl,-z,lazy"], "nopie-lazy"),
    (["-Wl,-z,now"], "pie-now"),
    (["-fcf-protection", "-Wl,-z,ibtplt", "-Wl,-z,lazy"], "ibt"),
])
def test_x86_stubs_match_objdump(flags, name):
    path = build_hello(flags, name=f"hello_{name}")
    model = load_model(str(path))
    oracle = {a: s for a, s in objdump_stubs(path).items() if s["name"].endswith("@plt")}
    stubs = {s.address: s for s in decode_plt(model) if s.kind == "stub"}
    assert set(stubs) == set(oracle)
    for addr, o in oracle.items():
        assert stubs[addr].section == o["section"]
        assert stubs[addr].slot == o["slot"]
        assert stubs[addr].symbol.split("@")[0] == o["name"].split("@")[0]


def test_ibt_plt_has_lazy_entries_and_plt_sec_stubs():
    path = build_hello(["-fcf-protection", "-Wl,-z,ibtplt", "-Wl,-z,lazy"], name="hello_ibt")
    stubs = decode_plt(load_model(str(path)))
    sec = [s for s in stubs if s.section == ".plt.sec"]
    lazy = [s for s in stubs if s.kind == "lazy"]
    assert sec and all(s.insns[0].mnemonic == "endbr64" for s in sec)
    assert {s.slot for s in lazy} == {s.slot for s in sec}
    slots = _slots_by_name(path)
    for s in lazy:      # push N names relocation N of .rela.plt
        assert slots[s.symbol.split("@")[0]] == s.slot


def test_demo_ifunc_stub_and_plt0():
    path = build_demo()[0]
    stubs = decode_plt(load_model(str(path)))
    assert stubs[0].kind == "plt0" and stubs[0].section == ".plt"
    irel = [r for r in readelf_relocs(path) if r["type"] == "IRELATIVE"][0]
    add = next(s for s in stubs if s.slot == irel["offset"])
    assert add.symbol == "add"


def test_static_plt_holds_irelative_stubs():
    path = build_hello(["-static"], name="hello_static")
    stubs = decode_plt(load_model(str(path)))
    irel = {r["offset"] for r in readelf_relocs(path) if r["type"] == "IRELATIVE"}
    assert stubs and {s.slot for s in stubs} <= irel
    assert all(s.kind == "stub" for s in stubs)


def test_aarch64_adrp_ldr_stubs():
    path = build_hello(["-Wl,-z,lazy"], compiler="aarch64-linux-gnu-gcc", name="hello_a64")
    model = load_model(str(path))
    oracle = {a: s for a, s in objdump_stubs(path, "aarch64").items() if s["name"].endswith("@plt")}
    slots = _slots_by_name(path, "aarch64")
    stubs = {s.address: s for s in decode_plt(model) if s.kind == "stub"}
    assert set(stubs) == set(oracle)
    for addr, o in oracle.items():
        name = o["name"].split("@")[0]
        assert stubs[addr].slot == slots[name]
        assert [i.mnemonic for i in stubs[addr].insns] == ["adrp", "ldr", "add", "br"]
    plt0 = decode_plt(model)[0]
    assert plt0.kind == "plt0" and plt0.address == readelf_sections(path, "aarch64")[".plt"][0]


@pytest.mark.parametrize("spelling", ["named", "capstone"])
@pytest.mark.parametrize("flags,name", [
    (["-mbranch-protection=standard", "-Wl,-z,force-bti", "-Wl,-z,lazy"], "bti"),
    (["-mbranch-protection=standard", "-Wl,-z,force-bti", "-Wl,-z,pac-plt", "-Wl,-z,lazy"], "pac-plt"),
])
def test_aarch64_bti_plt0_whatever_the_hint_is_called(flags, name, spelling, monkeypatch):
    """A BTI .plt[0] (bti c; stp x16, x30, ...) is plt0 and the stubs are objdump's, whether the
    landing pad reads 'bti c' (common/arm64_names) or capstone 4's raw 'hint #0x22'."""
    import gdb_toolkit.common.arm64_names as arm64_names
    from gdb_toolkit.plt.elf_model import clear_cache

    clear_cache()       # decoded stubs are cached per model: decode afresh in this spelling
    if spelling == "capstone":
        # common.disasm imports it at each aarch64 disassembly (not at its own import)
        monkeypatch.setattr(arm64_names, "rename", lambda word, mnemonic, op_str: (mnemonic, op_str))
    path = build_hello(flags, compiler="aarch64-linux-gnu-gcc", name=f"hello_a64_{name}")
    stubs = decode_plt(load_model(str(path)))
    assert stubs[0].insns[0].text == ("bti c" if spelling == "named" else "hint #0x22")
    assert stubs[0].kind == "plt0" and stubs[0].address == readelf_sections(path, "aarch64")[".plt"][0]
    oracle = {a: s["name"] for a, s in objdump_stubs(path, "aarch64").items() if s["name"].endswith("@plt")}
    got = {s.address: s.symbol for s in stubs if s.kind == "stub"}
    assert set(got) == set(oracle)
    assert all(got[a].split("@")[0] == n.split("@")[0] for a, n in oracle.items())
    clear_cache()


@pytest.mark.parametrize("flags,name,arch,compiler", [
    (["-Wl,-z,lazy"], "pie-lazy", "x86_64", "gcc"),
    (["-fno-plt"], "fno-plt", "x86_64", "gcc"),
    (["-Wl,-z,lazy"], "a64", "aarch64", "aarch64-linux-gnu-gcc"),
    (["-fno-plt"], "a64-noplt", "aarch64", "aarch64-linux-gnu-gcc"),
])
def test_call_site_of_puts_matches_objdump(flags, name, arch, compiler):
    path = build_hello(flags, compiler=compiler, name=f"hello_{name}")
    model = load_model(str(path))
    spec = next(s for s in model.slots if s.symbol == "puts")
    site = find_call_site(model, decode_plt(model), spec)
    calls = objdump_calls(path, "main", arch)
    if "-fno-plt" in flags:
        assert site.via == "got"
        if arch == "x86_64":
            expected = [a for a, t in calls if "*" in t and "puts" in t]
        else:   # adrp/ldr/blr: the blr whose register objdump's adrp+ldr filled from the slot
            expected = _aarch64_blr_through(path, _slots_by_name(path, arch)["puts"])
        assert site.address == expected[0]
    else:
        assert site.via == "stub"
        assert site.address == next(a for a, t in calls if "<puts@plt>" in t)
    assert site.function.startswith("main+")


def _aarch64_blr_through(path, slot):
    """From objdump's text alone: blr instructions whose register came from ldr [adrp page + off]."""
    import re

    from tests.support.plt_oracles import run, tool

    pages, loaded, out = {}, {}, []
    for line in run([tool("objdump", "aarch64"), "-d", "--no-show-raw-insn", path]).splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s+(\w+)\s+(.*)", line)
        if not m:
            continue
        addr, mn, ops = int(m.group(1), 16), m.group(2), m.group(3)
        if mn == "adrp":
            reg, page = re.match(r"(x\d+), ([0-9a-f]+)", ops).groups()
            pages[reg] = int(page, 16)
        elif mn == "ldr":
            mm = re.match(r"(x\d+), \[(x\d+), #(\d+)\]", ops)
            if mm and mm.group(2) in pages:
                loaded[mm.group(1)] = pages[mm.group(2)] + int(mm.group(3))
        elif mn == "blr" and loaded.get(ops.strip()) == slot:
            out.append(addr)
    return out
