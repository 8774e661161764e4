"""gdbsupport/facts.py against real gdb: the core file's and program's paths whatever bytes
they hold (findings.md, issue 11 for term).  Oracle: the paths the test itself created."""
import os
import shutil

import pytest

from tests.support.gdbrun import assert_no_traceback, compile_c, run_gdb

pytestmark = pytest.mark.gdb

CRASH = "int main(void) { *(volatile int *)0 = 1; return 0; }\n"
PROBE = ("python from gdb_toolkit.gdbsupport import facts; "
         "print('@@', ascii(facts.core_file_path()), ascii(facts.executable_path()))")


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    prog = compile_c(CRASH, "facts_crash", flags=["-g"])
    d = tmp_path_factory.mktemp("facts")
    path = d / "plain.core"
    res = run_gdb(["run", f"generate-core-file {path}"], program=prog)
    assert path.exists(), res.output
    return prog, d, path


@pytest.mark.parametrize("name", [b"it's a core", b"caf\xe9 core", b"back`tick', file type x"])
def test_core_and_program_paths_with_any_bytes(core, name):
    prog, d, path = core
    odd_dir = d / os.fsdecode(name + b" dir")
    odd_dir.mkdir(exist_ok=True)
    odd_core = odd_dir / os.fsdecode(name + b".core")
    odd_prog = odd_dir / os.fsdecode(name + b".prog")
    shutil.copy(path, odd_core)
    shutil.copy(prog, odd_prog)
    res = run_gdb([PROBE], program=odd_prog, core=odd_core)
    assert_no_traceback(res)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("@@"))
    assert line == f"@@ {ascii(str(odd_core))} {ascii(str(odd_prog))}", res.output
