"""A daily user's cases that the acceptance tests did not cover (term80's pass over issue 14):
a C++ program's long demangled names, a program under a directory whose name holds a
space, an option list in ``--help``, at the widths people use.

Oracles: binutils' demangler (``nm -C``) for the C++ names, /proc/PID/cmdline of the
real valgrind for the command line vg-start prints, shlex for splitting it again, the
width arithmetic itself.
"""
import re
import shlex
import shutil
import subprocess

import pytest

from tests.support.gdbrun import REPO, compile_c, run_gdb

pytestmark = pytest.mark.gdb

CXX_RECURSION = r"""
#include <utility>
namespace walk {
template <typename T> struct Walker {
  __attribute__((noinline)) int descend(int depth) {
    volatile char buf[4096]; buf[0] = depth;
    if (depth < 0) return 0;
    return descend(depth + 1) + buf[0];
  }
};
}
int main() {
  walk::Walker<std::pair<int, long> > w;
  return w.descend(1);
}
"""


def _lines_holding(text: str, token: str) -> list[str]:
    return [ln for ln in text.splitlines() if token in ln]


@pytest.mark.parametrize("width", [60, 80, 132])
def test_stack_diagnose_never_splits_a_demangled_name(width):
    """The VERDICT, why and FIX paragraphs name the recursing C++ method; its demangled name
    holds a space (``walk::Walker<std::pair<int, long> >::descend``) and the wrapper cut it
    there when it reached the end of a line.  It fits a line: it must stay whole."""
    if not (shutil.which("g++") and shutil.which("nm")):
        pytest.skip("g++ and nm are needed (binutils' demangler is the oracle)")
    prog = compile_c(CXX_RECURSION, name="cxx_recursion", flags=["-g", "-O0"], compiler="g++")
    nm = subprocess.run(["nm", "-C", "--defined-only", str(prog)], capture_output=True, text=True,
                        check=True).stdout
    (name,) = {ln.split(" ", 2)[2].split("(")[0] for ln in nm.splitlines() if "::descend(" in ln}
    assert " " in name
    res = run_gdb([f"set width {width}", "run", "stack-diagnose"], program=prog, timeout=240)
    text = res.stdout[res.stdout.index("stack-diagnose:"):]
    head = text.split("\n\n")[0]                        # VERDICT / why / FIX
    assert len(_lines_holding(head, name)) >= 3, head    # verdict, why, fix: each names it whole
    for ln in head.splitlines():                         # and no line is wider than the terminal
        assert len(ln) <= width, (width, ln)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.parametrize("width", [60, 80])
def test_vg_start_command_line_is_the_one_valgrind_runs(tmp_path, width):
    """vg-start's ``command:`` line joined its words with spaces (a program path with a
    space read as two words) and the wrapper cut quoted paths at their space.  Oracle: the
    real valgrind's /proc/PID/cmdline."""
    src = compile_c(REPO / "examples" / "valgrind" / "vbits.c", flags=["-g", "-O0"])
    d = tmp_path / "my programs" / ("deep" * 12)
    d.mkdir(parents=True)
    prog = d / "vbits test"
    shutil.copy(src, prog)
    res = run_gdb([f"set width {width}",
                   f"vg-start --log {tmp_path / 'vg.log'} {shlex.quote(str(prog))} 7",
                   # the oracle, read while valgrind runs: its own argv from /proc
                   "python import os\nfor p in filter(str.isdigit, os.listdir('/proc')):\n"
                   "  try:\n    c = open('/proc/%s/cmdline' % p, 'rb').read()\n"
                   "  except OSError:\n    continue\n"
                   f"  if {str(prog).encode()!r} in c and b'--vgdb' in c and int(p) != os.getpid():\n"
                   "    print('CMDLINE', p, c.hex())"], timeout=180)
    out = res.stdout
    m = re.search(r"valgrind pid:\s+(\d+)", out)
    assert m, res.output
    cm = re.search(r"^CMDLINE (\d+) ([0-9a-f]+)$", out, re.M)
    assert cm and cm.group(1) == m.group(1), res.output
    expected = [w.decode() for w in bytes.fromhex(cm.group(2)).split(b"\0") if w]
    blocks = _values(out, width)
    # argv[0] is the launcher's (valgrind) in ours, valgrind.bin in /proc: the rest is equal
    assert shlex.split(blocks["command"])[1:] == expected[1:], out
    assert shlex.split(blocks["program"]) == [str(prog), "7"]
    for key in ("command", "program"):                  # the quoted path whole on one line
        assert any(shlex.quote(str(prog)) in ln for ln in blocks[key + "_lines"]), blocks


def _values(out: str, width: int) -> dict:
    """key_values blocks of vg-start's report: {key: value joined, key_lines: [lines]}."""
    got, key = {}, None
    for ln in out.splitlines():
        # a value too wide for the room after its key starts on the next line, indented
        # (text.BELOW): the key alone on its line
        m = re.match(r"^(valgrind pid|program|command|stopped at|program stdin|program stdout|"
                     r"valgrind log|connected in):(?:\s+(.*))?$", ln)
        if m:
            key = m.group(1)
            got[key] = m.group(2) or ""
            got[key + "_lines"] = [m.group(2)] if m.group(2) else []
        elif key and ln.startswith("  "):
            got[key] += " " + ln.strip()
            got[key + "_lines"].append(ln.strip())
        else:
            key = None
    return got


@pytest.mark.parametrize("width", [40, 80])
def test_help_option_lists_stay_lists(width):
    """``got --help`` ran its description's option list into one paragraph
    ('--preview the first ... --audit what ...') with the continuation lines left dangling."""
    res = run_gdb([f"set width {width}", "got --help"])
    lines = res.stdout.splitlines()
    desc = lines[:next(i for i, ln in enumerate(lines) if ln.startswith("positional arguments"))]
    for opt in ("--preview", "--audit", "--diff"):
        assert sum(ln.startswith(opt + " ") for ln in desc) == 1, (opt, res.stdout)
    for ln in desc:
        assert len(ln) <= width or ln.lstrip().startswith("'"), (width, ln)


#: gdb's and the program's own lines, not the toolkit's
_NOT_OURS = re.compile(r"^(Breakpoint \d|Temporary breakpoint|\d+\t|round \d|begin to alloc|block=|wrote past|"
                       r"Program received|main \(\) at|checkpoint \(|\[Inferior|0x[0-9a-f]+ in )")


def _long_prose(text: str, width: int) -> list[str]:
    """Lines wider than *width* that could have been wrapped: more than one token after an
    optional 'key:' label (a quoted string counts as one token)."""
    bad = []
    for ln in text.splitlines():
        if len(ln) <= width or _NOT_OURS.match(ln):
            continue
        body = re.sub(r"^\s*[\w /()-]{1,24}:\s+", "", ln).strip()
        body = re.sub(r"'[^']*'", "Q", body)
        if " " in body:
            bad.append(ln)
    return bad


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_valgrind_prose_wraps_at_40_columns(tmp_path):
    """vg-leaks' heading and snapshot line, vg-who's heading, vg-vbits' summary, vg-start's
    'next:' line and vg-watch's progress lines were printed whole whatever gdb's width."""
    prog = compile_c(REPO / "examples" / "valgrind" / "memleakloop.c", flags=["-g", "-O0"])
    res = run_gdb(["set width 40",
                   f"vg-start --main --stdout {tmp_path}/out --log {tmp_path}/vg.log {prog} 3",
                   "break checkpoint", "continue", "vg-leaks", "vg-who g_psz1[0]",
                   "vg-vbits g_psz1 16", "vg-watch 0.2 --count 2"], timeout=240)
    assert "vg-watch: snapshot 2" in res.stdout, res.output
    assert _long_prose(res.stdout, 40) == [], res.stdout


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_vg_attach_prints_a_program_path_with_a_space_whole(tmp_path):
    """vg-attach PID printed 'program: /srv/my' and 'app/server' on two lines at 40 columns."""
    src = compile_c(REPO / "examples" / "valgrind" / "memleakloop.c", flags=["-g", "-O0"])
    d = tmp_path / "my programs"
    d.mkdir()
    prog = d / "leak loop"
    shutil.copy(src, prog)
    vg = subprocess.Popen(["valgrind", "--vgdb=yes", "--vgdb-error=0", f"--log-file={tmp_path}/vg.log",
                           str(prog), "1000"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        fifo_seen = False
        for _ in range(100):           # valgrind's gdbserver FIFO: vg-attach needs it
            import glob
            import time

            if glob.glob(f"/tmp/vgdb-pipe-from-vgdb-to-{vg.pid}-*"):
                fifo_seen = True
                break
            time.sleep(0.1)
        assert fifo_seen
        res = run_gdb(["set width 40", f"vg-attach {vg.pid}", "detach"], timeout=120)
        # oracle: the path valgrind runs, as the kernel knows it
        lines = [ln.strip() for ln in res.stdout.splitlines()]
        assert str(prog) in lines, res.stdout
    finally:
        vg.kill()
        vg.wait()


GUARD_GAP_FILE = r"""
#define _GNU_SOURCE
#include <alloca.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
__attribute__((noinline)) static int grow(size_t n) { char *p = alloca(n); memset(p, 3, n); return p[n / 2]; }
int main(int argc, char **argv) {
    unsigned long lo = 0, hi = 0;
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "[stack]")) sscanf(line, "%lx-%lx", &lo, &hi);
    fclose(f);
    unsigned long end = (lo - (512 << 10)) & ~4095UL;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || mmap((void *)(end - 4096), 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0) == MAP_FAILED)
        return 2;
    return grow(1 << 20);
}
"""


@pytest.mark.parametrize("width", [60, 80])
def test_stack_diagnose_keeps_a_mapping_path_with_a_space_whole(tmp_path, width):
    """The mapping below the stack (a file under a directory whose name holds a space) is
    named in the verdict and in 'next map:': its path was cut at the space.  Oracle: the
    path the program mapped, as /proc/PID/maps shows it (read in the same gdb session)."""
    prog = compile_c(GUARD_GAP_FILE, name="guard_gap_file", flags=["-g", "-O0"])
    d = tmp_path / "my data dir"
    d.mkdir()
    data = d / "mapped file.bin"
    data.write_bytes(b"\0" * 8192)
    res = run_gdb([f"set width {width}", "run", "info proc mappings", "stack-diagnose"],
                  program=prog, args=[str(data)], timeout=240)
    assert str(data) in res.stdout.split("stack-diagnose:")[0], res.output     # /proc/PID/maps
    report = res.stdout[res.stdout.index("stack-diagnose:"):]
    holding = [ln for ln in report.splitlines() if str(data) in ln]
    assert any(ln.startswith("next map:") for ln in holding), report
    assert any(ln.startswith(("VERDICT", "  ", "why")) for ln in holding), report
    # no line shows half of it
    assert not [ln for ln in report.splitlines() if "my data" in ln and str(data) not in ln], report


def test_every_help_line_fits_80_columns():
    """gdb prints 'help NAME' as it is at any width: the generated usage lines ('Usage: vg-start
    [--main] ... [-- VALGRIND-OPTIONS]', 145 columns) and the 'Also "toolkit NAME"' line were
    not wrapped, nor were description lines the authors wrote at 81 columns."""
    from tests.support.gdbrun import gdb_json

    names = [c["name"] for c in gdb_json([], "toolkit commands")["commands"]]
    cmds = []
    for n in names:
        cmds += [f"echo @@{n}\\n", f"help {n}"]
    res = run_gdb(cmds)
    long = [(blk.split("\n", 1)[0], ln) for blk in res.stdout.split("@@")[1:]
            for ln in blk.splitlines() if len(ln) > 79]
    assert long == [], long
    assert res.stdout.count("Usage: ") >= len(names)


THREAD_NAMED = r"""
#define _GNU_SOURCE
#include <pthread.h>
__attribute__((noinline)) long deep(long n) { volatile char b[256]; b[0] = n; return deep(n + 1) + b[0]; }
void *worker(void *a) {
    (void)a;
    /* named by itself before it recurses: named from main, it could overflow first */
    pthread_setname_np(pthread_self(), "my worker \x1b[31m");
    return (void *)deep(1);
}
int main(void) {
    pthread_t t; pthread_attr_t at; pthread_attr_init(&at); pthread_attr_setstacksize(&at, 64 << 10);
    pthread_create(&t, &at, worker, 0);
    pthread_join(t, 0);
    return 0;
}
"""


def test_stack_diagnose_shows_a_thread_name_once_escaped():
    """A thread named 'my worker ESC[31m' showed as 'my worker \\\\x1b[31m' (repr() doubled the
    backslash of the escaped byte).  Oracle: the kernel's /proc/PID/task/TID/comm."""
    prog = compile_c(THREAD_NAMED, name="thread_named", flags=["-g", "-O0", "-pthread"])
    res = run_gdb(["set width 200", "run",
                   "python import gdb; t = gdb.selected_thread(); "
                   "print('COMM', open('/proc/%d/task/%d/comm' % (t.inferior.pid, t.ptid[1]), 'rb')"
                   ".read().rstrip(b'\\n').hex())",
                   "stack-diagnose"], program=prog, timeout=240)
    comm = bytes.fromhex(re.search(r"^COMM ([0-9a-f]+)$", res.stdout, re.M).group(1)).decode()
    assert comm == "my worker \x1b[31m"
    shown = comm.replace("\x1b", "\\x1b")               # the escaped form docs/security.md gives
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("stack-diagnose: thread"))
    assert f'"{shown}"' in line, line
    assert "\\\\" not in line and "\x1b" not in line, line
