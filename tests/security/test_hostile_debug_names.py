"""Names that come from the program's own files, not from /proc (issue 11 items 1/8, the class):
a source file named in Latin-1 with an escape sequence (it reaches gdb's messages: "Temporary
breakpoint 1 at ...: file m\\xe9\\x1b[31m.c"), and a symbol a shared library exports whose name
holds a non-UTF-8 byte, an escape sequence and a quote (it reaches the GOT/PLT tables).

Whatever the names, every command answers (gdb alive, no internal error), nothing from the name
reaches the terminal raw, and the name prints recognisably.  Oracle: the bytes we wrote."""
import json
import os
import shutil
import subprocess

import pytest

from tests.support.hostile import assert_survived, run_hostile

pytestmark = pytest.mark.gdb

SOURCE_NAME = b"m\xe9\x1b[31m.c"
SYMBOL = b"ev\xe9il\x1b[2J'q"
C_PROGRAM = b"""#include <stdio.h>
void f(int n) { char b[64]; snprintf(b, sizeof b, "%d", n); puts(b); }
int main(int c, char **v) { f(c); f(c + 1); return 0; }
"""


@pytest.fixture(scope="module")
def hostile_source_program(tmp_path_factory):
    d = os.fsencode(tmp_path_factory.mktemp("srcname"))
    with open(os.path.join(d, SOURCE_NAME), "wb") as f:
        f.write(C_PROGRAM)
    prog = os.path.join(d, b"prog")
    subprocess.run([b"gcc", b"-g", b"-o", prog, SOURCE_NAME], cwd=d, check=True)
    return os.fsdecode(prog)


@pytest.fixture(scope="module")
def hostile_symbol_program(tmp_path_factory):
    """prog calls SYMBOL@PLT, exported by libev.so (assembled: C cannot spell the name)."""
    if not shutil.which("gcc"):
        pytest.fail("gcc is required (scripts/setup.sh installs it)")
    d = os.fsencode(tmp_path_factory.mktemp("symname"))
    note = b'.section .note.GNU-stack,"",@progbits\n'
    with open(os.path.join(d, b"lib.s"), "wb") as f:
        f.write(b'.text\n.globl "%s"\n.type "%s", @function\n"%s":\n  ret\n' % (SYMBOL, SYMBOL, SYMBOL)
                + note)
    with open(os.path.join(d, b"prog.s"), "wb") as f:
        f.write(b'.text\n.globl main\n.type main, @function\nmain:\n  sub $8, %%rsp\n'
                b'  call "%s"@PLT\n  xor %%eax, %%eax\n  add $8, %%rsp\n  ret\n' % SYMBOL + note)
    subprocess.run([b"gcc", b"-shared", b"-o", b"libev.so", b"lib.s"], cwd=d, check=True)
    subprocess.run([b"gcc", b"-o", b"prog", b"prog.s", b"-L.", b"-lev", b"-Wl,-rpath," + d],
                   cwd=d, check=True)
    return os.fsdecode(os.path.join(d, b"prog"))


@pytest.mark.parametrize("commands", [
    ["vg-start --main {prog}"],
    ["break f", "start", "plt-walk --live puts"],
    ["break f", "run", "stack-diagnose"],
    ["start", "got"],
], ids=["vg-start-main", "plt-walk-live-stops-at-users-breakpoint", "stack-diagnose", "got"])
def test_source_file_name_not_utf8(commands, hostile_source_program):
    run = run_hostile([c.format(prog=hostile_source_program) for c in commands],
                      program=None if commands[0].startswith("vg-start") else hostile_source_program,
                      timeout=180)
    assert_survived(run, max_rss_mb=1500, max_seconds=150,
                    gdb_stop_lines=commands[-1].startswith("plt-walk --live"))


@pytest.mark.parametrize("commands", [["got"], ["plt"], ["got --json"], ["start", "got"],
                                      ["start", "plt"], ["start", "plt --json"]])
def test_imported_symbol_name_not_utf8(commands, hostile_symbol_program):
    run = run_hostile(commands, program=hostile_symbol_program, timeout=90)
    assert_survived(run, max_rss_mb=500, max_seconds=60)
    out = run.last_output
    # escape_name's rendering (docs/security.md "Names"): the byte as \xe9, ESC as \x1b; in
    # --json the same text as a JSON string
    shown = "ev\\xe9il\\x1b[2J'q"
    assert (json.dumps(shown)[1:-1] if "--json" in commands[-1] else shown) in out, out


def _sweep():
    from tests.security.test_argument_sweep import COMMANDS

    for c in COMMANDS:
        yield pytest.param(c)


@pytest.mark.parametrize("command", list(_sweep()))
def test_program_path_not_utf8_without_a_process(command, hostile_source_program, tmp_path):
    """Every registered command with a program whose path is not UTF-8 loaded and no process:
    facts.target_kind() read Progspace.filename, which raises UnicodeDecodeError in gdb 13
    (ktrace died with an internal error)."""
    from tests.support.crafted import non_utf8_path

    prog = os.fsdecode(non_utf8_path(hostile_source_program, tmp_path, b"lat\xe9in"))
    run = run_hostile([command], program=prog, timeout=120)
    assert run.alive, run.describe()
    bad = [ln for ln in run.result.output.splitlines() if "internal error" in ln or "Traceback" in ln]
    assert not bad, bad


@pytest.mark.parametrize("commands", [["got"], ["start", "got"], ["start", "got --all-objects"]])
def test_program_directory_with_quote_backslash_escape(commands, hostile_source_program, tmp_path):
    """A path that is valid UTF-8 but holds a quote, a backslash and an escape sequence prints
    escaped exactly once (got escaped the header's path twice: \\\\\\\\ and \\\\x1b)."""
    d = os.path.join(os.fsencode(tmp_path), b"e q'\"b\\s\x1b[1m")
    os.mkdir(d)
    prog = os.path.join(d, b"prog")
    shutil.copy(os.fsencode(hostile_source_program), prog)
    run = run_hostile(commands, program=os.fsdecode(prog), timeout=90)
    assert_survived(run, max_rss_mb=500, max_seconds=60)
    shown = f"{tmp_path}/e q'\"b\\\\s\\x1b[1m/prog: "          # the rule of docs/security.md "Names"
    assert shown in run.last_output, run.last_output


def test_stack_frames_do_not_depend_on_the_source_file_name(hostile_source_program, tmp_path):
    """gdb's 'info frame' names the source file; with a non-UTF-8 name it raised and the
    frame's size (its CFA) was dropped.  Oracle: the same source built under a plain name."""
    import re

    plain = tmp_path / "plain.c"
    plain.write_bytes(C_PROGRAM)
    plain_prog = tmp_path / "plain"
    subprocess.run(["gcc", "-g", "-o", str(plain_prog), str(plain)], check=True)

    def sizes(prog):
        run = run_hostile(["break f", "run", "stack-diagnose"], program=str(prog), timeout=90)
        assert_survived(run, max_rss_mb=500, max_seconds=60)
        return re.findall(r"^#(\d+)\s+(\w+)\s+(\d+ B|-)", run.last_output, re.M)

    want = sizes(plain_prog)
    assert len(want) == 2 and all(s != "-" for _, _, s in want), want
    assert sizes(hostile_source_program) == want


LEAKY = b"""#include <stdlib.h>
#include <string.h>
void *keep;
void f(int n) { char *p = malloc(n); p[n] = 1; memset(p, 0, n); }
int main(void) { f(16); f(32); keep = malloc(5); return 0; }
"""


@pytest.fixture(scope="module")
def leaky_hostile_source(tmp_path_factory):
    d = os.fsencode(tmp_path_factory.mktemp("leaksrc"))
    name = b"l\xe9\x1b[2Jk.c"                     # ESC [2J: clear the screen
    with open(os.path.join(d, name), "wb") as f:
        f.write(LEAKY)
    subprocess.run([b"gcc", b"-g", b"-O0", b"-o", b"prog", name], cwd=d, check=True)
    return os.fsdecode(os.path.join(d, b"prog"))


@pytest.mark.parametrize("command", ["vg-errors", "vg-leaks", "vg-leaks full", "vg-errors --json",
                                     "vg-leaks --json"])
def test_valgrind_reports_name_a_hostile_source_file(command, leaky_hostile_source):
    """valgrind's own text names the source file in every stack: vg-errors wrote it raw (an
    internal UnicodeEncodeError for the Latin-1 byte; the ESC [2J would have cleared the screen)."""
    run = run_hostile([f"vg-start {leaky_hostile_source}", "continue", "continue", command],
                      timeout=180)
    assert_survived(run, max_rss_mb=1500, max_seconds=150)
    assert "l\\xe9\\x1b[2Jk.c" in run.last_output.replace("\\\\", "\\"), run.last_output
