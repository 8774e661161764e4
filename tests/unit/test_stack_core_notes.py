"""The core-file parser (stack.core_notes), the signal-frame decoder and the initial-stack
reader: real cores checked against readelf, crafted ones raise only the clean error."""
import random
import struct
import subprocess

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.stack.core_notes import (NT_FILE, NT_PRSTATUS, BytesCore,
                                          CoreFormatError, parse_core, read_core)
from gdb_toolkit.stack.initial_stack import find as find_initial_stack
from gdb_toolkit.stack.sigframe import decode
from tests.support.gdbrun import REPO, compile_c, run_gdb


@pytest.fixture(scope="module")
def seed_core(tmp_path_factory):
    prog = compile_c(REPO / "examples/stack/thread_overflow.c", flags=["-g", "-O0", "-pthread"])
    core = tmp_path_factory.mktemp("notes") / "thread.core"
    run_gdb(["run", f"generate-core-file {core}"], program=prog)
    assert core.exists()
    return prog, core


def test_real_core_matches_readelf(seed_core):
    prog, core = seed_core
    info = read_core(str(core))
    notes = subprocess.run(["readelf", "-n", "-W", str(core)], capture_output=True, text=True).stdout
    segs = subprocess.run(["readelf", "-l", "-W", str(core)], capture_output=True, text=True).stdout
    assert info.arch == "x86_64"
    assert len(info.threads) == notes.count("NT_PRSTATUS")
    loads = [ln for ln in segs.splitlines() if ln.strip().startswith("LOAD")]
    assert len([m for m in info.mappings if m.perms != "r--p" or m.path]) >= len(loads) - 1
    # the faulting thread: gdb's gcore writes its siginfo; pr_cursig is SIGSEGV
    faulting = [t for t in info.threads if t.cursig == 11]
    assert faulting and faulting[0].siginfo is not None and faulting[0].siginfo.signo == 11
    assert info.psinfo is not None and info.psinfo.fname == "thread_overflow"
    assert any(m.path == str(prog) for m in info.mappings)          # NT_FILE names
    assert info.auxv.get(6) == 4096                                 # AT_PAGESZ


def _notes(data):
    """(offset of each note, type) in a core."""
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phnum = struct.unpack_from("<H", data, 56)[0]
    out = []
    for i in range(phnum):
        p_type, _f, off, _v, _p, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if p_type == 4:
            pos = off
            while pos + 12 <= off + filesz:
                namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
                out.append((pos, ntype, namesz, descsz))
                pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return out


def crafted(data: bytes):
    """(name, bytes) of cores with lying headers and notes (also used by the gdb-level test)."""
    data = bytes(data)
    notes = _notes(data)

    def patch(fmt, off, value):
        b = bytearray(data)
        struct.pack_into(fmt, b, off, value)
        return bytes(b)

    nt_file = next(n for n in notes if n[1] == NT_FILE)
    desc = nt_file[0] + 12 + ((nt_file[2] + 3) & ~3)
    prs = next(n for n in notes if n[1] == NT_PRSTATUS)
    yield "truncated", data[:len(data) // 3]
    yield "phnum-huge", patch("<H", data.find(b"") + 56, 0xFFFE)
    yield "phoff-past-end", patch("<Q", 32, len(data) * 4)
    yield "phentsize", patch("<H", 54, 32)
    yield "ntfile-count-2^60", patch("<Q", desc, 1 << 60)
    yield "ntfile-pagesize-0", patch("<Q", desc + 8, 0)
    yield "ntfile-end-below-start", patch("<Q", desc + 16 + 8, 0)
    yield "note-descsz-huge", patch("<I", nt_file[0] + 4, 0xFFFFFFF0)
    yield "prstatus-short", patch("<I", prs[0] + 4, 8)
    yield "machine-arm", patch("<H", 18, 40)
    yield "not-a-core", patch("<H", 16, 2)
    yield "pn_xnum", patch("<H", 56, 0xFFFF)
    yield "load-wraps", _patch_first_load(data)
    yield "empty", b""


def _patch_first_load(data):
    b = bytearray(data)
    phoff = struct.unpack_from("<Q", b, 32)[0]
    phnum = struct.unpack_from("<H", b, 56)[0]
    for i in range(phnum):
        if struct.unpack_from("<I", b, phoff + 56 * i)[0] == 1:
            struct.pack_into("<Q", b, phoff + 56 * i + 16, (1 << 64) - 4096)
            struct.pack_into("<Q", b, phoff + 56 * i + 40, 1 << 20)
            break
    return bytes(b)


def test_crafted_cores_raise_the_clean_error_only(seed_core):
    prog, core = seed_core
    for name, data in crafted(core.read_bytes()):
        try:
            parse_core(BytesCore(data))
        except CoreFormatError as exc:
            assert "\n" not in str(exc), name
        except ToolkitError as exc:                     # safe_open's range checks
            assert "\n" not in str(exc), name


def test_random_mutations_raise_the_clean_error_only(seed_core):
    """A cheap mutation sweep (the coverage-guided fuzz target lives in tests/fuzz)."""
    prog, core = seed_core
    base = core.read_bytes()
    head = base[:min(len(base), 1 << 16)]                     # headers and notes
    notes_end = max(n[0] for n in _notes(base)) + 4096
    rng = random.Random(12)
    for _ in range(300):
        b = bytearray(base[:max(notes_end, 4096)])
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(len(b), len(head)))
            b[i] = rng.randrange(256)
        try:
            parse_core(BytesCore(bytes(b)))
        except ToolkitError:
            pass


def test_sigframe_decoding_x86_64():
    # a frame as the kernel lays it at gdb's sigtramp sp (&uc): uc_stack, sigcontext, siginfo
    uc = bytearray(304 + 128)
    struct.pack_into("<QiiQ", uc, 16, 0x5000, 0, 0, 0x10000)        # ss_sp, ss_flags, ss_size
    struct.pack_into("<QQ", uc, 40 + 120, 0x7ffd0000, 0x401234)       # rsp, rip
    struct.pack_into("<QQQQ", uc, 40 + 152, 6, 14, 0, 0x1234)        # err, trapno, oldmask, cr2
    struct.pack_into("<iii", uc, 304, 11, 0, 1)
    struct.pack_into("<Q", uc, 304 + 16, 0x1234)
    f = decode("x86_64", 3, 0x5800, bytes(uc))
    assert (f.signo, f.code, f.addr, f.sp, f.pc, f.trapno) == (11, 1, 0x1234, 0x7ffd0000, 0x401234, 14)
    assert f.on_altstack and f.altstack_size == 0x10000
    # a handler without SA_SIGINFO: no siginfo; the trap says SIGSEGV at cr2
    struct.pack_into("<iii", uc, 304, 0, 0, 0)
    f = decode("x86_64", 3, 0x20000, bytes(uc))
    assert (f.signo, f.addr) == (11, 0x1234) and not f.on_altstack and "inferred" in f.signal_how


def test_sigframe_decoding_aarch64():
    fr = bytearray(304 + 8 * 35)
    struct.pack_into("<iii", fr, 0, 7, 0, 2)                         # SIGBUS, BUS_ADRERR
    struct.pack_into("<Q", fr, 16, 0xdead000)
    struct.pack_into("<Q", fr, 128 + 16, 0)                          # no altstack ...
    struct.pack_into("<i", fr, 128 + 24, 2)                          # ... SS_DISABLE
    struct.pack_into("<Q", fr, 304, 0xdead000)                       # fault_address
    struct.pack_into("<QQ", fr, 304 + 8 + 31 * 8, 0xfffff000, 0x400800)
    f = decode("aarch64", 2, 0x7000, bytes(fr))
    assert (f.signo, f.code, f.addr, f.sp, f.pc) == (7, 2, 0xdead000, 0xfffff000, 0x400800)
    assert f.altstack_sp is None and not f.on_altstack


def test_initial_stack_argv_and_env():
    top = 0x10000
    base = top - 0x1000
    mem = bytearray(0x1000)
    strings = [b"/bin/prog\0", b"it's\0", b"a b\0", b"HOME=/root\0", b"X=\xe9\0"]
    pos = 0x800
    ptrs = []
    for s in strings:
        mem[pos:pos + len(s)] = s
        ptrs.append(base + pos)
        pos += len(s)
    auxv = struct.pack("<QQQQQQ", 6, 4096, 31, ptrs[0], 0, 0)
    layout = struct.pack("<Q", 3) + struct.pack("<3Q", *ptrs[:3]) + b"\0" * 8 + \
        struct.pack("<2Q", *ptrs[3:]) + b"\0" * 8 + auxv
    mem[0x100:0x100 + len(layout)] = layout

    def read(addr, n):
        off = addr - base
        return bytes(mem[off:off + n]) if 0 <= off and off + n <= len(mem) else None

    found = find_initial_stack(read, auxv, top, base)
    assert found.argv == ["/bin/prog", "it's", "a b"]
    assert found.env == {"HOME": "/root", "X": "\udce9"}
    assert find_initial_stack(read, b"\x07" * 48, top, base) is None
