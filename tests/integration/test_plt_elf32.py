"""ELF32: i386 (lazy, -z now, PIE, non-PIE, static; live, with the i386 runtime) and 32-bit
arm (file view, and live under qemu-arm).  Oracles: readelf/objdump/nm of the cross
binutils, /proc/PID/maps (i386) and gdb's own 'info sharedlibrary' (qemu)."""
import contextlib
import re
import shutil
import socket
import subprocess
import time

import pytest

from tests.support.gdbrun import GDBINIT, addr, GdbResult, assert_no_traceback, gdb_json, json_wrapped, run_gdb
from tests.support.plt_oracles import HAVE_I386, I686, NO_I386, build_hello, nm_symbols

pytestmark = pytest.mark.gdb
ARM = "arm-linux-gnueabihf-gcc"
LIBC32 = "/lib32/libc.so.6"
needs_i386 = pytest.mark.skipif(not HAVE_I386, reason=NO_I386)
needs_arm = pytest.mark.skipif(not shutil.which(ARM), reason="needs gcc-arm-linux-gnueabihf")


def _relocs32(path, tool="readelf"):
    out = []
    for line in subprocess.run([tool, "-rW", str(path)], capture_output=True, text=True).stdout.splitlines():
        p = line.split()
        if len(p) >= 3 and re.fullmatch(r"[0-9a-f]{8}", p[0]) and p[2].startswith("R_"):
            name = p[4].split("@")[0] if len(p) >= 5 else ""
            out.append(dict(offset=int(p[0], 16), type=p[2], name=name))
    return out


@needs_i386
@pytest.mark.parametrize("flags,name,binding", [
    (["-Wl,-z,lazy"], "h32_lazy", "lazy"),
    (["-Wl,-z,now"], "h32_now", "now"),
    (["-no-pie", "-Wl,-z,lazy"], "h32_nopie", "lazy"),
    (["-static"], "h32_static", "static"),
])
def test_i386_file_view_matches_readelf(flags, name, binding):
    exe = build_hello(flags, compiler=I686, name=name)
    doc = gdb_json([], "got", program=exe)
    relocs = {r["offset"]: r for r in _relocs32(exe)
              if r["type"] in ("R_386_JUMP_SLOT", "R_386_GLOB_DAT", "R_386_IRELATIVE")}
    assert {addr(r["address"]) for r in doc["slots"]} == set(relocs)
    for r in doc["slots"]:
        assert r["reloc_type"] == relocs[addr(r["address"])]["type"].replace("JUMP_SLOT", "JMP_SLOT")
    assert doc["objects"][0]["arch"] == "i386"
    assert doc["objects"][0]["binding"] == binding
    if binding == "lazy":
        plt = gdb_json([], "plt", program=exe)
        od = subprocess.run(["objdump", "-d", "-j", ".plt", str(exe)], capture_output=True, text=True).stdout
        oracle = {int(a, 16): n for a, n in re.findall(r"^([0-9a-f]+) <(\w+)@plt>:", od, re.M)}
        stubs = {addr(s["address"]): s["symbol"].split("@")[0] for s in plt["stubs"] if s["kind"] == "stub"
                 and s["section"] == ".plt"}
        assert stubs == oracle


@needs_i386
def test_i386_live_lazy_walk_matches_libc_and_maps():
    exe = build_hello(["-Wl,-z,lazy"], compiler=I686, name="h32_lazy")
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --json"), *json_wrapped("plt-walk atoi --live --json"),
                   "info proc mappings", "kill"], program=exe)
    assert_no_traceback(res)
    got, walk = res.json_documents()
    maps = res.stdout.split("Start Addr")[-1]
    libc_base = min(int(l.split()[0], 16) for l in maps.splitlines() if l.strip().endswith("libc.so.6"))
    nm = nm_symbols(LIBC32, dynamic=True)
    rows = {r["symbol"].split("@")[0]: r for r in got["slots"]}
    assert rows["puts"]["state"] == "resolved" and addr(rows["puts"]["value"]) == libc_base + nm["puts"][0]
    assert rows["atoi"]["state"] == "unresolved"
    assert walk["arch"] == "i386" and walk["binding"] == "lazy"
    assert addr(walk["live"]["new"]) == libc_base + nm["atoi"][0]
    assert walk["live"]["location"]["object"] == "ld-linux.so.2"
    assert "relocation offset" in " ".join(walk["first_call"])            # i386 pushes a byte offset
    hops = {h["step"]: h for h in walk["hops"]}
    assert "ebx" in hops["stub"]["code"][0]                                  # PIC: %ebx-relative


@needs_i386
def test_i386_pie_now_walk_says_bound_at_load():
    exe = build_hello(["-Wl,-z,now"], compiler=I686, name="h32_now")
    res = run_gdb(["break checkpoint", "run", *json_wrapped("plt-walk puts --json"), "kill"], program=exe)
    doc = res.json_documents()[0]
    assert doc["binding"] == "now" and doc["state"] == "bound-at-load"
    assert "_dl_fixup" not in " ".join(doc["first_call"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_arm
def test_arm_file_view_and_stubs_match_readelf_objdump():
    exe = build_hello(["-Wl,-z,lazy"], compiler=ARM, name="harm_lazy")
    doc = gdb_json([], "got", program=exe)
    relocs = {r["offset"]: r for r in _relocs32(exe, "arm-linux-gnueabihf-readelf")
              if r["type"] in ("R_ARM_JUMP_SLOT", "R_ARM_GLOB_DAT")}
    assert {addr(r["address"]) for r in doc["slots"]} == set(relocs)
    plt = gdb_json([], "plt", program=exe)
    od = subprocess.run(["arm-linux-gnueabihf-objdump", "-d", "-j", ".plt", str(exe)],
                        capture_output=True, text=True).stdout
    oracle = {int(a, 16): n for a, n in re.findall(r"^([0-9a-f]+) <(\w+)@plt>:", od, re.M)}
    slot_of = {r["name"]: r["offset"] for r in relocs.values() if r["type"] == "R_ARM_JUMP_SLOT"}
    stubs = {addr(s["address"]): s for s in plt["stubs"] if s["kind"] == "stub"}
    assert set(stubs) == set(oracle)
    for a, name in oracle.items():
        assert addr(stubs[a]["slot_address"]) == slot_of[name], (name, stubs[a])
    walk = gdb_json([], "plt-walk atoi", program=exe)
    hops = {h["step"]: h for h in walk["hops"]}
    assert addr(hops["stub"]["address"]) == next(a for a, n in oracle.items() if n == "atoi")
    assert "call site" in hops                                              # Thumb blx found


@needs_arm
@pytest.mark.skipif(not (shutil.which("qemu-arm") and shutil.which("gdb-multiarch")),
                    reason="needs qemu-user and gdb-multiarch")
def test_arm_live_walk_under_qemu_user():
    exe = build_hello(["-Wl,-z,lazy"], compiler=ARM, name="harm_lazy")
    sysroot = "/usr/arm-linux-gnueabihf"
    port = _free_port()
    qemu = subprocess.Popen(["qemu-arm", "-L", sysroot, "-g", str(port), str(exe)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.3)
        argv = ["gdb-multiarch", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                "-ex", f"source {GDBINIT}", "-ex", f"set sysroot {sysroot}",
                "-ex", f"target remote 127.0.0.1:{port}", "-ex", "break checkpoint", "-ex", "continue"]
        for c in [*json_wrapped("plt-walk atoi --live --json"), "info sharedlibrary", "kill"]:
            argv += ["-ex", c]
        argv.append(str(exe))
        res = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            qemu.kill()
        qemu.wait(timeout=10)
    result = GdbResult(res.stdout, res.stderr, res.returncode)
    assert_no_traceback(result)
    walk = result.json_documents()[0]
    libc = f"{sysroot}/lib/libc.so.6"
    text_from = int(re.search(r"^(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+.*" + re.escape(libc), res.stdout,
                              re.M).group(1), 16)
    base = text_from - _text_addr(libc)                   # gdb's solib list gives .text's address
    nm = _nm_arm(libc)
    assert addr(walk["live"]["new"]) & ~1 == (base + nm["atoi"]) & ~1
    assert walk["live"]["location"]["object"] == "ld-linux-armhf.so.3"
    assert walk["live"]["target"] == "atoi in libc.so.6"


def _text_addr(path) -> int:
    out = subprocess.run(["arm-linux-gnueabihf-readelf", "-SW", path], capture_output=True, text=True).stdout
    return int(re.search(r"\.text\s+PROGBITS\s+([0-9a-f]+)", out).group(1), 16)


def _nm_arm(path) -> dict:
    out = subprocess.run(["arm-linux-gnueabihf-nm", "-D", "--defined-only", path], capture_output=True,
                         text=True).stdout
    return {p[2].split("@")[0]: int(p[0], 16) for p in (l.split() for l in out.splitlines()) if len(p) == 3}
