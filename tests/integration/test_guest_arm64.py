"""Acceptance for the arm64 guest: Debian's arm64 kernel on an arm64 root, kprobe-capable.

Runs inside the arm64 QEMU guest (see docs/guest.md); on the host it reports the guest's outcome.
The oracles are the kernel's own files (/proc/version, kprobes/list, kallsyms) and the ELF
header of /proc/kcore.
"""
import os
import platform
import struct
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.guest_arm64

TRACING = Path("/sys/kernel/tracing")
KPROBES_LIST = Path("/sys/kernel/debug/kprobes/list")
EM_AARCH64 = 183


def _append(path: Path, line: str):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)     # tracefs refuses Python's "a" (it seeks)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def test_running_on_debians_arm64_kernel_and_root():
    assert os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1"
    assert os.environ.get("GDB_TOOLKIT_GUEST_ARCH") == "arm64"
    assert platform.machine() == "aarch64"
    release = os.uname().release
    assert release.endswith("-arm64") and "Debian" in Path("/proc/version").read_text()
    # the userland is arm64 too: gdb and python3 are aarch64 ELF executables
    for exe in ("/usr/bin/gdb", os.path.realpath("/usr/bin/python3")):
        head = Path(exe).read_bytes()[:20]
        assert struct.unpack_from("<H", head, 18)[0] == EM_AARCH64, exe
    # read-only root, writable /tmp
    with pytest.raises(OSError):
        open("/usr/gtk-guest-probe", "w")
    Path("/tmp/gtk-writable").write_text("ok")
    # bcc/bpftrace's needs: the headers of exactly this kernel through the package's own link
    assert Path(f"/lib/modules/{release}/build/Makefile").is_file()
    assert Path(f"/lib/modules/{release}/build/include/generated/autoconf.h").is_file() or \
        Path(f"/lib/modules/{release}/build/include/config/auto.conf").is_file()


def test_gdb_python_and_the_toolkits_dependencies_work():
    out = subprocess.run(
        ["gdb", "-nx", "-batch", "-ex",
         "python import sys, capstone, elftools, tabulate; print('py', sys.version_info[:2], "
         "capstone.__version__)", "-ex", "show architecture"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "py (3, 11)" in out.stdout and "aarch64" in out.stdout, out.stdout + out.stderr


def test_modprobe_loads_a_module_from_the_package():
    assert not Path("/sys/module/dummy").exists()
    subprocess.run(["modprobe", "dummy"], check=True, capture_output=True)
    try:
        assert any(l.startswith("dummy ") for l in Path("/proc/modules").read_text().splitlines())
    finally:
        subprocess.run(["rmmod", "dummy"], check=True, capture_output=True)


def test_kprobe_through_tracefs_and_kcore_header():
    probe = "gtk_arm_probe"
    _append(TRACING / "kprobe_events", f"p:{probe} do_sys_openat2")
    try:
        listed = [l for l in KPROBES_LIST.read_text().splitlines() if "do_sys_openat2+0x0" in l]
        assert listed, KPROBES_LIST.read_text()
        enable = TRACING / "events" / "kprobes" / probe / "enable"
        (TRACING / "trace").write_text("")
        enable.write_text("1")
        try:
            Path("/proc/self/status").read_text()
        finally:
            enable.write_text("0")
        assert f"{probe}:" in (TRACING / "trace").read_text()
        with open("/proc/kcore", "rb", buffering=0) as fh:
            ident = fh.read(64)
        assert ident[:4] == b"\x7fELF" and ident[4] == 2 and ident[5] == 1
        assert struct.unpack_from("<HH", ident, 16) == (4, EM_AARCH64)      # ET_CORE, EM_AARCH64
    finally:
        _append(TRACING / "kprobe_events", f"-:{probe}")
    assert not [l for l in KPROBES_LIST.read_text().splitlines() if "do_sys_openat2+0x0" in l]
