"""stack-diagnose on crash shapes found in review (rev-stack), beyond issue 12's list: each
program is built at test time and the answer is checked against oracles the test reads
itself -- the programs' own counters, /proc/PID/maps and limits while stopped, gdb's own
frames, the kernel's rules applied by hand, and re-running the program with the suggested
fix for real."""
import re
import subprocess

import pytest

from tests.support.gdbrun import compile_c
from tests.support.stack_oracles import (ARCH, DEPTH_CMDS, MiB, build, depth_printed, diagnose_live,
                                         growth_rule, limit_of, passes_both_layouts, passes_with,
                                         stack_of)

pytestmark = pytest.mark.gdb
x86_only = pytest.mark.skipif(ARCH != "x86_64", reason="x86_64 code shapes")


# -- recursion the compiler inlined into itself; recursion through a library callback ---------

MUTUAL3 = r"""
volatile long depth;
long b(long n); long c(long n);
long a(long n) { volatile char p[100]; p[0] = n; depth++; return b(n + 1) + p[0]; }
long b(long n) { volatile char p[300]; p[0] = n; depth++; return c(n + 1) + p[0]; }
long c(long n) { volatile char p[50];  p[0] = n; depth++; return a(n + 1) + p[0]; }
int main(void) { return (int)a(0); }
"""

SELF_INLINED = r"""
#include <stdlib.h>
volatile long depth;
long rec(long n) { volatile char pad[1000]; pad[0] = n; depth++; if (n == 0) return 0;
                   return rec(n - 1) + pad[0]; }
int main(int argc, char **argv) { return (int)rec(atol(argv[1])); }
"""


def test_mutual_recursion_inlined_at_O3_is_counted_as_bt_shows_it():
    """gcc -O3 inlines a() and c() (and b() into itself): gdb shows 15 frames per stack frame.
    Before: an internal error (KeyError) -- the cycle's inlined functions have no frame."""
    prog = compile_c(MUTUAL3, name="mutual3_O3", flags=["-g", "-O3"])
    doc, orc, res = diagnose_live(prog, extra=list(DEPTH_CMDS))
    depth = depth_printed(res)
    r = doc["recursion"]
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    assert sorted(r["functions"]) == ["a", "b", "c"]
    assert r["depth_exact"] and abs(r["depth"] - depth) <= 1, (r["depth"], depth)
    assert r["round_count"] == r["depth"] // 3
    assert any(f["virtual"] for f in doc["frames"])
    # the bytes per frame bt shows: the stack used spread over all of them
    assert abs(r["avg_frame_bytes"] * r["depth"] - doc["stack_used_bytes"]) < 0.02 * doc["stack_used_bytes"]


@pytest.mark.parametrize("flags", [["-O2"], ["-O2", "-static"], ["-O2", "-no-pie"]])
def test_recursion_inlined_into_itself_counts_every_level(flags):
    """gcc -O2 inlines rec() into itself: one 4 KiB stack frame holds four levels.  Before:
    depth 2,167 for the program's 8,284 (real frames counted past the sampled ones)."""
    prog = compile_c(SELF_INLINED, name="rec_inlined", flags=["-g", *flags])
    doc, orc, res = diagnose_live(prog, ["1000000"], extra=list(DEPTH_CMDS))
    depth = depth_printed(res)
    r = doc["recursion"]
    assert r["functions"] == ["rec"] and r["depth_exact"]
    assert abs(r["depth"] - depth) <= 1, (r["depth"], depth)
    assert doc["culprit"]["size"] > 2 * r["avg_frame_bytes"]      # a real frame holds several levels


QSORT_REC = r"""
#include <stdlib.h>
volatile long calls;
static int cmp(const void *x, const void *y) {
    int arr[4] = {4, 3, 2, 1};
    calls++;
    qsort(arr, 4, sizeof arr[0], cmp);          /* recursion through libc's qsort() */
    return *(const int *)x - *(const int *)y;
}
int main(void) { int v[2] = {2, 1}; qsort(v, 2, sizeof v[0], cmp); return v[0]; }
"""


def test_recursion_through_a_qsort_callback():
    """The cycle runs cmp -> qsort -> msort_with_tmp -> msort_with_tmp -> ... -> cmp (one
    function twice in a period).  Before: "msort_with_tmp() recursed 4 deep"."""
    prog = compile_c(QSORT_REC, name="qsort_rec", flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog, extra=["echo @@DEPTH@@\\n", "print calls"])
    calls = depth_printed(res)
    r = doc["recursion"]
    assert doc["cause"] == "deep-recursion"
    assert r["functions"].count("cmp") == 1 and len(r["functions"]) > 2
    assert r["depth_exact"] and abs(r["round_count"] - calls) <= 1, (r, calls)
    assert "cmp()" in doc["headline"] and "find why cmp()" in doc["fix_plan"]["text"]
    assert not passes_with([prog], 64 * MiB)               # unbounded: no limit helps


# -- the outermost frame gdb shows (main) is sized too ----------------------------------------

BIG_MAIN = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    volatile char buf[10 << 20];                    /* 10 MiB in main, before any call */
    for (long i = 0; i < (long)sizeof buf; i += 4096) buf[i] = i;
    printf("%d\n", buf[argc]);
    return 0;
}
"""

BIG_STRUCT = r"""
#include <stdio.h>
struct big { char data[12 << 20]; };
static struct big g;
__attribute__((noinline)) long consume(struct big b) { return b.data[0] + b.data[sizeof b.data - 1]; }
int main(void) { g.data[0] = 1; printf("%ld\n", consume(g)); return 0; }   /* 12 MiB by value */
"""

MAIN_VLA = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    size_t n = strtoull(argv[1], 0, 0);
    volatile char buf[n];
    buf[0] = 1;                                     /* only the lowest byte: one growth */
    printf("ok %d\n", buf[0]);
    return 0;
}
"""


@pytest.mark.parametrize("name,src,size", [("big_main", BIG_MAIN, 10 * MiB),
                                           ("big_struct", BIG_STRUCT, 12 * MiB)],
                         ids=["array", "struct-by-value"])
def test_a_huge_frame_in_main_is_named(name, src, size):
    """gdb's walk ends at main ('backtrace past-main' off), so main's frame had no size: the
    cause was '1 frames, none dominating' with no culprit.  Oracle: the frame size the
    program's source fixes, the kernel's rule by hand, the fix re-run."""
    prog = compile_c(src, name=name, flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog)
    growth, soft = growth_rule(orc)
    assert growth > soft and doc["verdict"] == "rlimit"
    assert doc["cause"] == "huge-frame" and doc["culprit"]["symbol"] == "main"
    assert size <= doc["culprit"]["size"] < size + 64 * 1024
    assert "main()" in doc["headline"] and "none dominating" not in doc["headline"]
    assert passes_both_layouts([prog], doc["fix_plan"]["ulimit_kib"] * 1024)
    assert not passes_with([prog], soft)


def test_a_vla_in_main_jumping_over_the_libraries():
    """A 256 MiB VLA in main, under gdb (no randomisation: the libraries 128 MiB below the
    stack): the frame jumps past them.  Before: 'corrupt-sp' -- with main unsized no outer
    frame linked sp to the stack."""
    prog = compile_c(MAIN_VLA, name="main_vla", flags=["-g", "-O0"])
    n = 256 * MiB
    doc, orc, res = diagnose_live(prog, [hex(n)])
    stack = stack_of(orc)
    libs = [m for m in orc["maps"].splitlines() if ".so" in m]
    lowest_lib = min(int(m.split("-")[0], 16) for m in libs)
    assert orc["addr"] < lowest_lib < stack[0]                # past every library
    assert doc["verdict"] == "stack-clash-jump" and doc["culprit"]["symbol"] == "main"
    assert n <= doc["culprit"]["size"] < n + MiB
    assert passes_both_layouts([prog, hex(n)], doc["fix_plan"]["ulimit_kib"] * 1024)


TAIL_CALL = r"""
volatile long depth;
__attribute__((noinline)) long leaf(long n);
__attribute__((noinline)) long mid(long n) { return leaf(n + 1); }      /* a tail call: jmp */
__attribute__((noinline)) long leaf(long n) { volatile char pad[200]; pad[0] = n; depth++;
                                               return mid(n) + pad[0]; }
int main(void) { return (int)leaf(0); }
"""


def test_recursion_through_a_tail_call():
    """gdb shows mid() -- which tail-called leaf() -- as a frame of its own (a TAILCALL_FRAME,
    from the call-site debug info) sharing leaf's caller's sp.  Before: 'depth at least 128'
    (a zero-size frame with no layout)."""
    prog = compile_c(TAIL_CALL, name="tail_rec", flags=["-g", "-O2"])
    doc, orc, res = diagnose_live(prog, extra=list(DEPTH_CMDS))
    depth = depth_printed(res)
    r = doc["recursion"]
    assert sorted(r["functions"]) == ["leaf", "mid"] and r["depth_exact"], r
    assert abs(r["round_count"] - depth) <= 1, (r, depth)


# -- SIGSEGV/SI_KERNEL: the kernel could not push a signal frame on a full stack --------------


SIGNAL_RECURSION = r"""
#include <signal.h>
#include <string.h>
volatile long depth;
static void h(int s) { volatile char pad[64]; pad[0] = s; depth++; raise(SIGUSR1); }
int main(void) {
    struct sigaction sa; memset(&sa, 0, sizeof sa);
    sa.sa_handler = h; sa.sa_flags = SA_NODEFER;
    sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1);
    return 0;
}
"""


def _si_kernel(orc):
    return orc["signo"] == 11 and orc["code"] == 0x80


def test_crash_handler_without_altstack_overflow_is_not_a_gp():
    """The overflow's SIGSEGV cannot be delivered to the handler (its frame does not fit on
    the full stack): the kernel kills with SIGSEGV/SI_KERNEL, no address.  gdb stops there on
    'continue'.  Before: '[not-stack] a general-protection fault (#GP)'."""
    prog = build("crash_handler")
    doc, orc, res = diagnose_live(prog, setup=("run", "continue"), extra=list(DEPTH_CMDS))
    assert _si_kernel(orc)
    stack = stack_of(orc)
    assert doc["verdict"] == "rlimit" and "#GP" not in doc["headline"]
    assert doc["cause"] == "deep-recursion" and doc["recursion"]["functions"] == ["rec"]
    assert abs(doc["recursion"]["depth"] - depth_printed(res)) <= 1
    # the frame the kernel could not write lies below the mapped stack, beyond the limit
    fault = doc["fault_address"]
    assert fault < stack[0] <= orc["sp"] + 65536 and stack[1] - (fault & ~4095) > stack[1] - stack[0]
    assert stack[1] - (fault & ~4095) > growth_rule({**orc, "addr": fault})[1]
    assert any("force_sigsegv" in e for e in doc["explanation"])
    assert "sigaltstack" in doc["fix_plan"]["text"]


def test_crash_handler_in_a_thread():
    prog = build("crash_handler")
    doc, orc, res = diagnose_live(prog, ["thread"], setup=("run", "continue"),
                                  extra=list(DEPTH_CMDS))
    assert _si_kernel(orc)
    assert doc["verdict"] == "thread-overflow" and doc["cause"] == "deep-recursion"
    assert abs(doc["recursion"]["depth"] - depth_printed(res)) <= 1
    assert doc["stack_mapping"]["end_address"] - doc["stack_mapping"]["start_address"] == 1 << 20


def test_recursion_through_signal_handlers():
    """A SIGUSR1 handler raising SIGUSR1 (SA_NODEFER): each level is h, raise, a tail call,
    pthread_kill and the kernel's signal frame; delivery finally fails on the full stack.
    Before: #GP; then the depth stopped short where the kernel aligned a signal frame
    differently (its size is not fixed: the interrupted sp is read from the frame)."""
    prog = compile_c(SIGNAL_RECURSION, name="signal_recursion", flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog, setup=("handle SIGUSR1 nostop noprint pass", "run"),
                                  extra=list(DEPTH_CMDS))
    assert _si_kernel(orc)
    r = doc["recursion"]
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    assert "h" in r["functions"]
    assert r["depth_exact"] and abs(r["round_count"] - depth_printed(res)) <= 1, (r, depth_printed(res))
    assert doc["signal_handler"]["signo"] is None                # no SA_SIGINFO: not recorded
    assert "find why h()" in doc["fix_plan"]["text"]


def test_kernel_core_of_a_crash_handler_overflow(tmp_path):
    """The same in the core the kernel wrote (its NT_SIGINFO holds SI_KERNEL, no address)."""
    import subprocess

    from tests.support.stack_oracles import run_gdb_limited

    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write into the working directory")
    prog = build("crash_handler")
    run = subprocess.run(["prlimit", "--core=unlimited", str(prog)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode != 0 and "crash" not in run.stderr      # the handler never ran
    cores = [p for p in tmp_path.iterdir() if p.name.startswith(pattern.split("%")[0] or "core")]
    if not cores:
        pytest.skip(f"no core written (core_pattern {pattern!r})")
    from tests.support.gdbrun import json_wrapped
    from tests.support.stack_oracles import assert_valid, ints

    res = run_gdb_limited(None, [*json_wrapped("stack-diagnose --json"), *DEPTH_CMDS],
                          program=prog, core=cores[0])
    raw = res.json_documents()[0]
    assert_valid(raw)
    doc = ints(raw)
    assert doc["signal"]["si_code_name"] == "SI_KERNEL"
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    assert abs(doc["recursion"]["depth"] - depth_printed(res)) <= 1


# -- stacks the program allocated: a coroutine, a thread on pthread_attr_setstack --------------



def _block(res):
    m = re.search(r"stack=(0x[0-9a-f]+) size=(\d+)", res.stdout)
    return int(m[1], 16), int(m[2])


@pytest.mark.parametrize("size", [256 << 10, 64 << 10], ids=["mmap-block", "in-heap"])
def test_coroutine_stack_overflow_is_not_a_corrupt_sp(size):
    """A makecontext coroutine recursing off its malloc'd stack: sp is in a mapping that is not
    [stack].  Before: '[corrupt-sp] the stack pointer itself is corrupt'."""
    prog = build("coroutine")
    doc, orc, res = diagnose_live(prog, [str(size), "rec", "100000"], extra=list(DEPTH_CMDS))
    lo, n = _block(res)
    assert doc["verdict"] == "user-stack-overflow" and doc["cause"] == "deep-recursion"
    st = doc["stack_mapping"]
    assert st["start_address"] <= lo and lo + n <= st["end_address"] <= lo + n + (64 << 10)
    assert orc["addr"] < lo and doc["fault_address"] == orc["addr"]
    assert abs(doc["recursion"]["depth"] - depth_printed(res)) <= 1
    if size == 64 << 10:           # malloc put it in [heap]: the overflow ran through .data
        data = [m for m in orc["maps"].splitlines() if str(prog) in m and " rw-p " in m]
        assert data and "wrote over" in doc["headline"] and "rw-p" in doc["headline"]


def test_coroutine_fix_is_a_stack_size_that_works():
    prog = build("coroutine")
    doc, orc, res = diagnose_live(prog, [str(128 << 10), "vla", str(300 << 10)])
    assert doc["verdict"] == "user-stack-overflow" and doc["cause"] == "huge-frame"
    assert doc["fix_plan"]["kind"] == "stack_size"
    size = doc["fix_plan"]["stacksize_bytes"]
    assert str(size) in doc["fix_plan"]["text"]
    ok = subprocess.run([str(prog), str(size), "vla", str(300 << 10)], capture_output=True, text=True)
    assert ok.returncode == 0 and "back" in ok.stdout
    assert not passes_with([prog, 128 << 10, "vla", 300 << 10])


SETSTACK = r"""
/* setstack SIZE N: a thread on a SIZE-byte malloc'd stack (pthread_attr_setstack) with an
 * N-byte VLA */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static long n;
static void *body(void *a) { volatile char buf[n]; buf[0] = 1; buf[n - 1] = 2; return 0; }
int main(int argc, char **argv) {
    size_t size = strtoul(argv[1], 0, 0); n = atol(argv[2]);
    void *stk = malloc(size);
    printf("stack=%p size=%zu\n", stk, size); fflush(stdout);
    pthread_attr_t a; pthread_attr_init(&a); pthread_attr_setstack(&a, stk, size);
    pthread_t t; if (pthread_create(&t, &a, body, 0)) return 2;
    pthread_join(t, 0); puts("joined"); return 0;
}
"""


def test_thread_on_a_malloced_stack_names_setstack():
    """pthread_attr_setstack() on malloc'd memory: no guard; the overflow ran through the
    heap and the program's data before it faulted.  Before: 'a fixed mmap ... with a
    PROT_NONE guard below', and a fix for pthread_attr_setstacksize only."""
    prog = compile_c(SETSTACK, name="setstack", flags=["-g", "-O0", "-pthread"])
    doc, orc, res = diagnose_live(prog, [str(64 << 10), str(100 << 10)])
    lo, n = _block(res)
    assert doc["verdict"] == "thread-overflow"
    assert any("pthread_attr_setstack()" in e and "[heap]" in e for e in doc["explanation"])
    assert "pthread_attr_setstack()" in doc["fix_plan"]["text"]
    size = doc["fix_plan"]["stacksize_bytes"]
    ok = subprocess.run([str(prog), str(size), str(100 << 10)], capture_output=True, text=True)
    assert ok.returncode == 0 and "joined" in ok.stdout


# -- alloca() in a loop: the frame had not stopped growing -------------------------------------

ALLOCA_LOOP = r"""
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]); long sum = 0;
    for (int i = 0; i < n; i++) { char *p = alloca(4096); memset(p, i, 4096); sum += p[100]; }
    printf("%ld\n", sum); return 0;
}
"""

VLA_LOOP = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]); long m = atol(argv[2]); long sum = 0;
    for (int i = 0; i < n; i++) { volatile char buf[m]; buf[0] = i; buf[m - 1] = i; sum += buf[0]; }
    printf("%ld\n", sum); return 0;
}
"""


def test_alloca_in_a_loop_gets_no_limit_that_fails():
    """3000 iterations of alloca(4096) need ~12 MiB; the fault comes at 8 MiB.  Before: 'FIX
    ulimit -s 9216', which fails when re-run (the frame was still growing)."""
    from gdb_toolkit.stack.kernel_rules import ulimit_kib_for

    prog = compile_c(ALLOCA_LOOP, name="alloca_loop", flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog, ["3000"])
    assert doc["verdict"] == "rlimit" and doc["cause"] == "huge-frame"
    assert doc["culprit"]["symbol"] == "main" and doc["culprit"]["instruction"]["in_loop"]
    assert doc["fix_plan"]["kind"] == "code" and doc["fix_plan"]["ulimit_kib"] is None
    assert "loop" in doc["fix_plan"]["text"]
    # the limit for what was used so far does not do (the oracle: re-run), more does
    assert not passes_with([prog, 3000], ulimit_kib_for(doc["fix_plan"]["needed_bytes"]) * 1024)
    assert passes_with([prog, 3000], 16 * MiB)


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_a_vla_in_a_loop_is_freed_each_iteration(opt):
    """A VLA's scope ends every iteration (sp is set back): not a growing frame; the ulimit fix
    holds when re-run."""
    prog = compile_c(VLA_LOOP, name="vla_loop", flags=["-g", opt])
    doc, orc, res = diagnose_live(prog, ["3", str(16_000_000)])
    assert doc["verdict"] == "rlimit" and doc["cause"] == "huge-frame"
    assert not doc["culprit"]["instruction"]["in_loop"]
    assert passes_both_layouts([prog, 3, 16_000_000], doc["fix_plan"]["ulimit_kib"] * 1024)


# -- stack smashing: SIGABRT from the stack protector, not growth -----------------------------

SMASH = r"""
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) void copy(const char *s) { char buf[16]; strcpy(buf, s); printf("%s\n", buf); }
int main(int argc, char **argv) { copy(argc > 1 ? argv[1] : "short"); return 0; }
"""


def test_stack_smashing_is_named_with_the_function():
    """Before: '[healthy] stopped by SIGABRT: stack healthy ... nothing to fix'."""
    prog = compile_c(SMASH, name="smash", flags=["-g", "-O0", "-fstack-protector-strong"])
    arg = "A" * 64
    run = subprocess.run([str(prog), arg], capture_output=True, text=True)
    assert "stack smashing detected" in run.stderr              # the program's own report
    doc, orc, res = diagnose_live(prog, [arg])
    assert orc["signo"] == 6
    assert doc["verdict"] == "stack-smash" and "copy()" in doc["headline"]
    assert "0x4141414141414141" in doc["headline"]              # the return address, overwritten
    assert "copy()" in doc["fix_plan"]["text"] and doc["fix_plan"]["kind"] == "code"


def test_fortify_abort_is_not_called_healthy():
    prog = compile_c(SMASH, name="smash_fortify", flags=["-g", "-O2", "-D_FORTIFY_SOURCE=2"])
    arg = "A" * 64
    run = subprocess.run([str(prog), arg], capture_output=True, text=True)
    assert "buffer overflow detected" in run.stderr
    doc, orc, res = diagnose_live(prog, [arg])
    assert doc["verdict"] == "not-stack" and "_FORTIFY_SOURCE" in doc["headline"]
    assert "__strcpy_chk()" in doc["headline"] and "copy()" in doc["headline"]


# -- a growth no limit can grant: the kernel's memory commit check ----------------------------

def _ram_swap():
    info = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":", 1)
        info[k] = int(v.split()[0]) * 1024
    return info["MemTotal"] + info.get("SwapTotal", 0)


def _huge_vla_size():
    if open("/proc/sys/vm/overcommit_memory").read().strip() != "0":
        pytest.skip("vm.overcommit_memory is not the heuristic mode 0")
    n = 4 * _ram_swap()
    if n >= 1 << 46:
        pytest.skip("too much memory for a VLA that exceeds it to fit below the stack")
    return n


@pytest.mark.parametrize("limit", ["unlimited", "default"])
def test_a_growth_bigger_than_ram_and_swap_gets_no_ulimit(limit):
    """A VLA of 4 x (RAM + swap), only its lowest byte touched.  With RLIMIT_STACK unlimited
    the kernel's overcommit heuristic refuses it (before: 'stack-other ... check RLIMIT_AS,
    the memory cgroup and dmesg'); with the default limit it jumps past the libraries (before:
    'ulimit -s <that much>', which fails when re-run)."""
    n = _huge_vla_size()
    prog = compile_c(MAIN_VLA, name="main_vla", flags=["-g", "-O0"])
    setup = ("set exec-wrapper prlimit --stack=unlimited", "run") if limit == "unlimited" else ("run",)
    doc, orc, res = diagnose_live(prog, [hex(n)], setup=setup)
    assert doc["culprit"]["symbol"] == "main" and doc["culprit"]["size"] >= n
    assert doc["fix_plan"]["kind"] == "code" and doc["fix_plan"]["ulimit_kib"] is None
    assert "overcommit" in doc["fix_plan"]["text"]
    if limit == "unlimited":
        assert limit_of(orc) is None
        assert doc["verdict"] == "stack-other" and "commit check" in doc["headline"]
    # the oracle: the limit that would cover it does not help
    assert not passes_with([prog, hex(n)], n + 64 * MiB)
    assert not passes_with([prog, hex(n)], "unlimited")


def test_altstack_overflow_names_the_interrupted_pc():
    """Before: 'interrupting pc 0x0' (a key misspelt): the pc of the first fault, which the
    handler interrupted, is what the signal frame saved."""
    prog = build("altstack")
    doc, orc, res = diagnose_live(prog, ["65536", "262144"],
                                  setup=("run", "echo @@PC@@\\n", "print/x $pc", "continue"))
    first_pc = int(re.search(r"@@PC@@\n\$\d+ = (0x[0-9a-f]+)", res.stdout)[1], 16)
    assert doc["verdict"] == "altstack-overflow"
    assert doc["signal_handler"]["interrupted_pc_address"] == first_pc
    assert any(f"interrupting pc 0x{first_pc:x}" in e for e in doc["explanation"])


# -- 32-bit x86 programs (i686-linux-gnu-gcc; the x86_64 kernel's growth rules) ----------------

I686 = "i686-linux-gnu-gcc"
i686 = pytest.mark.skipif(ARCH != "x86_64" or not __import__("shutil").which(I686),
                          reason="needs i686-linux-gnu-gcc on an x86_64 kernel")


@i686
def test_i386_recursion():
    """Before: "architecture 'i386' is not supported"."""
    prog = compile_c(SELF_INLINED, name="rec32", flags=["-g", "-O0"], compiler=I686)
    doc, orc, res = diagnose_live(prog, ["1000000"], extra=list(DEPTH_CMDS))
    growth, soft = growth_rule(orc)
    assert doc["thread"]["arch"] == "i386" and growth > soft
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    r = doc["recursion"]
    assert r["depth_exact"] and abs(r["depth"] - depth_printed(res)) <= 1
    assert doc["growth_requested_bytes"] == growth and doc["fault_address"] == orc["addr"]


@i686
@pytest.mark.parametrize("flags", [["-O0"], ["-O2", "-fstack-clash-protection"]],
                         ids=["plain", "probed"])
def test_i386_vla_fix_works(flags):
    prog = compile_c(MAIN_VLA.replace("buf[0] = 1;", "buf[0] = 1; buf[n - 1] = 2;"),
                     name="vla32", flags=["-g", *flags], compiler=I686)
    n = 16 * MiB
    doc, orc, res = diagnose_live(prog, [hex(n)])
    assert doc["verdict"] == "rlimit" and doc["culprit"]["symbol"] == "main"
    assert "esp" in doc["culprit"]["instruction"]["text"]            # as i386 spells it
    assert n <= doc["fix_plan"]["needed_bytes"] < n + MiB                        # the whole VLA, probed too
    assert passes_both_layouts([prog, hex(n)], doc["fix_plan"]["ulimit_kib"] * 1024)
    assert not passes_with([prog, hex(n)], limit_of(orc))


@x86_only
def test_probing_loop_in_main_knows_the_whole_request():
    """gcc's probe loop in main (the walk's outermost frame): the requested size comes from
    main's CFA.  Before (with main sized): 'one huge frame in main() (8.0 MiB)' for a 16 MiB
    VLA."""
    prog = compile_c(MAIN_VLA.replace("buf[0] = 1;", "buf[0] = 1; buf[n - 1] = 2;"),
                     name="vla_probed", flags=["-g", "-O2", "-fstack-clash-protection"])
    n = 16 * MiB
    doc, orc, res = diagnose_live(prog, [hex(n)])
    assert doc["cause"] == "clash-probe" and doc["clash_probe"]["requested_size"] >= n
    assert "(16.0 MiB)" in doc["headline"]
    assert passes_both_layouts([prog, hex(n)], doc["fix_plan"]["ulimit_kib"] * 1024)


@i686
def test_i386_thread_overflow():
    prog = compile_c(CRASH_HANDLER_SRC(), name="crash_handler32", flags=["-g", "-O0", "-pthread"],
                     compiler=I686)
    doc, orc, res = diagnose_live(prog, ["thread"], extra=list(DEPTH_CMDS))
    assert doc["verdict"] == "thread-overflow" and doc["cause"] == "deep-recursion"
    assert doc["stack_mapping"]["end_address"] - doc["stack_mapping"]["start_address"] == 1 << 20
    assert abs(doc["recursion"]["depth"] - depth_printed(res)) <= 1


def CRASH_HANDLER_SRC():
    from tests.support.stack_oracles import EX

    return (EX / "crash_handler.c").read_text()


AT_MINSIGSTKSZ = 51


def auxv_value(key: int) -> int | None:
    """This process's auxv entry *key* (the kernel gives every process the same
    AT_MINSIGSTKSZ), or None."""
    import struct

    data = open("/proc/self/auxv", "rb").read()
    for k, v in struct.iter_unpack("<QQ", data[: len(data) // 16 * 16]):
        if k == key:
            return v
    return None


SMALL_ALTSTACK = r"""
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
volatile long depth;
static void handler(int s) { write(2, "crash\n", 6); _exit(3); }
static long rec(long n) { volatile char pad[256]; pad[0] = n; depth++; return rec(n + 1) + pad[0]; }
int main(int argc, char **argv) {
    stack_t ss; ss.ss_size = atol(argv[1]); ss.ss_sp = malloc(ss.ss_size); ss.ss_flags = 0;
    if (sigaltstack(&ss, 0)) return 2;
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = handler; sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, 0);
    return (int)rec(0);
}
"""


def test_crash_handler_on_a_too_small_altstack():
    """A sigaltstack of MINSIGSTKSZ (2048) is smaller than this CPU's signal frame: the
    handler cannot run either.  The fix's sigaltstack size makes it run (the oracle: its
    "crash" line and exit code 3 when re-run).

    The frame's size is the CPU's: AT_MINSIGSTKSZ is 3376 B with AVX-512, 1776 B without.
    With 1776 B the frame plus the handler's own fits in 2048 bytes or not by where malloc
    put the stack (gdb turns ASLR off: the handler ran there while it crashed outside), so
    the case is only certain when the frame alone does not fit."""
    frame = auxv_value(AT_MINSIGSTKSZ)
    if frame is None or frame < 2048:
        pytest.skip(f"this CPU's signal frame (AT_MINSIGSTKSZ {frame} B) fits in a 2048-byte "
                    "sigaltstack: whether the handler runs depends on where malloc put it; "
                    "the case needs a larger xsave state (AVX-512: 3376 B)")
    prog = compile_c(SMALL_ALTSTACK, name="small_altstack", flags=["-g", "-O0"])
    first = subprocess.run([str(prog), "2048"], capture_output=True, text=True)
    assert first.returncode != 3, "the handler ran on 2048 bytes although the frame is " \
        f"{frame} B"
    doc, orc, res = diagnose_live(prog, ["2048"], setup=("run", "continue"))
    assert _si_kernel(orc) and doc["verdict"] == "rlimit"
    assert any("MINSIGSTKSZ" in e for e in doc["explanation"])
    size = int(re.search(r"sigaltstack\(2\) of at least (\d+) bytes", doc["fix_plan"]["text"])[1])
    again = subprocess.run([str(prog), str(size)], capture_output=True, text=True)
    assert again.returncode == 3 and "crash" in again.stderr


THREAD_DEFAULT = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static long n;
static void *body(void *a) { volatile char buf[n]; buf[0] = 1; buf[n - 1] = 2; return 0; }
int main(int argc, char **argv) { n = atol(argv[1]); pthread_t t; pthread_create(&t, 0, body, 0);
                                  pthread_join(t, 0); puts("ok"); return 0; }
"""


def test_unlimited_stack_limit_shrinks_default_threads():
    """Under 'ulimit -s unlimited' a thread created without a size gets 2 MiB: a 3 MB VLA
    overflows it, while the default 8 MiB limit would have given the thread room (the
    oracle: both runs)."""
    from tests.support.gdbrun import json_wrapped
    from tests.support.stack_oracles import assert_valid, ints, run_gdb_limited

    prog = compile_c(THREAD_DEFAULT, name="thread_default", flags=["-g", "-O0", "-pthread"])
    assert not passes_with([prog, 3_000_000], "unlimited")
    assert passes_with([prog, 3_000_000], 8 * MiB)
    res = run_gdb_limited("unlimited", ["run", *json_wrapped("stack-diagnose --json")],
                          program=prog, args=["3000000"])
    raw = res.json_documents()[0]
    assert_valid(raw)
    doc = ints(raw)
    assert doc["verdict"] == "thread-overflow"
    assert doc["stack_mapping"]["end_address"] - doc["stack_mapping"]["start_address"] == 2 * MiB
    assert any("shrinks thread stacks" in e for e in doc["explanation"])


SPLIT = r"""
#include <stdio.h>
#include <stdlib.h>
volatile long depth;
long rec(long n) { volatile char pad[4000]; pad[0] = n; depth++; if (n == 0) return 0;
                   return rec(n - 1) + pad[0]; }
int main(int argc, char **argv) { printf("%ld\n", rec(atol(argv[1]))); return 0; }
"""


@x86_only
def test_split_stack_out_of_memory_is_not_healthy():
    """-fsplit-stack under RLIMIT_AS: __generic_morestack cannot map a segment and aborts.
    Before: '[healthy] stopped by SIGABRT: stack healthy -- - used'."""
    prog = compile_c(SPLIT, name="split_stack", flags=["-g", "-O2", "-fsplit-stack"])
    run = subprocess.run(["prlimit", f"--as={256 * MiB}", str(prog), "100000000"],
                         capture_output=True, text=True)
    assert "unable to allocate additional stack space" in run.stderr    # libgcc's own words
    doc, orc, res = diagnose_live(prog, ["100000000"], setup=(
        f"set exec-wrapper prlimit --as={256 * MiB}", "run"))
    assert orc["signo"] == 6
    assert doc["verdict"] == "stack-other" and "split-stack" in doc["headline"]
    assert "rec()" in doc["headline"] and "rec()" in doc["fix_plan"]["text"]


SETSTACK_MMAP = r"""
/* a thread on a SIZE-byte mmap'd stack with a PROT_NONE page the program put below it */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
static long rec(long n) { volatile char pad[512]; pad[0] = n; if (n == 0) return 0; return rec(n - 1) + pad[0]; }
static void *body(void *a) { return (void *)rec((long)a); }
int main(int argc, char **argv) {
    size_t size = strtoul(argv[1], 0, 0);
    char *m = mmap(0, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(m, 4096, PROT_NONE);
    printf("stack=%p size=%zu\n", m + 4096, size); fflush(stdout);
    pthread_attr_t a; pthread_attr_init(&a); pthread_attr_setstack(&a, m + 4096, size);
    pthread_t t; pthread_create(&t, &a, body, (void *)atol(argv[2])); pthread_join(t, 0);
    puts("joined"); return 0;
}
"""


@x86_only
def test_thread_stack_ends_at_its_thread_pointer():
    """An mmap'd pthread_attr_setstack stack merges with the anonymous mapping above it; the
    thread's block ends at its TCB page (x86_64: struct pthread is in the block's last page).
    Before: 'has a 76.0 KiB stack' for a 64 KiB one."""
    prog = compile_c(SETSTACK_MMAP, name="setstack_mmap", flags=["-g", "-O0", "-pthread"])
    doc, orc, res = diagnose_live(prog, [str(64 << 10), "1000"])
    lo, n = _block(res)
    assert doc["verdict"] == "thread-overflow"
    assert (doc["stack_mapping"]["start_address"], doc["stack_mapping"]["end_address"]) == (lo, lo + n)
    assert doc["stack_mapping"]["guard_range"]["end_address"] == lo


def _kernel_core(tmp_path, argv):
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write into the working directory")
    run = subprocess.run(["prlimit", "--core=unlimited", *map(str, argv)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode != 0
    cores = [p for p in tmp_path.iterdir() if p.name.startswith(pattern.split("%")[0] or "core")]
    if not cores:
        pytest.skip(f"no core written (core_pattern {pattern!r})")
    return cores[0], run


def _diagnose_core(prog, core, extra=()):
    from tests.support.gdbrun import json_wrapped
    from tests.support.stack_oracles import assert_valid, ints, run_gdb_limited

    res = run_gdb_limited(None, [*json_wrapped("stack-diagnose --json"), *extra],
                          program=prog, core=core)
    raw = res.json_documents()[0]
    assert_valid(raw)
    return ints(raw), res


def test_coroutine_overflow_in_a_kernel_core(tmp_path):
    """A core names no [stack]: the initial stack comes from auxv, and the coroutine's
    mapping is still told from it.  Before: 'corrupt-sp ... 42.5 TiB below main stack'."""
    prog = build("coroutine")
    core, run = _kernel_core(tmp_path, [prog, 256 << 10, "rec", 100000])
    lo, n = _block(run)
    doc, res = _diagnose_core(prog, core, list(DEPTH_CMDS))
    assert doc["verdict"] == "user-stack-overflow" and doc["cause"] == "deep-recursion"
    assert doc["stack_mapping"]["start_address"] <= lo < lo + n <= doc["stack_mapping"]["end_address"]
    assert abs(doc["recursion"]["depth"] - depth_printed(res)) <= 1
