#!/usr/bin/env python3
"""gdb start-up time with and without gdb_toolkit, measured side by side.

Runs `gdb -nx -batch` bare and with `source gdb_toolkit/gdbinit.py`, alternating
the two so machine noise hits both alike, and prints the medians, the overhead
in ms and the ratio.  Target: under 20 ms added.

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
    print(f"runs each            {runs} (alternating)")
    print(f"bare gdb    median   {mb:7.1f} ms")
    for g, out in zip(inits, loaded):
        ml = statistics.median(out)
        print(f"{str(g.parents[1])}")
        print(f"  gdb_toolkit median {ml:7.1f} ms")
        print(f"  overhead           {ml - mb:7.1f} ms  (target < 20 ms)")
        print(f"  ratio              {ml / mb:7.3f}x")


if __name__ == "__main__":
    main()
