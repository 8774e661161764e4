"""kprobes, ftrace sites and kernel memory on Debian's arm64 kernel (6.1, in the arm64 QEMU guest).

Every expectation comes from the kernel's own records or from tools other than the toolkit:
/proc/kallsyms, /sys/kernel/debug/kprobes/list, tracefs (enabled_functions, kprobe_events,
the EINVAL the kernel returns), /proc/kcore read through pyelftools' program headers, the root's
native binutils (objdump, readelf) and gdb's own core-file reader.  Probes and the tracer are
removed on every path.
"""
import errno
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.gdbrun import GDB, assert_no_traceback, json_wrapped, run_gdb
from tests.support.gdbrun import addr as A     # JSON addresses: "0x.." or int
from tests.support.tracefs import append as _append

pytestmark = pytest.mark.guest_arm64

TRACING = Path("/sys/kernel/tracing")
KLIST = Path("/sys/kernel/debug/kprobes/list")
GROUP = "gtkarm"
MOV_X9_NOP = bytes.fromhex("e9031eaa1f2003d5")     # the running kernel's idle patchable entry
BRK4 = bytes.fromhex("800020d4")


def kallsyms(name: str) -> int:
    m = re.search(r"^([0-9a-f]+) \w " + re.escape(name) + r"(\t\[\w+\])?$",
                  Path("/proc/kallsyms").read_text(), re.M)
    assert m, name
    return int(m.group(1), 16)


def listed(addr: int) -> list[str]:
    return [l for l in KLIST.read_text().splitlines() if int(l.split()[0], 16) == addr]


def kcore_bytes(addr: int, n: int) -> bytes:
    """/proc/kcore through pyelftools' program headers, unbuffered (a buffered file serves a
    stale page after a probe is armed)."""
    from elftools.elf.elffile import ELFFile
    with open("/proc/kcore", "rb") as f:
        segs = [s.header for s in ELFFile(f).iter_segments() if s.header.p_type == "PT_LOAD"]
    fd = os.open("/proc/kcore", os.O_RDONLY)
    try:
        for h in segs:
            if h.p_vaddr <= addr and addr + n <= h.p_vaddr + h.p_memsz:
                return os.pread(fd, n, h.p_offset + addr - h.p_vaddr)
    finally:
        os.close(fd)
    raise AssertionError(f"0x{addr:x} is in no PT_LOAD of /proc/kcore")


def objdump(code: bytes, addr: int) -> list[tuple[int, str]]:
    """The root's native objdump on *code* placed at *addr*: [(address, text)]."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"gtk-objdump-{os.getpid()}.bin"
    tmp.write_bytes(code)
    try:
        out = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "aarch64",
                              f"--adjust-vma=0x{addr:x}", str(tmp)],
                             capture_output=True, text=True, check=True).stdout
    finally:
        tmp.unlink()
    rows = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].strip().endswith(":"):
            rows.append((int(parts[0].strip()[:-1], 16), " ".join(" ".join(parts[2:]).split())))
    return rows


def bpf_probe(function: str) -> subprocess.Popen:
    """A BPF program on a perf kprobe (bpftrace), not a tracefs event; returns once the kernel
    lists the probe."""
    proc = subprocess.Popen(["bpftrace", "-e", f"kprobe:{function} {{ @n = count(); }}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    addr = kallsyms(function)
    deadline = time.monotonic() + 300
    while not listed(addr):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "bpftrace did not attach in 300 s"
        time.sleep(0.2)
    return proc


def stop_bpf(proc: subprocess.Popen):
    proc.send_signal(2)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Kernel:
    """tracefs kprobes in one group + the function tracer, all undone whatever happens."""

    def __init__(self):
        self.names = []

    def probe(self, spec: str, name: str, enable: bool = True):
        kind, _, target = spec.partition(" ")
        _append(TRACING / "kprobe_events", f"{kind}:{GROUP}/{name} {target}")
        self.names.append(name)
        if enable:
            (TRACING / "events" / GROUP / name / "enable").write_text("1")

    def unprobe(self, name: str):
        try:
            (TRACING / "events" / GROUP / name / "enable").write_text("0")
        except OSError:
            pass
        _append(TRACING / "kprobe_events", f"-:{GROUP}/{name}")
        self.names.remove(name)

    def trace(self, *functions: str):
        (TRACING / "set_ftrace_filter").write_text("\n".join(functions) + "\n")
        (TRACING / "current_tracer").write_text("function")

    def untrace(self):
        (TRACING / "current_tracer").write_text("nop")
        (TRACING / "set_ftrace_filter").write_text("\n")

    def cleanup(self):
        for name in list(self.names):
            try:
                self.unprobe(name)
            except OSError:
                pass
        self.untrace()
        assert f"{GROUP}/" not in (TRACING / "kprobe_events").read_text()


@pytest.fixture
def kernel():
    k = Kernel()
    try:
        yield k
    finally:
        k.cleanup()


def site(name: str):
    from gdb_toolkit.kernel.ftrace import ftrace_site
    from gdb_toolkit.kernel.session import KernelSession
    with KernelSession() as s:
        return ftrace_site(s, name)


def report():
    from gdb_toolkit.kernel.session import KernelSession
    with KernelSession() as s:
        return s.kprobe_report()


def test_patchable_entry_idle_traced_and_kprobed(kernel):
    """The issue's three wrong answers, against the kernel's own word."""
    fn = "vfs_read"
    addr = kallsyms(fn)
    caller = kallsyms("ftrace_caller")
    # idle: ftrace_init_nop() made the first NOP 'mov x9, x30'; objdump agrees
    live = kcore_bytes(addr, 8)
    assert live == MOV_X9_NOP, live.hex()
    assert [t for _, t in objdump(live, addr)] == ["mov x9, x30", "nop"]
    r = site(fn)
    assert r.state == "idle" and r.site_address == addr + 4 and r.original == live, r
    assert not any("notrace" in n for n in r.notes), r.notes
    # tracing: the call slot at +4 becomes bl ftrace_caller; the function is in enabled_functions
    kernel.trace(fn)
    assert f"{fn} (" in (TRACING / "enabled_functions").read_text()
    live = kcore_bytes(addr, 8)
    (_, first), (_, second) = objdump(live, addr)
    assert first == "mov x9, x30" and second == f"bl 0x{caller:x}", (first, second)
    r = site(fn)
    assert r.state == "patched" and r.site_address == addr + 4
    assert r.target_address == caller and r.target_symbol == "ftrace_caller" and r.enabled is not None
    traced_original = r.original
    # a kprobe on the function: brk #4 over func+0, beside the traced call slot
    kernel.probe(f"p {fn}", "k")
    (line,) = listed(addr)
    assert not re.search(r"\[\w+\]", line), line                   # no [FTRACE] on arm64
    live = kcore_bytes(addr, 8)
    assert live[:4] == BRK4 and objdump(live, addr)[1][1] == f"bl 0x{caller:x}"
    r = site(fn)
    assert r.state == "patched" and r.target_symbol == "ftrace_caller" and r.kprobes == [line.strip()]
    assert not any("not using ftrace" in n for n in r.notes)
    assert any("brk #0x4 replaced the entry's first instruction" in n for n in r.notes), r.notes
    # the kernel refuses a kprobe on the call slot (no KPROBES_ON_FTRACE on arm64 6.1)
    with pytest.raises(OSError) as exc:
        _append(TRACING / "kprobe_events", f"p:{GROUP}/slot {fn}+4")
    assert exc.value.errno == errno.EINVAL and not listed(r.site_address)
    # all removed: the bytes are the original the toolkit gave while traced and probed
    kernel.unprobe("k")
    kernel.untrace()
    assert kcore_bytes(addr, 8) == traced_original == r.original == MOV_X9_NOP


def test_kprobe_list_classifies_arm64_probes(kernel):
    """Entry, offset, kretprobe, disabled and module-function probes against kprobes/list."""
    subprocess.run(["modprobe", "dummy"], check=True, capture_output=True)
    try:
        entry, ret, dis = kallsyms("do_sys_openat2"), kallsyms("do_faccessat"), kallsyms("vfs_fsync_range")
        off = kallsyms("vfs_write") + 8
        mod = kallsyms("dummy_dev_init")
        kernel.probe("p do_sys_openat2", "entry")
        kernel.probe("p vfs_write+8", "off")
        kernel.probe("r do_faccessat", "ret")
        kernel.probe("p vfs_fsync_range", "dis", enable=False)
        kernel.probe("p dummy:dummy_dev_init", "mod")
        bpf = kallsyms("do_fchmodat")
        tracer = bpf_probe("do_fchmodat")
        before = {a: kcore_bytes(a, 4) for a in (entry, off, ret, dis, mod, bpf)}
        try:
            rep = report()
            kernel_list = {(l.split()[0], l.split()[1]): re.findall(r"\[(\w+)\]", l)
                           for l in KLIST.read_text().splitlines()}
        finally:
            stop_bpf(tracer)
        assert len(rep.probes) == len(kernel_list)
        rows = {r.address: r for r in rep.probes}
        for r in rep.probes:
            assert r.flags == kernel_list[(f"{r.address:016x}", "r" if r.kind == "kretprobe" else "k")]
            assert r.consistent, r
        for a in (entry, off, ret, mod):
            assert rows[a].state == "brk" and before[a] == BRK4, (hex(a), rows[a])
        assert rows[ret].kind == "kretprobe" and rows[mod].symbol.endswith("[dummy]")
        # the BPF (perf) probe: in the kernel's list, armed, in no tracefs kprobe_events
        assert rows[bpf].state == "brk" and before[bpf] == BRK4 and rows[bpf].event_tracefs is not True
        assert not listed(bpf)                                       # gone with bpftrace
        assert rows[dis].flags == ["DISABLED"] and rows[dis].state != "brk"
        assert rows[dis].original == before[dis]                     # disarmed: the live bytes
        assert any("no optimized (jump) kprobes" in n and "do not use ftrace" in n
                   for n in rep.notes), rep.notes
        assert all(r.flags in ([], ["DISABLED"]) for r in rep.probes)   # never OPTIMIZED/FTRACE
        for name in ("entry", "off", "ret", "dis", "mod"):
            kernel.unprobe(name)
        after = {a: kcore_bytes(a, 4) for a in (entry, off, ret, dis, mod)}
        assert after[entry] == after[ret] == after[dis] == MOV_X9_NOP[:4]
        assert after[off] != BRK4 and after[mod] != BRK4
    finally:
        kernel.cleanup()
        subprocess.run(["rmmod", "dummy"], capture_output=True)


def test_originals_from_p_opcode_equal_the_bytes_after_removal(kernel):
    """p->opcode and the single-step slot ainsn.api.insn of each armed probe = the bytes once it is
    gone; kprobe-show prints the struct via BTF; a BPF probe's program is named."""
    from gdb_toolkit.kernel.session import KernelSession
    targets = ["do_sys_openat2", "vfs_write+8", "do_faccessat"]
    for i, t in enumerate(targets):
        kernel.probe(("r " if t == "do_faccessat" else "p ") + t, f"o{i}")
    tracer = bpf_probe("do_fchmodat")
    try:
        with KernelSession() as s:
            rep = s.kprobe_report()
            assert "kprobe_table" in rep.sources, rep.notes
            rows = [r for r in rep.probes if r.state == "brk"]
            slots = {r.address: s.read(s.walker.read_kprobe(r.struct_address).ainsn_insn, 4)
                     for r in rows if r.struct_address}
        bpf_rows = [r for r in rows if r.address == kallsyms("do_fchmodat")]
        assert bpf_rows and bpf_rows[0].bpf, bpf_rows
    finally:
        stop_bpf(tracer)
    rows = [r for r in rows if r.address != kallsyms("do_fchmodat")]
    assert len(rows) == 3 and all(r.original_source == "p->opcode" for r in rows), rows
    assert all(r.handler for r in rows)
    originals = {r.address: r.original for r in rows}
    assert all(slots[a] == originals[a] for a in originals), (slots, originals)
    res = run_gdb(json_wrapped("kprobe-show do_sys_openat2 --json"), timeout=600)
    show = res.json_documents()[0]
    assert show["structs"] and "opcode" in str(show["structs"]) and "ainsn" in str(show["structs"]), show
    for i in range(len(targets)):
        kernel.unprobe(f"o{i}")
    for a, orig in originals.items():
        assert kcore_bytes(a, len(orig)) == orig


def test_commands_in_gdb_on_the_arm64_kernel(kernel):
    """kcore/ksym/kx/kdis/ftrace-site in real gdb with --json, against readelf, kallsyms,
    gdb's own core-file reader on /proc/kcore and objdump."""
    fn = "do_sys_openat2"
    addr = kallsyms(fn)
    kernel.probe(f"p {fn}", "g")
    cmds = []
    for c in ("kcore --json", "kprobe-list --json", f"ksym {fn} --json", f"kx {fn} 32 --json",
              f"kdis {fn} 6 --json", f"ftrace-site {fn} --json", "ftrace-site vfs_read --json",
              f"kprobe-show {fn} --json"):
        cmds += json_wrapped(c)
    res = run_gdb(cmds + ["ksym no_such_symbol_x", "kdis 0x10 2"], timeout=900)
    assert_no_traceback(res)
    kc, kl, ks, kx, kd, fs_probe, fs_idle, kshow = res.json_documents()
    from gdb_toolkit.common.schemas import validate_document
    assert kc["arch"] == "aarch64" and kc["release"] == os.uname().release
    readelf = subprocess.run(["readelf", "-lW", "/proc/kcore"], capture_output=True, text=True).stdout
    loads = [int(l.split()[2], 16) for l in readelf.splitlines() if l.strip().startswith("LOAD")]
    assert sorted(loads) == [A(s["start_address"]) for s in kc["segments"]]
    # KASLR: the slide VMCOREINFO gives = running _text - its link address, KIMAGE_VADDR
    # (= MODULES_END = the 48-bit VA space's start + 128 MiB; Debian's /boot/System.map is a
    # placeholder, so the link address comes from the architecture's layout).  _text is not in
    # arm64's kallsyms: it is where kcore's kernel-text PT_LOAD (KCORE_TEXT, _text.._end) starts.
    assert "CONFIG_ARM64_VA_BITS=48\n" in Path(f"/boot/config-{os.uname().release}").read_text()
    rows = [l.split() for l in readelf.splitlines() if l.strip().startswith("LOAD")]
    stext = kallsyms("_stext")
    text = next(int(r[2], 16) for r in rows if int(r[2], 16) <= stext < int(r[2], 16) + int(r[5], 16))
    assert A(kc["kaslr_offset"]) == text - 0xFFFF800008000000
    # segment labels (arm's finding): the kernel-text PT_LOAD is the smallest holding _stext
    # (the vmalloc one holds it too); it is "kernel text" although kallsyms has no _text, and
    # the vmalloc range (TiBs, modules inside) is not "modules"
    holding = [r for r in rows if int(r[2], 16) <= stext < int(r[2], 16) + int(r[5], 16)]
    smallest = min(holding, key=lambda r: int(r[5], 16))
    assert [A(s["start_address"]) for s in kc["segments"] if s["label"] == "kernel text"] == \
        [int(smallest[2], 16)], kc["segments"]
    assert not [s for s in kc["segments"] if s["label"] == "modules"
                and A(s["end_address"]) - A(s["start_address"]) >= 1 << 40], kc["segments"]
    assert any(A(p["address"]) == addr and p["state"] == "brk" for p in kl["probes"])
    m = ks["matches"][0]
    assert A(m["address"]) == addr and f"{fn}(" in m["prototype"]
    # schema version 4: positions are location objects; kallsyms lists fn without [module]
    for env in res.envelopes():
        assert not validate_document(env), (env["command"], validate_document(env))
    want = (addr, fn, 0, "vmlinux")
    probe = next(p for p in kl["probes"] if A(p["address"]) == addr)
    for loc in (probe["location"], kd["location"], kx["location"], kshow["location"]):
        assert (A(loc["address"]), loc["symbol"], loc["offset"], loc["object"]) == want, loc
    assert m["object"] == "vmlinux"
    # kx against gdb's own reader of /proc/kcore
    oracle = subprocess.run([GDB, "-nx", "-batch", "-c", "/proc/kcore", "-ex", f"x/32xb 0x{addr:x}"],
                            capture_output=True, text=True, timeout=600).stdout
    want = bytes(int(b, 16) for line in oracle.splitlines() if ":" in line
                 for b in re.findall(r"0x([0-9a-f]{2})\b", line.split(":", 1)[1]))
    got = bytes.fromhex("".join(r["hex"].replace(" ", "") for r in kx["rows"]))
    assert len(got) == 32 and got == want, oracle
    # kdis: capstone's text with PAC/BTI hints named as objdump names them
    code = bytes.fromhex("".join(i["raw"].replace(" ", "") for i in kd["insns"]))
    texts = {A(i["address"]): " ".join(i["text"].split()) for i in kd["insns"]}
    dump = dict(objdump(code, addr))
    for a, t in texts.items():         # mnemonics (capstone prints immediates in hex, objdump not)
        assert t.split()[0] == dump[a].split()[0], (hex(a), t, dump[a])
    assert "hint" not in " ".join(texts.values())
    notes = {A(i["address"]): i["note"] for i in kd["insns"]}
    assert notes[addr] == "kprobe breakpoint over the patchable entry's mov x9, x30"
    assert notes[addr + 4] == "idle ftrace site (NOP)"
    assert fs_probe["state"] == "idle" and A(fs_probe["site_address"]) == addr + 4
    assert fs_probe["original_hex"] == MOV_X9_NOP.hex()
    assert fs_idle["state"] == "idle" and fs_idle["live_hex"] == MOV_X9_NOP.hex()
    assert kshow["live_insns"][0]["raw"] == BRK4.hex()
    err = res.stderr
    assert "no kernel symbol matches 'no_such_symbol_x'" in err
    assert "kernel address 0x10 is in no /proc/kcore segment" in err


def test_demo_arm64_step_runs_live_in_the_guest():
    """The demo's arm64 step, as the README's demo shows it (there it boots this guest)."""
    from tests.support.gdbrun import GDBINIT, REPO
    env = dict(os.environ, GDBINIT_PY=str(GDBINIT))
    proc = subprocess.run(["bash", str(REPO / "demo" / "steps" / "35_kernel_arm64.sh")], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in out, out[-4000:]
    for text in ("mov x9, x30", "idle ftrace site (NOP)", "brk #0x4", "ftrace_caller",
                 "kprobe breakpoint over the patchable entry's mov x9, x30", "no optimized (jump) kprobes",
                 "Invalid argument", "paciasp"):
        assert text in out, f"{text!r} not in the demo's output:\n{out[-4000:]}"
    assert f"{GROUP}/" not in (TRACING / "kprobe_events").read_text()
    assert (TRACING / "current_tracer").read_text().strip() == "nop"
