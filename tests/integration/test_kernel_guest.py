"""kprobe inspection on a real kernel (Debian's 6.1 in the QEMU guest, see docs/guest.md; and
Debian's 6.12 from bookworm-backports, test_newkernel_kernel_guest.py: IBT moves a probe on a
function with an ENDBR64 to +4, see tracefs.probe_site).

Probes are registered through tracefs; every assertion is checked against the kernel's
own records (kprobes/list flags, kallsyms, gdb reading /proc/kcore as a core file,
readelf) and the bytes seen after the probe is removed.  Every test removes its probes
and restores sysctls on every path.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.gdbrun import GDB, assert_no_traceback, run_gdb
from tests.support.gdbrun import addr as gaddr
from tests.support.tracefs import (ENDBRS, after_site, append as _append, kallsyms, kcore_bytes,
                                   probe_site)

pytestmark = pytest.mark.guest

TRACING = Path("/sys/kernel/tracing")
KLIST = Path("/sys/kernel/debug/kprobes/list")
OPT_SYSCTL = Path("/proc/sys/debug/kprobes-optimization")
GROUP = "gtkkern"
NOP5 = bytes.fromhex("0f1f440000")


def listed(addr: int) -> list[str]:
    return [l for l in KLIST.read_text().splitlines() if int(l.split()[0], 16) == addr]


class Probes:
    """Registers tracefs kprobes in one group and removes them all, whatever happens."""

    def __init__(self):
        self.names = []
        self.opt = OPT_SYSCTL.read_text().strip()

    def add(self, spec: str, name: str, enable: bool = True):
        kind, _, target = spec.partition(" ")
        _append(TRACING / "kprobe_events", f"{kind}:{GROUP}/{name} {target}")
        self.names.append(name)
        if enable:
            (TRACING / "events" / GROUP / name / "enable").write_text("1")

    def remove(self, name: str):
        try:
            (TRACING / "events" / GROUP / name / "enable").write_text("0")
        except OSError:
            pass
        _append(TRACING / "kprobe_events", f"-:{GROUP}/{name}")
        self.names.remove(name)

    def cleanup(self):
        for name in list(self.names):
            try:
                self.remove(name)
            except OSError:
                pass
        OPT_SYSCTL.write_text(self.opt)
        assert f"{GROUP}/" not in (TRACING / "kprobe_events").read_text()


@pytest.fixture
def probes():
    p = Probes()
    try:
        yield p
    finally:
        p.cleanup()


def report():
    from gdb_toolkit.kernel.session import KernelSession
    with KernelSession() as s:
        return s.kprobe_report()


def rows_at(addr: int):
    return [r for r in report().probes if r.address == addr]


def wait_for(pred, timeout=30.0, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_entry_probe_is_an_ftrace_call_and_original_is_the_nop(probes):
    addr = probe_site("do_sys_openat2")
    assert kcore_bytes(addr, 5) == NOP5 or not listed(addr), "someone else traces it"
    probes.add("p do_sys_openat2", "entry")
    kernel = listed(addr)
    assert len(kernel) == 1 and "[FTRACE]" in kernel[0]
    (row,) = rows_at(addr)
    assert row.flags == ["FTRACE"] and row.state == "ftrace" and row.consistent
    assert row.target_symbol and "ftrace" in row.target_symbol
    assert row.handler == "kprobe_dispatcher" and row.event == f"{GROUP}/entry"
    assert row.original == NOP5 and row.found_in == "list+memory"
    probes.remove("entry")
    assert not listed(addr)
    assert kcore_bytes(addr, len(row.original)) == row.original


def _offset_of_second_insn(addr: int) -> int:
    """The offset of the instruction after the ftrace site of the function at *addr* (past an
    ENDBR64 on IBT kernels)."""
    from gdb_toolkit.common.disasm import disassemble
    site = addr + 4 if kcore_bytes(addr, 4) in ENDBRS else addr
    insns = disassemble(kcore_bytes(site, 32), site, "x86_64", count=3)
    return insns[1].address - addr          # after the ftrace site


def test_offset_probe_int3_then_optimized_then_forced_back(probes):
    OPT_SYSCTL.write_text("0")
    base = kallsyms("vfs_write")
    off = _offset_of_second_insn(base)
    addr = base + off
    probes.add(f"p vfs_write+{off}", "off")
    (line,) = listed(addr)
    assert "[OPTIMIZED]" not in line
    (row,) = rows_at(addr)
    assert row.state == "int3" and row.consistent and row.original_source == "p->opcode"
    int3_original = row.original
    # let the optimizer run: the kernel's flag appears at once (optimize_kprobe() sets it when
    # it queues the probe), the jmp to a detour only after the optimizer's delay and an
    # RCU-tasks grace period (seconds under TCG on a busy host): wait for both, as seen by the
    # oracles (kprobes/list, /proc/kcore through pyelftools), before asking the toolkit
    OPT_SYSCTL.write_text("1")
    assert wait_for(lambda: "[OPTIMIZED]" in listed(addr)[0]), listed(addr)
    assert wait_for(lambda: kcore_bytes(addr, 1) == b"\xe9", timeout=180), \
        (listed(addr), kcore_bytes(addr, 8).hex())
    (row,) = rows_at(addr)
    assert row.flags == ["OPTIMIZED"] and row.state == "optimized" and row.consistent
    assert row.detour_address and "kprobe" in (row.target_symbol or "")
    assert row.original[:len(int3_original)] == int3_original
    opt_original = row.original
    # forced back to int3
    OPT_SYSCTL.write_text("0")
    assert wait_for(lambda: "[OPTIMIZED]" not in listed(addr)[0]), listed(addr)
    (row,) = rows_at(addr)
    assert row.state == "int3" and row.consistent and row.original == int3_original
    probes.remove("off")
    after = kcore_bytes(addr, len(opt_original))
    assert after == opt_original and after[:len(int3_original)] == int3_original


def test_kretprobe_and_disabled_probe(probes):
    ret_addr = probe_site("do_faccessat")
    dis_addr = probe_site("vfs_fsync_range")
    probes.add("r do_faccessat", "ret")
    probes.add("p vfs_fsync_range", "dis", enable=False)
    rows = {r.address: r for r in report().probes}
    r = rows[ret_addr]
    assert r.kind == "kretprobe" and " r " in listed(ret_addr)[0]
    assert r.handler == "pre_handler_kretprobe" and r.ret_handler == "kretprobe_dispatcher"
    assert r.event == f"{GROUP}/ret" and r.consistent
    d = rows[dis_addr]
    assert "[DISABLED]" in listed(dis_addr)[0] and "DISABLED" in d.flags
    assert d.state in ("ftrace-nop", "unpatched") and d.consistent
    live = kcore_bytes(dis_addr, len(d.original))
    assert d.original == live
    probes.remove("dis")
    assert kcore_bytes(dis_addr, len(d.original)) == d.original
    probes.remove("ret")
    assert kcore_bytes(ret_addr, 5) == NOP5


def test_every_probe_agrees_with_the_kernels_flags(probes):
    probes.add("p do_sys_openat2", "a")
    probes.add("r do_sys_openat2", "b")      # aggregate: two probes at one address
    probes.add("p vfs_read", "c", enable=False)
    rep = report()
    kernel = {(l.split()[0], l.split()[1]): re.findall(r"\[(\w+)\]", l)
              for l in KLIST.read_text().splitlines()}
    assert len(rep.probes) == len(kernel)
    for r in rep.probes:
        assert r.flags == kernel[(f"{r.address:016x}", "r" if r.kind == "kretprobe" else "k")]
        assert r.consistent, r
    agg = [r for r in rep.probes if r.address == probe_site("do_sys_openat2")]
    assert {r.kind for r in agg} == {"kprobe", "kretprobe"} and agg[0].aggregate_address


def test_commands_in_gdb_match_kernel_oracles(probes, tmp_path):
    probes.add("p do_sys_openat2", "g1")
    addr = kallsyms("do_sys_openat2")
    banner = kallsyms("linux_banner")
    cmds = []
    for c in ("kcore --json", "kprobe-list --json", "kprobe-show do_sys_openat2 --json",
              "ksym do_sys_openat2 --json", f"kx 0x{banner:x} 64 --json", "kdis do_sys_openat2 4 --json",
              "ftrace-site do_sys_openat2 --json", "ftrace-site vfs_fsync_range --json"):
        cmds += [f"echo @@GTK-JSON-BEGIN@@\\n", c, "echo @@GTK-JSON-END@@\\n"]
    res = run_gdb(cmds + ["ksym no_such_symbol_x", "kdis 0x10 2", "kprobe-show vfs_fsync_range"],
                  timeout=600)
    assert_no_traceback(res)
    from gdb_toolkit.common.schemas import validate_document
    for env in res.envelopes():                  # every result against its shipped schema
        assert env["ok"] and not validate_document(env), (env["command"], validate_document(env))
    docs = res.json_documents()
    kc, kl, ks, ksy, kx, kd, fs_on, fs_idle = docs
    assert kc["release"] == os.uname().release and kc["arch"] == "x86_64"
    readelf = subprocess.run(["readelf", "-lW", "/proc/kcore"], capture_output=True, text=True).stdout
    loads = [int(l.split()[2], 16) for l in readelf.splitlines() if l.strip().startswith("LOAD")]
    assert sorted(loads) == [gaddr(s["start_address"]) for s in kc["segments"]]
    assert any(gaddr(p["address"]) == addr and p["flags"] == ["FTRACE"] for p in kl["probes"])
    # positions are location objects: kprobes/list says "do_sys_openat2+0x0", kallsyms has no
    # [module] for it: the kernel image
    lines = listed(addr)
    assert lines and all(re.search(r"\sdo_sys_openat2\+0x0\s", ln + " ") for ln in lines), lines
    mine = next(p for p in kl["probes"] if gaddr(p["address"]) == addr)
    loc = mine["location"]
    assert (gaddr(loc["address"]), loc["symbol"], loc["offset"], loc["object"]) == (addr, "do_sys_openat2", 0, "vmlinux")
    assert isinstance(mine["miss_count"], int) and "hits" not in mine
    # the handler is a location too (kprobe_dispatcher: a tracefs probe's), at kallsyms' address
    entry = next(p for p in kl["probes"] if gaddr(p["address"]) == addr and p["kind"] == "kprobe")
    h = entry["handler_location"]
    assert (gaddr(h["address"]), h["symbol"], h["offset"], h["object"]) == \
        (kallsyms("kprobe_dispatcher"), "kprobe_dispatcher", 0, "vmlinux"), entry
    assert ks["location"] == loc and kd["insns"][0]["location"] == loc and kd["location"] == loc
    assert ksy["matches"][0]["object"] == "vmlinux"
    assert gaddr(ks["address"]) == addr and ks["live_insns"][0]["raw"].startswith("e8")
    assert ks["original_insns"][0]["raw"] == "0f1f440000"                # as kdis's raw: no spaces
    assert gaddr(ksy["matches"][0]["address"]) == addr and "do_sys_openat2(" in ksy["matches"][0]["prototype"]
    # kx against gdb's own core-file reader on /proc/kcore
    oracle = subprocess.run([GDB, "-nx", "-batch", "-c", "/proc/kcore", "-ex", f"x/64xb 0x{banner:x}"],
                            capture_output=True, text=True, timeout=300).stdout
    want = bytes(int(b, 16) for line in oracle.splitlines() if ":" in line
                 for b in re.findall(r"0x([0-9a-f]{2})\b", line.split(":", 1)[1]))
    got = bytes.fromhex("".join(r["hex"].replace(" ", "") for r in kx["rows"]))
    assert got.startswith(b"Linux version ")
    assert got == want, oracle
    assert kd["insns"][0]["note"].startswith("ftrace call")
    assert fs_on["state"] == "patched" and fs_on["enabled"] is not None
    # enabled_functions' "(kprobe_ftrace_handler+0x0/0x...)" as a location, its address kallsyms'
    named = re.search(r"\(([A-Za-z_][\w.]*)\+0x([0-9a-f]+)/0x[0-9a-f]+\)", fs_on["enabled"]["text"])
    eh = fs_on["enabled"]["handler_location"]
    if named:                    # a trampoline of its own names its handler (one ftrace user here)
        assert (eh["symbol"], eh["offset"], eh["object"]) == (named[1], int(named[2], 16), "vmlinux"), fs_on
        assert gaddr(eh["address"]) == kallsyms(named[1]) + int(named[2], 16), fs_on
    else:
        assert eh is None, fs_on
    assert fs_idle["state"] == "idle" and fs_idle["live_hex"].startswith("0f1f440000")
    err = res.stderr
    assert "no kernel symbol matches 'no_such_symbol_x'" in err
    assert "kernel address 0x10 is in no /proc/kcore segment" in err
    assert "no kprobe at vfs_fsync_range" in err


def test_module_split_btf_matches_bpftool():
    """Module BTF is split on vmlinux's: ids and strings continue after the base's."""
    from gdb_toolkit.kernel.btf import Btf
    from tests.unit.test_kernel_btf import LINE, MEMBER, _kv, _name

    mods = sorted(p.name for p in Path("/sys/kernel/btf").iterdir() if p.name != "vmlinux")
    assert mods, "no module BTF in the guest"
    mod = "9p" if "9p" in mods else mods[0]
    # bpftool takes /sys/kernel/btf/vmlinux as the base of a /sys/kernel/btf/<module> itself
    out = subprocess.run(["bpftool", "btf", "dump", "file", f"/sys/kernel/btf/{mod}", "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    btf = Btf.load(f"/sys/kernel/btf/{mod}")
    assert btf.base is not None and btf.first_id == btf.base.count
    seen = 0
    cur = None
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            tid, kind, name = int(m.group(1)), m.group(2), m.group(3)
            t = btf.type(tid)
            assert (t.kind_name, t.name) == (kind.lower(), _name(name)), tid
            if kind in ("STRUCT", "UNION"):
                assert t.size == int(_kv(m.group(4))["size"])
                cur = (t, iter(t.members))
            else:
                cur = None
            seen += 1
        elif cur is not None and line.startswith("\t'"):
            mm = MEMBER.match(line)
            member = next(cur[1])
            assert (member.name, member.type_id, member.bit_offset) == (
                _name(mm.group(1)), int(mm.group(2)), int(mm.group(3)))
    assert seen == btf.count - btf.first_id


def test_kprobe_convenience_function_with_gdbs_own_types(probes, tmp_path):
    """$kprobe(addr) is typed with gdb's types: here from a -g object declaring 6.1's
    struct kprobe (standing in for a debug vmlinux), memory from gdb's core target on kcore."""
    from tests.unit.test_kernel_kprobes import HEADER
    src = tmp_path / "kprobe_types.c"
    src.write_text(HEADER + "struct kprobe kp_type_anchor;\n")
    obj = tmp_path / "kprobe_types.o"
    subprocess.run(["gcc", "-g", "-c", str(src), "-o", str(obj)], check=True)
    off = after_site("vfs_write")
    probes.add(f"p vfs_write+{off:#x}", "conv")
    addr = kallsyms("vfs_write") + off
    (row,) = rows_at(addr)
    want = row.aggregate_address or row.struct_address
    res = run_gdb([f"file {obj}", "core-file /proc/kcore", f"print $kprobe(0x{addr:x})",
                   f"print/x $kprobe(0x{addr:x})->addr", f"print $kprobe(0x{addr:x})->pre_handler",
                   "print $kprobe(0x10)"], timeout=600)
    assert_no_traceback(res)
    assert f"(struct kprobe *) 0x{want:x}" in res.stdout, res.output
    assert f"= 0x{addr:x}" in res.stdout
    assert "no kprobe at 0x10" in res.stderr


def test_non_root_gets_one_line_reasons():
    from tests.support.gdbrun import gdb_argv

    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/tmp",
            *gdb_argv(["ksym do_mmap", "kcore", "kprobe-list", "echo alive\\n"])]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert "Traceback" not in res.stderr and "alive" in res.stdout
    err = res.stderr.splitlines()
    assert any("shows every address as 0" in l and "run gdb as root" in l for l in err), err
    assert any("permission denied (euid 65534" in l and "CAP_SYS_RAWIO" in l for l in err), err
    assert any("debugfs is root-only" in l and "Fix: run gdb as root" in l for l in err), err


def test_ksym_module_function_gets_its_prototype_from_module_btf():
    """A module function's prototype lives in /sys/kernel/btf/<module> (split BTF), not in
    vmlinux's: oracle = bpftool's raw dump of the module BTF (the FUNC's parameter names)."""
    from gdb_toolkit.kernel.memory_views import ksym
    from gdb_toolkit.kernel.session import KernelSession

    name = "v9fs_file_read_iter"            # 9p carries the guest's root: always loaded

    def raw(f):
        return "\n" + subprocess.run(["bpftool", "btf", "dump", "file", f, "format", "raw"],
                                     capture_output=True, text=True, check=True).stdout

    mod = raw("/sys/kernel/btf/9p")
    fid = re.search(r"^\[\d+\] FUNC '" + name + r"' type_id=(\d+)", mod, re.M).group(1)
    where = mod if f"\n[{fid}] FUNC_PROTO" in mod else raw("/sys/kernel/btf/vmlinux")  # deduped to base
    block = where.split(f"\n[{fid}] FUNC_PROTO", 1)[1].split("\n[", 1)[0]
    params = re.findall(r"^\s+'(\w+)' type_id=", block, re.M)
    assert params, block
    with KernelSession() as s:
        rep = ksym(s, f"9p:{name}")
    (m,) = rep.matches
    assert m.module == "9p" and m.btf_kind == "func", m
    assert f"{name}(" in m.prototype and all(f" *{p}" in m.prototype or f" {p}" in m.prototype
                                            for p in params), (m.prototype, params)
