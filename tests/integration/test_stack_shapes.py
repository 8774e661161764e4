"""stack-diagnose on crash shapes found by adversarial testing (stackreal): cores that do not
hold the stack (coredump_filter, a small RLIMIT_CORE, a cut-off file), a core whose program
file is gone, and the wording of a recursion whose frames have no fixed size.  Oracles:
readelf's program headers and the file's size, the program's own counters, the kernel's
rules by hand, and re-running the program with the fix for real."""
import re
import shutil
import subprocess

import pytest

from tests.support.gdbrun import assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.stack_oracles import ARCH, DEPTH_CMDS, EX, MiB, depth_printed, diagnose_live, ints, passes_with

pytestmark = pytest.mark.gdb

RUNAWAY = r"""
volatile long depth;
long rec(long n) { volatile char pad[100]; pad[0] = n; depth++; return rec(n + 1) + pad[0]; }
int main(void) { return (int)rec(0); }
"""


def _pattern():
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if pattern.startswith("|") or "/" in pattern or "%" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write 'core' into the working directory")
    return pattern


def kernel_core(prog, args, cwd, filt=None, core_limit="unlimited"):
    """The core the kernel writes for *prog* run in *cwd* (coredump_filter *filt*)."""
    name = _pattern()
    shell = (f"echo {filt} > /proc/self/coredump_filter && " if filt is not None else "") + \
        'lim=$1; shift; exec prlimit --core="$lim" --stack=8388608 "$@"'
    run = subprocess.run(["sh", "-c", shell, "sh", str(core_limit), str(prog), *map(str, args)],
                         cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0, run
    core = cwd / name
    if not core.exists():
        pytest.skip(f"no core written into {cwd} (core_pattern {name!r})")
    return core


def loads(core):
    """readelf's PT_LOAD rows: (offset, vaddr, filesz, memsz)."""
    out = subprocess.run(["readelf", "-lW", str(core)], capture_output=True, text=True).stdout
    return [(int(m[1], 16), int(m[2], 16), int(m[3], 16), int(m[4], 16))
            for m in re.finditer(r"LOAD\s+(0x[0-9a-f]+) (0x[0-9a-f]+) 0x[0-9a-f]+ (0x[0-9a-f]+) "
                                 r"(0x[0-9a-f]+)", out)]


def diagnose_core(core, prog=None):
    res = run_gdb([*json_wrapped("stack-diagnose --json"), "stack-diagnose"], program=prog, core=core)
    assert_no_traceback(res)
    return ints(res.json_documents()[-1]), res


# -- a core that does not hold the stack: who used it is unknown, no size is the fix ----------

@pytest.mark.parametrize("how", ["filter0", "small-core-limit", "cut-off"])
def test_core_without_the_stack_contents_offers_no_size(how, tmp_path):
    """Before: '-- 2 frames, none dominating' (frame #1 'code at 0x0': gdb reads zeros where
    the core holds nothing) and 'FIX ulimit -s 9216 ... move the buffer to the heap', which
    the re-run shows does not stop a runaway recursion."""
    prog = compile_c(RUNAWAY, name="runaway", flags=["-g", "-O0"])
    core = kernel_core(prog, [], tmp_path, filt=0 if how == "filter0" else None,
                       core_limit=204800 if how == "small-core-limit" else "unlimited")
    segs = loads(core)
    top_seg = max((s for s in segs if s[1] < 1 << 47), key=lambda s: s[1])   # the stack: highest
    if how == "cut-off":
        assert top_seg[2] == top_seg[3]                     # the kernel dumped it whole
        with open(core, "r+b") as fh:                       # a disk that filled up mid-stack
            fh.truncate(top_seg[0] + 8192)
    if how == "filter0":
        assert top_seg[2] < top_seg[3]                      # readelf: no bytes of the stack
    else:                                                   # the file ends inside the segment
        assert top_seg[0] + top_seg[2] > core.stat().st_size
    cut = how != "filter0"
    doc, res = diagnose_core(core, prog)
    assert doc["verdict"] == "rlimit"
    lo, hi = doc["stack_mapping"]["start_address"], doc["stack_mapping"]["end_address"]
    assert (lo, hi) == (top_seg[1], top_seg[1] + top_seg[3])
    assert doc["cause"] is None and doc["recursion"] is None and doc["culprit"] is None
    assert doc["fix_plan"]["kind"] == "code" and doc["fix_plan"]["ulimit_kib"] is None
    assert "coredump_filter" in doc["fix_plan"]["text"]
    assert any(n.startswith("stack contents:") and
               ("cut off" if cut else "not dumped") in n for n in doc["notes"])
    # the size the old answer offered: the runaway recursion still crashes with it
    assert not passes_with([prog], 9216 * 1024)
    assert "FIX       make a core that holds the stack" in res.stdout


def test_core_with_the_stack_still_names_the_recursion(tmp_path):
    """The control: the same program's full core is diagnosed from its frames."""
    prog = compile_c(RUNAWAY, name="runaway", flags=["-g", "-O0"])
    core = kernel_core(prog, [], tmp_path)
    doc, _res = diagnose_core(core, prog)
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    assert doc["recursion"]["depth_exact"] and not any(n.startswith("stack contents:")
                                                        for n in doc["notes"])


# -- a core whose program file is gone -------------------------------------------------------

def test_core_of_a_deleted_program(tmp_path):
    """gdb has no symbols and no code (a kernel core holds no text): its walk stops at frame #0
    with 'memory error while unwinding'.  Before: 'frames: all 1' and '-- 1 frames, none
    dominating'.  The stack's pages reach down to the innermost frame that ever ran, so
    frame 0's sp 15.7 MiB below them is one frame's allocation: the VLA of w*h longs."""
    src = compile_c(EX / "teststack.c", flags=["-g", "-O0"])
    prog = tmp_path / "teststack"
    shutil.copy(src, prog)
    core = kernel_core(prog, [1920, 1080], tmp_path)
    prog.unlink()
    doc, res = diagnose_core(core)
    assert "Can't open file" in res.output or "No such file" in res.output
    assert doc["verdict"] == "rlimit" and doc["frames_complete"] is False
    assert doc["cause"] == "huge-frame"
    vla = 1920 * 1080 * 8                                  # the program's own buffer
    assert vla - 256 * 1024 <= doc["culprit"]["size"] <= vla
    assert any("walk stopped at frame #0" in n for n in doc["notes"])
    assert "frames, none dominating" not in res.stdout and "frames: all 1" not in res.stdout
    assert passes_with([src, 1920, 1080], doc["fix_plan"]["ulimit_kib"] * 1024)
    assert not passes_with([src, 1920, 1080], 8 * MiB)


# -- a recursion whose frames have no fixed size (alloca of a varying size) --------------------

VARALLOCA = r"""
#include <alloca.h>
volatile long depth;
long rec(long n) {
    volatile char *p = alloca(64 + (n * 2654435761u) % 4000);
    p[0] = (char)n; depth++;
    return rec(n + 1) + p[0];
}
int main(void) { return (int)rec(0); }
"""


def test_recursion_of_varying_frames_is_counted_along_frame_pointers():
    """Each level allocas a different size, so no fixed frame layout repeats.  Before: 'depth
    at least 128, about 3,918 by stack used / average frame frames'.  A run-time sized frame
    keeps a frame pointer; the chain of saved ones gives the depth the program's own counter
    gives (+1: the faulting level had not counted itself yet)."""
    prog = compile_c(VARALLOCA, name="varalloca", flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog, extra=[*DEPTH_CMDS, "stack-diagnose"])
    assert doc["cause"] == "deep-recursion"
    r = doc["recursion"]
    assert r["depth_exact"] and r["depth"] == depth_printed(res) + 1
    assert "frame pointers" in r["depth_method"]
    assert "frames frames" not in res.stdout


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_recursion_of_varying_frames_in_a_thread(opt):
    """The same in a thread with a 1 MiB stack (~490 levels: past the 128-frame walk), at
    -O0 and -O2."""
    src = VARALLOCA.replace("int main(void) { return (int)rec(0); }", r"""
#include <pthread.h>
void *run(void *a) { return (void *)rec(0); }
int main(void) { pthread_attr_t at; pthread_t t; pthread_attr_init(&at);
                 pthread_attr_setstacksize(&at, 1 << 20);
                 pthread_create(&t, &at, run, 0); pthread_join(t, 0); return 0; }""")
    prog = compile_c(src, name="varalloca_thr", flags=["-g", opt, "-pthread"])
    doc, orc, res = diagnose_live(prog, extra=[*DEPTH_CMDS])
    r = doc["recursion"]
    assert doc["verdict"] == "thread-overflow" and doc["cause"] == "deep-recursion"
    counted = depth_printed(res) + 1
    assert r["depth"] == counted if r["depth_exact"] else r["depth"] <= counted
    assert r["depth"] > 128 and "frame pointers" in r["depth_method"]


# -- a mapping placed within the gap of a stack that has not grown yet ------------------------

@pytest.mark.parametrize("limit", [8 * MiB, "unlimited"])
def test_guard_gap_of_a_stack_that_cannot_grow_at_all(limit):
    """guard_gap.c maps a page 512 KiB below a 132 KiB [stack]: the gap (1 MiB) already
    covers the stack's lowest page.  Before: 'so the stack may not grow below 0x80000005e000'
    -- an address above the stack's top -- and 'leaves the stack 0 B'."""
    from tests.support.stack_oracles import build, maps_of, stack_of

    prog = build("guard_gap")
    doc, orc, res = (diagnose_live(prog, extra=["stack-diagnose"]) if limit == 8 * MiB
                     else _unlimited(prog))
    stack = stack_of(orc)
    gap = doc["guard_gap_bytes"]
    below = max((m for m in maps_of(orc["maps"]) if m[1] <= stack[0]), key=lambda m: m[1])
    assert below[1] + gap > stack[0]                     # /proc: the gap reaches past its bottom
    assert doc["verdict"] == "guard-gap"
    why = doc["explanation"][0]
    for a in re.findall(r"0x[0-9a-f]+", why):
        assert int(a, 16) < stack[1], why                # nothing quoted above the stack top
    assert "may not grow at all" in why and f"0x{stack[0]:x}" in why
    assert doc["fix_plan"]["kind"] == "heap" and doc["fix_plan"]["ulimit_kib"] is None
    assert " 0 B " not in doc["fix_plan"]["text"]
    assert f"no further than the {stack[1] - stack[0] >> 10}.0 KiB it has" in doc["fix_plan"]["text"]


def _unlimited(prog):
    from tests.support.stack_oracles import run_gdb_limited, ORACLE, ORACLE_CMD, assert_valid
    import json

    res = run_gdb_limited("unlimited", ["run", ORACLE_CMD, *json_wrapped("stack-diagnose --json"),
                                        "stack-diagnose"], program=prog)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert_valid(doc)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(ORACLE))
    orc = json.loads(line[len(ORACLE):])
    assert orc["limits"].split("Max stack size")[1].split()[0] == "unlimited"
    return ints(doc), orc, res


# -- a thread made by clone() itself, on a malloc'd stack -------------------------------------

RAW_CLONE = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
volatile long depth, limit, done;
long rec(long n) { volatile char pad[200]; pad[0] = n; depth++; if (n >= limit) return 0;
                   return rec(n + 1) + pad[0]; }
int child(void *a) { rec(0); done = 1; return 0; }
int main(int argc, char **argv) {
    size_t sz = strtoul(argv[1], 0, 0);
    limit = atol(argv[2]);
    char *stk = malloc(sz);
    if (clone(child, stk + sz, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
              | CLONE_SYSVSEM, NULL) < 0) return 2;
    while (!done) usleep(1000);
    return 0;
}
"""


def test_raw_clone_thread_gets_a_clone_fix_not_pthread_attr():
    """A thread from clone() without CLONE_SETTLS shares the main thread's thread pointer
    (/proc: both threads' fs_base).  Before: its stack was cut at that pointer and the fix was
    'pthread_attr_setstacksize, or a bigger block for pthread_attr_setstack' -- neither
    applies to clone()."""
    prog = compile_c(RAW_CLONE, name="rawclone", flags=["-g", "-O0"])
    args = [256 << 10, 1500]                                # 1500 frames of ~240 B: 352 KiB
    assert not passes_with([prog, *args])
    doc, orc, res = diagnose_live(prog, args, extra=["info threads", "thread 1",
                                                     "print/x $fs_base", "thread 2",
                                                     "print/x $fs_base", "stack-diagnose"])
    tps = re.findall(r"\$\d+ = (0x[0-9a-f]+)", res.stdout)
    assert len(tps) == 2 and tps[0] == tps[1]               # gdb: one thread pointer for both
    assert doc["verdict"] == "thread-overflow" and doc["cause"] == "deep-recursion"
    assert doc["stack_mapping"]["label"] == "stack passed to clone()"
    fix = doc["fix_plan"]
    assert "clone()" in fix["text"] and "pthread_attr" not in fix["text"]
    assert not any("pthread_attr_setst" in w for w in doc["explanation"])
    assert passes_with([prog, fix["stacksize_bytes"], 1500])      # the re-run with the size given


# -- a coroutine on a MAP_GROWSDOWN mapping: the kernel grows it under RLIMIT_STACK -------------

GROWSDOWN = r"""
#define _GNU_SOURCE
#include <ucontext.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static ucontext_t mc, cc;
static size_t want;
static void body(void) { char buf[want]; memset(buf, 1, want); printf("%d\n", buf[want / 2]); }
int main(int argc, char **argv) {
    want = strtoul(argv[1], 0, 0);
    size_t sz = 64 << 10;
    char *stk = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    if (stk == MAP_FAILED) return 2;
    getcontext(&cc); cc.uc_stack.ss_sp = stk; cc.uc_stack.ss_size = sz; cc.uc_link = &mc;
    makecontext(&cc, body, 0); swapcontext(&mc, &cc);
    return 0;
}
"""
SMAPS_CMD = ("python import gdb; p = gdb.selected_inferior().pid; "
             "print('@@SMAPS@@' + repr(open(f'/proc/{p}/smaps').read()))")


def test_growsdown_coroutine_stack_is_grown_under_rlimit_stack():
    """A 64 KiB MAP_GROWSDOWN block and a 12 MiB buffer: the kernel would grow the block, but
    not past RLIMIT_STACK; 'ulimit -s' is the fix (the re-run passes).  Before: '[corrupt-sp]
    ... 142.1 MiB below [stack]' (a MAP_GROWSDOWN mapping never merges with the one above it,
    so makecontext's top frame, sp at the block's very end, was counted outside it), and once
    that was found '[user-stack-overflow] ... a fixed block that never grows ... RLIMIT_STACK
    does not apply to it'."""
    import ast
    from tests.support.stack_oracles import maps_of

    prog = compile_c(GROWSDOWN, name="growsdown", flags=["-g", "-O0"])
    want = 12 * MiB
    assert passes_with([prog, 64 << 10]) and not passes_with([prog, want])
    doc, orc, res = diagnose_live(prog, [want], extra=[SMAPS_CMD])
    smaps = ast.literal_eval(res.stdout.split("@@SMAPS@@", 1)[1].splitlines()[0])
    gd = [tuple(int(x, 16) for x in blk.split(" ", 1)[0].split("-"))
          for blk in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps)
          if re.search(r"VmFlags:.* gd\b", blk) and "[stack]" not in blk.split("\n", 1)[0]]
    assert len(gd) == 1                                    # /proc: the program's growsdown stack
    lo, hi = gd[0]
    assert doc["verdict"] == "rlimit"
    assert (doc["stack_mapping"]["start_address"], doc["stack_mapping"]["end_address"]) == (lo, hi)
    assert doc["growth_requested_bytes"] == hi - (orc["addr"] & ~4095) > 8 * MiB
    assert not any("does not apply" in w for w in doc["explanation"])
    kib = doc["fix_plan"]["ulimit_kib"]
    assert passes_with([prog, want], kib * 1024)
    assert not passes_with([prog, want], 8 * MiB)
    assert maps_of(orc["maps"])


# -- a MAP_GROWSDOWN mapping placed below [stack] ---------------------------------------------

GD_BELOW = r"""
#define _GNU_SOURCE
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
__attribute__((noinline)) static int grow(size_t n) { char *p = alloca(n); memset(p, 3, n);
                                                      return p[n / 2]; }
int main(int argc, char **argv) {
    unsigned long lo = 0, hi = 0, distance = strtoul(argv[1], 0, 0);
    size_t buf = strtoul(argv[2], 0, 0);
    FILE *f = fopen("/proc/self/maps", "r"); char line[512];
    while (fgets(line, sizeof line, f))
        if (strstr(line, "[stack]")) sscanf(line, "%lx-%lx", &lo, &hi);
    fclose(f);
    char *want = (char *)(hi - distance - 4096);
    char *m = mmap(want, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS
                   | MAP_FIXED_NOREPLACE | (argc > 3 ? MAP_GROWSDOWN : 0), -1, 0);
    if (m != want) return 2;
    printf("mapping=%lx\n", (unsigned long)m); fflush(stdout);
    return grow(buf) == 3 ? 0 : 1;
}
"""


def test_fault_below_a_growsdown_mapping_below_the_stack():
    """A page mapped MAP_GROWSDOWN 2 MiB below [stack], then a 12 MiB alloca: find_vma(fault)
    is that page, and the kernel grows it (the guard gap does not apply between the two), up
    to RLIMIT_STACK -- 6 MiB passes, 12 MiB does not, and ulimit -s lets it.  Before:
    '[stack-clash-jump] ... the kernel found no stack to grow at the fault address' and 'which
    leaves the stack 1.0 MiB whatever the limit'."""
    prog = compile_c(GD_BELOW, name="gd_below", flags=["-g", "-O0"])
    two = 2 * MiB
    assert passes_with([prog, two, 6 * MiB, "gd"])         # grows through the page
    assert not passes_with([prog, two, 6 * MiB])            # a plain page: the guard gap
    doc, orc, res = diagnose_live(prog, [two, 12 * MiB, "gd"], extra=[SMAPS_CMD])
    page = int(re.search(r"mapping=([0-9a-f]+)", res.stdout)[1], 16)
    smaps = res.stdout.split("@@SMAPS@@", 1)[1]
    blk = re.search(rf"{page:x}-[0-9a-f]+ .*?VmFlags:([^\\]*)", smaps)
    assert blk and " gd" in blk[1]                          # /proc: MAP_GROWSDOWN
    assert doc["verdict"] == "rlimit"
    assert doc["growth_requested_bytes"] == page + 4096 - (orc["addr"] & ~4095)
    assert not any("no stack to grow" in w for w in doc["explanation"])
    kib = doc["fix_plan"]["ulimit_kib"]
    from tests.support.stack_oracles import passes_both_layouts
    assert passes_both_layouts([prog, two, 12 * MiB, "gd"], kib * 1024)


# -- a huge frame in a shared library without debug info --------------------------------------

LIB_BIG = r"""
#include <alloca.h>
#include <string.h>
int libfill(unsigned long n) { char *p = alloca(n); memset(p, 1, n); return p[n / 2]; }
"""
USE_BIG = r"""
#include <stdlib.h>
int libfill(unsigned long n);
int main(int argc, char **argv) { return libfill(strtoul(argv[1], 0, 0)) == 1 ? 0 : 1; }
"""


def test_huge_frame_in_a_stripped_library_names_its_instruction():
    """The caller's direct call goes to libfill's PLT stub, which was taken for the function's
    start: no code was read and 'sp moved by' was missing.  Oracle: objdump of the stripped
    library (its sub %rax,%rsp) at the load base /proc/PID/maps gives it."""
    from tests.support.stack_oracles import maps_of, objdump

    lib = compile_c(LIB_BIG, name="libbig.so", flags=["-O2", "-fPIC", "-shared", "-s",
                                                      "-fno-stack-clash-protection"])
    prog = compile_c(USE_BIG, name="usebig", flags=["-g", "-O0", str(lib),
                                                    f"-Wl,-rpath,{lib.parent}"])
    want = 12 * MiB
    doc, orc, res = diagnose_live(prog, [want])
    base = min(m[0] for m in maps_of(orc["maps"]) if m[3] == str(lib))
    subs = [int(m[1], 16) for m in re.finditer(r"^\s*([0-9a-f]+):\s+sub\s+%r\w+,%rsp",
                                                objdump(lib), re.M)]
    assert len(subs) == 1
    assert doc["verdict"] == "rlimit" and doc["cause"] == "huge-frame"
    assert doc["culprit"]["symbol"] == "libfill"
    ins = doc["culprit"]["instruction"]
    assert ins is not None and ins["address"] == base + subs[0] and ins["dynamic"]
    assert doc["clash_protection"] is False
    assert passes_with([prog, want], doc["fix_plan"]["ulimit_kib"] * 1024)


# -- one thread reading another thread's guard page -------------------------------------------

GUARD_POKE = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static volatile char *target; static pthread_barrier_t b;
void *victim(void *a) {
    pthread_attr_t at; void *lo; size_t sz;
    pthread_getattr_np(pthread_self(), &at); pthread_attr_getstack(&at, &lo, &sz);
    target = (char *)lo - 100;
    printf("victim_stack_lo=%lx\n", (unsigned long)lo); fflush(stdout);
    pthread_barrier_wait(&b); sleep(10); return 0;
}
void *poker(void *a) { pthread_barrier_wait(&b); return (void *)(long)*target; }
int main(void) {
    pthread_t t1, t2; pthread_barrier_init(&b, 0, 2);
    pthread_create(&t1, 0, victim, 0); pthread_create(&t2, 0, poker, 0);
    pthread_join(t2, 0); return 0;
}
"""


def test_read_of_another_threads_guard_page():
    """Thread 3 reads 100 bytes below thread 2's stack (pthread_getattr_np's stack address,
    printed by the program): its guard page.  Before: 'FIX the code wrote to [anon] wrongly'
    -- a read, and the page is thread 2's guard, which the answer did not say."""
    prog = compile_c(GUARD_POKE, name="guardpoke", flags=["-g", "-O0", "-pthread"])
    doc, orc, res = diagnose_live(prog, extra=["info threads"])
    lo = int(re.search(r"victim_stack_lo=([0-9a-f]+)", res.stdout)[1], 16)
    assert orc["addr"] == lo - 100 == doc["fault_address"]
    victim = re.search(r"^\s+2\s+Thread 0x[0-9a-f]+ \(LWP (\d+)\)", res.stdout, re.M)
    assert doc["verdict"] == "not-stack" and doc["thread"]["num"] == 3
    assert f"thread 2 (LWP {victim[1]})'s stack guard page" in doc["headline"]
    assert "wrote" not in doc["fix_plan"]["text"] and "thread 2" in doc["fix_plan"]["text"]


# -- a VLA whose length went negative: sub rsp, REG moves sp up ---------------------------------

NEG_VLA = r"""
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) int fill(long n) { char buf[n]; memset(buf, 1, 64); return buf[3]; }
int main(int argc, char **argv) { return fill(atol(argv[1])); }
"""
REGS_CMD = "python print('@@REGS@@', int(gdb.parse_and_eval('$rbp')), int(gdb.parse_and_eval('$sp')))"


@pytest.mark.skipif(ARCH != "x86_64", reason="x86_64 instructions and registers")
@pytest.mark.parametrize("aslr", [False, True], ids=["under-gdb", "randomised"])
def test_negative_vla_length_is_named(aslr):
    """n = -200000: 'sub rsp, rax' adds 195 KiB to sp, above the stack top.  Before: with
    randomisation off '[corrupt-sp] ... a stack pivot, longjmp ...' (sp non-canonical), with
    it on '[not-stack] ... a wild pointer ... not next to the stack pointer (sp is ..., 8 B
    away)'.  Oracles: objdump's sub %rax,%rsp in fill; gdb's $rbp below $sp."""
    from tests.support.stack_oracles import objdump

    prog = compile_c(NEG_VLA, name="negvla", flags=["-g", "-O0", "-fno-stack-clash-protection"])
    setup = (["set disable-randomization off"] if aslr else []) + ["run"]
    doc, orc, res = diagnose_live(prog, ["-200000"], setup=setup, extra=[REGS_CMD])
    rbp, sp = map(int, re.search(r"@@REGS@@ (\d+) (\d+)", res.stdout).groups())
    assert sp > rbp and 200000 - 4096 <= sp - rbp <= 200000 + 4096     # sp above its own frame
    dump = objdump(prog)
    fn = re.search(r"<fill>:\n(.*?)\n\n", dump, re.S)[1]
    sub = int(re.search(r"^\s*([0-9a-f]+):\s+sub\s+%rax,%rsp", fn, re.M)[1], 16)
    base = min(int(ln.split("-")[0], 16) for ln in orc["maps"].splitlines() if ln.endswith(str(prog)))
    assert doc["verdict"] == "corrupt-sp"
    assert f"sub rsp, rax at 0x{base + sub:x}" in doc["headline"] and "negative" in doc["headline"]
    assert "negative" in doc["fix_plan"]["text"] and "pivot" not in " ".join(doc["explanation"])


def test_core_without_the_stack_still_names_frame_0s_huge_frame(tmp_path):
    """thread_overflow.c (a 128 KiB VLA in a 64 KiB thread stack), its kernel core written
    with coredump_filter 0: no stack bytes, but frame 0's size comes from its registers and
    unwind rule.  The one huge frame is named and the thread fix works when re-run."""
    from tests.support.stack_oracles import build

    prog = build("thread_overflow")
    core = kernel_core(prog, [], tmp_path, filt=0)
    segs = loads(core)
    doc, res = diagnose_core(core, prog)
    lo, hi = doc["stack_mapping"]["start_address"], doc["stack_mapping"]["end_address"]
    seg = next(s for s in segs if s[1] <= lo < s[1] + s[3])
    assert seg[2] == 0 < seg[3]                             # readelf: the stack is not dumped
    assert doc["verdict"] == "thread-overflow" and doc["cause"] == "huge-frame"
    assert doc["culprit"]["symbol"] == "fill" and doc["recursion"] is None
    assert any(n.startswith("stack contents:") for n in doc["notes"])
    size = doc["fix_plan"]["stacksize_bytes"]
    assert passes_with([prog, size]) and not passes_with([prog, 65536])


def test_core_of_a_growsdown_coroutine_does_not_claim_a_fixed_block(tmp_path):
    """The same MAP_GROWSDOWN coroutine in a kernel core: VmFlags are not recorded, so the
    answer may not say flatly that the block never grows and RLIMIT_STACK does not apply
    (the live test above shows ulimit -s fixing it)."""
    prog = compile_c(GROWSDOWN, name="growsdown", flags=["-g", "-O0"])
    core = kernel_core(prog, [12 * MiB], tmp_path)
    doc, _res = diagnose_core(core, prog)
    assert doc["verdict"] == "user-stack-overflow"
    assert "unless it was mapped with MAP_GROWSDOWN" in doc["explanation"][0]


# -- a handler recursing on its sigaltstack deeper than the bounded walk -------------------------

ALT_RECURSE = r"""
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
volatile long depth, limit;
long rec(long n) { volatile char pad[200]; pad[0] = n; depth++; if (n >= limit) return 0;
                   return rec(n + 1) + pad[0]; }
static void handler(int sig) { rec(0); write(1, "handled\n", 8); _exit(0); }
int main(int argc, char **argv) {
    size_t altsz = strtoul(argv[1], 0, 0); limit = atol(argv[2]);
    stack_t ss = { .ss_sp = malloc(altsz), .ss_size = altsz, .ss_flags = 0 };
    sigaltstack(&ss, NULL);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1); return 1;
}
"""


def test_handler_recursing_past_the_walk_on_its_altstack():
    """300 levels of ~240 B in a handler on a 64 KiB malloc'd sigaltstack: the signal frame
    lies past the 128-frame walk.  Before: '[user-stack-overflow] ... a coroutine or fiber ...
    give this context a bigger stack' (and for a recursion, 'raising the stack limit')."""
    prog = compile_c(ALT_RECURSE, name="altrec", flags=["-g", "-O0"])
    args = [64 << 10, 300]
    assert not passes_with([prog, *args])
    doc, orc, res = diagnose_live(prog, args, setup=("handle SIGUSR1 nostop noprint pass", "run"),
                                  extra=[*DEPTH_CMDS, "info frame level 0"])
    assert doc["verdict"] == "altstack-overflow" and doc["cause"] == "deep-recursion"
    assert doc["recursion"]["depth"] == depth_printed(res) + 1 and doc["recursion"]["depth_exact"]
    h = doc["signal_handler"]
    assert h["symbol"] == "handler" and h["on_altstack"] and h["altstack"]["size"] == 64 << 10
    assert h["level"] > 128
    fix = doc["fix_plan"]
    assert "alternate signal stack" in fix["text"] and "stack limit" not in fix["text"]
    assert passes_with([prog, fix["stacksize_bytes"], 300])
    # /proc: the malloc'd altstack sits in [heap]; below it the program's own rw-p data, which
    # the frames ran over before the fault (in its r--p part)
    from tests.support.stack_oracles import maps_of
    data = [m for m in maps_of(orc["maps"]) if m[3] == str(prog) and m[2] == "rw-p"]
    assert data and doc["fault_address"] < data[0][0] < doc["signal_handler"]["altstack"]["start_address"]
    assert "wrote over" in doc["headline"] and f"{prog} (rw-p)" in doc["headline"]


def test_one_frame_off_a_heap_altstack_wrote_nothing_below_it():
    """altstack.c: a 256 KiB VLA in a handler on a 64 KiB malloc'd sigaltstack (inside [heap]).
    The signal frame sits inside [heap] too, which must not count as a frame written below the
    altstack: one frame jumped (its memset faults at the lowest byte first)."""
    from tests.support.stack_oracles import build

    prog = build("altstack")
    doc, orc, res = diagnose_live(prog, [65536, 262144], setup=("run", "continue"))
    assert doc["verdict"] == "altstack-overflow" and doc["cause"] == "huge-frame"
    assert "wrote over" not in doc["headline"] and "one frame jumped past [heap]" in doc["headline"]
