#!/usr/bin/env python3
"""gdb start-up time with and without gdb_toolkit, measured side by side.

Runs `gdb -nx -batch` bare and with `source gdb_toolkit/gdbinit.py`, alternating
the two so machine noise hits both alike, and prints the medians, the overhead
in ms and the ratio; then the load alone, timed inside gdb around ``source``
(wall and CPU), with --compare's checkout side by side.  Target: under 20 ms
added; the developers' guide keeps the load at ~5 ms.

    /usr/bin/python3 bench/startup.py [--runs 40] [--compare OTHER-CHECKOUT]
"""
import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

GDBINIT = Path(__file__).resolve().parents[1] / "gdb_toolkit" / "gdbinit.py"
BASE = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off"]


# Measure the state users have: Python's bytecode cache written by the first load.
# (A PYTHONDONTWRITEBYTECODE=1 environment would recompile every module at every start.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def once(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL, env=ENV)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--compare", type=Path, help="another checkout, measured alternately")
    opts = ap.parse_args()
    runs = opts.runs
    bare_cmd = BASE
    inits = [GDBINIT] + ([opts.compare.resolve() / "gdb_toolkit" / "gdbinit.py"] if opts.compare else [])
    cmds = [BASE + ["-ex", f"source {g}"] for g in inits]
    once(bare_cmd), [once(c) for c in cmds]  # warm the page cache
    bare, loaded = [], [[] for _ in cmds]
    for _ in range(runs):
        bare.append(once(bare_cmd))
        for c, out in zip(cmds, loaded):
            out.append(once(c))
    mb = statistics.median(bare)
    # the load itself, timed inside gdb around 'source gdbinit.py' (whole-process times
    # swing by more than the load costs): wall and CPU ms, alternating checkouts
    inside = [[] for _ in inits]
    for _ in range(runs):
        for g, out in zip(inits, inside):
            out.append(load_inside(g))
    print(f"runs each            {runs} (alternating)")
    print(f"bare gdb    median   {mb:7.1f} ms")
    first = None
    for g, out, ins in zip(inits, loaded, inside):
        ml = statistics.median(out)
        cpu = statistics.median(c for _, c in ins)
        first = cpu if first is None else first
        print(f"{str(g.parents[1])}")
        print(f"  gdb_toolkit median {ml:7.1f} ms")
        print(f"  overhead           {ml - mb:7.1f} ms  (target < 20 ms)")
        print(f"  ratio              {ml / mb:7.3f}x")
        print(f"  load inside gdb    {statistics.median(w for w, _ in ins):7.2f} ms wall, {cpu:.2f} ms CPU "
              f"(min {min(c for _, c in ins):.2f})" + (f"; first checkout / this {first / cpu:.2f}x"
                                                       if cpu != first else ""))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def load_inside(gdbinit: Path) -> tuple[float, float]:
    """(wall ms, CPU ms) of 'source gdbinit.py' in a fresh gdb."""
    out = subprocess.run(BASE + ["-ex", "python import time; _t0 = time.perf_counter(); "
                                        "_c0 = time.process_time()",
                                 "-ex", f"source {gdbinit}",
                                 "-ex", "python print('@@LOAD', (time.perf_counter() - _t0) * 1000, "
                                        "(time.process_time() - _c0) * 1000)"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, env=ENV).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("@@LOAD"))
    wall, cpu = map(float, line.split()[1:])
    return wall, cpu


if __name__ == "__main__":
    main()
