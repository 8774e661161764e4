#!/usr/bin/env python3
"""stack-diagnose speed, side by side with plain `bt` in the same gdb.

Cases: a 100 000-frame recursion fault (examples/stack/recurse.c), the seed program
(examples/stack/teststack.c 1920 1080), and the same recursion on a 1 GiB stack (13.4 M
frames: the live chain is followed through 1 GiB of stack memory; plain `bt` is not timed
there -- it would print 13 million lines).  Targets: < 1 s, < 0.2 s and < 5 s for
stack-diagnose.  Each figure is the best of REPEAT runs of the command inside one gdb session.

    /usr/bin/python3 bench/stack.py
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPEAT = 3
TIMER = ("python\nimport time\n"
         "def _gtk_time(cmd, tag):\n"
         "    times = []\n"
         "    for _ in range({n}):\n"
         "        gdb.execute('flushregs', to_string=True)\n"
         "        t = time.perf_counter(); out = gdb.execute(cmd, to_string=True)\n"
         "        times.append(time.perf_counter() - t)\n"
         "    print(f'@@{{tag}} {{min(times):.4f}} {{len(out.splitlines())}} {{times[0]:.4f}}')\n")


def build(name: str, out: Path) -> Path:
    binary = out / name
    subprocess.run(["gcc", "-g", "-O0", "-o", str(binary), str(REPO / "examples/stack" / f"{name}.c")],
                   check=True)
    return binary


def measure(binary: Path, args: list[str], tmp: Path, stack: int | None = None) -> dict:
    script = tmp / "bench.gdb"
    script.write_text(TIMER.format(n=REPEAT) + "end\n" + "\n".join([
        *([f"set exec-wrapper prlimit --stack={stack}"] if stack else []),
        "run",
        "python _gtk_time('stack-diagnose', 'diag')",
        "python _gtk_time('stack-diagnose --json', 'json')",
        *([] if stack else ["python _gtk_time('bt', 'bt')"]),
        "python _gtk_time('bt 20', 'bt20')",
    ]) + "\n")
    proc = subprocess.run(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                           "-ex", f"source {REPO / 'gdb_toolkit/gdbinit.py'}", "-x", str(script),
                           "--args", str(binary), *args], capture_output=True, text=True, timeout=600)
    found = dict((m[1], (float(m[2]), int(m[3]), float(m[4])))
                 for m in re.finditer(r"^@@(\w+) ([\d.]+) (\d+) ([\d.]+)$", proc.stdout, re.M))
    if len(found) < (3 if stack else 4):
        sys.exit(f"bench failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return found


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cases = [("100 000-frame recursion", build("recurse", tmp), [], 1.0, None),
                 ("seed teststack 1920 1080", build("teststack", tmp), ["1920", "1080"], 0.2, None),
                 ("13.4 M frames (1 GiB)", build("recurse", tmp), [], 5.0, 1 << 30)]
        print(f"{'case':<26} {'stack-diagnose':>15} {'1st run':>8} {'--json':>8} {'bt (all)':>9} "
              f"{'bt 20':>7} {'bt lines':>9} {'bt/diag':>8} {'target':>7}  ok (warm / 1st)")
        for name, binary, args, target, stack in cases:
            r = measure(binary, args, tmp, stack)
            diag, js, bt20 = r["diag"][0], r["json"][0], r["bt20"][0]
            bt, lines = r["bt"][:2] if "bt" in r else (float("nan"), 0)
            first = r["diag"][2]
            print(f"{name:<26} {diag:>14.4f}s {first:>7.3f}s {js:>7.4f}s {bt:>8.4f}s {bt20:>6.4f}s "
                  f"{lines:>9} {bt / diag:>7.1f}x {target:>6.1f}s  "
                  f"{'yes' if max(diag, js) < target else 'NO'} / "
                  f"{'yes' if first < target else 'NO'}")
        print(f"(best of {REPEAT}, each after 'flushregs' so gdb's frame cache starts cold; "
              "'1st run' includes importing capstone/tabulate once per gdb)")
        print(f"load average: {open('/proc/loadavg').read().split()[0]} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
