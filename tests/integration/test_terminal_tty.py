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
