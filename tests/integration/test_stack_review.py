"""stack-diagnose on crash shapes found in review (rev-stack), beyond issue 12's list: each
program is built at test time and the answer is checked against oracles the test reads
itself -- the programs' own counters, /proc/PID/maps and limits while stopped, gdb's own
frames, the kernel's rules applied by hand, and re-running the program with the suggested
fix for real."""
import re

import pytest

from tests.support.gdbrun import compile_c
from tests.support.stack_oracles import (ARCH, DEPTH_CMDS, MiB, depth_printed, diagnose_live,
                                         growth_rule, passes_both_layouts, passes_with,
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
    assert r["rounds"] == r["depth"] // 3
    assert any(f["inline"] for f in doc["frames"])
    # the bytes per frame bt shows: the stack used spread over all of them
    assert abs(r["avg_frame"] * r["depth"] - doc["stack_used"]) < 0.02 * doc["stack_used"]


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
    assert doc["culprit"]["size"] > 2 * r["avg_frame"]      # a real frame holds several levels


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
    assert r["depth_exact"] and abs(r["rounds"] - calls) <= 1, (r, calls)
    assert "cmp()" in doc["headline"] and "find why cmp()" in doc["fix"]["text"]
    assert not passes_with([prog], 64 * MiB)               # unbounded: no limit helps
