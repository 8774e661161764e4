"""aarch64: static analysis of a cross-compiled binary in gdb, and the live lazy walk under
qemu-user + gdb-multiarch (ld.so's write seen through a software watchpoint fallback)."""
import contextlib
import shutil
import socket
import subprocess
import time

import pytest

from tests.support.gdbrun import GDBINIT, addr, assert_no_traceback, gdb_json, json_wrapped
from tests.support.plt_oracles import build_hello, nm_symbols, readelf_relocs, readelf_sections

pytestmark = pytest.mark.gdb
SYSROOT = "/usr/aarch64-linux-gnu"

needs_cross = pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-gcc"), reason="no aarch64 cross compiler")


@pytest.fixture(scope="module")
def a64():
    return build_hello(["-Wl,-z,lazy"], compiler="aarch64-linux-gnu-gcc", name="hello_a64")


@needs_cross
def test_static_got_and_walk_of_aarch64_binary(a64):
    doc = gdb_json([], "got", program=a64)
    plt0 = readelf_sections(a64, "aarch64")[".plt"][0]
    relocs = {r["offset"]: r for r in readelf_relocs(a64, "aarch64") if r["type"] in ("JUMP_SLOT", "GLOB_DAT")}
    assert {addr(r["address"]) for r in doc["slots"]} == set(relocs)
    for r in doc["slots"]:
        if r["kind"] == "JUMP_SLOT":
            assert addr(r["value"]) == plt0 and r["state"] == "unresolved"
    walk = gdb_json([], "plt-walk puts", program=a64)
    hops = {h["step"]: h for h in walk["hops"]}
    assert [c.split(": ")[1].split()[0] for c in hops["stub"]["code"]] == ["adrp", "ldr", "add", "br"]
    assert addr(hops[".plt[0]"]["address"]) == plt0
    assert walk["arch"] == "aarch64"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_cross
@pytest.mark.skipif(not (shutil.which("qemu-aarch64") and shutil.which("gdb-multiarch")),
                    reason="needs qemu-user and gdb-multiarch")
def test_live_walk_under_qemu_user(a64):
    port = _free_port()
    qemu = subprocess.Popen(["qemu-aarch64", "-L", SYSROOT, "-g", str(port), str(a64)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.3)
        argv = ["gdb-multiarch", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                "-ex", f"source {GDBINIT}", "-ex", f"set sysroot {SYSROOT}",
                "-ex", f"target remote 127.0.0.1:{port}", "-ex", "break checkpoint", "-ex", "continue"]
        for c in [*json_wrapped("got --all-objects --json"), *json_wrapped("plt-walk atoi --live --json"),
                  "show can-use-hw-watchpoints", "maint info breakpoints", "kill"]:
            argv += ["-ex", c]
        argv.append(str(a64))
        res = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            qemu.kill()
        qemu.wait(timeout=10)
    from tests.support.gdbrun import GdbResult

    result = GdbResult(res.stdout, res.stderr, res.returncode)
    assert_no_traceback(result)
    got, walk = result.json_documents()
    rows = {r["symbol"].split("@")[0]: r for r in got["slots"] if r["object"] == a64.name}
    assert rows["puts"]["state"] == "resolved" and rows["atoi"]["state"] == "unresolved"
    libc = f"{SYSROOT}/lib/libc.so.6"
    libc_bias = next(addr(o["bias"]) for o in got["objects"] if o["path"].endswith("libc.so.6"))
    nm = nm_symbols(libc, dynamic=True, arch="aarch64")
    assert addr(rows["puts"]["value"]) == libc_bias + nm["puts"][0]
    live = walk["live"]
    assert addr(live["new"]) == libc_bias + nm["atoi"][0]
    assert live["location"]["object"] == "ld-linux-aarch64.so.1"
    assert live["target"] == "atoi in libc.so.6"
    tail = res.stdout.split("@@GTK-JSON-END@@")[-1]
    assert "willingness to use watchpoint hardware is 1" in tail     # setting restored
    assert "watchpoint" not in tail.split("is 1.")[1].lower()          # nothing left behind
