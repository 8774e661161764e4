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
