"""stack-diagnose on crash shapes of a second adversarial round (stack2): a thread on a stack
the program passed with pthread_attr_setstack (no guard) that ran on into another thread's
block, among 200 threads; a recursion that a huge frame further out left little room.
Oracles: the programs' own counters and printed addresses (pthread_getattr_np, the block
they passed), /proc/PID/maps, objdump, and re-running the program with the fix."""
import re

import pytest

from tests.support.gdbrun import compile_c
from tests.support.stack_oracles import DEPTH_CMDS, PAGE, depth_printed, diagnose_live, maps_of

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
