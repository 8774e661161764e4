"""Mutation fuzzing of the ELF reader behind got/plt (issue 11): real ELF32/ELF64 files with
random bytes overwritten in their headers, section/program header tables and dynamic
tables, plus the crafted lies of tests/support/plt_crafted.py.  Every input must parse or
fail with the project's clean error (ToolkitError), within bounded time and memory.

Short bounded run in the suite (PLT_FUZZ_SECONDS, default 15 s, seeded and reproducible);
a long run:  PLT_FUZZ_SECONDS=600 PLT_FUZZ_SEED=$RANDOM /usr/bin/python3 -m pytest -q \\
             -p no:cacheprovider tests/unit/test_plt_elf_fuzz.py -s
(sec's coverage-guided framework in tests/fuzz takes this target over when it lands.)"""
import os
import random
import shutil
import struct
import time
import tracemalloc
from pathlib import Path

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.plt import elf_model
from gdb_toolkit.plt.plt_report import plt_report
from gdb_toolkit.plt.slots import LoadedObject, got_report
from tests.support.plt_crafted import MUTATIONS, craft
from tests.support.plt_oracles import build_hello

SECONDS = float(os.environ.get("PLT_FUZZ_SECONDS", "15"))
SEED = int(os.environ.get("PLT_FUZZ_SEED", "1313"))
PER_INPUT = 2.0                     # seconds
PEAK = 200 << 20                    # bytes of Python allocations per input


def _seeds():
    out = [build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy"), build_hello(["-static"], name="hello_static")]
    if shutil.which("i686-linux-gnu-gcc"):
        out.append(build_hello(["-Wl,-z,lazy"], compiler="i686-linux-gnu-gcc", name="h32_lazy"))
    if shutil.which("aarch64-linux-gnu-gcc"):
        out.append(build_hello(["-Wl,-z,lazy"], compiler="aarch64-linux-gnu-gcc", name="hello_a64"))
    return out


def _hot_offsets(data: bytes) -> list[int]:
    """Byte offsets worth mutating: the ELF header, the program and section header tables."""
    is64 = data[4] == 2
    if is64:
        phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x36)
    else:
        phoff, shoff = struct.unpack_from("<II", data, 0x1C)
        phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x2A)
    spots = list(range(0, 0x40))
    spots += list(range(phoff, min(len(data), phoff + phentsize * phnum)))
    spots += list(range(shoff, min(len(data), shoff + shentsize * shnum)))
    return spots


def _exercise(path: str) -> None:
    elf_model.clear_cache()
    m = elf_model.load_model(path)
    obj = LoadedObject(path, 0x10000, m)
    got_report([obj], None, mode="file")
    memory = {s.address + obj.bias: s.file_value for s in m.slots}
    got_report([obj], memory, mode="live")
    plt_report([obj], [obj], None, "file", None)
    m.exports
    m.canonical_plt
    m.versioned
    m.tls_variable(0)
    # the same bytes as an image read from memory (the vDSO path)
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    from gdb_toolkit.plt.elf_file import image_size

    image_size(data[:64])
    img = elf_model.model_from_image("image", data)
    img.exports
    img.slots


FINDINGS = sorted((Path(__file__).resolve().parents[1] / "data" / "plt_fuzz").glob("*.elf"))


@pytest.mark.parametrize("path", FINDINGS, ids=lambda p: p.name)
def test_past_findings_stay_fixed(path):
    """Inputs long runs found (kept as seed corpus): a clean error or a parse, never a crash.
    versym-odd-length.elf (seed 4242, input 11303): an odd-sized .gnu.version made
    struct.iter_unpack raise struct.error."""
    try:
        _exercise(str(path))
    except ToolkitError:
        pass


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_crafted_lies_are_clean_errors(tmp_path, mutation):
    path = craft(build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy"), tmp_path / "c", mutation)
    try:
        _exercise(str(path))
    except ToolkitError:
        pass


def test_random_header_mutations(tmp_path):
    rng = random.Random(SEED)
    seeds = [bytearray(p.read_bytes()) for p in _seeds()] + [bytearray(p.read_bytes()) for p in FINDINGS]
    hot = [_hot_offsets(bytes(s)) if len(s) >= 0x40 else list(range(len(s))) for s in seeds]
    target = tmp_path / "m"
    deadline = time.monotonic() + SECONDS
    runs = errors = 0
    while time.monotonic() < deadline:
        k = rng.randrange(len(seeds))
        data = bytearray(seeds[k])
        for _ in range(rng.randint(1, 8)):
            off = rng.choice(hot[k])
            data[off] = rng.choice((0, 0xFF, rng.randrange(256), data[off] ^ (1 << rng.randrange(8))))
        if rng.random() < 0.1:
            data = data[: rng.randrange(len(data))]           # truncated
        target.write_bytes(bytes(data))
        tracemalloc.start()
        t0 = time.monotonic()
        try:
            _exercise(str(target))
        except ToolkitError:
            errors += 1
        except Exception as exc:                                # a finding: keep the input
            keep = tmp_path / f"crash-{runs}"
            keep.write_bytes(bytes(data))
            raise AssertionError(f"seed {SEED} input {runs}: {type(exc).__name__}: {exc} (saved {keep})")
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        took = time.monotonic() - t0
        assert took < PER_INPUT, f"seed {SEED} input {runs} took {took:.1f}s"
        assert peak < PEAK, f"seed {SEED} input {runs} allocated {peak >> 20} MiB"
        runs += 1
    print(f"plt ELF fuzz: seed {SEED}, {runs} inputs in {SECONDS:.0f}s, {errors} clean errors")
    assert runs > 20
