"""Issue 14's acceptance at 80 columns, in a real terminal (tmux): got, ksym, vg-leaks,
toolkit doctor (test_terminal.py) and plt-walk print every address and symbol of their
answer whole, and the terminal folds none of their lines.

Oracle: the same command's --json in the same gdb session (same process, same
addresses), read through gdb's ``pipe`` into a file; the screen is read back from tmux.

A command whose text rendering is still its owner's to convert is marked
``xfail(strict=True)`` with the reason: the mark fails the suite as soon as it passes,
so it is removed then (the list only shrinks).
"""
import os
import shutil

import pytest

from tests.support.gdbrun import REPO, compile_c
from tests.support.tmux import TmuxGdb

pytestmark = pytest.mark.gdb

PLT_PROG = REPO / "examples" / "plt" / "hello_calls.c"


def hexes(values) -> list[str]:
    return [v if isinstance(v, str) else f"0x{v:x}" for v in values if v not in (None, 0, "0x0")]


@pytest.fixture(scope="module")
def plt_session():
    prog = compile_c(PLT_PROG, flags=["-g", "-Wl,-z,lazy"])
    with TmuxGdb(width=80, program=prog) as t:
        t.run("break checkpoint")
        t.run("run")
        yield t


def test_got_at_80_columns(plt_session):
    t = plt_session
    doc = t.json("got")
    rows = t.run("got")
    tokens = hexes(s["address"] for s in doc["slots"]) + [s["symbol"] for s in doc["slots"]]
    tokens += hexes(s["value"] for s in doc["slots"])
    assert len(tokens) >= 3 * len(doc["slots"]) - 4
    t.assert_whole(rows, tokens)


def test_plt_walk_at_80_columns(plt_session):
    t = plt_session
    doc = t.json("plt-walk puts")
    rows = t.run("plt-walk puts")
    tokens = hexes([doc["slot_address"], doc["value"]] + [h["address"] for h in doc["hops"]])
    tokens += [doc["symbol"]]
    t.assert_whole(rows, tokens)


def test_ksym_at_80_columns():
    if not os.path.exists("/proc/kallsyms"):
        pytest.skip("no /proc/kallsyms")
    with TmuxGdb(width=80) as t:
        doc = t.json("ksym do_sys_openat2")
        rows = t.run("ksym do_sys_openat2")
    tokens = hexes(m["address"] for m in doc["matches"]) + [m["symbol"] for m in doc["matches"]]
    # the prototype wraps under its row at spaces, but never splits a word of it
    tokens += [w for m in doc["matches"] for w in (m["prototype"] or "").split()]
    assert tokens
    t.assert_whole(rows, tokens)


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind not installed")
def test_vg_leaks_at_80_columns(tmp_path):
    prog = compile_c(REPO / "examples" / "valgrind" / "memleakloop.c", flags=["-g", "-O0"])
    with TmuxGdb(width=80) as t:
        t.run(f"vg-start --main --stdout {tmp_path}/out --log {tmp_path}/vg.log {prog} 3", timeout=120)
        t.run("break checkpoint")
        t.run("continue", timeout=120)
        doc = t.json("vg-leaks", timeout=120)
        rows = t.run("vg-leaks", timeout=120)
    recs = doc["records"]
    assert recs
    tokens = [r["location"]["symbol"] for r in recs if r["location"]] + \
        [f'{r["location"]["file"]}:{r["location"]["line"]}' for r in recs if r["location"] and r["location"]["file"]]
    assert any(":" in tok for tok in tokens)            # file:line, the part that was cut
    t.assert_whole(rows, tokens)


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF needs root")
def test_ktrace_at_80_columns_and_enter_does_not_rearm():
    """ktrace's report at 80 columns: the task address and every value whole, notes wrapped;
    Enter after it prints nothing (repeating it would arm a new probe).  Oracle: $ktask and
    $kretval as gdb itself prints them after the trace."""
    prog = compile_c(REPO / "examples" / "ktrace" / "mmap_file.c", flags=["-g", "-O0"])
    with TmuxGdb(width=80, program=prog) as t:
        t.run("break after_mmap")
        t.run("start")
        rows = t.run("ktrace tracepoint:syscalls:sys_enter_mmap --args len,prot "
                     "--capture signal->rlim[3].rlim_cur --capture mm->mmap_base --ret --run")
        assert t.enter() == []
        task = t.run("p/x $ktask")[-1].split()[-1]
        ret = t.run("p/x $kretval")[-1].split()[-1]
        assert task.startswith("0xffff") and ret.startswith("0x7f"), (task, ret)
        t.assert_whole(rows, [task, ret, "4194304", "tracepoint+sys_exit", "syscalls:sys_enter_mmap"])
