"""Module symbols read from kernel memory after the module churn of a long-running machine:
dozens of modules loaded, every other one removed (holes in the module area, reused by the
next loads), ext4 and its dependencies removed again, leaving ``loop`` -- whose string and
type tables end a few bytes before the guard page after its allocation, the state that hid
every older module (9p among them) from the vmcore and gdbstub sources.

Oracles: the running kernel's /proc/kallsyms (every module symbol: address, type letter --
upper case when the module exports it, as /proc/kallsyms prints it --, name, module) and
/proc/modules (the module list, each module's extent).
"""
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.guest

CHURN = 28          # small modules loaded; every other one removed again


def _proc_modules() -> dict[str, tuple[int, int]]:
    out = {}
    for line in Path("/proc/modules").read_text().splitlines():
        p = line.split()
        out[p[0]] = (int(p[-1], 16), int(p[-1], 16) + int(p[1]))
    return out


def _proc_module_symbols(mods) -> set:
    got = set()
    for line in Path("/proc/kallsyms").read_text(errors="surrogateescape").splitlines():
        m = re.match(r"([0-9a-f]+) (\S) (\S+)\t\[(\S+)\]$", line)
        if m and m.group(4) in mods:
            got.add((int(m.group(1), 16), m.group(2), m.group(3), m.group(4)))
    return got


def _modprobe(*args) -> bool:
    return subprocess.run(["modprobe", *args], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def churned():
    """The module churn; the modules it added are removed afterwards."""
    from tests.support.guest_ext4 import _module_index, load_module
    import platform

    assert _modprobe("qemu_fw_cfg")                      # VMCOREINFO in the dumps
    index = _module_index(platform.release())
    had = set(_proc_modules())
    loaded = []
    try:
        for m in ("loop", "ext4"):
            load_module(m, index)
        small = sorted(n for n in index if n.startswith(("nls_", "mac_")) and n not in had)[:CHURN]
        for n in small:
            if _modprobe(n):
                loaded.append(n)
        for n in loaded[::2]:
            subprocess.run(["rmmod", n], check=True, capture_output=True)
        loaded = loaded[1::2]
        subprocess.run(["rmmod", "ext4"], check=True, capture_output=True)
        _modprobe("-r", "jbd2", "mbcache", "crc16")
        for n in ("nls_utf8", "tun", "dummy"):               # reuse the holes
            if n not in had and _modprobe(n):
                loaded.append(n)
        mods = _proc_modules()
        assert len(loaded) >= CHURN // 2 and set(loaded) <= set(mods), (loaded, sorted(mods))
        assert "loop" in mods and "9p" in mods and "ext4" not in mods
        yield {"modules": mods, "symbols": _proc_module_symbols(mods)}
    finally:
        for n in loaded:
            subprocess.run(["rmmod", n], capture_output=True)


def test_every_module_symbol_in_a_vmcore_after_module_churn(churned):
    from gdb_toolkit.kernel.session import KernelSession
    from tests.guest.host_services import request, xfer_path

    res = request("dump", name="vmcore-modules", format="kdump-zlib", timeout=1200)
    assert res["ok"], res
    path = xfer_path("vmcore-modules")
    try:
        with KernelSession(kcore=str(path)) as s:
            syms = s.symbols
            mods = churned["modules"]
            got = {(x.address, x.type, x.name, x.module) for x in syms.symbols
                   if x.module in mods}
            want = churned["symbols"]
            assert got == want, (sorted(want - got)[:10], sorted(got - want)[:10], s.symbol_notes())
            assert s.symbol_notes() == []
            assert f"; {len(mods)} modules from the module list" in s.symbol_sources()[0]
            for name, ext in mods.items():
                assert syms.module_extents.get(name) == ext, (name, syms.module_extents.get(name), ext)
    finally:
        path.unlink(missing_ok=True)


def test_module_symbols_through_gdbstub_after_module_churn(churned):
    """The host's gdb on the halted guest: `ksym MODULE:SYMBOL` for the last symbol of every
    module (as /proc/kallsyms lists them) answers its address; kcore counts every module."""
    from tests.guest.host_services import request
    from tests.support.gdbrun import GdbResult, json_wrapped
    from tests.support.gdbrun import addr as gaddr

    last = {}
    for a, _t, n, m in sorted(churned["symbols"], key=lambda x: x[0]):
        last[m] = (n, a)
    cmds = json_wrapped("kcore --json")
    for m in sorted(last):
        cmds += json_wrapped(f"ksym {m}:{last[m][0]} --json")
    res = request("gdb", commands=cmds, timeout=1500)
    assert res["ok"], res
    assert "Traceback" not in res["stderr"], res["stderr"][-3000:]
    docs = GdbResult(res["stdout"], res["stderr"], res["status"]).json_documents()
    assert len(docs) == 1 + len(last), (res["stdout"][-2000:], res["stderr"][-3000:])
    notes = docs[0]["notes"]
    assert any(f"; {len(churned['modules'])} modules from the module list" in n for n in notes), notes
    assert not any(n.startswith("symbols: module list") for n in notes), notes
    for m, doc in zip(sorted(last), docs[1:]):
        assert "matches" in doc, (m, doc)
        assert [gaddr(x["address"]) for x in doc["matches"]] == [last[m][1]], (m, doc["matches"], last[m])
    print(f"gdbstub: {len(last)} modules, {res['seconds']} s")
