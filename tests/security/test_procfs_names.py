"""Issue 11 item 8 (the generic part): /proc readers keep any byte of a mapped file's or a
process's name, and refuse a malformed file with a ToolkitError.  Oracle: the names as created
on disk and stat()'s inode numbers."""
import mmap
import os
import subprocess
import sys

import pytest

from gdb_toolkit.common import procfs
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import encode_name, escape_name

NAMES = [b"lat\xe9in", b"sep\xe2\x80\xa8arator", b"cr\rx", b"new\nline", b"trail  ", b"nel\xc2\x85x",
         b"a (deleted) b", b"\x1b[2Jesc"]


def test_read_maps_keeps_hostile_mapped_names(tmp_path):
    d = os.fsencode(tmp_path)
    maps_held = []
    files = []
    try:
        for n in NAMES:
            p = os.path.join(d, n)
            with open(p, "wb") as f:
                f.write(b"x" * 4096)
            f = open(p, "rb")
            files.append(f)
            maps_held.append(mmap.mmap(f.fileno(), 4096, prot=mmap.PROT_READ))
        maps = procfs.read_maps(os.getpid())
    finally:
        for m in maps_held:
            m.close()
        for f in files:
            f.close()
    by_inode = {m.inode: m for m in maps if m.path.startswith(str(tmp_path))}
    for n in NAMES:
        p = os.path.join(d, n)
        m = by_inode[os.stat(p).st_ino]
        assert encode_name(m.path) == p, (escape_name(m.path), p)
        assert escape_name(m.path).isprintable()


def test_read_status_of_a_process_with_a_non_utf8_name():
    child = subprocess.Popen([sys.executable, "-c",
                              "import ctypes,sys; ctypes.CDLL(None).prctl(15, b'ev\\xe9il\\xe2\\x80\\xa8x', 0,0,0);"
                              "print('ok', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ok\n"
        st = procfs.read_status(child.pid)
        comm = open(f"/proc/{child.pid}/comm", "rb").read().rstrip(b"\n")
        assert comm == b"ev\xe9il\xe2\x80\xa8x"
        assert encode_name(st.get("Name")) == comm
        assert st.get("Pid") == str(child.pid)          # U+2028 did not split the line
        assert procfs.read_limits(child.pid)["Max stack size"].units == "bytes"
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("text", [
    "zzzz-1000 r-xp 00000000 08:01 1 /x\n",
    "1000 r-xp 00000000 08:01 1 /x\n",
    "1000-2000 r-xp 00000000 08:01\n",
    "2000-1000 r-xp 00000000 08:01 1 /x\n",
    "1000-2000 r-xp 0000zz00 08:01 1 /x\n",
    "1000-2000 rwxpq 00000000 08:01 1 /x\n",
    "1000-2000 r-xp 00000000 08:01 -1 /x\n",
    "1000-" + "f" * 5000 + " r-xp 00000000 08:01 1\n",
], ids=["bad-hex", "no-range", "short", "reversed", "bad-offset", "bad-perms", "bad-inode", "huge"])
def test_parse_maps_malformed_is_a_toolkit_error(text):
    with pytest.raises(ToolkitError) as e:
        procfs.parse_maps(text)
    assert "\n" not in str(e.value) and str(e.value).isprintable()


def test_parse_limits_malformed_is_a_toolkit_error():
    text = open("/proc/self/limits").read()
    assert procfs.parse_limits(text)["Max stack size"].soft
    bad = text.replace("unlimited", "unlimitex", 1)
    with pytest.raises(ToolkitError):
        procfs.parse_limits(bad)


def test_proc_reader_errors_are_one_line():
    with pytest.raises(ToolkitError, match="does not exist"):
        procfs.read_maps(2 ** 22 + 12345)
