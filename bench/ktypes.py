"""ktypes: the first call for a kernel (cold: bpftool | gcc) and later calls in a new gdb (cached),
with and without the .gdb_index the background helper adds, in one run.

    /usr/bin/python3 bench/ktypes.py            # this host and the QEMU guest
    /usr/bin/python3 bench/ktypes.py --here     # only where it runs (used inside the guest)

Each figure: seconds of `ktypes` plus the first type lookup (`p sizeof(struct task_struct)`,
which makes gdb read the types), inside one gdb (gdb's own start-up is not counted), median of
RUNS.  An empty XDG_CACHE_HOME per cold run.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
GDBINIT = REPO / "gdb_toolkit" / "gdbinit.py"


def timed(cache: str, index: bool) -> float:
    stamp = "python import time; print('@T', time.monotonic())"
    argv = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-ex", f"source {GDBINIT}",
            "-ex", stamp, "-ex", "ktypes", "-ex", "p sizeof(struct task_struct)", "-ex", stamp]
    env = dict(os.environ, XDG_CACHE_HOME=cache, TERM="dumb",
               GDB_TOOLKIT_KTYPES_INDEX="1" if index else "0")
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=1800).stdout
    t = [float(x) for x in re.findall(r"^@T (\S+)", out, re.M)]
    if len(t) != 2 or "$1 = " not in out:
        raise RuntimeError(out[-800:])
    return t[1] - t[0]


def build_before(work: str) -> float:
    """The build as ktypes did it before: bpftool into a header file, then gcc on it, one
    after the other, with variables that anchored the types (and gave them symbols)."""
    t0 = time.monotonic()
    hdr = os.path.join(work, "vmlinux_btf.h")
    with open(hdr, "w") as f:
        subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                       stdout=f, check=True)
    src = os.path.join(work, "ktypes.c")
    with open(src, "w") as f:
        f.write('#include "vmlinux_btf.h"\nstruct task_struct *gtk_ktypes_task_struct;\n')
    subprocess.run(["gcc", "-g", "-fno-eliminate-unused-debug-types", "-w", "-c", src, "-o",
                    os.path.join(work, "ktypes.o")], check=True, cwd=work)
    return time.monotonic() - t0


def build_now(work: str) -> float:
    from gdb_toolkit.ktrace.ktypes_build import compile_types, find_tools

    t0 = time.monotonic()
    compile_types("/sys/kernel/btf/vmlinux", os.path.join(work, "now.o"), work, find_tools())
    return time.monotonic() - t0


def here() -> dict:
    from gdb_toolkit.ktrace import ktypes_index
    from gdb_toolkit.ktrace.ktypes_build import build_id

    cold, cached, indexed, before, now = [], [], [], [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as work:
            before.append(build_before(work))
            now.append(build_now(work))
        with tempfile.TemporaryDirectory() as cache:
            cold.append(timed(cache, index=False))
            cached.append(timed(cache, index=False))
            t0 = time.monotonic()
            ktypes_index.build_index(os.path.join(cache, "gdb_toolkit", "ktypes", "v2", build_id()))
            index_s = time.monotonic() - t0
            indexed.append(timed(cache, index=False))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    return {"where": os.uname().release, "cold": med(cold), "cached": med(cached),
            "indexed": med(indexed), "index_build": index_s, "runs": RUNS,
            "build_before": med(before), "build_now": med(now)}


def show(r: dict) -> None:
    print(f"\n{r['where']} (median of {r['runs']}; ktypes + first type lookup, seconds)")
    print(f"  build only: bpftool > file; gcc (before) {r['build_before']:7.2f}")
    print(f"  build only: bpftool | gcc (now)          {r['build_now']:7.2f}")
    print(f"  cold (bpftool | gcc, then load)      {r['cold']:7.2f}")
    print(f"  cached, new gdb                      {r['cached']:7.2f}")
    print(f"  cached with .gdb_index, new gdb      {r['indexed']:7.2f}   (x{r['cached'] / r['indexed']:.2f}; "
          f"the background index build took {r['index_build']:.1f} s once)")


def main():
    from bench._guest import here_and_in_guest

    here_and_in_guest("ktypes.py", here, show)

if __name__ == "__main__":
    main()
