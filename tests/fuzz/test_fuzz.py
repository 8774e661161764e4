"""The fuzz targets of tests/fuzz/targets (issue 11): every seed replays clean, and every target
gets a short coverage-guided run (atheris) under the rule "the only exception a parser may raise
on bad data is ToolkitError", with per-input CPU time and whole-process memory bounds.

Budget: about 90 s for all targets together (GDB_TOOLKIT_FUZZ_SECONDS sets seconds per target);
runs use a fixed libFuzzer seed so a failure here reproduces.  Long runs: docs/testing.md."""
import os
import subprocess
import sys
import tempfile

import pytest

from tests.fuzz import framework
from tests.fuzz.run import fuzz

NAMES = framework.target_names()
TOTAL_BUDGET = 90.0


def per_target_seconds() -> float:
    if os.environ.get("GDB_TOOLKIT_FUZZ_SECONDS"):
        return float(os.environ["GDB_TOOLKIT_FUZZ_SECONDS"])
    return max(3.0, min(10.0, TOTAL_BUDGET / max(1, len(NAMES))))


@pytest.mark.parametrize("name", NAMES)
def test_seed_corpus_replays_clean(name):
    target = framework.load(name)
    seeds = target.seeds()
    assert seeds, f"tests/fuzz/corpus/{name}/ has no seeds"
    for seed in seeds:
        framework.run_one(target, seed.read_bytes())


@pytest.fixture
def private_tmpdir(tmp_path, monkeypatch):
    """TMPDIR (this process and its children) is an empty directory of the test's own."""
    d = tmp_path / "tmpdir"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.mark.parametrize("name", NAMES)
def test_bounded_fuzz_run(name, private_tmpdir):
    if not framework.venv_python().exists():
        pytest.fail(f"no fuzz venv at {framework.venv_python()}: run bash scripts/setup.d/fuzz.sh "
                    "(scripts/test.sh does)")
    s = fuzz(name, per_target_seconds(), seed=1, memory_mb=framework.DEFAULT_MEMORY_MB, keep=None)
    assert s["runs"] > 0, s["log_tail"]
    assert not s["findings"] and s["returncode"] == 0, (
        f"{name}: finding(s) {s['findings']} -- reproduce with "
        f"python3 -m tests.fuzz.run {name} --replay FILE\n{s['log_tail']}")
    assert not os.listdir(private_tmpdir), f"{name}: a fuzz run left {os.listdir(private_tmpdir)}"


@pytest.mark.parametrize("name", NAMES)
def test_replay_leaves_no_temporary_files(name, private_tmpdir):
    """A target that needs a file (the ELF reader reads a path) uses framework.scratch_dir(),
    which is removed when the process ends, also under libFuzzer (checked above)."""
    target = framework.load(name)
    r = subprocess.run([sys.executable, "-m", "tests.fuzz.run", name, "--replay", str(target.corpus)],
                       cwd=framework.HERE.parent.parent, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.listdir(private_tmpdir), f"{name}: replay left {os.listdir(private_tmpdir)}"


@pytest.mark.parametrize("data,kind", [(b"BUG", "IndexError"), (b"SLOW", "SlowInput"),
                                       (b"BIG", "MemoryError"), (b"TWO", "MultiLineError")])
def test_framework_reports_every_kind_of_breach(data, kind, monkeypatch):
    target = framework.load("_selftest")
    framework.run_one(target, b"OK")                  # a ToolkitError is the contract: fine
    framework.run_one(target, b"anything")
    import resource
    old = resource.getrlimit(resource.RLIMIT_AS)
    framework.limit_memory(4096)
    try:
        with pytest.raises(BaseException) as e:
            framework.run_one(target, data)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)
    got = e.value.kind if isinstance(e.value, framework.Finding) else type(e.value).__name__
    assert got == kind


def test_atheris_run_reports_a_finding():
    """The coverage-guided wiring catches a rule breach and writes the input as an artifact."""
    if not framework.venv_python().exists():
        pytest.fail(f"no fuzz venv at {framework.venv_python()}: run bash scripts/setup.d/fuzz.sh")
    s = fuzz("_selftest", 5, seed=1, memory_mb=framework.DEFAULT_MEMORY_MB, keep=None)
    try:
        assert s["findings"] and s["returncode"] != 0, s["log_tail"]
        assert "IndexError" in s["log_tail"]
    finally:
        import shutil
        if s["work"]:
            shutil.rmtree(s["work"], ignore_errors=True)
