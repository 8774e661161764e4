#!/usr/bin/env python3
"""gdb start-up time with and without gdb_toolkit, measured side by side.

Runs `gdb -nx -batch` bare and with `source gdb_toolkit/gdbinit.py`, alternating
the two so machine noise hits both alike, and prints the medians, the overhead
in ms and the ratio.  Target: under 20 ms added.

    /usr/bin/python3 bench/startup.py [--runs 40]
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
    runs = ap.parse_args().runs
    bare_cmd = BASE
    with_cmd = BASE + ["-ex", f"source {GDBINIT}"]
    once(bare_cmd), once(with_cmd)  # warm the page cache
    bare, loaded = [], []
    for _ in range(runs):
        bare.append(once(bare_cmd))
        loaded.append(once(with_cmd))
    mb, ml = statistics.median(bare), statistics.median(loaded)
    print(f"runs each            {runs} (alternating)")
    print(f"bare gdb    median   {mb:7.1f} ms")
    print(f"gdb_toolkit median   {ml:7.1f} ms")
    print(f"overhead             {ml - mb:7.1f} ms  (target < 20 ms)")
    print(f"ratio                {ml / mb:7.3f}x")


if __name__ == "__main__":
    main()
