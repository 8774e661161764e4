"""The kernel commands in real gdb on this machine (no kprobes, no /proc/kcore here):
ksym and BTF through kallsyms, clear errors for what is missing, and kcore/kdis/kx/
kprobe-list on a synthetic kernel core (oracle: gdb's own core-file reader)."""
import os
import re
import subprocess

import pytest

from tests.support.gdbrun import GDB, addr, assert_no_traceback, gdb_json, json_wrapped, run_gdb
from tests.unit.test_kernel_kprobes import (F_OPEN, F_WRITE, KALLSYMS, OPTPAGE, build_kernel,  # noqa: F401
                                            kernel_types)

pytestmark = pytest.mark.gdb


def kallsyms_line(name):
    with open("/proc/kallsyms") as f:
        m = re.search(r"^([0-9a-f]+) (\w) " + re.escape(name) + "$", f.read(), re.M)
    return (int(m.group(1), 16), m.group(2)) if m else None


def test_ksym_uses_kallsyms_and_btf_here():
    want = kallsyms_line("do_sys_openat2")
    if want is None or want[0] == 0:
        pytest.skip("kallsyms hidden or different here")
    doc = gdb_json([], "ksym do_sys_openat2")
    m = doc["matches"][0]
    assert (addr(m["address"]), m["symbol_type"]) == want
    assert m["kind"] == "text"            # the category of kallsyms' t/T (nm's letters)
    data = re.search(r"^[0-9a-f]+ ([dDbBrR]) (\S+)$", open("/proc/kallsyms").read(), re.M)
    if data:                              # any data symbol the kernel lists: its letter's category
        d = gdb_json([], f"ksym {data.group(2)}")["matches"][0]
        assert (d["symbol_type"], d["kind"]) == (data.group(1), {"d": "data", "b": "bss",
                                                                 "r": "rodata"}[data.group(1).lower()])
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        raw = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                             capture_output=True, text=True).stdout
        assert m["btf_kind"] == "func" and m["prototype"].startswith("int do_sys_openat2(")
        assert "struct open_how" in raw
    back = gdb_json([], f"ksym 0x{want[0] + 3:x}")["matches"][0]
    loc = back["location"]           # where the address falls: a location object (schema v5)
    assert back["symbol"] == "do_sys_openat2" and addr(back["address"]) == want[0]
    assert (addr(loc["address"]), loc["symbol"], loc["offset"], loc["object"]) == \
        (want[0] + 3, "do_sys_openat2", 3, "vmlinux")
    # SYMBOL+OFFSET and decimal addresses are addresses too (as kdis/kx take them)
    for query in ("do_sys_openat2+0x3", str(want[0] + 3)):
        m = gdb_json([], f"ksym {query}")["matches"][0]
        assert (m["symbol"], addr(m["address"]), m["location"]["offset"]) == ("do_sys_openat2", want[0], 3), query


def test_missing_kernel_features_are_one_line_errors():
    res = run_gdb(["kcore", "kprobe-list", "kdis do_mmap", "kx do_mmap", "ftrace-site vfs_read",
                   "ksym definitely_not_a_symbol", "kdis", "kx do_mmap -5", "echo alive\\n"])
    assert_no_traceback(res)
    assert "alive" in res.stdout
    err = res.stderr
    if not os.path.exists("/proc/kcore"):
        assert err.count("CONFIG_PROC_KCORE") >= 3
    if not os.path.exists("/sys/kernel/debug/kprobes/list") and kallsyms_line("register_kprobe") is None:
        assert "CONFIG_KPROBES" in err
    assert "no kernel symbol matches 'definitely_not_a_symbol'" in err
    assert "usage: kdis" in err


def test_commands_on_a_synthetic_kernel_core(tmp_path, kernel_types):
    core = build_kernel(tmp_path, kernel_types)
    btf_path = kernel_types[0].path          # the gcc -gbtf object: Btf.load reads its .BTF
    ks = tmp_path / "kallsyms"
    ks.write_text(KALLSYMS)
    src = f"--kcore {core} --kallsyms {ks}"
    cmds = []
    for c in (f"kcore {core} --kallsyms {ks}", f"kx vfs_write 16 {src}", f"kdis vfs_write 3 {src}",
              f"kprobe-list {src} --btf {btf_path}", f"kprobe-show vfs_write+2 {src} --btf {btf_path}"):
        cmds += json_wrapped(c + " --json")
    res = run_gdb(cmds + [f"kx 0x1000 4 {src}", f"kprobe-list {src} --btf {btf_path}"])
    assert_no_traceback(res)
    from gdb_toolkit.common.schemas import validate_document
    for env in res.envelopes():                  # every result against its shipped schema
        assert env["ok"] and not validate_document(env), (env["command"], validate_document(env))
    kc, kx, kd, kl, ks_doc = res.json_documents()
    assert kc["release"] == "6.1.0-synthetic" and kc["kaslr_offset"] == 0
    assert {s["label"] for s in kc["segments"]} >= {"kernel text", "modules"}
    # oracle: gdb reading the same core file itself
    oracle = subprocess.run([GDB, "-nx", "-batch", "-c", str(core), "-ex", f"x/16xb 0x{F_WRITE:x}",
                             "-ex", f"x/3i 0x{F_WRITE:x}"], capture_output=True, text=True).stdout
    want = bytes(int(b, 16) for line in oracle.splitlines() if ":\t0x" in line
                 for b in re.findall(r"0x([0-9a-f]{2})\b", line.split(":", 1)[1]))
    got = bytes.fromhex("".join(r["hex"].replace(" ", "") for r in kx["rows"]))
    assert got == want
    mnems = re.findall(r":\s+(push|jmp)\b", oracle)
    assert [i["text"].split()[0] for i in kd["insns"]] == mnems
    assert kd["insns"][1]["note"].startswith("optimized kprobe") or \
        "kprobe insn page" in kd["insns"][1]["note"]
    # positions are location objects (schema version 4), named as the core's kallsyms names them
    probes = {(p["location"]["symbol"], p["location"]["offset"], p["kind"]): p for p in kl["probes"]}
    opt = probes[("vfs_write", 2, "kprobe")]
    assert opt["state"] == "optimized"
    assert (addr(opt["location"]["address"]), opt["location"]["object"]) == (F_WRITE + 2, "vmlinux")
    tgt = kd["insns"][1]["target_location"]       # the jmp into kallsyms' "kprobe_optinsn_page [__builtin__kprobes]"
    assert (tgt["symbol"], tgt["object"]) == ("kprobe_optinsn_page", "__builtin__kprobes")
    assert addr(tgt["address"]) == OPTPAGE + tgt["offset"] == addr(opt["target_address"])
    assert opt["target_location"] == tgt and ks_doc["live_insns"][0]["target_location"] == tgt
    assert (kd["location"]["symbol"], kd["location"]["offset"]) == ("vfs_write", 0) == \
        (kx["location"]["symbol"], kx["location"]["offset"])
    assert (ks_doc["location"]["symbol"], ks_doc["location"]["offset"]) == ("vfs_write", 2)
    bpf = [b for p in kl["probes"] for b in p["bpf"]]
    assert bpf and all((b["bpf_func_location"]["object"], addr(b["bpf_func_location"]["address"])) ==
                       ("bpf", addr(b["bpf_func_address"])) for b in bpf)
    assert "kprobe_table" in kl["sources"]
    assert ks_doc["original_insns"][0]["text"] == "push r14"
    assert ks_doc["detour"] == [] or ks_doc["detour_title"].startswith("detour")
    assert "kernel address 0x1000 is in no" in res.stderr
    assert "vfs_write+0x2" in res.stdout and "optimized" in res.stdout


def test_convenience_function_ksym():
    want = kallsyms_line("do_mmap")
    if want is None or want[0] == 0:
        pytest.skip("kallsyms hidden here")
    res = run_gdb(['print/x $ksym("do_mmap")', 'print $kprobe(0)'])
    assert f"0x{want[0]:x}" in res.stdout
    assert "$kprobe needs gdb to know struct kprobe" in res.stderr or "no kprobe" in res.stderr


def test_vmlinux_symbols_and_as_built_bytes(tmp_path, kernel_types):
    """--system-map/--vmlinux with an ELF: symbols from its .symtab, as-built bytes from its
    file (oracle: objdump on the same file)."""
    from tests.unit.test_kernel_kprobes import TEXT, WRITE_ORIG
    core = build_kernel(tmp_path, kernel_types)
    asm = tmp_path / "vm.S"
    asm.write_text(".text\n.globl _text\n_text:\n.org 0x2000\n.globl vfs_write\n"
                   ".type vfs_write,@function\nvfs_write:\n.byte "
                   + ",".join(str(b) for b in WRITE_ORIG) + "\nret\n")
    obj, vm = tmp_path / "vm.o", tmp_path / "vmlinux"
    subprocess.run(["as", "-o", str(obj), str(asm)], check=True)
    subprocess.run(["ld", "-nostdlib", "-static", f"-Ttext=0x{TEXT:x}", "-e", "vfs_write", "-o", str(vm),
                    str(obj)], check=True)
    btf = kernel_types[0].path
    src = f"--kcore {core} --btf {btf} --kallsyms {tmp_path / 'ks'}"
    (tmp_path / "ks").write_text(KALLSYMS)
    res = run_gdb(json_wrapped(f"ksym vfs_write --system-map {vm} --kcore {core} --json")
                  + json_wrapped(f"kprobe-show vfs_write+2 {src} --vmlinux {vm} -n 3 --json")
                  + [f"kprobe-show vfs_write+2 {src} --vmlinux {vm} -n 3",
                     f"kprobe-show vfs_write+2 {src} --vmlinux /bin/true"])
    assert_no_traceback(res)
    ks, show = res.json_documents()
    nm = subprocess.run(["nm", str(vm)], capture_output=True, text=True).stdout
    want = int(re.search(r"^([0-9a-f]+) T vfs_write$", nm, re.M).group(1), 16)
    assert addr(ks["matches"][0]["address"]) == want and ks["symbol_source"] == str(vm)
    dump = subprocess.run(["objdump", "-d", "-M", "intel", str(vm)], capture_output=True, text=True).stdout
    objdump_insns = re.findall(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s+(\S+)", dump, re.M)
    at = {int(a, 16): (raw.replace(" ", ""), mnem) for a, raw, mnem in objdump_insns}
    for line in show["as_built"]:
        raw, mnem = at[addr(line["address"])]
        assert line["raw"] == raw and line["text"].split()[0] == mnem
    assert show["as_built"][0]["text"] == "push r14"           # what the jmp replaced
    assert "as built (the --vmlinux file" in res.stdout
    assert "vmlinux bytes not read" in res.stdout                # /bin/true is not this kernel


def test_kernel_counts_out_of_range_are_one_line(tmp_path, kernel_types):
    """kprobe-show -n, kdis's count and kx's length go through the one range rule of every
    numeric option (args.check_int_option): one line naming the option, the value as given,
    what it counts and the range -- 0, negative, one past the top and 2^64+1 alike."""
    core = build_kernel(tmp_path, kernel_types)
    ks = tmp_path / "kallsyms"
    ks.write_text(KALLSYMS)
    src = f"--kcore {core} --kallsyms {ks} --btf {kernel_types[0].path}"
    big = (1 << 64) + 1
    cases = {
        f"kprobe-show vfs_write+2 {src} -n 0": "-n 0 is out of range (instructions). Fix: give -n 1..1000.",
        f"kprobe-show vfs_write+2 {src} -n -3": "-n -3 is out of range (instructions). Fix: give -n 1..1000.",
        f"kprobe-show vfs_write+2 {src} -n 1001":
            "-n 1001 is out of range (instructions). Fix: give -n 1..1000.",
        f"kdis vfs_write 0 {src}": "count 0 is out of range (instructions). Fix: give count 1..100000.",
        f"kdis vfs_write {big} {src}":
            f"count {big} is out of range (instructions). Fix: give count 1..100000.",
        f"kx vfs_write 0 {src}": "length 0 is out of range (bytes). Fix: give length 1..1048576.",
        f"kx vfs_write {(1 << 20) + 1} {src}":
            f"length {(1 << 20) + 1} is out of range (bytes). Fix: give length 1..1048576.",
    }
    res = run_gdb([*cases, "echo alive\\n"])
    assert_no_traceback(res)
    assert "alive" in res.stdout
    errors = [ln for ln in res.stderr.splitlines() if "out of range" in ln]
    assert errors == list(cases.values()), res.stderr


def test_convenience_functions_never_print_a_traceback():
    """issue 11 item 9: print $ksym(5), $ksym(), $kprobe() printed Python tracebacks."""
    res = run_gdb(["print $ksym(5)", "print $ksym()", 'print $ksym("a", "b")', "print $kprobe()",
                   'print $kprobe("vfs_read")', "print $kprobe(1, 2)", "echo alive\\n"])
    assert_no_traceback(res)
    assert "alive" in res.stdout
    err = res.stderr
    assert "$ksym needs a symbol name in quotes, not a int" in err
    assert "$ksym takes one argument, 0 given" in err and "$ksym takes one argument, 2 given" in err
    assert err.count("$kprobe") >= 3 and "Python Exception" not in err


def test_kcore_and_kx_refuse_a_process_core(tmp_path):
    """issue 11 item 9: `kcore core.PID` showed a process core's segments as if it were a
    kernel; kx read 'kernel memory' from it."""
    from tests.support.gdbrun import compile_c
    prog = compile_c("int main(void) { volatile int x = 1; while (x) ; return 0; }\n", "spin_core")
    core = tmp_path / "core.spin"
    res = run_gdb(["starti", f"gcore {core}", "kill"], program=prog)
    assert core.exists(), res.output
    res = run_gdb([f"kcore {core}", f"kx 0x400000 16 --kcore {core}",
                   f"kdis 0x400000 --kcore {core}", "echo alive\\n"])
    assert_no_traceback(res)
    assert "alive" in res.stdout
    assert res.stderr.count("is a process core (of 'spin_core'), not a kernel core") == 3, res.stderr


def test_vmlinux_slide_comes_from_vmcoreinfo_not_its_symbol_table(tmp_path, kernel_types, monkeypatch):
    """issue 17 item 5: --vmlinux turned all 127k .symtab entries into kallsyms text to find the
    KASLR slide (680 s in the guest) although VMCOREINFO gives it: the table is not read now."""
    from gdb_toolkit.kernel.session import KernelSession
    from gdb_toolkit.kernel.vmlinux import Vmlinux
    from tests.unit.test_kernel_kprobes import TEXT
    core = build_kernel(tmp_path, kernel_types)
    asm = tmp_path / "vm.S"
    asm.write_text(".text\n.globl _text\n_text:\n.org 0x2000\n.globl vfs_write\nvfs_write:\nret\n")
    subprocess.run(["as", "-o", str(tmp_path / "vm.o"), str(asm)], check=True)
    subprocess.run(["ld", "-nostdlib", "-static", f"-Ttext=0x{TEXT:x}", "-o", str(tmp_path / "vmlinux"),
                    str(tmp_path / "vm.o")], check=True)
    (tmp_path / "ks").write_text(KALLSYMS)

    def boom(self):
        raise AssertionError("the vmlinux symbol table was converted")
    monkeypatch.setattr(Vmlinux, "kallsyms_text", boom)
    with KernelSession(kcore=str(core), kallsyms=str(tmp_path / "ks"),
                       vmlinux=str(tmp_path / "vmlinux")) as s:
        vm, slide = s.vmlinux
        assert slide == 0 and vm.read(TEXT + 0x2000, 1) == b"\xc3"
