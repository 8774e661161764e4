"""arm64 got/plt/plt-walk --live over the matrix issue 16 asks for: lazy and now, PIE and not,
BTI PLTs (-mbranch-protection=standard), checked against the program's own dlsym().

Runs natively on an arm64 machine (the arm64 guest of tests/guest), and here on x86_64 under
qemu-aarch64 + gdb-multiarch (static checks vs objdump run everywhere)."""
import contextlib
import platform
import re
import shutil
import socket
import subprocess
import time

import pytest

from tests.support.gdbrun import GDBINIT, addr, GdbResult, assert_no_traceback, compile_c, json_wrapped

pytestmark = pytest.mark.gdb
NATIVE = platform.machine() in ("aarch64", "arm64")
CC = "gcc" if NATIVE else "aarch64-linux-gnu-gcc"
OBJDUMP = "objdump" if NATIVE else "aarch64-linux-gnu-objdump"
SYSROOT = "/usr/aarch64-linux-gnu"
SRC = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main(int argc, char **argv) {
    char b[8];
    memcpy(b, "hi", 3);
    puts(b);
    printf("dlsym atoi=%p puts=%p\n", dlsym(RTLD_DEFAULT, "atoi"), dlsym(RTLD_DEFAULT, "puts"));
    fflush(stdout);
    checkpoint();
    return atoi(argc > 1 ? argv[1] : "0");
}
"""
MATRIX = [
    ("lazy-pie", ["-Wl,-z,lazy"]),
    ("lazy-nopie", ["-no-pie", "-Wl,-z,lazy"]),
    ("now-pie", ["-Wl,-z,now"]),
    ("lazy-bti", ["-mbranch-protection=standard", "-Wl,-z,force-bti", "-Wl,-z,lazy"]),
    ("now-bti-nopie", ["-no-pie", "-mbranch-protection=standard", "-Wl,-z,force-bti", "-Wl,-z,now"]),
    ("lazy-pac-plt", ["-mbranch-protection=standard", "-Wl,-z,force-bti", "-Wl,-z,pac-plt", "-Wl,-z,lazy"]),
]
needs_toolchain = pytest.mark.skipif(not shutil.which(CC), reason=f"needs {CC}")
needs_runner = pytest.mark.skipif(
    not NATIVE and not (shutil.which("qemu-aarch64") and shutil.which("gdb-multiarch")),
    reason="needs a native arm64 machine, or qemu-user and gdb-multiarch")


def _build(name, flags):
    return compile_c(SRC, name=f"a64m-{name}", compiler=CC, flags=list(flags))


@needs_toolchain
@pytest.mark.parametrize("name,flags", MATRIX)
def test_stubs_match_objdump(name, flags):
    from tests.support.gdbrun import gdb_json

    exe = _build(name, flags)
    od = subprocess.run([OBJDUMP, "-d", "-j", ".plt", str(exe)], capture_output=True, text=True).stdout
    oracle = {int(a, 16): n for a, n in re.findall(r"^([0-9a-f]+) <(\w+)@plt>:", od, re.M)}
    doc = gdb_json([], "plt", program=exe) if NATIVE else _multiarch_json(exe, "plt")
    stubs = {addr(s["address"]): s["symbol"].split("@")[0] for s in doc["stubs"] if s["kind"] == "stub"}
    assert stubs == oracle, (stubs, oracle)
    assert any(s["kind"] == "plt0" for s in doc["stubs"])


def _multiarch_json(exe, command):
    res = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                          "-ex", f"source {GDBINIT}", *sum((["-ex", c] for c in json_wrapped(command + " --json")), []),
                          str(exe)], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return GdbResult(res.stdout, res.stderr, res.returncode).json_documents()[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_live(exe, commands):
    """(gdb result, program stdout): natively with gdb, else under qemu-aarch64 -g."""
    tail = [*commands, "kill"]
    if NATIVE:
        argv = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-ex", f"source {GDBINIT}",
                "-ex", "break checkpoint", "-ex", "run"] + sum((["-ex", c] for c in tail), []) + [str(exe)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        return GdbResult(res.stdout, res.stderr, res.returncode), res.stdout
    port = _free_port()
    qemu = subprocess.Popen(["qemu-aarch64", "-L", SYSROOT, "-g", str(port), str(exe)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.3)
        argv = ["gdb-multiarch", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                "-ex", f"source {GDBINIT}", "-ex", f"set sysroot {SYSROOT}",
                "-ex", f"target remote 127.0.0.1:{port}", "-ex", "break checkpoint", "-ex", "continue"]
        argv += sum((["-ex", c] for c in tail), []) + [str(exe)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            qemu.kill()
        out = qemu.communicate(timeout=10)[0]
    return GdbResult(res.stdout, res.stderr, res.returncode), out


@needs_toolchain
@needs_runner
@pytest.mark.parametrize("name,flags", MATRIX)
def test_live_against_dlsym(name, flags):
    exe = _build(name, flags)
    plain = subprocess.run(([] if NATIVE else ["qemu-aarch64", "-L", SYSROOT]) + [str(exe)],
                           capture_output=True, text=True, timeout=120)
    if plain.returncode in (-4, 132) and "bti" in name or "pac" in name and plain.returncode in (-4, 132):
        pytest.skip("this BTI-enforced binary dies with SIGILL before main here: the toolchain's crt objects "
                    "carry no BTI landing pads (ld: 'BTI turned on by -z force-bti when all inputs do not "
                    "have BTI'); the static PLT check still covers its stubs")
    lazy = name.startswith("lazy")
    walk_cmd = json_wrapped("plt-walk atoi --live --json") if lazy else ["plt-walk atoi --live"]
    res, program_out = _run_live(exe, [*json_wrapped("got --json"), *walk_cmd, "echo @@ALIVE\\n"])
    assert_no_traceback(res)
    assert "@@ALIVE" in res.stdout, res.output
    m = re.search(r"dlsym atoi=(0x[0-9a-f]+) puts=(0x[0-9a-f]+)", program_out + res.stdout)
    assert m, (program_out, res.stdout[-2000:])
    atoi, puts = int(m.group(1), 16), int(m.group(2), 16)
    docs = res.json_documents()
    got = docs[0]
    rows = {r["symbol"].split("@")[0]: r for r in got["slots"]}
    assert addr(rows["puts"]["value"]) == puts
    assert got["objects"][0]["binding"] == ("lazy" if lazy else "now")
    if lazy:
        walk = docs[1]
        assert rows["atoi"]["state"] == "unresolved"
        assert addr(walk["live"]["new"]) == atoi                                # dlsym's answer
        assert walk["live"]["location"]["object"].startswith("ld-linux-aarch64")
        assert walk["live"]["target"] == "atoi in libc.so.6"
    else:
        assert rows["atoi"]["state"] == "bound-at-load" and addr(rows["atoi"]["value"]) == atoi
        assert "already bound-at-load" in res.stderr
