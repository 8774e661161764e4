"""The kcore reader on synthetic kcore-shaped ELF cores (readelf is the oracle for the
layout), and the kallsyms parser on captured text and this machine's /proc/kallsyms."""
import errno
import os
import re
import subprocess

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kcore as K
from gdb_toolkit.kernel.kallsyms import Kallsyms
from tests.support.kcore_fixture import write_kcore

TEXT = 0xFFFFFFFF9A000000
VMCOREINFO = ("OSRELEASE=6.1.0-test-amd64\nBUILD-ID=0123abcd\nPAGESIZE=4096\n"
              "SYMBOL(swapper_pg_dir)=ffffffff9b80a000\nKERNELOFFSET=19000000\n")


@pytest.fixture
def core(tmp_path):
    a = bytes(range(256)) * 16                 # 4 KiB at TEXT
    b = b"\xcc" + b"\x90" * 4095               # adjacent 4 KiB
    c = b"hello kernel\0" + b"\0" * 4083       # far away
    return write_kcore(tmp_path / "kcore", {TEXT: a, TEXT + 0x1000: b, 0xFFFF888000000000: c},
                       VMCOREINFO)


def readelf_loads(path):
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    loads = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            loads.append((int(parts[2], 16), int(parts[5], 16), int(parts[1], 16)))
    return loads


def test_segments_match_readelf(core):
    with K.Kcore.open(str(core)) as kc:
        assert [tuple(s) for s in kc.segments] == sorted(readelf_loads(core))
        assert kc.arch == "x86_64"
        vaddr, size, offset = kc.segments[1]   # sorted: the direct map comes first
        assert vaddr == TEXT and size == 4096


def test_read_within_and_across_segments(core):
    with K.Kcore.open(str(core)) as kc:
        assert kc.read(TEXT + 0x10, 4) == bytes([0x10, 0x11, 0x12, 0x13])
        span = kc.read(TEXT + 0xFFE, 4)           # last two bytes of a, first two of b
        assert span == bytes([0xFE, 0xFF, 0xCC, 0x90])
        assert kc.read_cstring(0xFFFF888000000000) == "hello kernel"
        assert kc.read_u32(TEXT) == 0x03020100


def test_address_in_no_segment_names_it(core):
    with K.Kcore.open(str(core)) as kc:
        with pytest.raises(ToolkitError, match="0xffffffff9a002000 is in no"):
            kc.read(TEXT + 0x2000, 1)
        with pytest.raises(ToolkitError, match="0xffffffff9a002000 is in no.*runs past"):
            kc.read(TEXT + 0x1FFF, 2)
        assert not kc.contains(0x1000)


def test_vmcoreinfo(core):
    with K.Kcore.open(str(core)) as kc:
        info = kc.vmcoreinfo
        assert info["OSRELEASE"] == "6.1.0-test-amd64"
        assert info["BUILD-ID"] == "0123abcd"
        assert info["SYMBOL(swapper_pg_dir)"] == "ffffffff9b80a000"
        assert kc.kaslr_offset == 0x19000000 and kc.release == "6.1.0-test-amd64"


def test_closed_and_context_manager(core):
    kc = K.Kcore.open(str(core))
    fd = kc.fd
    with kc:
        pass
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(ToolkitError, match="closed"):
        kc.read(TEXT, 1)


def test_bad_files(tmp_path):
    with pytest.raises(ToolkitError, match="does not exist"):
        K.Kcore.open(str(tmp_path / "missing"))
    (tmp_path / "text").write_text("not elf at all, long enough to have a header" * 3)
    with pytest.raises(ToolkitError, match="not an ELF"):
        K.Kcore.open(str(tmp_path / "text"))
    write_kcore(tmp_path / "exec", {TEXT: b"x" * 16}, e_type=2)
    with pytest.raises(ToolkitError, match="not a core"):
        K.Kcore.open(str(tmp_path / "exec"))
    with pytest.raises(ToolkitError, match="not a core"):
        K.Kcore.open("/bin/true")


def test_open_errors_explain_the_cause(monkeypatch):
    err = K.open_error("/proc/kcore", FileNotFoundError(errno.ENOENT, "No such file"))
    assert "CONFIG_PROC_KCORE" in str(err)
    monkeypatch.setattr(K.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(K, "_lockdown", lambda: "none")
    err = K.open_error("/proc/kcore", PermissionError(errno.EACCES, "Permission denied"))
    assert "CAP_SYS_RAWIO" in str(err) and "run gdb as root" in str(err)
    monkeypatch.setattr(K, "_lockdown", lambda: "confidentiality")
    err = K.open_error("/proc/kcore", PermissionError(errno.EPERM, "Operation not permitted"))
    assert "lockdown" in str(err) and "lockdown=none" in str(err)
    monkeypatch.setattr(K.os, "geteuid", lambda: 0)
    monkeypatch.setattr(K, "_lockdown", lambda: None)
    err = K.open_error("/proc/kcore", PermissionError(errno.EPERM, "Operation not permitted"))
    assert "CAP_SYS_RAWIO is missing" in str(err)


def test_real_proc_kcore_or_clear_error():
    if os.path.exists("/proc/kcore"):
        try:
            with K.Kcore.open() as kc:
                assert kc.segments
        except ToolkitError as exc:
            assert "Fix:" in str(exc)
    else:
        with pytest.raises(ToolkitError, match="CONFIG_PROC_KCORE"):
            K.Kcore.open()


# -- kallsyms --------------------------------------------------------------------------

SAMPLE = """\
ffffffff9a000000 T _text
ffffffff9a000000 T _stext
ffffffff9a1234a0 T do_mmap
ffffffff9a123900 t helper
ffffffff9b000000 D some_data
ffffffff9b100000 b kprobe_table
0000000000000000 A fixed_percpu_data
ffffffffc0a00000 t mod_fn\t[mymod]
ffffffffc0a00100 T do_mmap\t[evil]
"""


def test_kallsyms_lookup_and_symbolize():
    k = Kallsyms.parse(SAMPLE)
    assert not k.restricted
    assert k.address("do_mmap") == 0xFFFFFFFF9A1234A0           # vmlinux copy wins
    assert k.address("evil:do_mmap") == 0xFFFFFFFFC0A00100
    assert k.symbolize(0xFFFFFFFF9A1234A5) == ("do_mmap", 5, None)
    assert k.symbolize(0xFFFFFFFFC0A00010) == ("mod_fn", 0x10, "mymod")
    assert k.symbolize(0xFFFFFFFF9A000000)[0] == "_text"
    assert k.symbolize(0x1000) is None
    assert k.format(0xFFFFFFFFC0A00010) == "mod_fn+0x10 [mymod]"
    assert k.address("nope") is None
    assert k.kaslr_offset() == 0x19000000
    assert k.kaslr_offset({"KERNELOFFSET": "2000000"}) == 0x2000000
    assert k.modules() == ["evil", "mymod"]
    assert k.next_symbol_after(0xFFFFFFFF9A1234A0) == 0xFFFFFFFF9A123900


def test_kallsyms_restricted():
    k = Kallsyms.parse(re.sub(r"^[0-9a-f]{16}", "0" * 16, SAMPLE, flags=re.M))
    assert k.restricted
    with pytest.raises(ToolkitError, match="kptr_restrict"):
        k.address("do_mmap")
    assert k.format(0x1234) == "0x1234"


def test_system_map_with_kaslr(tmp_path):
    sm = tmp_path / "System.map"
    sm.write_text("ffffffff81000000 T _text\nffffffff811234a0 T do_mmap\n")
    live = Kallsyms.parse(SAMPLE)
    plain = Kallsyms.load_system_map(str(sm))
    off = live.kaslr_offset(system_map=plain)
    assert off == 0x19000000
    slid = Kallsyms.load_system_map(str(sm), off)
    assert slid.address("do_mmap") == live.address("do_mmap")
    with pytest.raises(ToolkitError, match="System.map"):
        Kallsyms.load_system_map(str(tmp_path / "nope"))


def test_this_machines_kallsyms_against_nm_style_grep():
    k = Kallsyms.load()
    if k.restricted:
        pytest.skip("kallsyms hidden here")
    line = subprocess.run(["grep", "-m1", " T do_sys_openat2$", "/proc/kallsyms"],
                          capture_output=True, text=True).stdout.split()
    if line:
        assert k.address("do_sys_openat2") == int(line[0], 16)
        assert k.symbolize(int(line[0], 16) + 3) == ("do_sys_openat2", 3, None)


def test_text_bisect_agrees_with_a_full_parse_here():
    """symbolize() bisects the kallsyms text; check it against a plain sorted parse of the
    same file for symbols spread over the whole kernel."""
    import bisect
    import random

    with open("/proc/kallsyms") as f:
        text = f.read()
    k = Kallsyms.parse(text)
    if k.restricted:
        pytest.skip("kallsyms hidden here")
    addrs = sorted({int(l.split()[0], 16) for l in text.splitlines()
                    if l.split()[1] not in "aAuU" and "\t[" not in l and int(l.split()[0], 16)})
    rnd = random.Random(7)
    checked = 0
    for _ in range(400):
        i = rnd.randrange(len(addrs) - 1)
        if addrs[i + 1] - addrs[i] > 1 << 20:
            continue
        a = rnd.randrange(addrs[i], addrs[i + 1])
        name, off, mod = k.symbolize(a)
        assert a - off == addrs[bisect.bisect_right(addrs, a) - 1], hex(a)
        checked += 1
    assert checked > 300


def test_arm64_segment_labels_text_without_underscore_text_and_vmalloc_with_modules():
    """Debian arm64's kcore (arm's finding): KCORE_TEXT must read "kernel text" although
    kallsyms has no _text (its first text symbol is _stext, 64 KiB in); the 124 TiB vmalloc
    range holding the image and the modules is vmalloc, not "modules" nor "kernel text"; the
    128 MiB MODULES_VADDR area is "modules".  Layout from readelf -l /proc/kcore in the guest."""
    from gdb_toolkit.kernel.memory_views import kernel_text_address, label_segments

    text = 0xFFFFB3C611A00000
    k = Kallsyms.parse(f"{text + 0x10000:016x} T _stext\n{text + 0x100000:016x} T do_mmap\n"
                       f"{text + 0x1E00000:016x} D init_task\n"
                       "ffff80000a000100 t dummy_init\t[dummy]\n"
                       "ffff80000a000200 t dummy_exit\t[dummy]\n")
    assert k.address("_text") is None
    assert kernel_text_address(k) == text + 0x10000
    segs = [(0xFFFF000000000000 + 0x40000000, 0x3F000000),      # linear map (RAM)
            (0xFFFF800000000000, 0x8000000),                     # MODULES_VADDR..MODULES_END
            (0xFFFF800008000000, 0xFFFFFBFFF0000000 - 0xFFFF800008000000),   # vmalloc
            (text, 0x2020000),                                   # KCORE_TEXT: _text.._end
            (0xFFFFFC0000000000 + 0x1000000, 0xFC0000)]          # vmemmap of that RAM
    labels = label_segments(segs, k, kernel_text_address(k), "aarch64")
    assert labels == ["RAM / other", "modules", "vmalloc/vmemmap", "kernel text", "RAM / other"]
    # x86_64 keeps _text and its fixed module area
    assert label_segments([(TEXT, 0x1000), (0xFFFFFFFFC0000000, 0x3F000000)],
                          Kallsyms.parse(SAMPLE), TEXT) == ["kernel text", "modules"]


def _probe_reads(kc, cases):
    out = []
    for addr, n in cases:
        try:
            out.append(kc.read(addr, n))
        except ToolkitError as exc:
            out.append(("error", str(exc)))
    return out


def test_snapshot_reads_equal_direct_reads_and_read_each_page_once(tmp_path, monkeypatch):
    """Within snapshot(), small reads come from whole pages read once; the bytes and errors
    are exactly those of direct reads (the oracle: the same reads with no snapshot), a page
    with a hole or a segment end in it is not cached, and the cache ends with the block."""
    a = bytes(range(256)) * 32                      # two pages at TEXT
    b = b"tail" * 256                               # one page right after
    c = b"str one\0str two\0" + b"x" * 300 + b"\0"  # a short segment: ends mid-page
    kc_path = write_kcore(tmp_path / "kcore", {TEXT: a, TEXT + 0x2000: b, 0xFFFF888000000000: c},
                          VMCOREINFO)
    cases = [(TEXT, 8), (TEXT + 8, 16), (TEXT + 0xFF8, 16), (TEXT + 0x1FFC, 8), (TEXT + 0x2FFC, 8),
             (TEXT + 0x2FF0, 16), (TEXT - 8, 16), (0xFFFF888000000000, 8),
             (0xFFFF888000000000 + len(c) - 4, 4), (0xFFFF888000000000 + len(c) - 4, 8),
             (0xFFFFFFFFFFFFFFF8, 8), (TEXT, 0), (TEXT + 0x100, 0x2000)]
    with K.Kcore.open(str(kc_path)) as kc:
        direct = _probe_reads(kc, cases)
        strings = [kc.read_cstring(0xFFFF888000000000), kc.read_cstring(0xFFFF888000000008),
                   kc.read_cstring(TEXT + 0x2000, 64)]
    calls = []
    real = K.pread
    monkeypatch.setattr(K, "pread", lambda fd, n, off: calls.append((n, off)) or real(fd, n, off))
    with K.Kcore.open(str(kc_path)) as kc:
        with kc.snapshot():
            assert _probe_reads(kc, cases) == direct
            assert [kc.read_cstring(0xFFFF888000000000), kc.read_cstring(0xFFFF888000000008),
                    kc.read_cstring(TEXT + 0x2000, 64)] == strings
            first = len(calls)
            assert _probe_reads(kc, cases) == direct        # again: all from the pages
            page_reads = [n for n, _ in calls[first:] if n == 4096]
            assert page_reads == []
            assert len(kc._snap) <= 4
        assert kc._snap is None
        n = len(calls)
        kc.read(TEXT, 8)
        assert len(calls) == n + 1 and calls[-1][0] == 8     # direct again after the block
    assert strings[0] == "str one" and strings[1] == "str two"


def test_snapshot_is_bounded(tmp_path, monkeypatch):
    from gdb_toolkit.kernel import memory as M

    monkeypatch.setattr(M, "MAX_SNAPSHOT_PAGES", 3)
    data = bytes(range(256)) * 16 * 8                # 8 pages
    kc_path = write_kcore(tmp_path / "kcore", {TEXT: data}, VMCOREINFO)
    with K.Kcore.open(str(kc_path)) as kc, kc.snapshot():
        for i in range(8):
            assert kc.read(TEXT + i * 4096 + 5, 3) == data[i * 4096 + 5:i * 4096 + 8]
            assert len(kc._snap) <= 3
