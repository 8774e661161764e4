"""Issue 11 item 7, cross-cutting: a FIFO given to every command that takes a file argument is
refused at once with a one-line error naming it -- gdb never blocks (a gdb blocked in open() on
a FIFO ignores SIGINT and SIGTERM).  Each case is arranged so the command really reaches the
file (a fake kcore and kallsyms satisfy the checks made before it), and the refusal must say
"FIFO", so a case cannot pass by failing earlier for another reason.

Cases whose fix belongs to another domain are marked ``pending`` (xfail, not strict) with the
owner; they are unmarked once the owner's branch is merged (issue 11 phase 3)."""
import os

import pytest

from tests.support.gdbrun import compile_c
from tests.support.hostile import assert_survived, run_hostile
from tests.support.kcore_fixture import write_kcore

pytestmark = pytest.mark.gdb

TEXT = 0xffffffff81000000
KALLSYMS = (f"{TEXT:016x} T _stext\n{TEXT + 0x1000:016x} T vfs_read\n"
            f"{TEXT + 0x2000:016x} T register_kprobe\n{TEXT + 0x3000:016x} T _etext\n")
PROG = "int main(void) { return 0; }\n"

PENDING = {
    "kern": "kernel commands: refuse non-regular files (issue 11 item 7, branch i17-kernel)",
    "ktr": "ktypes --btf: refuse non-regular files (issue 11 items 4/7, branch i17-ktrace)",
}

# (case id, command template, owner whose fix is pending or None)
CASES = [
    ("kcore-path", "kcore {fifo}", None),
    ("kcore-kallsyms", "kcore {kcore} --kallsyms {fifo}", None),
    ("ksym-kallsyms", "ksym vfs_read --kallsyms {fifo}", None),
    ("ksym-system-map", "ksym vfs_read --system-map {fifo}", None),
    ("ksym-btf", "ksym vfs_read --kallsyms {kallsyms} --btf {fifo}", None),
    ("kdis-kcore", "kdis vfs_read --kallsyms {kallsyms} --kcore {fifo}", None),
    ("kx-kcore", "kx vfs_read --kallsyms {kallsyms} --kcore {fifo}", None),
    ("kprobe-list-kcore", "kprobe-list --kallsyms {kallsyms} --kcore {fifo}", None),
    ("kprobe-show-vmlinux", "kprobe-show vfs_read --kallsyms {kallsyms} --kcore {kcore} --vmlinux {fifo}", None),
    ("ftrace-site-kcore", "ftrace-site vfs_read --kallsyms {kallsyms} --kcore {fifo}", None),
    ("ktypes-btf", "ktypes --btf {fifo}", "ktr"),
    ("vg-start-stdin", "vg-start --stdin {fifo} {prog}", None),
    ("vg-start-stdout", "vg-start --stdout {fifo} {prog}", None),
    ("vg-start-tty", "vg-start --tty {fifo} {prog}", None),
    ("vg-start-program", "vg-start {fifo}", None),
]


def _param(case_id, template, owner):
    marks = [pytest.mark.xfail(reason=PENDING[owner], strict=False)] if owner else []
    return pytest.param(template, id=case_id, marks=marks)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fifo")
    fifo = d / "a fifo"
    os.mkfifo(fifo)
    kallsyms = d / "kallsyms"
    kallsyms.write_text(KALLSYMS)
    kcore = write_kcore(d / "kcore", {TEXT: b"\x90" * 0x4000}, "OSRELEASE=6.1.0-test\n")
    return {"fifo": fifo, "kallsyms": kallsyms, "kcore": kcore,
            "prog": compile_c(PROG, name="fifo_prog")}


def _quote(p) -> str:
    return '"' + str(p) + '"'


@pytest.mark.parametrize("template", [_param(*c) for c in CASES])
def test_fifo_is_refused_not_opened(template, files):
    command = template.format(**{k: _quote(v) for k, v in files.items()})
    run = run_hostile([command], timeout=5)          # a refusal takes well under a second
    assert_survived(run, max_seconds=5, expect="FIFO")
    assert "a fifo" in run.result.stderr          # the message names the path
