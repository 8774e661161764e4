"""The fuzzing framework of issue 11: targets, the one rule they enforce, per-input bounds.

A *target* is a module ``tests/fuzz/targets/<name>.py`` defining::

    def fuzz(data: bytes) -> None     # feed one input to one parser; check invariants
    MAX_LEN = 4096                     # optional: longest input libFuzzer makes (bytes)
    DICT = [b"...", ...]               # optional: tokens of the format (libFuzzer dictionary)
    ALLOWED = (SomeError,)             # optional: more exceptions that are the parser's contract
    PER_INPUT_SECONDS = 2.0            # optional: CPU-time budget of one input

and a seed corpus ``tests/fuzz/corpus/<name>/`` (small real-world files, checked in; a finding
once fixed is added there so it stays fixed).

The rule: **the only exception a parser may raise on bad data is ToolkitError** (plus the
target's documented ``ALLOWED``).  ``run_one`` enforces it: anything else (IndexError,
struct.error, UnicodeDecodeError, RecursionError, MemoryError, OverflowError...) is a finding,
and so is an input that takes longer than ``PER_INPUT_SECONDS`` of CPU time (``SlowInput``,
raised from SIGVTALRM: libFuzzer owns SIGALRM for its own hard ``-timeout``).  Memory is bounded
for the whole fuzzing process with RLIMIT_AS (``limit_memory``), so one input asking for
gigabytes raises MemoryError -- a finding -- instead of swapping the machine.
"""
import atexit
import importlib
import os
import resource
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gdb_toolkit.common.errors import ToolkitError

HERE = Path(__file__).resolve().parent
TARGETS_DIR = HERE / "targets"
CORPUS_DIR = HERE / "corpus"
DEFAULT_MAX_LEN = 4096
DEFAULT_PER_INPUT_SECONDS = 2.0
DEFAULT_MEMORY_MB = 3072


class SlowInput(BaseException):
    """One input used more CPU time than the target's budget (a BaseException so that a
    parser's ``except Exception`` cannot swallow it)."""


class Finding(Exception):
    """A target broke the rule: *kind* is the exception's type name."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass
class Target:
    name: str
    fuzz: object
    max_len: int
    dictionary: list
    allowed: tuple
    per_input_seconds: float

    @property
    def corpus(self) -> Path:
        return CORPUS_DIR / self.name

    def seeds(self) -> list[Path]:
        return sorted(p for p in self.corpus.iterdir() if p.is_file()) if self.corpus.is_dir() else []


def target_names() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.py") if not p.stem.startswith("_"))


def load(name: str) -> Target:
    mod = importlib.import_module(f"tests.fuzz.targets.{name}")
    return Target(name, mod.fuzz, getattr(mod, "MAX_LEN", DEFAULT_MAX_LEN),
                  list(getattr(mod, "DICT", [])), tuple(getattr(mod, "ALLOWED", ())),
                  float(getattr(mod, "PER_INPUT_SECONDS", DEFAULT_PER_INPUT_SECONDS)))


def _on_vtalrm(signum, frame):
    raise SlowInput("input exceeded its CPU-time budget")


def run_one(target: Target, data: bytes) -> None:
    """Feed *data* to *target* under the rule and the time budget; raise Finding on a breach."""
    old = signal.signal(signal.SIGVTALRM, _on_vtalrm)
    signal.setitimer(signal.ITIMER_VIRTUAL, target.per_input_seconds)
    try:
        target.fuzz(data)
    except ToolkitError as exc:
        if "\n" in str(exc) and not hasattr(exc, "usage"):
            raise Finding("MultiLineError", f"a ToolkitError must be one line: {str(exc)[:200]!r}")
    except target.allowed:
        pass
    except SlowInput:
        raise Finding("SlowInput", f"more than {target.per_input_seconds}s of CPU for "
                                   f"{len(data)} bytes") from None
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old)


SCRATCH_ENV = "GDB_TOOLKIT_FUZZ_SCRATCH"
_scratch: dict[str, str] = {}


def scratch_dir(name: str) -> str:
    """A private directory for a target that must hand its parser a file (made on first use).

    Under ``tests.fuzz.run`` it lives in the run's working directory ($GDB_TOOLKIT_FUZZ_SCRATCH),
    removed with it: libFuzzer ends the process with exit(), which skips Python's atexit.
    Elsewhere (seed replay in pytest, ``--replay``) it is a mkdtemp removed at exit."""
    if name not in _scratch:
        base = os.environ.get(SCRATCH_ENV)
        if base:
            os.makedirs(base, mode=0o700, exist_ok=True)
        d = tempfile.mkdtemp(prefix=f"{name}-", dir=base or None)
        if not base:
            atexit.register(shutil.rmtree, d, True)
        _scratch[name] = d
    return _scratch[name]


def limit_memory(megabytes: int = DEFAULT_MEMORY_MB) -> None:
    """Cap this process's address space (inputs that ask for more get MemoryError)."""
    limit = megabytes << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def venv_python() -> Path:
    """The fuzz venv's interpreter (scripts/setup.d/fuzz.sh creates it)."""
    venv = os.environ.get("GDB_TOOLKIT_FUZZ_VENV") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gdb_toolkit", "fuzz-venv")
    return Path(venv) / "bin" / "python"
