"""A short bounded run of the valgrind monitor-output fuzz target (tests/fuzz/targets/
valgrind_monitor.py) over its seed corpus and seeded mutations of it; long, coverage-guided
runs use the fuzz framework's runner (tests/fuzz, atheris)."""
import random
import time
from pathlib import Path

from gdb_toolkit.common.errors import ToolkitError
from tests.fuzz.targets.valgrind_monitor import DICT, MAX_LEN, fuzz

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "valgrind_monitor"


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[pos:pos + rng.randint(1, 64)]
        elif op == 1:
            b[pos:pos] = rng.choice(DICT)
        elif op == 2 and b:
            b[pos % len(b)] = rng.randrange(256)
        elif op == 3 and b:
            start = rng.randrange(len(b))
            b[pos:pos] = b[start:start + rng.randint(1, 200)]
        else:
            b[pos:pos] = str(rng.choice([0, 1, -1, 2**63, 10**30, 4096])).encode()
    return bytes(b[:MAX_LEN])


def test_fuzz_target_over_corpus_and_mutations():
    seeds = [p.read_bytes() for p in sorted(CORPUS.iterdir())]
    assert len(seeds) >= 20
    rng = random.Random(15)
    deadline = time.monotonic() + 20
    runs = 0
    for data in seeds:
        fuzz(data)
        runs += 1
    while time.monotonic() < deadline and runs < 3000:
        data = mutate(rng, rng.choice(seeds))
        try:
            fuzz(data)
        except ToolkitError:
            pass
        runs += 1
    assert runs > 100
