"""Run a fuzz target (coverage-guided, atheris/libFuzzer) or replay inputs through it.

    python3 -m tests.fuzz.run --list
    python3 -m tests.fuzz.run procfs_maps --seconds 600          # a long run
    python3 -m tests.fuzz.run procfs_maps --replay crash-1234     # reproduce a finding
    python3 -m tests.fuzz.run --all --seconds 600                 # every target, one after the other

Run from the checkout root.  Fuzzing re-executes itself with the fuzz venv's Python
(scripts/setup.d/fuzz.sh); ``--replay`` works with any Python.  The seed corpus in
tests/fuzz/corpus/<target>/ is copied to a private working directory (libFuzzer adds what it
finds there; ``--keep DIR`` keeps it), so runs never write into the checkout.  The last line is
a summary: ``FUZZ target=NAME runs=N seconds=S new_units=U findings=F``.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fuzz import framework  # noqa: E402


def _fuzz_in_process(name: str, corpus: str, flags: list[str], memory_mb: int) -> None:
    """Inside the venv: instrument the toolkit, set the bounds, hand over to libFuzzer."""
    import atheris

    framework.limit_memory(memory_mb)
    with atheris.instrument_imports(include=["gdb_toolkit", "elftools"]):
        target = framework.load(name)
        import gdb_toolkit.common  # noqa: F401  (instrumented even if the target imports lazily)

    def one(data: bytes) -> None:
        framework.run_one(target, data)

    sys.argv = [sys.argv[0], corpus, *flags]        # libFuzzer reads its flags from here
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


def fuzz(name: str, seconds: float, seed: int | None, memory_mb: int, keep: str | None,
         runs: int | None = None, quiet: bool = False) -> dict:
    """Run *name* for *seconds* in a child (venv Python, nice 10 when long); returns a summary."""
    target = framework.load(name)
    python = framework.venv_python()
    if not python.exists():
        raise SystemExit(f"no fuzz venv at {python}: run bash scripts/setup.d/fuzz.sh")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=f"gdb_toolkit-fuzz-{name}-"))
    corpus = work / "corpus"
    artifacts = work / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(exist_ok=True)
    for seed_file in target.seeds():
        shutil.copy(seed_file, corpus / seed_file.name)
    flags = [f"-max_total_time={int(max(1, seconds))}", f"-max_len={target.max_len}",
             f"-timeout={int(max(5, target.per_input_seconds * 5))}", f"-rss_limit_mb={memory_mb}",
             f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
    if runs:
        flags.append(f"-runs={runs}")
    if seed is not None:
        flags.append(f"-seed={seed}")
    if target.dictionary:
        dict_file = work / "dict"
        dict_file.write_text("".join('"' + "".join(f"\\x{b:02x}" for b in tok) + '"\n'
                                     for tok in target.dictionary))
        flags.append(f"-dict={dict_file}")
    argv = [str(python), "-m", "tests.fuzz.run", "--child", name, str(memory_mb), str(corpus), *flags]
    if seconds > 120:
        argv = ["nice", "-n", "10", *argv]
    t0 = time.monotonic()
    env = dict(os.environ, **{framework.SCRATCH_ENV: str(work / "scratch")})
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, errors="replace",
                          timeout=seconds + 300, env=env)
    elapsed = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    (work / "log.txt").write_text(log)
    stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", log))
    found = sorted(str(p) for p in artifacts.iterdir())
    summary = {"target": name, "runs": int(stats.get("number_of_executed_units", 0)),
               "seconds": round(elapsed, 1), "new_units": int(stats.get("new_units_added", 0)),
               "peak_rss_mb": int(stats.get("peak_rss_mb", 0)), "findings": found,
               "returncode": proc.returncode, "work": str(work), "log_tail": log[-6000:]}
    if not keep and not found and proc.returncode == 0:
        shutil.rmtree(work, ignore_errors=True)
        summary["work"] = None
    return summary


def replay(name: str, files: list[str]) -> int:
    target = framework.load(name)
    bad = 0
    for f in files:
        paths = sorted(Path(f).iterdir()) if Path(f).is_dir() else [Path(f)]
        for p in paths:
            try:
                framework.run_one(target, p.read_bytes())
            except Exception as exc:
                bad += 1
                import traceback
                print(f"FINDING {p}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
    return bad


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:               # inside the venv: NAME MEMORY_MB CORPUS FLAGS...
        name, memory_mb, corpus, *flags = argv[1:]
        _fuzz_in_process(name, corpus, flags, int(memory_mb))
        return 0
    ap = argparse.ArgumentParser(prog="python3 -m tests.fuzz.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", nargs="?")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--all", action="store_true", help="every target, one after the other")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--memory-mb", type=int, default=framework.DEFAULT_MEMORY_MB)
    ap.add_argument("--keep", help="working directory to keep (corpus, artifacts, log)")
    ap.add_argument("--replay", nargs="+", metavar="FILE_OR_DIR")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(framework.target_names()))
        return 0
    if a.replay:
        return 1 if replay(a.target, a.replay) else 0
    names = framework.target_names() if a.all else [a.target]
    if not names or names == [None]:
        ap.error("give a target (see --list) or --all")
    status = 0
    for name in names:
        keep = os.path.join(a.keep, name) if (a.keep and a.all) else a.keep
        s = fuzz(name, a.seconds, a.seed, a.memory_mb, keep, a.runs)
        if s["findings"] or s["returncode"] not in (0,):
            status = 1
            print(s["log_tail"])
        print(f"FUZZ target={name} runs={s['runs']} seconds={s['seconds']} new_units={s['new_units']} "
              f"peak_rss_mb={s['peak_rss_mb']} findings={len(s['findings'])} rc={s['returncode']}"
              + (f" work={s['work']}" if s["work"] else ""), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
