"""Issue 17 ★: the kernel commands on a vmcore and on a halted kernel behind QEMU's gdbstub,
checked against their own answers on the live kernel (/proc/kcore) for the same probes.

The guest asks the host (tests/guest/host_services.py) for QEMU's ``dump-guest-memory``
(ELF, and the kdump-compressed format) with the vmcoreinfo device, and for a host gdb
session on the gdbstub.  Neither has tracefs or debugfs: probes, events, hit counts and
symbols come from the kernel's memory alone (its kallsyms tables, module list and BTF).
"""
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_kernel_guest import (TRACING, Probes, kallsyms, listed, wait_for)
from tests.support.gdbrun import addr as gaddr
from tests.support.gdbrun import assert_no_traceback, json_wrapped, run_gdb

pytestmark = pytest.mark.guest

QUIET = "__x64_sys_getpgid"


def commands(prefix: str = "") -> list[str]:
    """The commands compared between the sources (each printing one JSON document)."""
    out = []
    for c in ("kcore", "kprobe-list", f"kprobe-show {QUIET}", "kprobe-show vfs_write+{off}",
              "kdis vfs_write 8", "kx linux_banner 64", "kx kprobe_table 64 --words",
              "ksym do_sys_openat2", "ksym 9p:v9fs_file_read_iter", f"ftrace-site {QUIET}",
              "ftrace-site vfs_fsync_range"):
        out += json_wrapped(f"{c} --json")
    return out


@pytest.fixture(scope="module")
def live():
    """Probes of every kind, then the live answers (the commands on /proc/kcore)."""
    subprocess.run(["modprobe", "qemu_fw_cfg"], check=True, capture_output=True)  # vmcoreinfo
    assert Path("/sys/firmware/qemu_fw_cfg").exists()
    p = Probes()
    opt = Path("/proc/sys/debug/kprobes-optimization")
    try:
        from tests.integration.test_kernel_guest import _offset_of_second_insn
        off = _offset_of_second_insn(kallsyms("vfs_write"))
        p.add(f"p {QUIET}", "src_entry")                 # ftrace-based, on a quiet function
        p.add(f"r {QUIET}", "src_ret")                   # kretprobe: an aggregate with it
        p.add(f"p vfs_write+{off}", "src_off")           # int3, then optimized
        p.add("p vfs_fsync_range", "src_dis", enable=False)
        for _ in range(5):
            os.getpgid(0)
        assert wait_for(lambda: "[OPTIMIZED]" in listed(kallsyms("vfs_write") + off)[0])
        cmds = [c.replace("{off}", hex(off)) for c in commands()]
        res = run_gdb(cmds, timeout=900)
        assert_no_traceback(res)
        yield {"off": off, "cmds": cmds, "docs": res.json_documents(), "probes": p}
    finally:
        p.cleanup()
        opt.write_text(p.opt)


def _by_probe(doc):
    return {(p["address"], p["kind"]): p for p in doc["probes"]}


def compare(live_docs, other_docs, how: str):
    """Every answer of the other source against the live one."""
    (kc, kl, ks1, ks2, kd, kx1, kx2, ksy1, ksy2, fs1, fs2) = live_docs
    (okc, okl, oks1, oks2, okd, okx1, okx2, oksy1, oksy2, ofs1, ofs2) = other_docs
    # kcore: the same kernel, read another way
    assert okc["source_kind"] == how
    for k in ("release", "build_id", "kaslr_offset", "arch"):
        assert okc[k] == kc[k], (k, okc[k], kc[k])
    # every probe, classified the same from memory alone (no kprobes/list, no tracefs)
    lp, op = _by_probe(kl), _by_probe(okl)
    ours = {k: v for k, v in lp.items() if (v["event"] or "").startswith("gtkkern/")}
    assert len(ours) == 4, lp.keys()
    for key, a in ours.items():
        b = op[key]
        for f in ("location", "flags", "state", "original_hex", "handler_location", "ret_handler_location",
                  "event", "event_tracefs", "struct_address", "aggregate_address", "consistent"):
            assert b[f] == a[f], (how, key, f, b[f], a[f])
        assert b["found_in"] == "memory"
        if a["location"]["symbol"].startswith(QUIET):    # nothing else calls it: exact counts
            assert b["hit_count"] == a["hit_count"], (b["hit_count"], a["hit_count"])
    # kprobe-show: code, original and the struct kprobe fields
    for a, b in ((ks1, oks1), (ks2, oks2)):
        assert [x["raw"] for x in b["live_insns"]] == [x["raw"] for x in a["live_insns"]]
        assert [x["raw"] for x in b["original_insns"]] == [x["raw"] for x in a["original_insns"]]
        fa = {(s["title"], f["member_path"]): f["text"] for s in a["structs"] for f in s["fields"]}
        fb = {(s["title"], f["member_path"]): f["text"] for s in b["structs"] for f in s["fields"]}
        for k in fa:
            if k[1] in ("nmissed", "kp.nmissed"):
                continue
            assert fb.get(k) == fa[k], (how, k, fb.get(k), fa[k])
    assert [(i["address"], i["raw"], i["text"]) for i in okd["insns"]] == \
        [(i["address"], i["raw"], i["text"]) for i in kd["insns"]]
    assert okx1["data"] == kx1["data"] and bytes.fromhex(kx1["data"]).startswith(b"Linux version")
    assert okx2["data"] == kx2["data"]
    for a, b in ((ksy1, oksy1), (ksy2, oksy2)):
        assert "matches" in a and "matches" in b, (how, a, b)     # an error envelope says why
        assert [(m["address"], m["symbol_type"], m["object"], m["prototype"]) for m in b["matches"]] == \
            [(m["address"], m["symbol_type"], m["object"], m["prototype"]) for m in a["matches"]]
    for a, b in ((fs1, ofs1), (fs2, ofs2)):
        for f in ("site_address", "live_hex", "state", "target_address", "original_hex"):
            assert b[f] == a[f], (how, f, b[f], a[f])


@pytest.mark.parametrize("fmt", ["elf", "kdump-zlib"])
def test_the_commands_on_a_vmcore_agree_with_the_live_kernel(live, fmt):
    from tests.guest.host_services import request, xfer_path

    name = f"vmcore-{fmt}"
    t = time.monotonic()
    res = request("dump", name=name, format=fmt, timeout=1200)
    assert res["ok"], res
    path = xfer_path(name)
    try:
        dumped = time.monotonic() - t
        cmds = [f"kcore {path} --json"] + live["cmds"][3:]       # kcore PATH: the choice for the rest
        out = run_gdb(["echo @@GTK-JSON-BEGIN@@\\n"] + cmds[:1] + ["echo @@GTK-JSON-END@@\\n"]
                      + cmds[1:], timeout=1200)
        assert_no_traceback(out)
        docs = out.json_documents()
        assert len(docs) == len(live["docs"]), out.stderr
        compare(live["docs"], docs, "vmcore")
        kc = docs[0]
        assert any("kallsyms tables (VMCOREINFO)" in n for n in kc["notes"]), kc["notes"]
        print(f"{fmt}: {res['size'] >> 20} MiB dumped in {res['seconds']} s ({dumped:.1f} s "
              "round trip)")
    finally:
        path.unlink(missing_ok=True)


def test_the_commands_on_a_halted_kernel_through_gdbstub_agree(live):
    """The host's gdb on QEMU's gdbstub (the VM halted while it is attached): `kcore` sees
    gdb's target by itself, and every answer equals the live one."""
    from tests.guest.host_services import request

    res = request("gdb", commands=live["cmds"], timeout=1500)
    assert res["ok"], res
    assert "Traceback" not in res["stderr"], res["stderr"][-3000:]
    from tests.support.gdbrun import GdbResult
    docs = GdbResult(res["stdout"], res["stderr"], res["status"]).json_documents()
    assert len(docs) == len(live["docs"]), (res["stdout"][-2000:], res["stderr"][-3000:])
    compare(live["docs"], docs, "gdb")
    assert any("found by searching memory" in n for n in docs[0]["notes"]), docs[0]["notes"]
    print(f"gdbstub session: {res['seconds']} s")
