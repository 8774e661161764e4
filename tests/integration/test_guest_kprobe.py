"""Acceptance for the guest harness: the kernel inside is Debian's and kprobe-capable.

Runs inside the QEMU guest (see docs/guest.md); on the host it reports the guest's outcome.
"""
import os
import struct
from pathlib import Path

import pytest

pytestmark = pytest.mark.guest

TRACING = Path("/sys/kernel/tracing")
KPROBES_LIST = Path("/sys/kernel/debug/kprobes/list")
PROBE = "gtk_probe"


def _kallsyms_address(name: str) -> int:
    for line in Path("/proc/kallsyms").read_text().splitlines():
        addr, _kind, sym = line.split()[:3]
        if sym == name:
            return int(addr, 16)
    raise AssertionError(f"{name} not in /proc/kallsyms")


def _probe_events() -> str:
    return (TRACING / "kprobe_events").read_text()


def _write_events(line: str):
    # O_APPEND without truncation (plain open("w") would clear every probe; Python's "a" seeks,
    # which tracefs refuses)
    fd = os.open(TRACING / "kprobe_events", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def test_running_in_the_guest_on_debians_kernel():
    assert os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1"
    version = Path("/proc/version").read_text()
    assert "Debian" in version and "amd64" in os.uname().release
    # the host root is read-only, /tmp is writable
    with pytest.raises(OSError):
        open("/usr/gtk-guest-probe", "w")
    Path("/tmp/gtk-writable").write_text("ok")
    # bcc's needs: the matching headers through /lib/modules/<release>/build
    assert Path(f"/lib/modules/{os.uname().release}/build/Makefile").is_file()


def test_modprobe_loads_a_module_from_the_package():
    import subprocess
    assert not Path("/sys/module/dummy").exists()
    subprocess.run(["modprobe", "dummy"], check=True, capture_output=True)
    try:
        modules = Path("/proc/modules").read_text().split("\n")
        assert any(l.startswith("dummy ") for l in modules)
    finally:
        subprocess.run(["rmmod", "dummy"], check=True, capture_output=True)
    assert not any(l.startswith("dummy ") for l in Path("/proc/modules").read_text().split("\n"))


def test_kprobe_through_tracefs_and_kcore_header():
    assert f"p:kprobes/{PROBE} " not in _probe_events()
    _write_events(f"p:{PROBE} do_sys_openat2")
    try:
        # the kernel's own records: kprobe_events and the kprobes list (debugfs)
        assert f"p:kprobes/{PROBE} do_sys_openat2" in _probe_events()
        listed = [l for l in KPROBES_LIST.read_text().splitlines() if "do_sys_openat2+0x0" in l]
        assert listed, KPROBES_LIST.read_text()
        addr = _kallsyms_address("do_sys_openat2")
        assert any(int(l.split()[0], 16) == addr for l in listed), (hex(addr), listed)
        # the probe fires: enable it, open a file, find the hit in the trace
        enable = TRACING / "events" / "kprobes" / PROBE / "enable"
        (TRACING / "trace").write_text("")
        enable.write_text("1")
        try:
            Path("/proc/self/status").read_text()
        finally:
            enable.write_text("0")
        assert f"{PROBE}:" in (TRACING / "trace").read_text()
        # /proc/kcore is a 64-bit x86-64 ELF core file
        with open("/proc/kcore", "rb") as fh:
            ident = fh.read(64)
        assert ident[:4] == b"\x7fELF"
        assert ident[4] == 2 and ident[5] == 1                       # ELFCLASS64, little endian
        e_type, e_machine = struct.unpack_from("<HH", ident, 16)
        assert (e_type, e_machine) == (4, 62)                         # ET_CORE, EM_X86_64
    finally:
        _write_events(f"-:{PROBE}")
    assert f"p:kprobes/{PROBE} " not in _probe_events()
    assert not [l for l in KPROBES_LIST.read_text().splitlines() if "do_sys_openat2+0x0" in l]
