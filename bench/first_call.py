#!/usr/bin/env python3
"""First-call cost of each command in a fresh gdb (cold) and its second call (warm), side by
side, and the share of the first call spent importing modules.

For each command: gdb -batch runs the set-up, then the command twice under a timer (output
captured), once gdb's worker threads are idle (gdb 13 goes on reading debug info in them for
~0.1 s after `run` or `start`; on 2 CPUs they take the importing thread's CPU, which a user's
typing never sees).  Python's own import profiler (PYTHONPROFILEIMPORTTIME) runs during the
first call: the cumulative times of the outermost imports made by that call are its import
share (wall clock) -- the modules the registry preloads in one pass (common/fast_import.py)
write the same lines; "imports CPU" is the CPU time of this thread in the same outermost
imports (a wrapper around importlib._bootstrap._find_and_load, which every import statement,
from-list and importlib.import_module looks up there, and around the registry's _preload),
which a shared machine disturbs far less.  Each
figure is the median (and minimum) of --runs runs; "load" is the 1-minute load average when
the row was measured.  Target (issue 14): import share < 15 ms per first command.

Every command is measured (the cases are tests/support/first_calls.py's, whose imports
tests/integration/test_foundation.py checks): the user-space ones on programs compiled here,
vg-* inside one valgrind session, the kernel commands on a crafted kcore (tests/support/kcore_fixture) whose
text is real x86_64 code (libc's .text) with a kallsyms naming functions in it, since this
VM's kernel has no /proc/kcore (--kcore/--kallsyms: the options path of the argument
parser).  kprobe-list/kprobe-show end in their "no source of kprobes" error on that dump
after the whole lookup and disassembly (ok = error); ktask ends in its "no /proc/kcore"
error.  On a shared machine the minimum and the CPU figures are the ones to compare, the
wall-clock median shows the load.

    /usr/bin/python3 bench/first_call.py [--runs 5] [--only got,ksym] [--root OTHER-CHECKOUT]
                                         [--compare OTHER-CHECKOUT]

--root measures another checkout (e.g. main before a change) with the same cases; --compare
measures a second one alternately with it, in the same run (each checkout's bytecode is
compiled first, so neither pays it in its first run).  The
machine is shared: the minimum of the runs is printed beside the median (the minimum is
the least disturbed figure for work that does not vary).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GDBINIT = REPO / "gdb_toolkit" / "gdbinit.py"
sys.path.insert(0, str(REPO))
from tests.support.first_calls import cases, programs  # noqa: E402  (tests/integration/test_foundation.py checks them too)

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
TARGET_IMPORT_MS = 15       # issue 14: import share of a command's first call

TIMER = r"""
import gdb, os, sys, time, json
import importlib._bootstrap as _bootstrap
before = list(sys.modules)
# CPU time (this thread's) spent in the outermost imports: the import statement, from-lists
# and importlib.import_module all look _find_and_load up in importlib._bootstrap per import;
# the registry's preloading of a command's first-call modules (common/fast_import.py) imports
# without it and is timed the same way (what either does inside the other counts once)
_imp = {"depth": 0, "cpu": 0.0, "on": False}
def _timed(fn):
    def outermost_timed(*args):
        if _imp["depth"] or not _imp["on"]:
            return fn(*args)
        _imp["depth"] = 1
        t = time.thread_time()
        try:
            return fn(*args)
        finally:
            _imp["cpu"] += time.thread_time() - t
            _imp["depth"] = 0
    return outermost_timed
_find_and_load = _bootstrap._find_and_load
_bootstrap._find_and_load = _timed(_find_and_load)
try:
    from gdb_toolkit.gdbsupport import registry as _registry
    _registry._preload = _timed(_registry._preload)
except (ImportError, AttributeError):      # a checkout from before preloading (--compare)
    pass
def once():
    t = time.perf_counter()
    c = time.thread_time()
    try:
        gdb.execute(CMD, to_string=True)
        ok = True
    except gdb.error:
        ok = False
    return (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000, ok
def _worker_ticks():     # CPU ticks of gdb's worker threads (debug info is read there)
    n = 0
    for t in os.listdir("/proc/self/task"):
        try:
            if open(f"/proc/self/task/{t}/comm").read().startswith("gdb worker"):
                f = open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()
                n += int(f[11]) + int(f[12])
        except OSError:
            pass
    return n
# as a user's typing does, let gdb's background reading end first (at most 3 s): on 2 CPUs its
# two workers otherwise take the importing thread's CPU for ~0.1 s after `run` or `start`
_t, _prev = time.perf_counter(), _worker_ticks()
while time.perf_counter() - _t < 3:
    time.sleep(0.05)
    _cur = _worker_ticks()
    if _cur == _prev:
        break
    _prev = _cur
sys.stderr.write("@@START\n"); sys.stderr.flush()
_imp["on"] = True
cold, cold_cpu, ok = once()
_imp["on"] = False
sys.stderr.write("@@END\n"); sys.stderr.flush()
_bootstrap._find_and_load = _find_and_load
new = [m for m in sys.modules if m not in set(before)]
warm, warm_cpu, _ = once()
print("@@BENCH" + json.dumps({"cold": cold, "warm": warm, "cold_cpu": cold_cpu, "warm_cpu": warm_cpu,
                              "import_cpu": _imp["cpu"] * 1000, "ok": ok, "modules": new}))
"""

def import_share(stderr: str) -> float:
    """ms spent in the outermost imports between the @@START/@@END markers."""
    region = stderr.split("@@START\n", 1)[-1].split("@@END\n", 1)[0]
    rows = []
    for ln in region.splitlines():
        if ln.startswith("import time:") and "|" in ln:
            _, cum, name = ln[len("import time:"):].split("|", 2)
            if cum.strip().isdigit():
                rows.append((len(name) - len(name.lstrip()), int(cum)))
    if not rows:
        return 0.0
    top = min(indent for indent, _ in rows)
    return sum(cum for indent, cum in rows if indent == top) / 1000


def gdb(setup, program, script: str, gdbinit: Path = GDBINIT) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        argv = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                "-ex", f"source {gdbinit}", *sum((["-ex", c] for c in setup), []),
                "-ex", f"source {f.name}"] + ([str(program)] if program else [])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                              env=dict(ENV, PYTHONPROFILEIMPORTTIME="1"), stdin=subprocess.DEVNULL)
    finally:
        os.unlink(f.name)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@BENCH")), None)
    if line is None:
        raise RuntimeError(f"no result: {proc.stdout[-2000:]}")
    result = json.loads(line[len("@@BENCH"):])
    result["import"] = import_share(proc.stderr)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", help="comma-separated labels (prefix match)")
    ap.add_argument("--root", type=Path, default=REPO, help="the checkout to measure")
    ap.add_argument("--compare", type=Path, help="another checkout, measured alternately with --root")
    opts = ap.parse_args()
    roots = [opts.root.resolve()] + ([opts.compare.resolve()] if opts.compare else [])
    for r in roots:     # a fresh copy (git archive) would compile its modules in its first run
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(r / "gdb_toolkit")],
                       env=ENV, stdout=subprocess.DEVNULL, check=False)
    tmp = Path(tempfile.mkdtemp(prefix="gtk-bench-"))
    try:
        run(opts, roots, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)      # vg-start's output and log files


def run(opts, roots, tmp: Path) -> None:
    p = programs(tmp)
    print(f"{opts.runs} runs each, alternating checkouts: median (min) ms; imports = wall-clock "
          "share (PYTHONPROFILEIMPORTTIME), imports CPU = this thread's CPU time in the same "
          "imports; load = 1-minute load average after the row")
    for i, r in enumerate(roots):
        print(f"  [{i}] {r}")
    print(f"{'command':24} {'':3} {'cold':>14} {'warm':>12} {'imports':>13} {'imports CPU':>13} "
          f"{'modules':>7} {'load':>4}  ok   target")
    for label, setup, program, cmd in cases(p, tmp):
        if opts.only and not any(label.startswith(o) for o in opts.only.split(",")):
            continue
        figs = [{"cold": [], "warm": [], "import": [], "import_cpu": [], "mods": 0, "ok": True}
                for _ in roots]
        for _ in range(opts.runs):
            for f, root in zip(figs, roots):
                r = gdb(setup, program, f"CMD = {cmd!r}\n" + TIMER, root / "gdb_toolkit" / "gdbinit.py")
                for k in ("cold", "warm", "import", "import_cpu"):
                    f[k].append(r[k])
                f["mods"] = len(r["modules"])
                f["ok"] = f["ok"] and r["ok"]
        load = os.getloadavg()[0]

        def fig(xs, w):
            return f"{statistics.median(xs):.1f} ({min(xs):.1f})".rjust(w)

        for i, f in enumerate(figs):
            share = statistics.median(f["import"])
            verdict = "met" if share < TARGET_IMPORT_MS else "over"
            ratio = ""
            if i and statistics.median(f["cold"]):
                ratio = f"  cold [0]/[{i}] {statistics.median(figs[0]['cold']) / statistics.median(f['cold']):.2f}x"
            print(f"{label if i == 0 else '':24} [{i}] {fig(f['cold'], 14)} {fig(f['warm'], 12)} "
                  f"{fig(f['import'], 13)} {fig(f['import_cpu'], 13)} {f['mods']:7d} {load:4.1f}  "
                  f"{'yes' if f['ok'] else 'error'}  imports < {TARGET_IMPORT_MS} ms: {verdict}{ratio}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
