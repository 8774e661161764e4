"""vg-attach's docs transcripts (docs/commands/vg-attach.md): valgrinds started by the recipe
itself, outside gdb, with a TMPDIR private to the run (so vg-attach lists only them, whatever
else runs on the machine), and killed afterwards.

Each program (examples/valgrind/memleakloop.c) reads its stdin, a pipe kept open, between
rounds: it is blocked in read(2) after round 1, so what it leaked is always the same."""
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.support.gdbrun import REPO

#: pids (ours and the processes' pids in listings, commands and messages), valgrind's logs
MASK = [(r"(vg-attach )\d+", r"\1N"), (r"(?m)^\d+(\s+memcheck)", r"N\1"), (r"\bkill \d+", "kill N"),
        (r"(pid:\s+)\d+", r"\1N"), (r"\b(pid|process) \d+", r"\1 N"),
        (r"\b(attach main pid|PTRACE_ATTACH pid) \d+", r"\1 N"), (r"pc=0x[0-9a-f]+", "pc=ADDR"),
        (r"-{3,}", "---")]

_RUNNING: list = []


def _build(tmp: Path) -> Path:
    out = tmp / "memleakloop"
    subprocess.run(["gcc", "-g", "-O0", f"-fdebug-prefix-map={REPO}=.", "-o", str(out),
                    str(REPO / "examples" / "valgrind" / "memleakloop.c")], check=True, cwd=REPO)
    return out


def _valgrind(tmp: Path, log: str) -> subprocess.Popen:
    """valgrind --vgdb=yes ./memleakloop, blocked in read(2) after its first round."""
    proc = subprocess.Popen(["valgrind", "--vgdb=yes", f"--log-file={tmp / 't' / log}", "./memleakloop"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, text=True, cwd=tmp,
                            env=dict(os.environ, TMPDIR=str(tmp / "t"), LANG="C.UTF-8"))
    _RUNNING.append(proc)
    line = proc.stdout.readline()
    if "begin to alloc memory" not in line:
        raise RuntimeError(f"memleakloop under valgrind said {line!r}")
    proc.stdout.readline()              # "round 1 ...": now waiting on its stdin
    return proc


def _two_and_a_holder(tmp: Path) -> dict:
    (tmp / "t").mkdir()
    _build(tmp)
    first, second = _valgrind(tmp, "a.log"), _valgrind(tmp, "b.log")
    holder = subprocess.Popen(["vgdb", f"--pid={second.pid}"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(os.environ, TMPDIR=str(tmp / "t")))
    _RUNNING.append(holder)
    time.sleep(1)                       # connected to valgrind's gdbserver
    return {"pid1": first.pid, "pid2": second.pid}


def _noptrace(tmp: Path) -> dict:
    """A vgdb that cannot ptrace (a seccomp filter: the program of test_valgrind_vgdb.py), and a
    valgrind blocked in read(2), which vgdb can only reach through ptrace."""
    from tests.integration.test_valgrind_vgdb import NOPTRACE_C

    (tmp / "t").mkdir()
    _build(tmp)
    (tmp / "noptrace.c").write_text(NOPTRACE_C)
    subprocess.run(["gcc", "-o", str(tmp / "noptrace"), str(tmp / "noptrace.c")], check=True)
    wrapper = tmp / "vgdb-noptrace"
    wrapper.write_text(f"#!/bin/sh\nexec {tmp / 'noptrace'} {shutil.which('vgdb')} \"$@\"\n")
    wrapper.chmod(0o755)
    return {"pid": _valgrind(tmp, "blocked.log").pid}


def _stop_all():
    while _RUNNING:
        proc = _RUNNING.pop()
        with contextlib.suppress(ProcessLookupError):
            if proc.args[0] == "valgrind":          # its own session: valgrind and its children
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            if f:
                f.close()


def recipes(Recipe) -> dict:
    vg = dict(env={"TMPDIR": "{tmp}/t"}, doc_length_tmp=True, cleanup=_stop_all, width=100, loose=True,
              mask=MASK, timeout=300)
    return {
        "vg-attach-two": Recipe(["vg-attach", "vg-attach {pid2}", "vg-attach {pid1}",
                                 "vg-leaks --kinds definite --top 2", "vg-attach --reconnect"],
                                prepare=_two_and_a_holder, **vg),
        "vg-attach-noptrace": Recipe(["vg-attach {pid}"], prepare=_noptrace,
                                     setup=["python import os; os.environ['GDB_TOOLKIT_VGDB'] = "
                                            "'{tmp}/vgdb-noptrace'"], **vg),
    }
