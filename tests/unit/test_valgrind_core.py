"""vg-leaks view logic, valgrind process discovery and launch helpers (no gdb)."""
import os
from pathlib import Path

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.valgrind.launch import (explain_vgdb_failure, resolve_program, split_start_args,
                                         valgrind_argv)
from gdb_toolkit.valgrind.leak_records import parse_leak_check
from gdb_toolkit.valgrind.leak_view import (build_report, explain_empty_output, monitor_leak_command,
                                            parse_kinds, totals_from_records)
from gdb_toolkit.valgrind.vgdb_processes import choose, list_processes, parse_cmdline

DATA = Path(__file__).resolve().parents[1] / "data" / "valgrind"
ALL = ["definite", "indirect", "possible", "reachable"]


def parsed(name):
    return parse_leak_check((DATA / name).read_text())


def test_limited_summary_is_wrong_and_totals_come_from_elsewhere():
    lim = parsed("mll_limited.txt")
    # valgrind 3.19 counts only the 2 printed records: 0 definite bytes
    assert lim.summary.kinds["definite"].bytes == 0
    rep = build_report(lim, mode="full", monitor_command="m", kinds=ALL, delta=None, min_bytes=None,
                       top=2, complete=False, extra_summary=parsed("mll_summary_any.txt"))
    assert rep.totals_source == "separate summary search"
    assert rep.totals["definite"].bytes == 7846
    assert [r.symbol for r in rep.records] == ["memleak5", "memleak4"]


def test_complete_records_win_over_a_disagreeing_summary():
    out = parsed("mll_full1.txt")
    out.summary.kinds["definite"].bytes = 0          # as after a 'limited' search
    rep = build_report(out, mode="full", monitor_command="m", kinds=ALL, delta=None, min_bytes=None,
                       top=None, complete=True)
    assert rep.totals["definite"].bytes == 1111 + 2456 + 356
    assert rep.totals_source == "records" and "disagrees" in rep.notes[0]


def test_totals_from_records_count_direct_bytes_like_valgrind():
    out = parsed("il_full.txt")
    t = totals_from_records(out.records)
    assert {k: (v.bytes, v.blocks) for k, v in t.items()} == \
        {k: (v.bytes, v.blocks) for k, v in out.summary.kinds.items() if k != "suppressed"}


def test_filters_sort_top_and_min_bytes():
    out = parsed("mll_full1.txt")
    rep = build_report(out, mode="full", monitor_command="m", kinds=["definite"], delta=None,
                       min_bytes=1000, top=None, complete=False)
    assert [(r.symbol, r.bytes) for r in rep.records] == [("memleak2", 2456), ("memleak1", 1111)]
    assert rep.records_matched == 2
    rep = build_report(out, mode="full", monitor_command="m", kinds=ALL, delta=None, min_bytes=None,
                       top=3, complete=True)
    assert [r.bytes for r in rep.records] == [560000, 45678, 4096] and rep.records_matched == 7


def test_delta_filters_and_own_totals_delta():
    out = parsed("mll_full_incr.txt")
    rep = build_report(out, mode="full", monitor_command="m", kinds=ALL, delta="increased",
                       min_bytes=None, top=None, complete=False,
                       previous_totals={"definite": 3923, "reachable": 609806})
    assert {r.symbol for r in rep.records} == {f"memleak{i}" for i in range(1, 6)}
    assert rep.totals_delta["definite"] == 3923 and rep.totals_delta["reachable"] == 605678
    changed = build_report(out, mode="full", monitor_command="m", kinds=ALL, delta="changed",
                           min_bytes=None, top=None, complete=False)
    assert len(changed.records) == 5


def test_monitor_command_and_kinds():
    assert monitor_leak_command("full", ALL, None) == "leak_check full kinds all any"
    assert monitor_leak_command("full", ["definite"], "increased", 5) == \
        "leak_check full kinds definite increased limited 5"
    assert parse_kinds("definitely,indirect") == ["definite", "indirect"]
    assert parse_kinds(None) == ALL
    with pytest.raises(ValueError):
        parse_kinds("bogus")


def test_empty_output_is_explained():
    assert "-q" in explain_empty_output("", "leak_check summary")
    assert explain_empty_output("x\n", "leak_check") is None


def fake_proc(root: Path, pid: int, comm: str, argv: list[str], state="S"):
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "stat").write_text(f"{pid} ({comm}) {state} 1 2 3\n")
    os.symlink("/srv", d / "cwd")


def test_stale_fifos_ignored_and_choice(tmp_path):
    fifos, proc = tmp_path / "tmp", tmp_path / "proc"
    fifos.mkdir()
    for pid in (101, 102, 103, 104):
        os.mkfifo(fifos / f"vgdb-pipe-from-vgdb-to-{pid}-by-???-on-???")
    (fifos / "vgdb-pipe-from-vgdb-to-105-by-u-on-h").write_text("not a fifo")
    fake_proc(proc, 101, "memcheck-amd64-", ["/usr/bin/valgrind.bin", "--vgdb=yes", "./srv", "8080"])
    fake_proc(proc, 102, "memcheck-amd64-", ["/usr/bin/valgrind.bin", "prog"], state="Z")   # zombie
    fake_proc(proc, 103, "bash", ["bash"])           # pid reused by something else
    live = list_processes(str(fifos), proc=str(proc))
    assert [p.pid for p in live] == [101]
    assert live[0].program == "/srv/srv" and live[0].arguments == ["8080"]
    assert live[0].valgrind_options == ["--vgdb=yes"] and live[0].tool == "memcheck"
    every = list_processes(str(fifos), include_dead=True, proc=str(proc))
    assert [p.pid for p in every if not p.alive] == [102, 103, 104]
    assert choose(live, None).pid == 101
    assert choose(live, 555) is None
    two = live + [live[0].__class__(106, "f", "u", "h", True)]
    assert choose(two, None) is None and choose(two, 106).pid == 106


def test_parse_cmdline():
    assert parse_cmdline(["valgrind.bin", "-q", "/bin/prog", "-x", "y"]) == (["-q"], "/bin/prog", ["-x", "y"])
    assert parse_cmdline(["valgrind.bin", "-q"]) == (["-q"], None, [])


def test_valgrind_argv_and_options(tmp_path):
    assert split_start_args(["prog", "a", "--", "-q"], set()) == ([], "prog", ["a"], ["-q"])
    argv = valgrind_argv("/usr/bin/valgrind", "/p", ["x"], ["--leak-check=full"], "/tmp/l-%p.log")
    assert argv == ["/usr/bin/valgrind", "--tool=memcheck", "--vgdb=yes", "--vgdb-error=0",
                    "--log-file=/tmp/l-%p.log", "--error-limit=no", "--leak-check=full", "/p", "x"]
    # the user's own --error-limit is kept, and then none is added
    kept = valgrind_argv("v", "/p", [], ["--error-limit=yes"], "l")
    assert "--error-limit=yes" in kept and "--error-limit=no" not in kept
    assert "--log-file=/tmp/l-%p.log" not in valgrind_argv("v", "/p", [], ["--log-fd=9"], "/tmp/l-%p.log")
    for bad in (["--tool=helgrind"], ["--vgdb=no"], ["notanoption"]):
        with pytest.raises(ToolkitError):
            valgrind_argv("v", "/p", [], bad, "l")
    with pytest.raises(ToolkitError, match="not found"):
        resolve_program(str(tmp_path / "missing"))
    f = tmp_path / "data.txt"
    f.write_text("x")
    with pytest.raises(ToolkitError, match="not executable"):
        resolve_program(str(f))


def test_vgdb_failure_messages():
    err = explain_vgdb_failure("relaying data between gdb and process 7\nsyscall failed: Operation not "
                               "permitted\nattach main pid PTRACE_ATTACH pid 7 -1\n", 7)
    assert "ptrace" in str(err) and "ptrace_scope" in err.fix and "relaying" not in str(err)
    assert "gone" in str(explain_vgdb_failure("vgdb error: invalid pid 7 given", 7))
    assert "cannot connect" in str(explain_vgdb_failure("", 7))
    assert "did not answer" in str(explain_vgdb_failure("pid 7 did not handle a command in 3 seconds", 7))


def test_vgdb_failure_keeps_whole_lines_once():
    """vgdb's retry line repeats; the message keeps each distinct line whole (a pid of any
    length is never cut) and says how many further distinct lines were left out."""
    retry = "error attach main pid 1234567\n" * 40
    err = str(explain_vgdb_failure("syscall failed: Operation not permitted\n"
                                   "attach main pid PTRACE_ATTACH pid 1234567 -1\n" + retry, 1234567))
    assert err.count("error attach main pid 1234567") == 1
    assert "error attach main pid 1234567). Fix:" in err
    lines = "\n".join(f"line {i} of vgdb" for i in range(9))
    err = str(explain_vgdb_failure(lines, 7))
    assert "line 3 of vgdb; ... (5 more lines)" in err and "line 4 of" not in err


def test_fast_table_layout_and_clipping():
    from gdb_toolkit.common.table import Col, render_table

    cols = [Col("rec", "number"), Col("function", "symbol")]
    out = render_table(cols, [[7, "memleak5"], [12, None]], None)
    assert out.splitlines() == ["rec  function", "---  --------", "  7  memleak5", " 12"]
    # nothing is clipped any more (issue 14): too wide for 30 columns -> one field per line
    records = render_table([Col("a"), Col("function", "symbol")], [["x" * 30, "y" * 30]], 30)
    assert "…" not in records and "x" * 30 in records and "y" * 30 in records


def test_program_arguments_after_program_are_verbatim():
    vals = {"--stdin", "--stdout", "--tty", "--log", "--timeout"}
    assert split_start_args(["--main", "--stdout", "f", "./srv", "-p", "8080", "--verbose"], vals) == \
        (["--main", "--stdout", "f"], "./srv", ["-p", "8080", "--verbose"], [])
    # every word after PROGRAM is its own, --json and --help too (they were taken as vg-start's)
    assert split_start_args(["--log=l", "./srv", "-x", "--json"], vals) == \
        (["--log=l"], "./srv", ["-x", "--json"], [])
    assert split_start_args(["./srv", "--help", "--", "--json", "-q"], vals) == \
        ([], "./srv", ["--help"], ["--json", "-q"])
    # "--" before PROGRAM ends vg-start's options: a program named "-x", an option's value "--"
    assert split_start_args(["--json", "--", "-x", "a", "--", "-q"], vals) == \
        (["--json"], "-x", ["a"], ["-q"])
    assert split_start_args(["--stdin", "--", "./p"], vals) == (["--stdin", "--"], "./p", [], [])
    assert split_start_args(["--help"], vals) == (["--help"], None, [], [])
    assert split_start_args(["--main", "--"], vals) == (["--main"], None, [], [])
