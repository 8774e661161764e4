"""got / plt / plt-walk --live natively on arm64 (the arm64 guest: Debian's arm64 gdb, glibc and
ld.so, programs compiled in the guest), lazy and now, PIE and not, PAC-protected code
(-mbranch-protection=standard) and BTI PLTs (-z force-bti).  Oracles: the program's own dlsym()
output, readelf/objdump (the root's binutils), gdb's own view of the process.

A -z force-bti executable cannot run on Debian 12 arm64 under a BTI-capable CPU (QEMU's -cpu max
is one): glibc's crt1.o has no BTI landing pad at _start, the kernel maps the BTI-marked program
with PROT_BTI, and ld.so's indirect branch to _start raises SIGILL (seen: rc 132, 'SIGILL in
_start').  So BTI PLTs are checked in the file (plt, plt-walk without --live) and the live walks
run on the PAC-protected build, whose -mbranch-protection=standard output keeps no BTI note
(its crt inputs lack one)."""
import re

import pytest

from tests.support.gdbrun import addr as A     # JSON addresses: "0x.." or int
from tests.support.gdbrun import assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.plt_oracles import (EXAMPLES, build_lib, objdump_stubs, program_said,
                                       readelf_relocs, readelf_sections, run)

pytestmark = pytest.mark.guest_arm64

VARIANTS = {
    "pie-lazy": ["-Wl,-z,lazy"],
    "pie-now": ["-Wl,-z,now"],
    "nopie-lazy": ["-no-pie", "-Wl,-z,lazy"],
    "pac-lazy": ["-mbranch-protection=standard", "-Wl,-z,lazy"],
}
BTI = ["-mbranch-protection=standard", "-Wl,-z,force-bti", "-Wl,-z,lazy"]


def build(variant: str):
    flags = BTI if variant == "bti" else VARIANTS[variant]
    lib = build_lib("libpltlib.so", "pltlib.c")
    plugin = build_lib("plugin.so", "plugin.c")
    exe = compile_c(EXAMPLES / "plt_demo.c", name=f"plt_demo_{variant}",
                    flags=[*flags, f"-L{lib.parent}", "-lpltlib", f"-Wl,-rpath,{lib.parent}"])
    return exe, plugin


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_got_and_live_walk_match_dlsym(variant):
    exe, plugin = build(variant)
    lazy = "lazy" in variant
    cmds = ["set pagination off", "break checkpoint", "run", *json_wrapped("got --all-objects --json"),
            *json_wrapped("plt-walk getpid --json")]
    if lazy:
        cmds += [*json_wrapped("plt-walk getpid --live --json"), "maint info breakpoints"]
    res = run_gdb(cmds + ["kill"], program=exe, args=[plugin], timeout=900)
    assert_no_traceback(res)
    docs = res.json_documents()
    got, walk = docs[0], docs[1]
    said = program_said(res.stdout)
    rows = {r["symbol"].split("@")[0]: r for r in got["slots"] if r["object"] == exe.name}
    bound = "resolved" if lazy else "bound-at-load"
    for name in ("puts", "printf", "lib_hello", "memcpy"):
        assert rows[name]["state"] == bound and A(rows[name]["value"]) == said[name], (name, rows[name])
    assert rows["puts"]["target"] == "puts in libc.so.6"
    if "nopie" in variant:                        # link-time addresses: the file's own GOT offsets
        offs = {r["offset"] for r in readelf_relocs(exe, "aarch64") if r["type"] == "JUMP_SLOT"}
        assert {A(r["address"]) for r in got["slots"] if r["object"] == exe.name
                and r["kind"] == "JUMP_SLOT"} == offs
    # the static walk: the stub is objdump's, in the arm64 shape (BTI first when forced)
    stub = next(a for a, s in objdump_stubs(exe, "aarch64").items() if s["name"] == "getpid@plt")
    hops = {h["step"]: h for h in walk["hops"]}
    assert walk["arch"] == "aarch64"
    mnems = [c.split(": ")[1].split()[0] for c in hops["stub"]["code"]]
    assert mnems == ["adrp", "ldr", "add", "br"]
    if "pac" in variant:        # paciasp/autiasp in main, named (capstone 4 says hint #0x19)
        dump = run(["objdump", "-d", "--no-show-raw-insn", exe])
        assert re.search(r"\bpaciasp\b", dump)
        res2 = run_gdb(["set pagination off", "disassemble main"], program=exe, timeout=600)
        assert "paciasp" in res2.stdout
    bias = said["main"] - _nm_main(exe)            # 0 for the non-PIE program
    assert ("nopie" in variant) == (bias == 0)
    assert A(hops["stub"]["address"]) == stub + bias
    if lazy:
        live = docs[2]["live"]
        assert live["location"]["symbol"] == "_dl_fixup" and live["location"]["object"].startswith("ld-linux-aarch64")
        assert any("_dl_runtime_resolve" in (f["symbol"] or "") for f in live["backtrace"])
        assert A(live["new"]) == said["getpid"]
        maint = res.stdout.split("@@GTK-JSON-END@@")[-1]
        assert "watchpoint" not in maint.lower()
    else:
        assert rows["getpid"]["state"] == "bound-at-load" and A(rows["getpid"]["value"]) == said["getpid"]
        assert next(o for o in got["objects"] if o["path"].endswith(exe.name))["binding"] == "now"


def _nm_main(exe) -> int:
    out = run(["nm", exe])
    return int(re.search(r"^([0-9a-f]+) T main$", out, re.M).group(1), 16)


def _mnemonics(lines: list[str]) -> list[str]:
    """objdump -d instruction lines -> mnemonics."""
    out = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].strip().endswith(":"):
            out.append(parts[2].split()[0])
    return out


def test_bti_plt_stubs_are_where_objdump_says_and_walk_statically():
    exe, _ = build("bti")
    notes = run(["readelf", "-nW", exe])
    assert "AArch64 feature: BTI" in notes, notes
    res = run_gdb([*json_wrapped("plt --json"), *json_wrapped("plt-walk getpid --json")],
                  program=exe, timeout=600)
    assert_no_traceback(res)
    doc, walk = res.json_documents()
    plt0 = readelf_sections(exe, "aarch64")[".plt"][0]
    ours = {A(s["address"]): s for s in doc["stubs"]}
    dump = objdump_stubs(exe, "aarch64")
    assert len(dump) > 4
    for addr, stub in dump.items():         # the same instructions objdump decodes, BTI named
        code = ours[addr]["code"]
        want = _mnemonics(stub["lines"])
        assert [c.split()[0] for c in code] == want[:len(code)], (hex(addr), code, want)
        assert "hint" not in " ".join(code)
        if addr != plt0 and not stub["name"].startswith("*ABS*"):   # objdump can't name IRELATIVE stubs
            assert ours[addr]["symbol"].split("@")[0] == stub["name"].split("@")[0], (hex(addr), stub)
    assert _mnemonics(dump[plt0]["lines"])[0] == "bti" and ours[plt0]["code"][0] == "bti c"
    hops = {h["step"]: h for h in walk["hops"]}
    stub = next(a for a, s in dump.items() if s["name"] == "getpid@plt")
    assert A(hops["stub"]["address"]) == stub
    assert [c.split(": ")[1].split()[0] for c in hops["stub"]["code"]] == _mnemonics(dump[stub]["lines"])


def test_bti_plt0_is_the_resolver_trampoline():
    exe, _ = build("bti")
    res = run_gdb([*json_wrapped("plt --json")], program=exe, timeout=600)
    doc = res.json_documents()[0]
    plt0 = readelf_sections(exe, "aarch64")[".plt"][0]
    assert {A(s["address"]): s for s in doc["stubs"]}[plt0]["kind"] == "plt0"
