"""The pure stack-diagnose core: kernel rules, recursion counting, sp-mover and clash-probe
recognition (x86_64 and, statically, aarch64), and the verdict on hand-built facts."""
import re
import shutil
import struct
import subprocess

import pytest

from gdb_toolkit.common.disasm import disassemble
from gdb_toolkit.common.procfs import Mapping
from gdb_toolkit.stack.diagnose import diagnose
from gdb_toolkit.stack.kernel_rules import (guard_gap_from_cmdline, thread_stacksize_for,
                                            ulimit_kib_for)
from gdb_toolkit.stack.model import Frame, SignalInfo, StackFacts
from gdb_toolkit.stack.recursion import count_words, find_cycle
from gdb_toolkit.stack.sp_insn import detect_clash_probe, find_sp_mover
from tests.support.gdbrun import REPO, compile_c

MiB = 1 << 20


def test_guard_gap_source():
    assert guard_gap_from_cmdline("quiet root=/dev/sda", 4096) == (
        1 << 20, "kernel default 256 pages (/proc/cmdline has no stack_guard_gap=)")
    gap, src = guard_gap_from_cmdline("quiet stack_guard_gap=1 ro", 4096)
    assert gap == 4096 and "stack_guard_gap=1" in src
    assert guard_gap_from_cmdline(None, 65536)[0] == 256 * 65536


def test_rounding():
    assert ulimit_kib_for(16 * MiB) == 16384
    assert ulimit_kib_for(16 * MiB + 1) == 17408
    assert thread_stacksize_for(200_000) == 262144


def test_count_words_and_cycle():
    data = struct.pack("<8Q", 1, 0xdead, 2, 0xdead, 0xdead, 3, 4, 0xdead)
    assert count_words(data, 0xdead) == 4
    assert count_words(data + b"\x01\x02", 0xdead) == 4        # trailing bytes ignored
    fr = [Frame(i, 0x1000 + (i % 2), 0x8000 + i * 64, "a" if i % 2 == 0 else "b")
          for i in range(20)]
    assert find_cycle(fr)[1] == 2
    assert find_cycle([Frame(i, i, i, f"f{i}") for i in range(10)]) is None


def test_x86_sp_mover_prefers_the_dynamic_sub():
    # push rbp; mov rbp,rsp; sub rsp,0x38; sub rsp,rax; mov [rsp],rcx
    code = bytes.fromhex("55" "4889e5" "4883ec38" "4829c4" "48890c24")
    insns = disassemble(code, 0x1000, "x86_64")
    m = find_sp_mover(insns, 0x1000 + len(code) - 4, "x86_64")
    assert m.text == "sub rsp, rax" and m.dynamic and m.address == 0x1008
    m = find_sp_mover(insns, 0x1008, "x86_64")        # before the VLA: the fixed frame
    assert m.text == "sub rsp, 0x38" and not m.dynamic


def _a64_tools():
    if not shutil.which("aarch64-linux-gnu-gcc"):
        pytest.skip("aarch64-linux-gnu-gcc not installed (scripts/setup.sh installs it)")


def _a64_function(binary, name):
    """(start address, code bytes) of *name* read with pyelftools; objdump listing as oracle."""
    from elftools.elf.elffile import ELFFile

    with open(binary, "rb") as fh:
        elf = ELFFile(fh)
        sym = next(s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name == name)
        text = elf.get_section_by_name(".text")
        off = sym["st_value"] - text["sh_addr"]
        code = text.data()[off:off + sym["st_size"]]
    dump = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", str(binary)],
                          capture_output=True, text=True).stdout
    body = dump[dump.index(f"<{name}>:"):]
    body = body[:body.index("\n\n")]
    return sym["st_value"], code, body


def test_aarch64_static_vla_sub():
    _a64_tools()
    binary = compile_c(REPO / "examples/stack/teststack.c", name="teststack-a64",
                       flags=["-g", "-O0"], compiler="aarch64-linux-gnu-gcc")
    start, code, body = _a64_function(binary, "calc_array")
    expect = re.search(r"^\s*([0-9a-f]+):\s+sub\s+sp, sp, (x\d+)", body, re.M)
    assert expect, body
    insns = disassemble(code, start, "aarch64")
    m = find_sp_mover(insns, start + len(code), "aarch64")
    assert m.address == int(expect[1], 16)
    assert m.text == f"sub sp, sp, {expect[2]}" and m.dynamic


def test_aarch64_static_clash_probe_loop():
    _a64_tools()
    binary = compile_c(REPO / "examples/stack/teststack.c", name="teststack-a64-scp",
                       flags=["-O2", "-fstack-clash-protection"], compiler="aarch64-linux-gnu-gcc")
    start, code, body = _a64_function(binary, "calc_array")
    probe = re.search(r"^\s*([0-9a-f]+):\s+str\s+xzr, \[sp, #(\d+)\]", body, re.M)
    cmp_reg = re.search(r"cmp\s+sp, (x\d+)", body)[1]
    assert probe, body
    insns = disassemble(code, start, "aarch64")
    cfa = 0x7ffff000
    p = detect_clash_probe(insns, int(probe[1], 16), "aarch64", {cmp_reg: cfa - 16 * MiB}, cfa)
    assert p is not None and p.step == 65536          # aarch64 probes every 64 KiB
    assert p.target_register == cmp_reg and p.requested == 16 * MiB


@pytest.mark.skipif(__import__("platform").machine() != "x86_64", reason="gcc builds for x86_64 here")
@pytest.mark.parametrize("opt", ["-O2", "-O0"])
def test_x86_clash_probe_loop_from_gcc(opt):
    # -O2 compares at the loop's bottom, -O0 at its head (cmp; je; sub; or; jmp)
    binary = compile_c(REPO / "examples/stack/alloca_huge.c", name="alloca-scp",
                       flags=[opt, "-fstack-clash-protection"])
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-M", "intel", str(binary)],
                          capture_output=True, text=True).stdout
    start = int(re.search(r"^([0-9a-f]+) <big>:", dump, re.M)[1], 16)
    body = dump[dump.index("<big>:"):]
    body = body[:body.index("\n\n")]
    probe = int(re.search(r"^\s*([0-9a-f]+):\s+or\s+QWORD PTR \[rsp", body, re.M)[1], 16)
    reg = re.search(r"cmp\s+rsp,(\w+)", body)[1]
    raw = open(binary, "rb").read()
    code = raw[start:start + 0x100]                     # PIE: file offset == vaddr for .text here
    p = detect_clash_probe(disassemble(code, start, "x86_64"), probe, "x86_64",
                           {reg: 0x10000}, 0x10000 + 32 * MiB)
    assert p is not None and p.step == 4096 and p.requested == 32 * MiB


# -- verdicts on hand-built facts -------------------------------------------------------------

STACK = Mapping(0x7ffffffde000, 0x7ffffffff000, "rw-p", 0, "00:00", 0, "[stack]")
LD = Mapping(0x7ffff7ffd000, 0x7ffff7fff000, "rw-p", 0, "08:01", 1, "/lib/ld.so")
HEAP = Mapping(0x555555559000, 0x55555557a000, "rw-p", 0, "00:00", 0, "[heap]")


def facts(sp, fault, frames, maps=(HEAP, LD, STACK), main=True, soft=8 * MiB, hard=None,
          signo=11, code=1, known=True):
    return StackFacts(
        arch="x86_64", target="live" if known else "core", pid=10, tid=10 if main else 11,
        thread_num=1, is_main_thread=main,
        signal=SignalInfo(signo, code, fault) if signo else None, pc=0x401000, sp=sp,
        maps=list(maps), maps_source="test", rlimit_soft=soft, rlimit_hard=hard,
        rlimit_known=known, rlimit_source="test" if known else "assumed", guard_gap=MiB,
        guard_gap_source="test", page_size=4096, frames=frames, frames_complete=True)


def test_rlimit_huge_frame_and_ulimit_fix():
    sp = STACK.end - 16 * MiB
    f = facts(sp, sp, [Frame(0, 0x401000, sp, "calc"), Frame(1, 0x402000, STACK.end - 4096, "main")])
    d = diagnose(f)
    assert d.verdict == "rlimit" and d.cause == "huge-frame"
    assert d.growth_requested == 16 * MiB
    assert d.fix.kind == "ulimit" and d.fix.ulimit_kib == 17408


def test_rlimit_beyond_hard_limit_means_heap():
    sp = STACK.end - 16 * MiB
    f = facts(sp, sp, [Frame(0, 1, sp, "calc"), Frame(1, 2, STACK.end - 4096, "main")],
              hard=12 * MiB)
    assert diagnose(f).fix.kind == "heap"


def test_core_rlimit_is_inferred_from_the_refusal():
    # a core records no limits: the refused growth bounds the limit the program ran with
    sp = STACK.end - 6 * MiB
    d = diagnose(facts(sp, sp, [Frame(0, 1, sp, "c"), Frame(1, 2, STACK.end - 64, "m")], known=False))
    assert d.verdict == "rlimit" and "RLIMIT_STACK was below 6.0 MiB" in d.headline
    assert d.rlimit_soft is None and any("inferred" in n for n in d.notes)
    assert d.fix.kind == "ulimit" and d.fix.ulimit_kib == 7168


def test_guard_gap_of_mapping_below():
    below = Mapping(STACK.start - 512 * 1024 - 4096, STACK.start - 512 * 1024, "r--p", 0, "00:00", 0, "")
    sp = STACK.start - 128 * 1024
    d = diagnose(facts(sp, sp - 8, [Frame(0, 1, sp, "g"), Frame(1, 2, STACK.end - 64, "m")],
                       maps=(HEAP, LD, below, STACK)))
    assert d.verdict == "guard-gap" and d.below["end_address"] == below.end
    assert d.fix.kind == "heap"


def test_prot_none_mapping_below_does_not_count_for_the_gap():
    below = Mapping(STACK.start - 512 * 1024 - 4096, STACK.start - 512 * 1024, "---p", 0, "00:00", 0, "")
    sp = STACK.start - 128 * 1024
    d = diagnose(facts(sp, sp - 8, [Frame(0, 1, sp, "g"), Frame(1, 2, STACK.end - 64, "m")],
                       maps=(HEAP, LD, below, STACK), soft=64 * 1024))
    assert d.verdict == "rlimit"


def test_thread_overflow_past_guard():
    tstack = Mapping(0x7ffff7dbf000, 0x7ffff7dcf000, "rw-p", 0, "00:00", 0, "")
    guard = Mapping(0x7ffff7dbe000, 0x7ffff7dbf000, "---p", 0, "00:00", 0, "")
    sp = tstack.start - 70 * 1024
    d = diagnose(facts(sp, sp - 8, [Frame(0, 1, sp, "fill"), Frame(1, 2, tstack.end - 512, "worker")],
                       maps=(HEAP, guard, tstack, LD, STACK), main=False))
    assert d.verdict == "thread-overflow" and d.stack.guard.start == guard.start
    assert d.fix.kind == "pthread_attr_setstacksize" and d.fix.stacksize % 65536 == 0
    assert d.fix.stacksize >= tstack.end - sp


def test_null_and_heap_are_not_stack():
    sp = STACK.end - 4096
    fr = [Frame(0, 1, sp, "main")]
    d = diagnose(facts(sp, 0x10, fr))
    assert d.verdict == "not-stack" and "NULL" in d.headline and d.culprit is None
    d = diagnose(facts(sp, HEAP.end + 64 * MiB, fr))
    assert d.verdict == "not-stack" and "[heap]" in d.headline


def test_corrupt_sp_far_below_the_stack_is_not_a_clash_jump():
    # sp loaded with a bad value (a stack pivot): a push faults right below it, mappings lie
    # between it and [stack], and no caller frame is on the stack
    d = diagnose(facts(0x10000, 0xfff8, [Frame(0, 0x401000, 0x10000, "main")]))
    assert d.verdict == "corrupt-sp" and "stack pointer itself is corrupt" in d.headline
    assert d.fix.kind == "code" and d.culprit is None
    # a real jump: the caller's frame is on the stack, the frame moved sp past [heap]
    sp = HEAP.start - 4096
    d = diagnose(facts(sp, sp - 8, [Frame(0, 1, sp, "big"), Frame(1, 2, STACK.end - 64, "main")]))
    assert d.verdict == "stack-clash-jump"


def test_handler_on_an_alternate_signal_stack():
    # stopped in a SIGSEGV handler running on a sigaltstack in [heap]; the interrupted
    # recursion fills [stack]: the sizes must be of the stack, not heap-to-stack distances
    alt = HEAP.start + 0x1000
    frames = [Frame(0, 0x401000, alt, "in_handler"), Frame(1, 0x401010, alt + 16, "h"),
              Frame(2, 0x7ffff7e0e050, alt + 48, "__restore_rt", signal_frame=True)]
    frames += [Frame(3 + i, 0x401050, STACK.start + 96 * i, "rec") for i in range(60)]
    d = diagnose(facts(alt, None, frames, signo=5))
    assert d.verdict == "healthy"
    assert d.stack_used == STACK.end - STACK.start
    assert all(fr.size is None or fr.size < MiB for fr in d.frames)
    assert frames[2].size is None and d.recursion.avg_frame == 96
    assert any("alternate signal stack" in e for e in d.explanation)
    # a signal frame on the same stack keeps its size
    same = [Frame(0, 1, STACK.end - 4096, "h"), Frame(1, 2, STACK.end - 3072, "__restore_rt", signal_frame=True),
            Frame(2, 3, STACK.end - 1024, "main")]
    d = diagnose(facts(same[0].sp, None, same, signo=5))
    assert same[1].size == 2048 and not any("alternate" in e for e in d.explanation)


def test_sigbus_past_the_end_of_a_mapped_file():
    data = Mapping(0x7ffff7fbe000, 0x7ffff7fc0000, "rw-s", 0, "08:01", 5, "/tmp/data.bin")
    sp = STACK.end - 4096
    d = diagnose(facts(sp, data.start + 100, [Frame(0, 1, sp, "main")], maps=(HEAP, data, LD, STACK),
                       signo=7, code=2))
    assert d.verdict == "not-stack"
    assert "past the end of the file" in d.headline and "protection" not in d.headline
    assert "/tmp/data.bin" in d.fix.text


def test_recursion_and_health():
    frames = [Frame(i, 0x401050, STACK.end - 8 * MiB + 80 * i, "rec") for i in range(50)]
    d = diagnose(facts(frames[0].sp, frames[0].sp - 8, frames))
    assert d.cause == "deep-recursion" and d.recursion.avg_frame == 80
    h = diagnose(facts(STACK.end - 4096, None, [Frame(0, 1, STACK.end - 4096, "main")], signo=0))
    assert h.verdict == "healthy" and "healthy" in h.headline


def test_mutual_recursion_depth_from_the_live_chain():
    """a() and b() call each other; the saved return addresses are followed in a memory image
    past the sampled frames; stale copies below a big frame are not counted."""
    from gdb_toolkit.stack.diagnose import frame_sizes
    from gdb_toolkit.stack.recursion import detect_recursion

    base, size = 0x10000, 48
    ra_a, ra_b, ra_main = 0x300, 0x200, 0x7        # return into a, into b, into main
    depth = 1000                                   # a at even levels, b at odd ones
    mem = bytearray(size * depth + 64)
    for lvl in range(depth):
        caller_ra = ra_main if lvl == depth - 1 else (ra_a if lvl % 2 else ra_b)
        struct.pack_into("<Q", mem, lvl * size + size - 8, caller_ra)

    def read(addr, n):
        off = addr - base
        return bytes(mem[off:off + n]) if 0 <= off and off + n <= len(mem) else None

    frames = [Frame(lvl, ra_a if lvl % 2 == 0 and lvl else (0x100 if lvl == 0 else ra_b),
                    base + size * lvl, "a" if lvl % 2 == 0 else "b") for lvl in range(40)]
    frame_sizes(frames)
    r = detect_recursion(frames, False, read, base + len(mem))
    assert r.functions == ["b", "a"]           # call order: the outermost sampled b calls a
    assert r.depth == depth and r.depth_exact and r.avg_frame == size
    # the same image read only partly (a capped read): a lower bound, said as such
    lim = base + 300 * size
    r = detect_recursion(frames, False, lambda a, n: read(a, min(n, lim - a)) if a < lim else None,
                         base + len(mem))
    assert not r.depth_exact and 40 <= r.depth < depth


def test_every_verdict_renders_as_text():
    from gdb_toolkit.common.render import to_json
    from gdb_toolkit.stack.text import render_diagnosis

    tstack = Mapping(0x7ffff7dbf000, 0x7ffff7dcf000, "rw-p", 0, "00:00", 0, "")
    guard = Mapping(0x7ffff7dbe000, 0x7ffff7dbf000, "---p", 0, "00:00", 0, "")
    below = Mapping(STACK.start - 512 * 1024 - 4096, STACK.start - 512 * 1024, "r--p", 0, "00:00", 0, "")
    top = STACK.end - 64
    cases = [
        facts(STACK.end - 16 * MiB, STACK.end - 16 * MiB, [Frame(0, 1, STACK.end - 16 * MiB, "c"), Frame(1, 2, top, "m")]),
        facts(STACK.start - 131072, STACK.start - 131080, [Frame(0, 1, STACK.start - 131072, "g"), Frame(1, 2, top, "m")],
              maps=(HEAP, LD, below, STACK)),
        facts(tstack.start - 70000, tstack.start - 70008, [Frame(0, 1, tstack.start - 70000, "f"), Frame(1, 2, tstack.end - 512, "w")],
              maps=(HEAP, guard, tstack, LD, STACK), main=False),
        facts(top, 0x10, [Frame(0, 1, top, "main")]),
        facts(top, None, [Frame(0, 1, top, "main")], signo=0),
        facts(top, 0, [Frame(0, 1, top, "main")], code=0x80),
    ]
    verdicts = []
    for f in cases:
        d = diagnose(f)
        text = render_diagnosis(d, 80)
        assert f"[{d.verdict}]" in text and "FIX" in text
        assert to_json(d)
        verdicts.append(d.verdict)
    assert verdicts == ["rlimit", "guard-gap", "thread-overflow", "not-stack", "healthy", "not-stack"]


def test_shared_lib_is_the_regex_it_replaces():
    """causes.shared_lib against the regex it replaces (not compiled on a first call)."""
    import random
    import re

    from gdb_toolkit.stack.causes import shared_lib

    pat = re.compile(r"\.so(\.[0-9.]+)?$")
    names = ["libc.so.6", "libfoo.so", "libfoo.so.1.2.3", "a.so.", "a.so.x", "a.so.so", "a.so.1.so",
             "prog", "so", ".so", "x.so\n", "x.so.1\n", "x.so\n\n", "x.sox", "ld-linux-x86-64.so.2",
             "libz.so.1.2.13", "a.so.1a", "a.so..", "a.so.1.", "libs.so.6 (deleted)"]
    rnd = random.Random(5)
    names += ["".join(rnd.choice("ab.so19\n") for _ in range(rnd.randrange(9))) for _ in range(20000)]
    for n in names:
        assert shared_lib(n) == bool(pat.search(n)), repr(n)
