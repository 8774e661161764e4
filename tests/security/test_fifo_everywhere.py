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

PENDING: dict[str, str] = {}

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
    ("ktypes-btf", "ktypes --btf {fifo}", None),
    ("ktypes-kcore", "ktypes --kcore {fifo}", None),
    ("ktask-kcore", "ktask 1 comm --kcore {fifo}", None),
    ("ktask-kallsyms", "ktask 1 comm --kcore {kcore} --kallsyms {fifo}", None),
    ("vg-start-stdin", "vg-start --stdin {fifo} {prog}", None),
    ("vg-start-stdout", "vg-start --stdout {fifo} {prog}", None),
    ("vg-start-tty", "vg-start --tty {fifo} {prog}", None),
    ("vg-start-program", "vg-start {fifo}", None),
    ("got-diff", "got --diff {fifo}", None),
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


# The other things that are not a regular file: a symlink to a FIFO (the check must look at
# what is opened, not at the name), a character device that never ends (/dev/zero: reading it
# "whole" eats memory forever) and a directory.  Where a device is a legitimate answer
# (vg-start --stdin/--stdout/--tty take /dev/null or a terminal) it is not tried.
KINDS = {"symlink-to-fifo": "FIFO", "chardev": "device", "directory": "directory"}
DEVICE_OK = {"vg-start-stdin", "vg-start-stdout", "vg-start-tty"}


@pytest.fixture(scope="module")
def other_files(files, tmp_path_factory):
    d = tmp_path_factory.mktemp("nonregular")
    link = d / "a link"
    link.symlink_to(files["fifo"])
    directory = d / "a dir"
    directory.mkdir()
    return {"symlink-to-fifo": link, "chardev": "/dev/zero", "directory": directory}


def _other_params():
    for case_id, template, owner in CASES:
        for kind in KINDS:
            if kind == "chardev" and case_id in DEVICE_OK:
                continue            # a device is a valid answer there (/dev/null, a terminal)
            marks = [pytest.mark.xfail(reason=PENDING[owner], strict=False)] if owner else []
            yield pytest.param(template, kind, id=f"{case_id}-{kind}", marks=marks)


@pytest.mark.parametrize("template,kind", list(_other_params()))
def test_other_non_regular_files_are_refused(template, kind, files, other_files):
    bad = other_files[kind]
    command = template.format(**{k: _quote(bad if k == "fifo" else v) for k, v in files.items()})
    run = run_hostile([command], timeout=5, address_space_mb=2048)   # /dev/zero read whole: bounded
    assert_survived(run, max_seconds=5)
    assert KINDS[kind] in run.result.stderr.replace("Is a directory", "is a directory"), run.describe()
    assert str(bad) in run.result.stderr, run.describe()            # the message names the path
