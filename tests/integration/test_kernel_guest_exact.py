"""Issue 17: exact attribution on a real kernel (Debian's 6.1 in the QEMU guest; 6.12 from
bookworm-backports in test_newkernel_exact_guest.py).

Several probes at one address (two tracefs events and a bpftrace/perf probe), probes on an
unloaded module, `kx $ksym("...")+N`, and SLS int3 padding.  Oracles: the kernel's own
lists (kprobes/list, kprobe_events, kprobe_profile, /proc/modules), bpftool (perf show,
prog show with run counts), /proc/kallsyms, and the kernel image as built (the vmlinux inside
the package's vmlinuz).
"""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_kernel_guest import (KLIST, TRACING, Probes, _append, kallsyms,
                                                 kcore_bytes, listed, wait_for)
from tests.support.gdbrun import addr as gaddr
from tests.support.gdbrun import assert_no_traceback, run_gdb
from tests.support.tracefs import ENDBRS, probe_site

pytestmark = pytest.mark.guest

QUIET = "__x64_sys_getpgid"          # a syscall nothing in the guest calls but these tests
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


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


def getpgid(n: int):
    for _ in range(n):
        os.getpgid(0)


def profile() -> dict:
    """kprobe_profile: event name -> (hits, misses) (names are unique in these tests)."""
    out = {}
    for line in (TRACING / "kprobe_profile").read_text().splitlines():
        name, hits, miss = line.split()
        out[name] = (int(hits), int(miss))
    return out


def bpf_jit(name: str) -> int:
    """A BPF program's JIT address: its /proc/kallsyms line (``ADDR t NAME\t[bpf]``)."""
    m = re.search(r"^([0-9a-f]+) \w " + re.escape(name) + r"\t\[bpf\]$",
                  Path("/proc/kallsyms").read_text(), re.M)
    assert m, name
    return int(m.group(1), 16)


def bpftool(*args):
    return json.loads(subprocess.run(["bpftool", *args, "--json"], capture_output=True, text=True,
                                     check=True).stdout)


class Bpftrace:
    """bpftrace attached to kprobe:FUNC (a perf kprobe: no kprobe_events line)."""

    def __init__(self, func: str):
        self.proc = subprocess.Popen(["bpftrace", "-e", f"kprobe:{func} {{ @n = count(); }}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def test_several_probes_at_one_address_are_attributed_to_their_own_events(probes):
    """Two tracefs events and a bpftrace probe on one function: three rows, each with its own
    event, hit count and BPF program (issue 17 item 1)."""
    addr = probe_site(QUIET)
    old_stats = BPF_STATS.read_text().strip()
    BPF_STATS.write_text("1")
    bt = None
    try:
        probes.add(f"p {QUIET}", "entry")
        probes.add(f"p {QUIET}", "entry2", enable=False)
        getpgid(3)
        (TRACING / "events" / "gtkkern" / "entry2" / "enable").write_text("1")
        getpgid(2)
        bt = Bpftrace(QUIET)
        assert wait_for(lambda: len(listed(addr)) == 3, timeout=120), (listed(addr), bt.proc.stderr)
        (perf,) = [p for p in bpftool("perf", "show") if p.get("func") == QUIET]
        prog = bpftool("prog", "show", "id", str(perf["prog_id"]))
        jit = bpf_jit(f"bpf_prog_{prog['tag']}_{prog['name']}")
        getpgid(4)
        time.sleep(0.5)
        rows = [r for r in report().probes if r.address == addr]
        prof = profile()
        run_cnt = bpftool("prog", "show", "id", str(perf["prog_id"])).get("run_cnt")
    finally:
        if bt is not None:
            bt.stop()
        BPF_STATS.write_text(old_stats)
    assert len(rows) == 3, rows
    by_event = {r.event: r for r in rows}
    assert set(by_event) == {"gtkkern/entry", "gtkkern/entry2", f"kprobes/{QUIET}"}, by_event.keys()
    for name in ("entry", "entry2"):
        r = by_event[f"gtkkern/{name}"]
        assert r.event_tracefs is True and r.bpf == [] and r.handler == "kprobe_dispatcher"
        assert (r.hit_count, r.miss_count) == prof[name], (name, r.hit_count, prof)
    assert prof["entry"][0] == 9 and prof["entry2"][0] == 6
    p = by_event[f"kprobes/{QUIET}"]
    assert p.event_tracefs is False
    assert [(b["id"], b["bpf_func_address"]) for b in p.bpf] == [(perf["prog_id"], jit)]
    assert p.hit_count == run_cnt == 4, (p.hit_count, run_cnt)
    assert len({r.struct_address for r in rows}) == 3 and len({r.aggregate_address for r in rows}) == 1


def test_kprobe_show_attaches_bpf_to_the_perf_probe_only(probes):
    addr = probe_site(QUIET)
    probes.add(f"p {QUIET}", "show1")
    bt = Bpftrace(QUIET)
    try:
        assert wait_for(lambda: len(listed(addr)) == 2, timeout=120), listed(addr)
        (perf,) = [p for p in bpftool("perf", "show") if p.get("func") == QUIET]
        res = run_gdb(["echo @@GTK-JSON-BEGIN@@\\n", f"kprobe-show {QUIET} --json",
                       "echo @@GTK-JSON-END@@\\n"], timeout=600)
    finally:
        bt.stop()
    assert_no_traceback(res)
    (doc,) = res.json_documents()
    by_event = {p["event"]: p for p in doc["probes"]}
    assert [b["id"] for b in by_event[f"kprobes/{QUIET}"]["bpf"]] == [perf["prog_id"]]
    assert by_event["gtkkern/show1"]["bpf"] == []
    assert [b["id"] for b in doc["bpf"]] == [perf["prog_id"]]
    # the struct tables: one per probe, titled with its own event
    titles = [s["title"] for s in doc["structs"]]
    assert any("gtkkern/show1" in t for t in titles) and any(f"kprobes/{QUIET}" in t for t in titles)


def test_probe_on_an_unloaded_module_is_located_honestly(probes):
    """[GONE]: the module is gone, so is its code: no 'original', no symbol of whatever
    lives there now; the event is the tracefs one (issue 17 item 2).  And the module area
    stays 'modules' in kcore with a module that has per-cpu symbols (ext4) loaded."""
    subprocess.run(["modprobe", "ext4"], check=True, capture_output=True)
    probes.add("p ext4:ext4_file_open", "gone")
    sym = next(a for a, _ in _kallsyms_text_matching(r"ext4_file_open\t\[ext4\]"))
    addr = sym + 4 if kcore_bytes(sym, 4) in ENDBRS else sym    # IBT: past the ENDBR64
    modules = Path("/proc/modules").read_text()
    ext4_base = int(re.search(r"^ext4 \d+ .* (0x[0-9a-f]+)$", modules, re.M).group(1), 16)
    kc = _gdb_json("kcore --json")
    seg = next(s for s in kc["segments"]
               if gaddr(s["start_address"]) <= ext4_base < gaddr(s["end_address"]))
    assert seg["label"] == "modules", kc["segments"]
    (TRACING / "events" / "gtkkern" / "gone" / "enable").write_text("0")
    subprocess.run(["rmmod", "ext4"], check=True, capture_output=True)
    try:
        (line,) = listed(addr)
        assert "[GONE]" in line
        assert re.search(r"^p:gtkkern/gone ext4:ext4_file_open", (TRACING / "kprobe_events").read_text(),
                         re.M)
        (row,) = [r for r in report().probes if r.address == addr]
        assert row.flags[0] == "GONE" and row.event == "gtkkern/gone" and row.event_tracefs is True
        assert row.symbol.startswith("ext4_file_open+0x0 [ext4]"), row.symbol
        # the JSON's location: what kprobe_events asked for (ext4:ext4_file_open, offset 0)
        assert (row.location.address, row.location.symbol, row.location.offset, row.location.object) == \
            (addr, "ext4_file_open", 0, "ext4"), row.location
        assert row.original is None and row.state == "gone" and row.consistent
    finally:
        probes.remove("gone")
        subprocess.run(["modprobe", "-r", "crc16", "mbcache", "jbd2"], capture_output=True)


def _gdb_json(cmd: str) -> dict:
    res = run_gdb(["echo @@GTK-JSON-BEGIN@@\\n", cmd, "echo @@GTK-JSON-END@@\\n"], timeout=600)
    assert_no_traceback(res)
    (doc,) = res.json_documents()
    return doc


def test_kx_and_kdis_take_ksym_with_quotes():
    """`kx $ksym("vfs_write")+5 8` (issue 17 item 4): the quotes reach gdb's evaluator.  (+5 is
    the instruction after the ftrace call on 6.1, mid-call past 6.12's ENDBR64: kx/kdis take any
    address.)"""
    addr = kallsyms("vfs_write") + 5
    want = kcore_bytes(addr, 8)
    res = run_gdb(["echo @@GTK-JSON-BEGIN@@\\n", 'kx $ksym("vfs_write")+5 8 --json',
                   "echo @@GTK-JSON-END@@\\n", "echo @@GTK-JSON-BEGIN@@\\n",
                   'kdis $ksym("vfs_write")+5 2 --json', "echo @@GTK-JSON-END@@\\n"], timeout=600)
    assert_no_traceback(res)
    kx, kd = res.json_documents()
    assert gaddr(kx["address"]) == addr and bytes.fromhex(kx["rows"][0]["hex"].replace(" ", "")) == want
    assert gaddr(kd["address"]) == addr
    loc = kd["insns"][0]["location"]          # kallsyms: vfs_write is the kernel image's, addr is +5
    assert (gaddr(loc["address"]), loc["symbol"], loc["offset"], loc["object"]) == (addr, "vfs_write", 5, "vmlinux")
    assert kd["location"] == loc and kx["location"] == loc


def _vmlinux_from_vmlinuz(tmp_path) -> Path:
    """The kernel as built: the ELF inside the package's vmlinuz (6.1: xz, 6.12: zstd)."""
    from tests.guest.kernel import cache_root
    from tests.support.vmlinux_image import vmlinux_from_vmlinuz
    rel = os.uname().release
    cands = [cache_root() / rel / "tree" / "boot" / f"vmlinuz-{rel}", Path(f"/boot/vmlinuz-{rel}")]
    out = tmp_path / "vmlinux"
    out.write_bytes(vmlinux_from_vmlinuz(next(p for p in cands if p.is_file()).read_bytes()))
    return out


def _link_bytes(vmlinux: Path, link_addr: int, n: int) -> bytes:
    from elftools.elf.elffile import ELFFile
    with open(vmlinux, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            h = sec.header
            if h.sh_addr <= link_addr < h.sh_addr + h.sh_size and h.sh_type != "SHT_NOBITS":
                f.seek(h.sh_offset + link_addr - h.sh_addr)
                return f.read(n)
    raise AssertionError(hex(link_addr))


def test_kdis_does_not_call_alternatives_padding_a_breakpoint(tmp_path):
    """`ret; int3` / `jmp rax; int3`: at boot the alternatives rewrite the compiler's 5-byte
    `jmp __x86_return_thunk` (or a retpoline thunk call) into the short instruction and pad the
    rest with int3.  Oracles: the kernel as built has that thunk branch there, and kprobes/list
    lists nothing at the int3 (issue 17 item 6)."""
    import struct

    from gdb_toolkit.common.disasm import disassemble
    from gdb_toolkit.kernel.kcore import Kcore

    vmlinux = _vmlinux_from_vmlinuz(tmp_path)
    with Kcore.open() as kc:
        slide = kc.kaslr_offset
    thunks = {a for a, name in _kallsyms_text_matching(r"__x86_return_thunk|__x86_indirect_thunk_\w+")}
    start = kallsyms("vfs_read")
    code = kcore_bytes(start, 4096)
    insns = disassemble(code, start, "x86_64")
    for prev, ins in zip(insns, insns[1:]):
        if ins.raw == b"\xcc" and prev.mnemonic in ("ret", "jmp"):
            built = _link_bytes(vmlinux, prev.address - slide, 5)
            target = prev.address + 5 + struct.unpack_from("<i", built, 1)[0]
            if built[0] == 0xE9 and target in thunks:
                pad = ins.address
                break
    else:
        raise AssertionError("no alternatives-padded ret/jmp in vfs_read")
    assert not listed(pad)
    n = len([i for i in insns if i.address <= pad])
    doc = _gdb_json(f"kdis vfs_read {n + 1} --json")
    row = next(i for i in doc["insns"] if gaddr(i["address"]) == pad)
    assert "no kprobe here" not in row["note"] and "padding" in row["note"], row


def _kallsyms_text_matching(pattern: str):
    for m in re.finditer(r"^([0-9a-f]+) [tT] (" + pattern + r")$", Path("/proc/kallsyms").read_text(),
                         re.M):
        yield int(m.group(1), 16), m.group(2)


def test_without_data_symbols_kprobe_table_is_read_from_get_kprobe(probes, tmp_path):
    """A kernel without CONFIG_KALLSYMS_ALL (Debian's arm64) lists no data symbols: here the
    guest's kallsyms with them filtered out.  kprobe_table then comes from get_kprobe's code
    (oracle: the real kallsyms) and kprobe-list still recovers every original."""
    text_only = tmp_path / "kallsyms-text"
    lines = Path("/proc/kallsyms").read_text().splitlines()
    text_only.write_text("\n".join(l for l in lines if l.split()[1] in "tTwW") + "\n")
    assert " kprobe_table" not in text_only.read_text()
    probes.add(f"p {QUIET}", "nodata")
    from gdb_toolkit.kernel.session import KernelSession
    with KernelSession(kallsyms=str(text_only)) as s:
        rep = s.kprobe_report()
        assert s.symbols.address("kprobe_table") == kallsyms("kprobe_table")
        assert s.symbols.address("init_task") == kallsyms("init_task")
        assert "get_kprobe" in s.symbols.answers["kprobe_table"].detail
    (row,) = [r for r in rep.probes if r.event == "gtkkern/nodata"]
    assert row.original == bytes.fromhex("0f1f440000") and row.handler == "kprobe_dispatcher"
    assert any("kprobe_table from code" in n for n in rep.notes), rep.notes
