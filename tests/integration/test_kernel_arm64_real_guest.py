"""Wrong answers met on Debian's arm64 6.1 kernel as an engineer meets them (in the arm64 QEMU
guest): module functions, unloaded modules' memory, assembly routines.

Oracles, all the kernel's own or binutils': /proc/kallsyms, /proc/modules,
/sys/kernel/debug/kprobes/list (the kernel's %ps names and [GONE]),
/sys/kernel/tracing/available_filter_functions, /proc/kcore read with pyelftools' program
headers, and the root's native objdump.  Probes are removed on every path.
"""
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_kernel_arm64_guest import (BRK4, TRACING, Kernel, kcore_bytes,
                                                       listed, objdump)
from tests.support.gdbrun import assert_no_traceback, json_wrapped, run_gdb
from tests.support.gdbrun import addr as A

pytestmark = pytest.mark.guest_arm64

NOP = bytes.fromhex("1f2003d5")


def module_symbols(module: str) -> dict[int, list[str]]:
    """/proc/kallsyms: address -> the names there, for one module's text."""
    out: dict[int, list[str]] = {}
    for line in Path("/proc/kallsyms").read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == f"[{module}]" and parts[1] in "tT":
            out.setdefault(int(parts[0], 16), []).append(parts[2])
    return out


def traced(module: str | None = None) -> set[str]:
    """Names in available_filter_functions (of *module*, or of vmlinux)."""
    names = set()
    for line in (TRACING / "available_filter_functions").read_text().splitlines():
        parts = line.split()
        if parts and (parts[1:] == [f"[{module}]"] if module else len(parts) == 1):
            names.add(parts[0])
    return names


def vmalloc_areas() -> list[tuple[int, int]]:
    """/proc/vmallocinfo's areas, real addresses (%pK: kptr_restrict 1 shows them to root)."""
    ctl = Path("/proc/sys/kernel/kptr_restrict")
    old = ctl.read_text().strip()
    ctl.write_text("1")
    try:
        text = Path("/proc/vmallocinfo").read_text()
    finally:
        ctl.write_text(old)
    out = []
    for line in text.splitlines():
        m = re.match(r"0x([0-9a-f]+)-0x([0-9a-f]+)\s", line)
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16)))
    assert out and all(a > 1 << 63 for a, _ in out), text[:500]      # real, not hashed
    return out


def covered(addr: int, areas) -> bool:
    return any(a <= addr < b for a, b in areas)


def kallsyms_of(name: str) -> int:
    m = re.search(r"^([0-9a-f]+) [tT] " + re.escape(name) + r"$", Path("/proc/kallsyms").read_text(), re.M)
    assert m, name
    return int(m.group(1), 16)


@pytest.fixture
def kernel():
    k = Kernel()
    try:
        yield k
    finally:
        k.cleanup()
        subprocess.run(["rmmod", "dummy"], capture_output=True)


def test_module_functions_unloaded_modules_and_assembly_routines(kernel):
    subprocess.run(["modprobe", "loop"], check=True, capture_output=True)
    subprocess.run(["modprobe", "dummy"], check=True, capture_output=True)
    # -- loop's text starts with a '$x' mapping symbol beside its first function (6.1 lists them)
    syms = module_symbols("loop")
    starts = sorted(a for a, names in syms.items() if "$x" in names and len(names) > 1)
    assert starts, "no $x beside a function in loop's kallsyms: the kernel changed"
    first = starts[0]
    func = next(n for n in syms[first] if n != "$x")
    loop_traced = traced("loop")
    assert func in loop_traced
    # -- copy_page (the seed's example): assembly, bti c + an alternative's NOPs; may_use_simd:
    # three NOPs.  Neither is traced.  (6.1 refuses a kprobe on either -- EINVAL -- so a brk
    # over such NOPs is checked on the unit fixture: test_kernel_arm64_ftrace.py)
    assert "copy_page" not in traced() and "may_use_simd" not in traced()
    copy_page, simd = kallsyms_of("copy_page"), kallsyms_of("may_use_simd")
    cp_bytes = kcore_bytes(copy_page, 16)
    assert [t for _, t in objdump(cp_bytes, copy_page)] == ["bti c", "nop", "nop", "nop"]
    simd_before = kcore_bytes(simd, 12)
    assert simd_before == NOP * 3, simd_before.hex()
    # -- probes: the loop function (entry); dummy's, then the module is unloaded
    kernel.probe(f"p loop:{func}", "lf")
    dummy = next(a for a, n in module_symbols("dummy").items() if "dummy_dev_init" in n)
    kernel.probe("p dummy:dummy_dev_init", "gone")
    subprocess.run(["rmmod", "dummy"], check=True, capture_output=True)
    before = covered(dummy, vmalloc_areas())
    (gone_line,) = listed(dummy)
    assert "[GONE]" in gone_line and "dummy " not in Path("/proc/modules").read_text()
    (loop_line,) = listed(first)
    assert loop_line.split()[2] == f"{func}+0x0"        # the kernel's %ps: the function
    assert kcore_bytes(first, 4) == BRK4
    assert before or kcore_bytes(dummy, 16) == bytes(16)        # kcore: zeros for the hole

    cmds = []
    for c in (f"ksym 0x{first:x} --json", f"kdis 0x{first:x} 3 --json", f"ftrace-site {func} --json",
              "kprobe-list --json", "ftrace-site copy_page --json", "kdis copy_page 5 --json",
              "ftrace-site may_use_simd --json", "kdis may_use_simd 3 --json"):
        cmds += json_wrapped(c)
    res = run_gdb(cmds + [f"kx 0x{dummy:x} 16", f"kdis 0x{dummy:x} 2"], timeout=900)
    after = covered(dummy, vmalloc_areas())
    assert_no_traceback(res)
    ks, kd, fs_mod, kl, fs_cp, kd_cp, fs_simd, kd_simd = res.json_documents()

    # module symbols: the function, as kprobes/list and available_filter_functions name it
    assert [(m["symbol"], A(m["address"]), m["object"]) for m in ks["matches"]] == [(func, first, "loop")]
    assert (kd["location"]["symbol"], kd["location"]["object"]) == (func, "loop")
    assert not any("$" in (i["location"]["symbol"] or "") for i in kd["insns"]), kd["insns"]
    assert fs_mod["function"] == func and fs_mod["traceable"] is True
    assert fs_mod["state"] == "idle" and A(fs_mod["entry_address"]) == first
    rows = {A(p["address"]): p for p in kl["probes"]}
    assert rows[first]["location"]["symbol"] == func and rows[first]["state"] == "brk"
    assert rows[dummy]["state"] == "gone" and rows[dummy]["flags"] == ["GONE"]

    # copy_page: no patchable entry; kdis says nothing of ftrace there
    assert fs_cp["state"] == "not-a-site" and fs_cp["entry_address"] is None, fs_cp
    assert fs_cp["traceable"] is False and fs_cp["original_hex"] is None
    assert not [i["note"] for i in kd_cp["insns"] if i["note"]], kd_cp["insns"]
    assert fs_simd["state"] == "not-a-site" and fs_simd["entry_address"] is None, fs_simd
    assert not [i["note"] for i in kd_simd["insns"] if i["note"]], kd_simd["insns"]

    # the unloaded module's memory: an error naming the hole, not 00 bytes / (bad).  Modules
    # live inside the vmalloc range here (RANDOMIZE_MODULE_REGION_FULL), so a new vmalloc (a
    # thread's stack) may take the freed pages: /proc/vmallocinfo says whether it did
    errors = re.findall(rf"kernel address 0x({dummy:x}|{dummy & ~0xFFF:x}) is not mapped", res.stderr)
    if not before and not after:
        # kx reads first and meets the hole; kdis, a moment later, may find the pages taken by
        # a vmalloc made meanwhile and freed again before the check after gdb (gdb starts and
        # ends threads): it then reads memory, which nothing here can rule out (seen once in
        # a full run: 1 error of 2)
        assert errors, res.stderr[-3000:]
        assert f"0x{dummy:x}:  00 00" not in res.stdout, res.stdout[-3000:]
        if len(errors) == 2:
            assert "(bad)" not in res.stdout, res.stdout[-3000:]
    elif before and after:
        assert not errors, res.stderr[-3000:]      # mapped again: its bytes are memory
    # JSON documents valid against the schema
    from gdb_toolkit.common.schemas import validate_document
    for env in res.envelopes():
        assert not validate_document(env), (env["command"], validate_document(env))
    kernel.unprobe("lf")
    kernel.unprobe("gone")
    assert kcore_bytes(first, 8) == bytes.fromhex("e9031eaa1f2003d5")   # mov x9, x30; nop
