"""test_guest_kprobe.py's tests on Debian's newer kernel (the x86_64-new guest, docs/guest.md),
plus the check that the guest really booted a kernel with the post-6.4 layouts."""
import os
import re
import subprocess

from tests.support.newkernel import collect_again

pytestmark = collect_again(globals(), "tests.integration.test_guest_kprobe", exclude={
    "test_running_in_the_guest_on_debians_kernel":
        "checks bcc's headers, which the newer kernel's guest does not install on the host"})


def test_the_newer_kernel_is_running():
    """Not Debian 12's 6.1 by mistake: uname says 6.4 or later, and the kernel's own BTF has
    struct module's mem[] (6.4+) instead of core_layout."""
    from tests.guest.kernel import version_key
    release = os.uname().release
    assert version_key(release)[:2] >= (6, 4), release
    with open("/proc/version") as fh:
        assert "Debian" in fh.read()
    raw = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format",
                          "raw"], capture_output=True, text=True, check=True).stdout
    module = re.search(r"STRUCT 'module' size=\d+ vlen=\d+\n((?:\t.*\n)+)", raw).group(1)
    assert "'mem' type_id=" in module and "'core_layout'" not in module


def test_ftrace_site_of_a_function_whose_endbr_was_sealed():
    """IBT seals the ENDBR64 of a function nothing calls indirectly (apply_seal_endbr() writes
    osp nopl (%rax), 66 0f 1f 00, over it at boot; vfs_write is one on Debian's 6.12); the
    kernel still counts it as an ENDBR64, so its probe and its ftrace site are at +4.
    ftrace-site looked at +0 there (the seal) and called it not-a-site.  The probe is
    registered disabled.  Oracles: the bytes in /proc/kcore, kprobes/list's address and
    [FTRACE] flag, the fentry NOP at +4."""
    from tests.integration.test_kernel_guest import GROUP, TRACING, Probes, listed
    from tests.support.gdbrun import addr as gaddr
    from tests.support.gdbrun import assert_no_traceback, json_wrapped, run_gdb
    from tests.support.tracefs import ENDBR_POISON, kallsyms, kcore_bytes

    name = "vfs_write"
    addrs = {name: kallsyms(name)}
    assert kcore_bytes(addrs[name], 4) == ENDBR_POISON, kcore_bytes(addrs[name], 9).hex()
    func = addrs[name]
    p = Probes()
    try:
        p.add(f"p {name}", "sealed", enable=False)
        (line,) = listed(func + 4)                        # the kernel put it past the seal
        assert "[FTRACE]" in line and "[DISABLED]" in line, line
        assert kcore_bytes(func + 4, 5) == bytes.fromhex("0f1f440000")   # idle: the fentry NOP
        res = run_gdb([*json_wrapped(f"ftrace-site {name} --json")], timeout=600)
        assert_no_traceback(res)
        (doc,) = res.json_documents()
        assert gaddr(doc["site_address"]) == func + 4 and doc["state"] == "idle", doc
        assert any("sealed ENDBR64" in n for n in doc["notes"]), doc["notes"]
        assert doc["kprobes"], doc
    finally:
        p.cleanup()
    assert f"{GROUP}/" not in (TRACING / "kprobe_events").read_text()
