"""stack-diagnose on crash shapes of a second adversarial round (stack2): a thread on a stack
the program passed with pthread_attr_setstack (no guard) that ran on into another thread's
block, among 200 threads; a recursion that a huge frame further out left little room.
Oracles: the programs' own counters and printed addresses (pthread_getattr_np, the block
they passed), /proc/PID/maps, objdump, and re-running the program with the fix."""
import re
import shutil
import subprocess

import pytest

from tests.support.gdbrun import assert_no_traceback, compile_c, run_gdb
from tests.support.stack_oracles import (ARCH, DEPTH_CMDS, PAGE, MiB, depth_printed, diagnose_live,
                                         maps_of, passes_with)

pytestmark = pytest.mark.gdb

SETSTACK = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#define IDLE 200
volatile long depth;
static unsigned long lo[IDLE], hi[IDLE]; static long tid[IDLE];
static pthread_barrier_t ready;
long rec(long n) { volatile char pad[256]; pad[0] = n; depth++; return rec(n + 1) + pad[0]; }
static void *idle(void *a) {
    long i = (long)a; pthread_attr_t at; void *p; size_t s;
    pthread_getattr_np(pthread_self(), &at); pthread_attr_getstack(&at, &p, &s);
    lo[i] = (unsigned long)p; hi[i] = lo[i] + s; tid[i] = syscall(SYS_gettid);
    pthread_barrier_wait(&ready); pause(); return 0;
}
static void *bad(void *a) { rec(0); return 0; }
int main(void) {
    pthread_t t[IDLE + 2]; pthread_attr_t at; size_t sz = 256 * 1024;
    char *blk = aligned_alloc(4096, 2 * sz);          /* two stacks back to back, no guard */
    pthread_barrier_init(&ready, 0, IDLE + 1);
    for (long i = 0; i < IDLE; i++) pthread_create(&t[i], 0, idle, (void *)i);
    pthread_barrier_wait(&ready);
    for (int i = 0; i < IDLE; i++) printf("idle %ld %lx %lx\n", tid[i], lo[i], hi[i]);
    printf("bad %lx %lx\n", (unsigned long)blk, (unsigned long)(blk + sz)); fflush(stdout);
    pthread_attr_init(&at); pthread_attr_setstack(&at, blk + sz, sz);
    pthread_create(&t[IDLE], &at, idle, (void *)0);   /* re-uses slot 0's record: unused */
    pthread_attr_init(&at); pthread_attr_setstack(&at, blk, sz);
    pthread_create(&t[IDLE + 1], &at, bad, 0);
    pthread_join(t[IDLE + 1], 0); return 0;
}
"""


def test_setstack_thread_overran_into_another_threads_block():
    """The faulting thread (the 203rd of 203) runs on a 256 KiB block it was given with
    pthread_attr_setstack: no guard below, so its recursion ran on through the 8 MiB stack
    of an idle thread below and faulted at that thread's guard page.  Before: 'thread 203 has
    a 8.0 MiB stack ... in its 4.0 KiB guard page' (the idle thread's block, taken from where
    the innermost frames are), fix pthread_attr_setstacksize, depth 'at least' (the chain walk
    stopped at that block's top)."""
    prog = compile_c(SETSTACK, name="setstack_clash", flags=["-g", "-O0", "-pthread"])
    doc, orc, res = diagnose_live(prog, extra=DEPTH_CMDS, setup=("handle SIGUSR1 nostop", "run"))
    idle = [(int(t), int(a, 16), int(b, 16)) for t, a, b in
            re.findall(r"^idle (\d+) ([0-9a-f]+) ([0-9a-f]+)$", res.stdout, re.M)]
    blk, top = (int(x, 16) for x in re.search(r"^bad ([0-9a-f]+) ([0-9a-f]+)$", res.stdout,
                                              re.M).groups())
    assert len(idle) == 200 and orc["signo"] == 11
    fault = orc["addr"]
    # the kernel's fault lies in a PROT_NONE page right below one idle thread's stack
    guard = next(m for m in maps_of(orc["maps"]) if m[0] <= fault < m[1])
    assert guard[2].startswith("---")
    victim = next(t for t in idle if t[1] - 2 * PAGE <= fault < t[1])
    assert doc["thread"]["num"] > 200 and not doc["thread"]["main"]
    assert doc["verdict"] == "thread-clash"
    assert doc["stack_mapping"]["end_address"] == top                       # the block it was given
    assert doc["stack_mapping"]["start_address"] <= blk < top
    assert [v["tid"] for v in doc["damaged_threads"]] == [victim[0]]
    assert doc["damaged_threads"][0]["block_top_address"] == victim[2]
    assert doc["cause"] == "deep-recursion" and doc["recursion"]["depth_exact"]
    assert doc["recursion"]["depth"] - depth_printed(res) in (0, 1)
    assert "pthread_attr_setstack" in doc["fix_plan"]["text"]


# -- a recursion that a huge frame further out left little room --------------------------------

OUTER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
volatile long depth;
int rec(int n) { char buf[FRAME]; memset(buf, n, sizeof buf); depth++;
                 if (n == 0) return buf[1]; return rec(n - 1) + buf[5]; }
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
#ifdef HEAP
    char *big = malloc(6000000);
#else
    char big[6000000];
#endif
    memset(big, 1, 6000000);
    int r = rec(n); printf("%d\n", r + big[7]); return 0;
}
"""


def _main_frame(prog) -> int:
    """objdump: main's frame = its sub $N,%rsp + the saved rbp + the return address."""
    from tests.support.stack_oracles import objdump

    body = re.search(r"<main>:\n(.*?)\n\n", objdump(prog), re.S)[1]
    return int(re.search(r"sub\s+\$0x([0-9a-f]+),%rsp", body)[1], 16) + 16


@pytest.mark.parametrize("frame", [4096, 65536])
def test_recursion_under_a_huge_outer_frame(frame):
    """main() holds a 6 MB array and calls a recursion that needs 1,500 frames: with 4 KiB
    frames main() lies 579 frames out, past the 128-frame walk.  Before: 'deep recursion in
    rec() (depth 579)', 'find why rec() recursed 579 deep' (the depth is legitimate; main()
    took 5.7 MiB of the 8 MiB) -- and with 64 KiB frames (main() inside the walk) the huge
    frame was named but the fix was 'ulimit -s 9216', which the re-run shows still crashes:
    the recursion was still going."""
    if ARCH != "x86_64":
        pytest.skip("main()'s frame size is read from x86_64 objdump output")
    flags = ["-g", "-O0", f"-DFRAME={frame}"]
    prog = compile_c(OUTER, name=f"outer_{frame}", flags=flags)
    heap = compile_c(OUTER, name=f"outer_heap_{frame}", flags=[*flags, "-DHEAP"])
    n = 1500 if frame == 4096 else 100
    doc, orc, res = diagnose_live(prog, args=[n], extra=DEPTH_CMDS)
    assert orc["signo"] == 11 and doc["verdict"] == "rlimit"
    counted = depth_printed(res)
    assert doc["cause"] == "huge-frame"
    assert doc["culprit"]["symbol"] == "main" and doc["culprit"]["size"] == _main_frame(prog)
    assert doc["recursion"]["depth"] - counted in (0, 1) and doc["recursion"]["depth_exact"]
    assert doc["culprit"]["level"] == doc["recursion"]["depth"]      # bt: rec #0..#N-1, main #N
    assert (counted > 128) == (frame == 4096)                        # past the walk, or inside
    fix = doc["fix_plan"]
    assert fix["kind"] == "heap" and fix["ulimit_kib"] is None and "main()" in fix["text"]
    # the fix's claim: with main()'s buffer on the heap the same run passes in the same 8 MiB;
    # the size the old answer offered (ulimit -s 9216) does not save it
    assert passes_with([heap, n], 8 * MiB)
    assert not passes_with([prog, n], 9216 * 1024)



def test_healthy_stop_names_the_outer_frame():
    """Stopped at a breakpoint at the bottom of a 301-deep recursion that fits (no crash):
    healthy, and the largest frame -- main()'s, 301 frames out, past the walk -- is named
    with objdump's size, not left out."""
    if ARCH != "x86_64":
        pytest.skip("main()'s frame size is read from x86_64 objdump output")
    prog = compile_c(OUTER, name="outer_4096", flags=["-g", "-O0", "-DFRAME=4096"])
    assert passes_with([prog, 300], 8 * MiB)                 # the run itself is fine
    doc, orc, _res = diagnose_live(prog, args=[300], setup=("break rec if n == 0", "run"))
    assert orc["signo"] == 5 and doc["verdict"] == "healthy"
    assert doc["recursion"]["depth"] == 301 and doc["recursion"]["depth_exact"]
    assert doc["culprit"]["symbol"] == "main" and doc["culprit"]["size"] == _main_frame(prog)
    assert doc["culprit"]["level"] == 301



# -- a core whose program file was rebuilt since ----------------------------------------------

REBUILT = r"""
#include <stdio.h>
volatile long depth;
int other(int x) { return x * 3; }
long rec(long n) { volatile char pad[300]; pad[0] = n; depth++;
                   if (n > 1L << 40) return other(n); return rec(n + 1) + pad[0]; }
int main(void) { printf("rebuilt\n"); return (int)rec(0); }
"""


def _build_id(path) -> str:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out)[1]


def test_core_of_a_program_rebuilt_since(tmp_path):
    """The program was rebuilt after it dumped the core: gdb loads the new file without a
    word, finds no symbol at the PIE's pc and stops its walk at frame #0.  Before: '1+ frame,
    none dominating' and 'ulimit -s 9216' -- the runaway recursion crashes with that too --
    and 'give gdb the program file', which it had been given.  Now the build-ids (readelf's)
    are named and no size is offered; with the file that ran, the recursion is found."""
    from tests.integration.test_stack_shapes import RUNAWAY, diagnose_core, kernel_core

    old = compile_c(RUNAWAY, name="runaway", flags=["-g", "-O0"])
    new = compile_c(REBUILT, name="rebuilt", flags=["-g", "-O0"])
    prog = tmp_path / "app"
    shutil.copy(old, prog)
    core = kernel_core(prog, [], tmp_path)
    shutil.copy(new, prog)                                  # rebuilt in place
    doc, res = diagnose_core(core, prog)
    assert doc["verdict"] == "rlimit" and doc["cause"] is None and doc["culprit"] is None
    note = next(n for n in doc["notes"] if n.startswith("program file:"))
    assert _build_id(old)[:16] in note and _build_id(new)[:16] in note
    fix = doc["fix_plan"]
    assert fix["kind"] == "code" and fix["ulimit_kib"] is None and "not it" in fix["text"]
    assert "frames, none dominating" not in res.stdout
    assert not passes_with([old], 9216 * 1024)              # the size the old answer offered
    # the control: the program file that ran
    shutil.copy(old, prog)
    doc, _res = diagnose_core(core, prog)
    assert doc["cause"] == "deep-recursion" and not any(n.startswith("program file:")
                                                        for n in doc["notes"])


# -- a stripped -static-pie program, -O2 -fomit-frame-pointer -----------------------------------

MUTUAL3 = r"""
#include <string.h>
volatile long depth;
long b(long n); long c(long n);
long a(long n) { char x[64]; memset(x, n, 64); depth++; return b(n + 1) + x[3]; }
long b(long n) { char x[128]; memset(x, n, 128); return c(n + 1) + x[5]; }
long c(long n) { char x[32]; memset(x, n, 32); return a(n + 1) + x[7]; }
int main(void) { return (int)a(0); }
"""


def test_stripped_static_pie_recursion_reads_well():
    """A stripped -static-pie build: the cycle's function has no symbol.  Before: 'deep
    recursion in function at 0x7ffff7f506b0 (no symbol)() ...', '(no symbol)() ->' in every
    sentence.  The address named is where the unstripped build's nm puts a cycle function,
    plus the load base /proc/PID/maps shows."""
    flags = ["-O2", "-fomit-frame-pointer", "-static-pie"]
    try:
        full = compile_c(MUTUAL3, name="mutual3_spie", flags=flags)
    except Exception as exc:                                 # pragma: no cover
        pytest.skip(f"this toolchain cannot link -static-pie: {exc}")
    stripped = compile_c(MUTUAL3, name="mutual3_spie_s", flags=[*flags, "-s"])
    doc, orc, res = diagnose_live(stripped, extra=["stack-diagnose"])
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    assert "(no symbol)()" not in res.stdout
    nm = subprocess.run(["nm", str(full)], capture_output=True, text=True).stdout
    syms = {int(m[1], 16): m[2] for m in re.finditer(r"^([0-9a-f]+) [tT] (\w+)$", nm, re.M)}
    base = min(m[0] for m in maps_of(orc["maps"]) if m[3] == str(stripped))
    starts = {int(x, 16) - base for x in re.findall(r"function at (0x[0-9a-f]+) \(no symbol\)",
                                                     doc["recursion"]["functions"][0])}
    assert starts and all(syms.get(s, "").split(".")[0] in ("a", "b", "c") for s in starts), \
        [(hex(s), syms.get(s)) for s in starts]
    assert f"deep recursion in {doc['recursion']['functions'][0]} (depth" in doc["headline"]


# -- an overflow under valgrind (vgdb) ---------------------------------------------------------

BOUNDED = r"""
#include <stdlib.h>
#include <string.h>
long rec(long n) { char buf[1000]; memset(buf, n, sizeof buf);
                   if (n == 0) return buf[3]; return rec(n - 1) + buf[7]; }
int main(int argc, char **argv) { return (int)(rec(atol(argv[1])) & 1) * 0; }
"""


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_overflow_under_valgrind_points_at_valgrinds_stack(tmp_path):
    """A bounded 12,000-deep recursion (12 MB) under valgrind, connected with vg-start: the
    stack is valgrind's.  Before: 'the target is remote ... diagnose its core instead (qemu-user
    writes ...)'.  Now the error says it is valgrind's gdbserver and names --main-stacksize;
    oracles: valgrind's own log line, and valgrind re-run with that option passes (and
    without it crashes)."""
    prog = compile_c(BOUNDED, name="bounded_rec", flags=["-g", "-O0"])
    log = tmp_path / "vg.log"
    res = run_gdb([f"vg-start --stdout {tmp_path}/out --log {log} {prog} 12000", "continue",
                   "stack-diagnose", "kill"], timeout=300)
    assert_no_traceback(res)
    assert "Stack overflow in thread #1" in log.read_text()         # valgrind's own report
    line = next(ln for ln in res.stderr.splitlines() if ln.startswith("stack-diagnose"))
    assert "valgrind's gdbserver" in line and "--main-stacksize=BYTES" in line and "qemu" not in line

    def vg(*opts):
        return subprocess.run(["valgrind", "-q", *opts, str(prog), "12000"], capture_output=True,
                              text=True, timeout=300).returncode
    assert vg() != 0 and vg(f"--main-stacksize={32 * MiB}") == 0


# -- a thread whose static TLS takes most of its stack -------------------------------------------

TLS = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
__thread char tlsbuf[49152];
static void use(size_t n) { char b[n]; memset(b, 1, n); tlsbuf[0] = b[n / 2]; }
static void *body(void *a) {
    pthread_attr_t at; void *lo; size_t sz;
    pthread_getattr_np(pthread_self(), &at); pthread_attr_getstack(&at, &lo, &sz);
    printf("tls %lx stack %lx %lx\n", (unsigned long)tlsbuf, (unsigned long)lo,
           (unsigned long)lo + sz); fflush(stdout);
    use((size_t)a); return 0;
}
int main(int argc, char **argv) {
    pthread_attr_t at; pthread_t t; pthread_attr_init(&at);
    if (pthread_attr_setstacksize(&at, strtoul(argv[1], 0, 0))) return 2;
    if (pthread_create(&t, &at, body, (void *)strtoul(argv[2], 0, 0))) return 3;
    pthread_join(t, 0); puts("ok"); return 0;
}
"""


def test_thread_whose_tls_takes_most_of_its_stack():
    """pthread_attr_setstacksize(64 KiB) and 48 KiB of __thread data: glibc carves the static
    TLS out of the block, leaving ~12 KiB for frames; a 30,000-byte VLA jumps the guard.
    Before: '4 frames, none dominating' (the TLS counted as stack used by no one).  Oracles:
    the program's &tlsbuf and pthread_getattr_np range (the TLS lies inside the block), and
    the fix's size re-run for real."""
    prog = compile_c(TLS, name="tls_thread", flags=["-g", "-O0", "-pthread"])
    doc, orc, res = diagnose_live(prog, args=[65536, 30000])
    tls, lo, hi = (int(x, 16) for x in re.search(r"^tls (\w+) stack (\w+) (\w+)$", res.stdout,
                                                  re.M).groups())
    assert orc["signo"] == 11 and doc["verdict"] == "thread-overflow"
    st = doc["stack_mapping"]
    assert st["start_address"] <= tls < st["end_address"] and st["end_address"] == hi
    assert doc["cause"] == "big-frames" and doc["culprit"]["symbol"] == "use"
    assert "of the block is its TLS and TCB" in doc["headline"]
    held = next(e for e in doc["explanation"] if "thread-local storage" in e)
    kib = float(re.search(r"holds ([\d.]+) KiB", held)[1])
    assert 48 <= kib <= 48 + 8 and kib * 1024 >= st["end_address"] - tls - 1024
    assert passes_with([prog, doc["fix_plan"]["stacksize_bytes"], 30000])
    assert not passes_with([prog, 65536, 30000])


# -- the main stack grown by gdb's own reads after the fault ---------------------------------------

LOWERED = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
__attribute__((noinline)) void touch(size_t n) { char b[n]; memset(b, 1, n);
                                                 __asm__ volatile("" :: "r"(b) : "memory"); }
static void h(int s, siginfo_t *si, void *u) {
    char l[256], m[320]; FILE *f = fopen("/proc/self/maps", "r");
    while (fgets(l, sizeof l, f))
        if (strstr(l, "[stack]")) {
            snprintf(m, sizeof m, "fault %lx stack %s", (unsigned long)si->si_addr, l);
            write(1, m, strlen(m));
        }
    _exit(1);
}
volatile long depth;
long rec(long n) { volatile char pad[512]; pad[0] = n; depth++; if (n > 9000) return 0;
                   return rec(n + 1) + pad[0]; }
int main(void) {
    static char alt[1 << 16]; stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    struct sigaction sa = {0}; struct rlimit r = {1 << 20, RLIM_INFINITY};
    sigaltstack(&ss, 0); sa.sa_sigaction = h; sa.sa_flags = SA_ONSTACK | SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    touch(4 << 20);                       /* the stack is 4 MiB deep now */
    setrlimit(RLIMIT_STACK, &r);          /* then the program lowers its own limit to 1 MiB */
    return (int)rec(0);
}
"""


def test_stack_grown_by_gdbs_reads_after_the_fault():
    """The program grew its stack to 4 MiB, lowered its own RLIMIT_STACK to 1 MiB, then
    recursed past the bottom: growth refused, SEGV_MAPERR.  Stopped there, gdb's own reads at
    sp grow the stack by a page (ptrace growth is checked against gdb's 8 MiB limit), so
    /proc/PID/maps then holds the fault address.  Before: 'not-stack ... inside the stack
    mapping itself: a permission problem'.  Oracles: the kernel's siginfo (MAPERR), the
    program's own handler reading /proc/self/maps without gdb (the fault lies below the
    mapping), /proc/PID/maps under gdb (it lies inside)."""
    prog = compile_c(LOWERED, name="lowered_limit", flags=["-g", "-O0"])
    alone = subprocess.run([str(prog)], capture_output=True, text=True, timeout=60).stdout
    fault0, lo0 = (int(x, 16) for x in re.search(r"fault (\w+) stack (\w+)-", alone).groups())
    assert fault0 < lo0                                      # no gdb: below the stack
    doc, orc, _res = diagnose_live(prog, setup=("handle SIGSEGV stop nopass", "run"))
    lo = next(m for m in maps_of(orc["maps"]) if m[3] == "[stack]")[0]
    fault = orc["addr"]
    assert orc["signo"] == 11 and orc["code"] == 1 and lo <= fault     # under gdb: inside
    assert doc["verdict"] == "rlimit", doc["headline"]
    assert doc["stack_mapping"]["start_address"] > fault
    assert doc["growth_requested_bytes"] > 1 << 20 == doc["rlimit_soft_bytes"]
    assert any(n.startswith("stack mapping:") and "gdb's own reads" in n for n in doc["notes"])
