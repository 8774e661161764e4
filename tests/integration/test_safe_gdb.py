"""gdbsupport/safe_gdb.py in real gdb 13: hostile paths reach gdb's file commands intact and
no byte of them is ever run as a command.  Also keeps the measured parser facts of
common/gdb_quoting.py checked (if gdb changes, these fail and the module must be revisited)."""
import json
import os
import shutil

import pytest

from tests.support.gdbrun import compile_c, run_gdb

pytestmark = pytest.mark.gdb

PROG = "int main(void) { return 0; }\n"

HOSTILE = [b"new\nline\nshell touch PWNED-nl", b"a b", b"q'uote", b'd"q', b"back\\slash",
           b"semi;colon", b"$(touch PWNED-dollar)", b"`touch PWNED-tick`", b"-lead", b"hash#x",
           b"tab\there", b"trail ", b"~tilde", "uni\u00e9".encode(), b"lat\xe9in", b"cr\rx",
           b"\x1b[31mred"]

DRIVER = r'''
import json, os, sys
import gdb
sys.path.insert(0, REPO)
from gdb_toolkit.gdbsupport import safe_gdb
from gdb_toolkit.common.names import decode_name, escape_name
from gdb_toolkit.common.errors import ToolkitError
out = []
for raw in CASES:
    path = decode_name(raw)
    rec = {"name": escape_name(raw)}
    try:
        safe_gdb.load_executable(path)
        rec["progspace"] = escape_name(safe_gdb.progspace_filename())
        safe_gdb.add_symbol_file(path, 0x1000)
        rec["objfiles"] = [escape_name(safe_gdb.objfile_filename(o)) for o in gdb.objfiles()]
        rec["info_files"] = escape_name(safe_gdb.execute_to_string("info files")[:len(path) + 40])
    except ToolkitError as exc:
        rec["error"] = str(exc)
    out.append(rec)
print("@@" + json.dumps(out))
'''


def _drive(tmp_path, cases, extra=""):
    script = tmp_path / "driver.py"
    script.write_text(f"REPO = {str(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))!r}\n"
                      f"CASES = {cases!r}\n" + DRIVER + extra)
    res = run_gdb([f"python exec(open({str(script)!r}).read())", "echo ALIVE\\n"], cwd=tmp_path,
                  timeout=120)
    assert "ALIVE" in res.stdout, res.output
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("@@"))
    return json.loads(line[2:]), res


def test_hostile_paths_load_exactly_and_inject_nothing(tmp_path):
    prog = compile_c(PROG, name="prog", flags=["-g"])
    d = os.fsencode(tmp_path / "d")
    os.mkdir(d)
    cases = []
    for name in HOSTILE:
        p = os.path.join(d, name)
        shutil.copy(prog, p)
        cases.append(p)
    results, res = _drive(tmp_path, cases)
    from gdb_toolkit.common.names import escape_name
    for raw, rec in zip(cases, results):
        assert "error" not in rec, rec
        assert rec["progspace"] == escape_name(raw), rec
        assert rec["objfiles"].count(escape_name(raw)) == 2, rec     # file + add-symbol-file
        assert escape_name(raw) in rec["info_files"], rec
    assert not list(tmp_path.glob("PWNED*")) and not list((tmp_path / "d").glob("PWNED*"))
    assert "PWNED" not in res.output.replace("touch PWNED", "")


def test_fifo_and_directory_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    results, res = _drive(tmp_path, [os.fsencode(fifo), os.fsencode(tmp_path)])
    assert "FIFO" in results[0]["error"] and "directory" in results[1]["error"]


CHECKS = r'''
# gdb.execute runs every line: the reason safe_gdb exists (if this ever stops, revisit it)
gdb.execute("echo L1\\n\necho INJECTED-SECOND-LINE\\n")
try:
    safe_gdb.execute_fixed("echo x\\n\nshell touch PWNED-fixed")
except ToolkitError as e:
    print("REFUSED:", e)
# target remote | ... with hostile program and log paths: the values travel in the environment
fake = FAKE
log = LOG
try:
    safe_gdb.target_remote_pipe([decode_name(fake), "--pid=1", "$(touch PWNED-arg)"],
                                stderr_path=decode_name(log))
except gdb.error as e:
    print("CONNECT-FAILED-AS-EXPECTED")
print("ENV-LEFT:", [k for k in os.environ if k.startswith("GDB_TOOLKIT_PIPE_")])
'''


def test_target_remote_pipe_passes_values_not_shell_text(tmp_path):
    d = os.fsencode(tmp_path) + b"/v g\nd\xe9 $(touch PWNED-dir)"
    os.mkdir(d)
    fake = d + b"/fake vgdb"
    marker = tmp_path / "marker"
    with open(fake, "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$@" > {marker}\necho to-stderr >&2\n')
    os.chmod(fake, 0o755)
    log = os.fsencode(tmp_path) + b"/err\xe9 log;x"
    results, res = _drive(tmp_path, [], extra=CHECKS.replace("FAKE", repr(fake)).replace("LOG", repr(log)))
    assert "L1" in res.stdout and "INJECTED-SECOND-LINE" in res.stdout     # the gdb fact
    assert "REFUSED:" in res.stdout and "newline" in res.stdout
    assert "CONNECT-FAILED-AS-EXPECTED" in res.stdout
    assert marker.read_text() == "--pid=1\n$(touch PWNED-arg)\n"
    assert open(log, "rb").read() == b"to-stderr\n"
    assert "ENV-LEFT: []" in res.stdout
    assert not list(tmp_path.rglob("PWNED*"))
