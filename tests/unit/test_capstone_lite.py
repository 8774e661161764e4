"""common.capstone_lite (the private binding of the capstone package's libcapstone) gives what
the package's ``Cs.disasm_lite`` gives -- the oracle is the package itself, over real code
(libc .text and PLTs of four architectures, kernel modules) and random bytes -- releases what
it allocates, and leaves every loader or version it does not know to the package."""
import gc
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gdb_toolkit.common import capstone_lite, disasm
from tests.support import capstone_diff

REPO = Path(__file__).resolve().parents[2]
CAPSTONE = "/usr/lib/python3/dist-packages/capstone/__init__.py"


def test_binds_debians_library_and_version():
    lib = capstone_lite.load()
    assert lib is not None
    cs = disasm._import_capstone()
    assert lib.where == "libcapstone.so.4" and cs.__file__ == CAPSTONE
    assert lib.api == (cs.CS_API_MAJOR, cs.CS_API_MINOR) == cs.cs_version()[:2]


def test_same_listing_as_the_package_on_real_and_random_code():
    lines = []
    r = capstone_diff.run(1 << 16, out=lines.append)
    text = "\n".join(lines)
    for arch in ("x86_64", "i386", "aarch64", "arm"):       # scripts/setup.sh installs these libcs
        assert any(ln.startswith(f"{arch} ") and "libc.so.6:.text" in ln and "instructions equal" in ln
                   for ln in lines), text
    assert r["instructions"] > 100_000, text


def test_same_listing_as_the_package_on_kernel_code():
    found = [p for _, p, _ in capstone_diff.REAL[-2:] if glob.glob(p)]
    if not found:
        pytest.skip("no guest kernel modules cached (tests/guest builds them: "
                    "/var/cache/gdb_toolkit/guest)")
    lines = []
    capstone_diff.run(1 << 18, out=lines.append)
    assert any(".ko:.text" in ln for ln in lines), lines


def test_batches_give_the_same_listing_as_one_call(monkeypatch):
    """cs_disasm runs on BATCH instructions at a time: any batch size, same listing."""
    lib = capstone_lite.load()
    code = capstone_diff.sections("/lib/x86_64-linux-gnu/libc.so.6", [".text"])[0][2][:20000]
    with lib.open(capstone_lite.ARCH_X86, capstone_lite.MODE_64) as e:
        whole = e.disasm_lite(code, 0x1000)
        for batch in (1, 2, 3, 1000):
            monkeypatch.setattr(capstone_lite, "BATCH", batch)
            assert e.disasm_lite(code, 0x1000) == whole
            assert e.disasm_lite(code, 0x1000, 5) == whole[:5]
            assert e.disasm_lite(code, (1 << 64) - 16) == e.disasm_lite(code, (1 << 64) - 16)


class Counting:
    """Counts the library calls an engine makes (and the instructions cs_disasm returned)."""

    def __init__(self, lib):
        self.cdll_owner = lib
        self.cdll = lib.cdll
        self.calls = {"cs_open": 0, "cs_close": 0, "cs_disasm": 0, "cs_free": 0}
        self.decoded = self.freed = 0
        self.corrupt = False        # write a non-ASCII mnemonic into cs_disasm's result


    def __getattr__(self, name):
        fn = getattr(self.cdll, name)

        def call(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            r = fn(*args)
            if name == "cs_disasm":
                self.decoded += r
                if self.corrupt and r:      # the first instruction's mnemonic, in place
                    import ctypes
                    import struct

                    layout = self.cdll_owner.insn.format.replace("32s160sP", "")
                    ctypes.memmove(args[-1]._obj.value + struct.calcsize(layout), b"\xff\0", 2)
            if name == "cs_free":
                self.freed += args[1]
            return r
        return call


def test_every_result_is_freed_and_every_handle_closed(monkeypatch):
    lib = capstone_lite.load()
    counting = Counting(lib)
    lib.cdll = counting
    monkeypatch.setattr(capstone_lite, "BATCH", 3)
    e = lib.open(capstone_lite.ARCH_X86, capstone_lite.MODE_64)
    e.disasm_lite(b"\x90" * 10 + b"\xff\xff", 0x1000)       # 4 batches, the last stops at (bad)
    e.disasm_lite(b"", 0)
    counting.corrupt = True
    with pytest.raises(UnicodeDecodeError):               # an exception while copying: still freed
        e.disasm_lite(b"\x90\x90", 0)
    counting.corrupt = False
    assert counting.decoded == counting.freed == 12 and counting.calls["cs_free"] == 5
    e.close()
    e.close()                                             # idempotent
    with pytest.raises(ValueError):
        e.disasm_lite(b"\x90", 0)
    with lib.open(capstone_lite.ARCH_ARM64, capstone_lite.MODE_ARM):
        pass
    lib.open(capstone_lite.ARCH_ARM, capstone_lite.MODE_ARM)   # dropped: closed when collected
    gc.collect()
    assert counting.calls["cs_open"] == counting.calls["cs_close"] == 3
    with pytest.raises(capstone_lite.CsLiteError):
        lib.open(99, 0)                                   # cs_open's error is raised, no handle kept
    assert counting.calls["cs_close"] == 3


def _with_source(monkeypatch, tmp_path, text: str, lib_files=()):
    (tmp_path / "lib").mkdir()
    for name in lib_files:
        os.symlink("/usr/lib/x86_64-linux-gnu/libcapstone.so.4", tmp_path / "lib" / name)
    monkeypatch.setattr(capstone_lite, "package_source", lambda: (str(tmp_path), text.encode()))


WHEEL_LOADER = """CS_API_MAJOR = {major}\nCS_API_MINOR = 0\n
_path_list = [os.getenv('LIBCAPSTONE_PATH', None), join(split(__file__)[0], 'lib')]\n"""


@pytest.mark.parametrize("source,files,env,expected", [
    (WHEEL_LOADER.format(major=4), ["libcapstone.so"], None, "lib/libcapstone.so"),
    (WHEEL_LOADER.format(major=4), ["libcapstone.so.4"], None, "lib/libcapstone.so.4"),
    (WHEEL_LOADER.format(major=4), ["libcapstone.so"], "/elsewhere", None),   # the user's choice
    (WHEEL_LOADER.format(major=4), [], None, None),                          # a global load
    (WHEEL_LOADER.format(major=6), ["libcapstone.so"], None, None),          # layout not bound
    ("CS_API_MAJOR = 4\nCS_API_MINOR = 0\n_cs = ctypes.cdll.LoadLibrary(\"libcapstone.so.4\")\n",
     [], None, "libcapstone.so.4"),                                          # Debian's
    ("CS_API_MAJOR = 4\nCS_API_MINOR = 0\n_cs = load_it_somehow()\n", [], None, None),
    ("_cs = ctypes.cdll.LoadLibrary(\"libcapstone.so.4\")\n", [], None, None),  # no API version
])
def test_locates_only_the_loaders_it_knows(monkeypatch, tmp_path, source, files, env, expected):
    _with_source(monkeypatch, tmp_path, source, files)
    if env is None:
        monkeypatch.delenv("LIBCAPSTONE_PATH", raising=False)
    else:
        monkeypatch.setenv("LIBCAPSTONE_PATH", env)
    where = capstone_lite.locate()
    if expected is None:
        assert where is None
    else:
        assert where[0] == (str(tmp_path / expected) if "/" in expected else expected)


def test_a_library_of_another_version_than_the_binding_is_left_to_the_package(monkeypatch, tmp_path):
    """The package's Cs() refuses a library whose version is not its API (CsError): so do we."""
    _with_source(monkeypatch, tmp_path, WHEEL_LOADER.format(major=5), ["libcapstone.so"])
    monkeypatch.delenv("LIBCAPSTONE_PATH", raising=False)
    assert capstone_lite.locate() is not None and capstone_lite.load() is None


def test_no_package_no_binding(monkeypatch):
    monkeypatch.setattr(capstone_lite, "package_source", lambda: None)
    assert capstone_lite.load() is None


def test_disassemble_is_the_same_through_either_engine(monkeypatch):
    """common.disasm's listing (renamed AArch64 hints, PAC, (bad)) does not depend on the engine."""
    libc = {"x86_64": "/lib/x86_64-linux-gnu/libc.so.6", "aarch64": "/usr/aarch64-linux-gnu/lib/libc.so.6",
            "i386": "/usr/lib32/libc.so.6", "arm": "/usr/arm-linux-gnueabihf/lib/libc.so.6"}
    samples = {arch: capstone_diff.sections(p, [".text"])[0][2][:8192] for arch, p in libc.items()}
    samples["aarch64"] += bytes.fromhex("3f2303d5ff0f5fd6ff0b5fd6")     # paciasp, retaa, retab
    listings = {}
    for kind in ("lite", "package"):
        monkeypatch.setattr(disasm, "_lite", [])
        monkeypatch.setattr(disasm, "_engines", {})
        monkeypatch.setenv("GDB_TOOLKIT_CAPSTONE", kind)
        assert disasm.engine_kind() == kind
        listings[kind] = {a: [str(i) for i in disasm.disassemble(c, 0x400000, a)]
                          for a, c in samples.items()}
    assert listings["lite"] == listings["package"]
    assert "retaa" in "\n".join(listings["lite"]["aarch64"])


def test_the_first_disassembly_does_not_import_the_package():
    code = ("import sys; from gdb_toolkit.common.disasm import disassemble, engine_kind; "
            "print(disassemble(b'\\x55\\xc3', 0x1000)[1].text, engine_kind(), 'capstone' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.stdout.split() == ["ret", "lite", "False"], r.stderr


def test_the_binding_works_before_and_after_ctypes_and_the_package_are_imported():
    """capstone_lite binds through _ctypes without the ctypes package (~1.3 ms of a first call);
    importing ctypes afterwards (the capstone package does: stack-diagnose's fault_insn on a core
    without a fault address) clears _ctypes' pointer-type cache, and the binding must still
    decode -- the same text as the package's own engine."""
    code = ("import sys; from gdb_toolkit.common.disasm import disassemble, engine_kind\n"
            "code = b'\\x55\\x48\\x89\\xe5\\x48\\x8b\\x05\\x10\\x00\\x00\\x00\\xc3'\n"
            "before = [str(i) for i in disassemble(code, 0x1000)]\n"
            "print(engine_kind(), 'ctypes' in sys.modules)\n"
            "import capstone\n"
            "after = [str(i) for i in disassemble(code, 0x1000)]\n"
            "md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)\n"
            "package = [f'{m} {o}'.strip() for _, _, m, o in md.disasm_lite(code, 0x1000)]\n"
            "print(before == after, len(after) == 4, all(p in a for p, a in zip(package, after)))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.stdout.split() == ["lite", "False", "True", "True", "True"], r.stdout + r.stderr


def test_the_doctor_reports_the_package_version_without_importing_it():
    """deps.version_of('capstone') (toolkit doctor's capstone row) is the package's __version__,
    read from its source when the binding is what disassembles."""
    code = ("import sys; from gdb_toolkit.common.deps import version_of; "
            "print(version_of('capstone'), 'capstone' in sys.modules); "
            "import capstone; print(capstone.__version__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    first, second = r.stdout.splitlines()
    assert first == f"{second} False", r.stderr
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO), GDB_TOOLKIT_CAPSTONE="package"),
                       timeout=60)
    first, second = r.stdout.splitlines()
    assert first == f"{second} True", r.stderr          # the package imported: the old way


def test_input_is_bounded():
    from gdb_toolkit.common.errors import ToolkitError

    big = bytes(capstone_lite.MAX_CODE + 1)
    with pytest.raises(ToolkitError):
        disasm.disassemble(big, 0x1000)
    with capstone_lite.load().open(capstone_lite.ARCH_X86, capstone_lite.MODE_64) as e:
        with pytest.raises(ValueError):
            e.disasm_lite(big, 0x1000)
        assert e.disasm_lite(b"\x90" * 3, 0) == [(0, 1, "nop", ""), (1, 1, "nop", ""), (2, 1, "nop", "")]


def test_source_readers_are_the_regexes_they_replace():
    """api_version/debian_soname (no regex compiled on a first call) against re.search with
    the patterns they stand for, on the installed package's source and mutations of it."""
    import random
    import re

    api_re = re.compile(rb"^CS_API_MAJOR = (\d+)\s*$.*?^CS_API_MINOR = (\d+)\s*$", re.M | re.S)
    load_re = re.compile(rb"""^_cs = ctypes\.cdll\.LoadLibrary\(["'](libcapstone\.so\.\d+)["']\)\s*$""",
                         re.M)
    real = Path(CAPSTONE).read_bytes()
    lines = [b"CS_API_MAJOR = 4", b"CS_API_MINOR = 0", b"CS_API_MAJOR = 5 ", b"CS_API_MINOR = 12\r",
             b"CS_API_MAJOR = x", b"CS_API_MINOR =  1", b" CS_API_MINOR = 3", b"CS_API_MAJOR = 4 # c",
             b"_cs = ctypes.cdll.LoadLibrary(\"libcapstone.so.4\")",
             b"_cs = ctypes.cdll.LoadLibrary('libcapstone.so.5') ",
             b"_cs = ctypes.cdll.LoadLibrary(\"libcapstone.so.4')\t",
             b"_cs = ctypes.cdll.LoadLibrary(\"libcapstone.so.\")",
             b"_cs = ctypes.cdll.LoadLibrary(\"libcapstone.so.4\") # x",
             b"_cs = ctypes.cdll.LoadLibrary(libcapstone.so.4)", b"", b"  ", b"import x"]
    rnd = random.Random(3)
    sources = [real, b"", real.replace(b"\n", b"\r\n")]
    sources += [b"\n".join(rnd.choice(lines) for _ in range(rnd.randrange(8))) for _ in range(3000)]
    for src in sources:
        m = api_re.search(src)
        assert capstone_lite.api_version(src) == (
            (int(m.group(1)), int(m.group(2))) if m else None), src
        m = load_re.search(src)
        assert capstone_lite.debian_soname(src) == (m.group(1).decode() if m else None), src
    assert capstone_lite.debian_soname(real) == "libcapstone.so.4"
