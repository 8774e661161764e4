"""The kernel domain's docs transcripts (docs/commands/{kcore,kdis,kx,ksym,ftrace-site,
kprobe-list,kprobe-show}.md, docs/kernel.md): real gdb runs on Debian's x86_64 kernel in the
QEMU test guest (docs/guest.md), the only kernel here with kprobes and /proc/kcore.

Every recipe is a guest recipe (``guest=True``): tests/integration/test_docs_transcripts_guest.py
checks them inside the guest boot the other guest tests share, and
``scripts/docs_transcripts.py --update`` boots the guest once to regenerate them.  They share
one scene, set up once per guest run (``KernelScene``): the probes the pages talk about -- a
bpftrace (perf) probe and two tracefs events on ``__x64_sys_getpgid``, a kretprobe on
``do_sys_openat2``, a disabled probe on ``vfs_fsync_range``, an optimized one at ``vfs_write+5``
and a probe on ``ext4:ext4_file_open`` left [GONE] by ``rmmod ext4``.

What differs between two boots of the same kernel is masked (KASLR: every kernel address, the
displacements of calls and jumps into trampolines, the direct map; hit counts; the gdbstub's
port); the kernel's release and build id are masked too, so a newer Debian kernel drifts only
where its code or its symbols changed.
"""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.support.tracefs import append as _append, kallsyms

TRACING = Path("/sys/kernel/tracing")
KLIST = Path("/sys/kernel/debug/kprobes/list")
OPT_SYSCTL = Path("/proc/sys/debug/kprobes-optimization")
GROUP = "ev"
QUIET = "__x64_sys_getpgid"          # a syscall nothing in the guest calls but the scene

#: what varies between two boots of the same kernel (KASLR, timing), and between kernel builds
KERNEL_MASK = [
    (r"\b\d+\.\d+\.\d+-\d+-amd64\b", "RELEASE"),
    (r"\b[0-9a-f]{40}\b", "BUILDID"),
    (r"0x[0-9a-f]{9,16}\b", "0xADDR"),                         # kernel VAs, kcore file offsets
    (r"\bffffffff[0-9a-f]{8}\b", "ADDR"),                       # kprobes/list, ftrace's lines
    (r"(KASLR offset: )0x[0-9a-f]+", r"\1OFF"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
    # rel32 of a call/jmp into a trampoline or detour (placed at boot), and its ASCII column
    (r"\b(e8|e9)( [0-9a-f]{2}){4}\b", r"\1 REL32"),
    # (the column may hold a blank: a rel32 byte 0x20 prints as one)
    (r"(?m)^(0x(?:ADDR|X+):\s+e9 REL32( [0-9a-f]{2})*)  +.*$", r"\1 ASCII"),
    (r"(hits/misses:\s+)\d+/\d+", r"\1N/N"),
    (r"(?m)\b\d+/\d+$", "N/N"),                                # kprobe-list's hit/miss column
    (r"\b(pid|id:|prog_id) +\d+", r"\1 N"),
    (r"bpf_prog_[0-9a-f]{16}", "bpf_prog_TAG"),
    # a detour's movabs of its optimized_kprobe (a heap address) and the kprobe_table bucket
    # (a hash of the probe's KASLR'd address)
    (r"\b48 bf( [0-9a-f]{2}){8}", "48 bf IMM64"),
    (r"kprobe_table\+0x[0-9a-f]+", "kprobe_table+OFF"),
    # where in the kprobes' instruction pages a probe's copy or detour sits: the slots other
    # probes (earlier guest tests) took first
    (r"\b(kprobe_(?:opt)?insn_page)(?:\+0x[0-9a-f]+)?", r"\1+SLOT"),
    # a probe's neighbours in its kprobe_table bucket: which other probes hash into the same
    # bucket depends on KASLR, so hlist.next is NULL or a probe, hlist.pprev the bucket or a probe
    (r"(hlist\.(?:next|pprev)\s+\d+\s+struct hlist_node \*{1,2}\s+)(?:NULL|0x[0-9A-Za-z]+)(?:\s+<[^>]*>)?",
     r"\1LINK"),
    # modules loaded by then (qemu_fw_cfg, ext4's dependencies...) depend on the guest tests run before
    (r"\b\d+ modules\b", "N modules"),
]


def _by_probe(m: re.Match) -> str:
    """kprobes/list lines in a stable order: the kernel lists its kprobe_table buckets, and a
    probe's bucket is a hash of its (KASLR'd) address; the children of one aggregate keep their
    p->list order (a stable sort by the probed symbol)."""
    lines = m.group(0).split("\n")
    head = [ln for ln in lines if ln.startswith("(gdb) ")]
    rest = [ln for ln in lines if not ln.startswith("(gdb) ")]
    return "\n".join(head + sorted(rest, key=lambda ln: ln.split()[2:3]))


def _kcore_byte(addr: int) -> bytes:
    from elftools.elf.elffile import ELFFile
    with open("/proc/kcore", "rb") as f:
        for seg in ELFFile(f).iter_segments():
            h = seg.header
            if h.p_type == "PT_LOAD" and h.p_vaddr <= addr < h.p_vaddr + h.p_memsz:
                return os.pread(f.fileno(), 1, h.p_offset + addr - h.p_vaddr)
    return b""


def _wait(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f"scene: {what} not seen within {timeout} s")
        time.sleep(0.2)


class KernelScene:
    """The probes every kernel transcript shows, registered once and removed on exit."""

    def __init__(self):
        self.events = []
        self.bpftrace = None
        self.opt = None

    def add(self, spec: str, name: str, enable: bool = True):
        kind, _, target = spec.partition(" ")
        _append(TRACING / "kprobe_events", f"{kind}:{GROUP}/{name} {target}")
        self.events.append(name)
        if enable:
            (TRACING / "events" / GROUP / name / "enable").write_text("1")

    def __enter__(self):
        self.opt = OPT_SYSCTL.read_text().strip()
        try:
            self._setup()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _setup(self):
        subprocess.run(["modprobe", "qemu_fw_cfg"], check=True, capture_output=True)  # VMCOREINFO
        # a probe on a module, then the module unloaded: [GONE]
        subprocess.run(["modprobe", "ext4"], check=True, capture_output=True)
        self.add("p ext4:ext4_file_open", "gone")
        (TRACING / "events" / GROUP / "gone" / "enable").write_text("0")
        subprocess.run(["rmmod", "ext4"], check=True, capture_output=True)
        subprocess.run(["modprobe", "-r", "crc16", "mbcache", "jbd2"], capture_output=True)
        # three probes at one address: a perf probe (bpftrace) and two tracefs events
        self.bpftrace = subprocess.Popen(["bpftrace", "-e", f"kprobe:{QUIET} {{ @n = count(); }}"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        quiet = kallsyms(QUIET)

        def at_quiet():
            return [ln for ln in KLIST.read_text().splitlines() if int(ln.split()[0], 16) == quiet]
        _wait(lambda: len(at_quiet()) == 1, 300, "bpftrace's kprobe")
        self.add(f"p {QUIET}", "entry")
        self.add(f"p {QUIET}", "entry2")
        for _ in range(7):
            os.getpgid(0)
        self.add("r do_sys_openat2", "open_ret")
        self.add("p vfs_fsync_range", "fsync_dis", enable=False)
        # an optimized probe after vfs_write's ftrace site: the jmp to its detour is written
        # after the optimizer's delay and an RCU-tasks grace period
        OPT_SYSCTL.write_text("1")
        self.add("p vfs_write+5", "write_off")
        write5 = kallsyms("vfs_write") + 5
        _wait(lambda: _kcore_byte(write5) == b"\xe9", 300, "the optimized jmp at vfs_write+5")

    def __exit__(self, *exc):
        if self.bpftrace is not None and self.bpftrace.poll() is None:
            os.killpg(self.bpftrace.pid, signal.SIGINT)
            try:
                self.bpftrace.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.bpftrace.pid, signal.SIGKILL)
                self.bpftrace.wait()
        for name in reversed(self.events):
            try:
                (TRACING / "events" / GROUP / name / "enable").write_text("0")
            except OSError:
                pass
            try:
                _append(TRACING / "kprobe_events", f"-:{GROUP}/{name}")
            except OSError:
                pass
        if self.opt is not None:
            OPT_SYSCTL.write_text(self.opt)
        return False


def _dump(tmp: Path):
    """kernel.md's vmcore: QEMU's dump-guest-memory (kdump-compressed, which QEMU writes
    flattened), asked of the host (tests/guest/host_services.py) into the exchange share."""
    from tests.guest.host_services import request, xfer_path

    subprocess.run(["modprobe", "qemu_fw_cfg"], check=True, capture_output=True)  # VMCOREINFO
    xfer_path("vmcore").unlink(missing_ok=True)
    res = request("dump", name="vmcore", format="kdump-zlib", timeout=1200)
    if not res.get("ok"):
        raise RuntimeError(f"dump-guest-memory failed: {res}")


def _undump():
    from tests.guest.host_services import xfer_path
    xfer_path("vmcore").unlink(missing_ok=True)


def _gdbstub(recipe, tmp: Path) -> str:
    """kernel.md's halted kernel: the host's gdb on QEMU's gdbstub (the guest asks the host to
    run it: tests/guest/host_services.py), each command echoed as the transcript shows it."""
    from tests.guest.host_services import request

    cmds = [f"set width {recipe.width}"]
    for c in recipe.commands:
        cmds += [f"echo (gdb) {c}\\n", c]
    cmds.append("echo @@GTK-DOC-END@@\\n")
    res = request("gdb", commands=cmds, timeout=1500)
    if not res.get("ok"):
        raise RuntimeError(f"the host's gdb failed: {res}")
    out = res["stdout"]
    start, end = out.find("(gdb) "), out.find("@@GTK-DOC-END@@")
    text = out[start:end if end >= 0 else None]
    # gdb's warning that the remote target names no executable (two lines) is not the commands'
    # output; anything else on stderr is shown (and so fails the check)
    stderr = re.sub(r"warning: No executable has been specified[^\n]*\n[^\n]*\n?", "", res["stderr"])
    errors = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    return text + "".join(e + "\n" for e in errors)


def recipes(Recipe) -> dict:
    def k(commands, **kw):
        kw.setdefault("width", 100)
        # word by word: masked values of other lengths re-wrap the struct tables' columns
        return Recipe(commands, guest=True, scene=KernelScene, mask=KERNEL_MASK + kw.pop("mask", []), loose=True,
                      timeout=kw.pop("timeout", 600), **kw)
    return {
        "kcore-live": k(["kcore"]),
        "kdis-vfs-read": k(["kdis vfs_read 12"]),
        "kx-guest": k(['kx $ksym("vfs_write")+5 8', "kx linux_banner 64"]),
        "ksym-guest": k(["ksym do_sys_openat2", "ksym 9p:v9fs_file_read_iter"]),
        "ksym-errors": k(["ksym no_such_function"]),
        "ftrace-site-guest": k([f"ftrace-site {QUIET}", "ftrace-site vfs_fsync_range"], width=80),
        "kprobe-list-raw": k(["shell cat /sys/kernel/debug/kprobes/list"], mask=[(r"(?s)\A.*\Z", _by_probe)]),
        "kprobe-list-guest": k(["kprobe-list"], width=150),
        "kprobe-show-optimized": k(["kprobe-show vfs_write+0x5 -n 4"]),
        "kprobe-show-three": k([f"kprobe-show {QUIET} -n 2"]),
        "kprobe-show-errors": k(["kprobe-show vfs_read"]),
        "kernel-vmcore": k(["kcore /run/gtk/vmcore", "ksym 9p:v9fs_file_read_iter", 'kx $ksym("vfs_write")+5 8'],
                           prepare=_dump, cleanup=_undump, timeout=1500),
        "kernel-gdbstub": k(["kcore", "kdis vfs_write+5 3"], runner=_gdbstub, timeout=1500),
    }
