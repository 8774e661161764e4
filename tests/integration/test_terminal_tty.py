"""tty's sweep of every command in a real terminal (issue 14, terminal part): Enter after any
command, tab completion of pids and of a positional's values, the harness's own scroll-back.

The command list comes from ``toolkit commands --json``, so a new command is swept without a
line here.  Oracles: /proc (the pids that exist), a child process the test starts (its pid
must be offered), gdb's own Enter behaviour (``print 1`` repeats), the documented values
(valgrind's ``leak_check full|summary``, ``check_memory addressable|defined``).
"""
import os
import subprocess

import pytest

from tests.support.gdbrun import gdb_json, run_gdb

pytestmark = pytest.mark.gdb

#: commands for which Enter repeats on purpose (none today: every command prints a report or
#: starts work).  A command put here must say why, like gdb's `x` continuing its dump.
REPEATING: dict[str, str] = {}


def _names(doc) -> list[str]:
    """Every way to type every command: toolkit NAME, tk NAME, and the short alias."""
    out = []
    for c in doc["commands"]:
        gdb_name = c["gdb_name"]
        out += [gdb_name, "tk " + gdb_name.split(" ", 1)[1]] + list(c["aliases"])
    return out


def test_enter_repeats_no_command_of_the_registry():
    """Enter on an empty line after any command -- under any of its names -- prints nothing:
    gdb's dont_repeat, applied once by the registry's proxy.  A command that repeats must be
    declared (``repeat = True``, listed in REPEATING with its reason).  Oracle: gdb's own
    ``print 1`` repeats in the same session (the harness sees a repeat when there is one)."""
    from tests.support.tmux import TmuxGdb

    doc = gdb_json([], "toolkit commands")
    declared = {c["gdb_name"] for c in doc["commands"] if c["repeats"]}
    assert declared == set(REPEATING), (declared, REPEATING)
    names = _names(doc)
    assert len(names) >= 2 * len(doc["commands"]) and "tk kdis" in names and "ksym" in names
    repeated = []
    with TmuxGdb(width=80, height=40) as t:
        t.run("print 1")
        assert any("$2 = 1" in r for r in t.enter()), "the harness does not see gdb's repeat"
        for name in names:
            # an option no command has: the command's own usage error, one short line; a
            # repeat would print it again
            first = t.run(f"{name} --no-such-option")
            assert first, name
            if t.enter() and name.split()[-1] not in REPEATING:
                repeated.append(name)
        # a report and a help page, too: a repeat prints them again
        for line in ("toolkit commands", "ksym --help", "help tk vg-leaks", "got --json"):
            t.run(line)
            if t.enter():
                repeated.append(line)
    # gdb's own `help` repeats on Enter (`help print` does too): not ours to change
    assert repeated == ["help tk vg-leaks"], repeated


@pytest.fixture(scope="module")
def sleeper():
    """A process the test owns, whose pid the completions must offer."""
    proc = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _complete(lines: list[str]) -> dict[str, list[str]]:
    """gdb's `complete LINE` for each line, in one gdb: {line: [completions]}."""
    marks = []
    for i, line in enumerate(lines):
        marks += [f"echo @@{i}\\n", f"complete {line}"]
    res = run_gdb(marks)
    out: dict[str, list[str]] = {}
    current = None
    for row in res.stdout.splitlines():
        if row.startswith("@@"):
            current = lines[int(row[2:])]
            out[current] = []
        elif current is not None and row:
            out[current].append(row)
    assert set(out) == set(lines), res.stdout + res.stderr
    return out


def test_pids_complete_as_pids(sleeper):
    """``ktrace --pid <Tab>`` and ``ktask <Tab>`` (PID|ADDR) offered nothing or gdb's
    expression symbols: now the pids of the processes, from /proc.  A prefix narrows them;
    an address or an expression still completes as one; ``ktask PID <Tab>`` (a field path)
    is not offered pids."""
    pid = str(sleeper)
    prefix = pid[:-1]
    got = _complete([f"ktrace --pid {prefix}", f"ktask {prefix}", f"ktrace vfs_read --pid {pid}",
                     f"ktask {pid} ", "ktask 0x", f"tk ktask {prefix}"])
    proc_pids = {n for n in os.listdir("/proc") if n.isdigit() and n.startswith(prefix)}
    for line in (f"ktrace --pid {prefix}", f"ktask {prefix}", f"tk ktask {prefix}"):
        offered = [c.rsplit(" ", 1)[1] for c in got[line]]
        assert pid in offered, (line, got[line])
        assert set(offered) <= proc_pids | {n for n in offered if not os.path.exists(f"/proc/{n}")}, \
            (line, offered)                                 # every one a process (or one just gone)
        assert all(n.startswith(prefix) for n in offered), offered
    assert got[f"ktrace vfs_read --pid {pid}"] == [f"ktrace vfs_read --pid {pid}"]
    assert not any(c.rsplit(" ", 1)[1].isdigit() for c in got[f"ktask {pid} "]), got[f"ktask {pid} "]
    assert got["ktask 0x"] == [], got["ktask 0x"]


def test_a_positional_completes_its_values():
    """``vg-leaks <Tab>`` offered nothing, ``vg-check ADDR LEN <Tab>`` gdb's expression
    symbols: the values the argument takes (valgrind's ``leak_check full|summary``,
    ``check_memory addressable|defined``), after options too; the ADDR before them still
    completes as an expression."""
    got = _complete(["vg-leaks ", "vg-leaks su", "vg-leaks --top 5 f", "vg-check g_buf 4 ",
                     "vg-check g_buf 4 de", "tk vg-leaks s"])
    assert got["vg-leaks "] == ["vg-leaks full", "vg-leaks summary"], got
    assert got["vg-leaks su"] == ["vg-leaks summary"], got
    assert got["vg-leaks --top 5 f"] == ["vg-leaks --top 5 full"], got
    assert got["vg-check g_buf 4 "] == ["vg-check g_buf 4 addressable", "vg-check g_buf 4 defined"]
    assert got["vg-check g_buf 4 de"] == ["vg-check g_buf 4 defined"], got
    assert got["tk vg-leaks s"] == ["tk vg-leaks summary"], got


@pytest.mark.parametrize("width", [60, 40])
def test_every_help_page_fits_its_width_examples_included(width):
    """``CMD --help`` of every registered command at *width* columns: no line wider than the
    terminal (an unbreakable token alone excepted), each example's words printed in order
    (an example was printed as one line: ktrace's 62-column example was folded by a 60-column
    terminal, at 40 most were).  Every command has a summary that fits 79 columns, a usage
    and an example.  Oracle: the examples and summaries the listing declares, the width."""
    doc = gdb_json([], "toolkit commands")
    lines = [f"set width {width}"]
    for i, c in enumerate(doc["commands"]):
        lines += [f"echo @@{i}\\n", f"{c['gdb_name']} --help"]
    res = run_gdb(lines)
    pages = res.stdout.split("@@")[1:]
    assert len(pages) == len(doc["commands"]), res.stderr
    for c, page in zip(doc["commands"], pages):
        assert c["summary"] and len(c["summary"]) + 2 <= 79 and c["usage_lines"] and c["examples"], c
        rows = page.split("\n", 1)[1].splitlines()
        for row in rows:
            assert len(row) <= width or " " not in row.strip(), (c["gdb_name"], width, row)
        start = next(i for i, r in enumerate(rows) if r.startswith("Example"))
        printed = " ".join(rows[start + 1:]).split()
        wanted = " ".join("(gdb) " + e for e in c["examples"]).split()
        assert printed == wanted, (c["gdb_name"], printed, wanted)


_LIB_CXX = r"""
#include <map>
#include <string>
#include <vector>
namespace some_long_namespace_name { namespace detail_implementation {
template <class K, class V, class A> struct container_processor {
  static int process_every_element(const std::map<K, std::vector<V, A>> &m, int x);
};
template <class K, class V, class A>
int container_processor<K, V, A>::process_every_element(const std::map<K, std::vector<V, A>> &m,
                                                        int x) { return (int)m.size() + x; }
template struct container_processor<std::string, std::map<std::string, std::vector<std::string>>,
                                    std::allocator<std::map<std::string, std::vector<std::string>>>>;
}}
"""
_MAIN_CXX = r"""
#include <map>
#include <string>
#include <vector>
namespace some_long_namespace_name { namespace detail_implementation {
template <class K, class V, class A> struct container_processor {
  static int process_every_element(const std::map<K, std::vector<V, A>> &m, int x);
};
}}
using namespace some_long_namespace_name::detail_implementation;
typedef container_processor<std::string, std::map<std::string, std::vector<std::string>>,
                            std::allocator<std::map<std::string, std::vector<std::string>>>> CP;
int main() {
  std::map<std::string, std::vector<std::map<std::string, std::vector<std::string>>>> m;
  return CP::process_every_element(m, 1) - 1;
}
"""


@pytest.fixture(scope="module")
def huge_cxx_import(tmp_path_factory):
    """A program importing a 262-character mangled name whose demangled form is ~4700
    characters, from a library 8 directories deep.  (program, mangled, demangled): nm -D
    and c++filt are the oracle."""
    import shutil

    if not shutil.which("g++") or not shutil.which("c++filt"):
        pytest.skip("g++ and c++filt are needed to build and demangle the C++ program")
    root = tmp_path_factory.mktemp("cxx")
    deep = root.joinpath(*[f"very_deep_directory_{i:02d}" for i in range(8)])
    deep.mkdir(parents=True)
    (root / "lib.cpp").write_text(_LIB_CXX)
    (root / "main.cpp").write_text(_MAIN_CXX)
    lib = deep / "libverylongname_for_testing.so"
    subprocess.run(["g++", "-O0", "-shared", "-fPIC", "-o", lib, root / "lib.cpp"], check=True)
    prog = root / "prog"
    subprocess.run(["g++", "-O0", "-o", prog, root / "main.cpp", f"-L{deep}",
                    "-lverylongname_for_testing", f"-Wl,-rpath,{deep}"], check=True)
    nm = subprocess.run(["nm", "-D", "--undefined-only", prog], capture_output=True, text=True,
                        check=True).stdout
    mangled = next(w for w in nm.split() if "process_every_element" in w)
    demangled = subprocess.run(["c++filt", mangled], capture_output=True, text=True,
                               check=True).stdout.strip()
    assert len(demangled) > 1000
    return prog, mangled, demangled


@pytest.mark.parametrize("width", [60, 40])
def test_a_huge_cxx_name_wraps_at_its_own_joints(huge_cxx_import, width):
    """got/plt/plt-walk with a 4700-character demangled import at *width* columns: a blank-
    free part of the name wider than the line (``some_long_namespace_name::
    detail_implementation::container_processor<std::__cxx11::basic_string<char,``, 101
    columns) was printed whole and folded by the terminal inside an identifier; it is cut
    after ``::``/``<``/``,`` instead.  No line is wider than the terminal but one token
    without joints (the mangled name, the program's path), and the whole demangled name is
    printed (c++filt)."""
    prog, mangled, demangled = huge_cxx_import
    cmds = ["got process_every", "plt process_every", f"plt-walk {mangled}"]
    lines = ["break main", "run", f"set width {width}"]
    for i, c in enumerate(cmds):
        lines += [f"echo @@{i}\\n", c]
    res = run_gdb(lines, program=prog)
    parts = res.stdout.split("@@")[1:]
    assert len(parts) == len(cmds), res.stdout[-2000:] + res.stderr
    flat = "".join(demangled.split())
    for cmd, part in zip(cmds, parts):
        rows = part.split("\n", 1)[1].splitlines()
        for row in rows:
            # wider: only one token without joints (the mangled name, a path kept whole)
            assert len(row) <= width or (" " not in row.strip() and "::" not in row), \
                (cmd, width, row)
        assert flat in "".join(part.split()), (cmd, part[:3000])


@pytest.mark.skipif(os.geteuid() != 0, reason="ktrace's BPF programs need root")
@pytest.mark.skipif(os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1", reason="host test")
def test_ktrace_report_styled_like_gdb_and_its_variables_whole_at_40():
    """ktrace's report at 40 columns with styling on: the kernel stack's functions were
    plain (gdb's backtrace styles them), and the variables line split ``$ktask = (void *)``
    from its address (``(struct task_struct`` / ``*)`` when typed).  Oracles: gdb's own
    escape sequences in the same session -- the function in its stop line, the address
    in ``print (void *) after_mmap`` -- and the program's own mmap event."""
    import re

    from tests.support.ktrace_oracles import example
    from tests.support.tmux import ANSI, TmuxGdb

    with TmuxGdb(width=40, height=60, program=example("mmap_file")) as t:
        t.run("break after_mmap")
        stop = "\n".join(t.run("start", styled=True))
        fn_style = re.search(r"(\x1b\[[0-9;]*m)main", stop)
        addr = "\n".join(t.run("print (void *) after_mmap", styled=True))
        addr_style = re.search(r"(\x1b\[[0-9;]*m)0x[0-9a-f]+", addr)
        assert fn_style and addr_style, (stop, addr)
        rows = t.run("ktrace tracepoint:syscalls:sys_enter_mmap --args len --stack --run",
                     styled=True, timeout=120)
        plain = [ANSI.sub("", r) for r in rows]
    frames = [r for r in rows if re.match(r"  #\d+ ", ANSI.sub("", r))]
    assert frames, plain
    for r in frames:
        name = ANSI.sub("", r).split()[1].split("+")[0]
        if not name.startswith("0x"):
            assert fn_style.group(1) + name in r, (ascii(r), ascii(fn_style.group(1)))
    # the cast whole on one row, and (void *) with its address: 40 columns hold both
    cast = [r for r in plain if "(void *) 0xffff" in r or "(struct task_struct *)" in r]
    assert cast, plain
    ktask_rows = [r for r in rows if "0xffff" in r and ("(void *)" in ANSI.sub("", r) or
                                                       ANSI.sub("", r).startswith("0xffff"))]
    assert ktask_rows and addr_style.group(1) + "0xffff" in ktask_rows[-1], [ascii(r) for r in rows]


def test_a_list_option_completes_its_last_item():
    """``vg-leaks --kinds <Tab>`` offered nothing (file names were not offered either: no
    metavar): now the leak kinds, and after ``definite,`` the ones not given yet.  Oracle:
    valgrind's own --help, which lists the kinds of --show-leak-kinds."""
    import re
    import shutil

    if not shutil.which("valgrind"):
        pytest.skip("valgrind is not installed: its --help is the oracle of the leak kinds")
    text = subprocess.run(["valgrind", "--help"], capture_output=True, text=True).stdout
    line = next(ln for ln in text.splitlines() if re.search(r"\bdefinite indirect\b", ln))
    kinds = [k for k in line.split() if k not in ("all", "none")]
    assert set(kinds) >= {"definite", "indirect", "possible", "reachable"}, line
    got = _complete(["vg-leaks --kinds ", "vg-leaks --kinds definite,", "vg-leaks --kinds de",
                     "vg-leaks --history --kinds possible,re"])
    assert sorted(c.rsplit(" ", 1)[1] for c in got["vg-leaks --kinds "]) == sorted(kinds), got
    assert sorted(c.rsplit(" ", 1)[1] for c in got["vg-leaks --kinds definite,"]) == \
        sorted("definite," + k for k in kinds if k != "definite"), got
    assert got["vg-leaks --kinds de"] == ["vg-leaks --kinds definite"], got
    assert got["vg-leaks --history --kinds possible,re"] == \
        ["vg-leaks --history --kinds possible,reachable"], got
