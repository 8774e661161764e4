"""Kernel symbol names are bytes from a file (a kallsyms or System.map copy, a module's name):
a name holding a Latin-1 byte, an escape sequence and a quote must neither break a command
(ksym died with an internal UnicodeEncodeError looking the name up in BTF) nor reach the
terminal raw.  Oracle: the bytes written into the fake kallsyms, shown as escape_name renders
them (docs/security.md "Names")."""
import json

import pytest

from tests.support.hostile import assert_survived, run_hostile
from tests.support.kcore_fixture import write_kcore

pytestmark = pytest.mark.gdb

TEXT = 0xffffffff81000000
HOSTILE = b"ev\xe9il\x1b[2J'q"
SHOWN = "ev\\xe9il\\x1b[2J'q"
KALLSYMS = (f"{TEXT:016x} T _stext\n{TEXT + 0x1000:016x} T vfs_read\n".encode()
            + f"{TEXT + 0x1800:016x} t ".encode() + HOSTILE + b"\n"
            + f"{TEXT + 0x2000:016x} T register_kprobe\n{TEXT + 0x3000:016x} T _etext\n".encode())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kallsyms")
    (d / "kallsyms").write_bytes(KALLSYMS)
    kcore = write_kcore(d / "kcore", {TEXT: b"\x90" * 0x4000}, "OSRELEASE=6.1.0-test\n")
    return {"kallsyms": d / "kallsyms", "kcore": kcore}


@pytest.mark.parametrize("template", [
    "ksym {addr:#x} --kallsyms {kallsyms}",
    "ksym {addr:#x} --kallsyms {kallsyms} --json",
    "ksym vfs_read+0x900 --kallsyms {kallsyms}",
    "kdis {addr:#x} --kallsyms {kallsyms} --kcore {kcore}",
    "kdis {addr:#x} --kallsyms {kallsyms} --kcore {kcore} --json",
    "kx {addr:#x} --kallsyms {kallsyms} --kcore {kcore}",
    "kcore {kcore} --kallsyms {kallsyms}",
    "ftrace-site {addr:#x} --kallsyms {kallsyms} --kcore {kcore}",
    "kprobe-show {addr:#x} --kallsyms {kallsyms} --kcore {kcore}",
])
def test_hostile_kernel_symbol_name(template, files):
    command = template.format(addr=TEXT + 0x1900, **{k: f'"{v}"' for k, v in files.items()})
    run = run_hostile([command], timeout=60)
    assert_survived(run, max_rss_mb=500, max_seconds=30)
    out = run.last_output
    if template.startswith(("ksym", "kdis")):
        assert (json.dumps(SHOWN)[1:-1] if "--json" in template else SHOWN) in out, out
