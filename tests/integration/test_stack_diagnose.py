"""stack-diagnose against real faulting programs (examples/stack/*.c), checked against
oracles the test reads itself: /proc/PID/maps and /proc/PID/limits, prlimit, gdb's own
$_siginfo, the programs' printed addresses and counters, objdump, and re-running the
program with the suggested limit."""
import re
import shutil
import subprocess

import pytest

from tests.support.gdbrun import assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.stack_oracles import (ARCH, DYNAMIC_SUB, EX, THREAD_MIN, VLA_SUB, build,
                                         diagnose_live, ints, is_vla_sub, maps_of, passes_with)

pytestmark = pytest.mark.gdb


# -- the seed program -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seed():
    prog = build("teststack")
    return prog, *diagnose_live(prog, ["1920", "1080"], extra=["stack-diagnose"])


def test_seed_premises_hold():
    prog = build("teststack")
    assert passes_with([prog])                                   # 800 600
    assert not passes_with([prog, 1920, 1080], 8 << 20)          # faults under 8 MiB
    assert passes_with([prog, 1920, 1080], 16384 * 1024)         # the seed's ulimit -s 16384


def test_seed_verdict_numbers_match_proc(seed):
    prog, doc, orc, res = seed
    assert doc["verdict"] == "rlimit" and doc["cause"] == "huge-frame"
    assert doc["fault_address"] == orc["addr"] and doc["sp_address"] == orc["sp"]
    stack = next(m for m in maps_of(orc["maps"]) if m[3] == "[stack]")
    assert (doc["stack_mapping"]["start_address"], doc["stack_mapping"]["end_address"]) == stack[:2]
    assert doc["growth_requested_bytes"] == stack[1] - (orc["addr"] & ~4095)
    soft, hard = orc["prlimit"].split()
    assert doc["rlimit_soft_bytes"] == int(soft)
    assert doc["rlimit_hard_bytes"] == (None if hard == "unlimited" else int(hard))
    limits = next(l for l in orc["limits"].splitlines() if l.startswith("Max stack size"))
    assert str(doc["rlimit_soft_bytes"]) in limits
    assert doc["growth_requested_bytes"] > doc["rlimit_soft_bytes"]


def test_seed_culprit_is_the_vla_sub(seed):
    prog, doc, orc, res = seed
    c = doc["culprit"]
    assert c["symbol"] == "calc_array"
    assert 1920 * 1080 * 8 <= c["size"] <= 1920 * 1080 * 8 + 4096
    ins = c["instruction"]
    assert is_vla_sub(ins["text"]) and ins["dynamic"]
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(prog)], capture_output=True,
                          text=True).stdout
    base = next(m[0] for m in maps_of(orc["maps"]) if m[3] == str(prog)) if any(
        m[3] == str(prog) for m in maps_of(orc["maps"])) else 0
    off = ins["address"] - base
    assert re.search(rf"^\s*{off:x}:\s+{DYNAMIC_SUB}", dump, re.M), (hex(off), dump[:2000])
    src = (EX / "teststack.c").read_text().splitlines()
    line = int(ins["source"].split(":")[1])
    assert "llBuf[stackLen]" in src[line - 1]


def test_seed_suggested_limit_makes_it_pass(seed):
    prog, doc, orc, res = seed
    fix = doc["fix_plan"]
    assert fix["kind"] == "ulimit"
    assert f"ulimit -s {fix['ulimit_kib']}" in fix["text"]
    assert passes_with([prog, 1920, 1080], fix["ulimit_kib"] * 1024)


def test_seed_text_report(seed):
    prog, doc, orc, res = seed
    out = res.stdout
    assert "[rlimit]" in out and "calc_array" in out and "ulimit -s" in out
    assert re.search(VLA_SUB, out) and "RLIMIT_STACK" in out


# -- alloca, with and without stack-clash protection -----------------------------------------

@pytest.mark.parametrize("scp,opt", [(False, "-O0"), (True, "-O2"), (True, "-O0")],
                         ids=["no-clash-protection", "clash-protection", "clash-protection-O0"])
def test_alloca_huge(scp, opt):
    flags = [opt, "-fstack-clash-protection"] if scp else ["-fno-stack-clash-protection"]
    prog = build("alloca_huge", *flags)
    n = 32 << 20
    doc, orc, res = diagnose_live(prog, [str(n)])
    request = int(re.search(r"request=(\d+)", res.stdout)[1])
    assert request == n
    assert doc["verdict"] == "rlimit"
    assert doc["culprit"]["symbol"] == "big"
    if scp:
        assert doc["cause"] == "clash-probe"
        p = doc["clash_probe"]
        assert p["step_size"] == (4096 if ARCH == "x86_64" else 65536)
        assert ("or qword ptr [rsp" if ARCH == "x86_64" else "str xzr, [sp") in p["probe"]
        assert request <= p["requested_size"] <= request + 4096 + 64
        # the probe stopped part-way: just past the limit, far short of the request
        assert doc["culprit"]["size"] < request
    else:
        assert doc["cause"] == "huge-frame" and doc["clash_probe"] is None
        assert is_vla_sub(doc["culprit"]["instruction"]["text"])
        assert request <= doc["culprit"]["size"] <= request + 4096
    kib = doc["fix_plan"]["ulimit_kib"]
    assert passes_with([prog, n], kib * 1024)
    assert not passes_with([prog, n], 8 << 20)


# -- deep recursion ---------------------------------------------------------------------------

def test_deep_recursion_depth_matches_program_counter():
    prog = build("recurse")
    doc, orc, res = diagnose_live(prog, extra=["echo @@DEPTH@@\\n", "print depth"])
    depth = int(re.search(r"@@DEPTH@@\n\$\d+ = (\d+)", res.stdout)[1])
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    r = doc["recursion"]
    assert r["functions"] == ["recurse"]
    assert abs(r["depth"] - depth) <= 1, (r, depth)
    assert not doc["frames_complete"] and len(doc["frames"]) < 1000
    # average frame = sp difference of two recursive frames, read by gdb itself
    assert r["avg_frame_bytes"] == doc["frames"][2]["sp_address"] - doc["frames"][1]["sp_address"]
    assert doc["fix_plan"]["kind"] == "code"


def test_health_report_at_a_breakpoint():
    prog = build("recurse")
    doc, _, res = diagnose_live(prog, setup=["break recurse if n == 30000", "run"])
    assert doc["verdict"] == "healthy"
    assert doc["recursion"]["depth"] == 30000
    assert doc["signal"]["signal_name"] == "SIGTRAP"


# -- a thread with a 64 KiB stack -------------------------------------------------------------

@pytest.fixture(scope="module")
def thread_case():
    prog = build("thread_overflow")
    return prog, *diagnose_live(prog, extra=[*json_wrapped("stack-diagnose --all-threads --json")])


def test_thread_overflow(thread_case):
    prog, doc, orc, res = thread_case
    assert f"stacksize={THREAD_MIN}" in res.stdout
    assert doc["verdict"] == "thread-overflow" and not doc["thread"]["main"]
    st = doc["stack_mapping"]
    maps = maps_of(orc["maps"])
    assert (st["start_address"], st["end_address"], "rw-p") in [(m[0], m[1], m[2]) for m in maps]
    assert st["end_address"] - st["start_address"] == THREAD_MIN
    guard = next(m for m in maps if m[1] == st["start_address"])
    assert guard[2] == "---p" and st["guard_range"]["start_address"] == guard[0]
    assert doc["fault_address"] == orc["addr"] < guard[0]        # past the guard page
    assert doc["culprit"]["symbol"] == "fill"
    size = doc["fix_plan"]["stacksize_bytes"]
    assert doc["fix_plan"]["kind"] == "pthread_attr_setstacksize" and f"{size}" in doc["fix_plan"]["text"]
    assert passes_with([prog, size])
    assert not passes_with([prog, THREAD_MIN])


def test_thread_number_completion():
    res = run_gdb(["run", "complete stack-diagnose --thread ", "complete stack-diagnose --all"],
                  program=build("thread_overflow"))
    assert "stack-diagnose --thread 1\nstack-diagnose --thread 2\n" in res.stdout
    assert "stack-diagnose --all-threads" in res.stdout


def test_all_threads(thread_case):
    prog, doc, orc, res = thread_case
    docs = res.json_documents()
    all_threads = docs[-1]["diagnoses"]
    verdicts = {d["thread"]["num"]: d["verdict"] for d in all_threads}
    assert verdicts == {1: "healthy", 2: "thread-overflow"}


# -- a mapping just below the stack: the guard gap ----------------------------------------------

def test_guard_gap_names_the_mapping_below():
    prog = build("guard_gap")
    doc, orc, res = diagnose_live(prog)
    m = re.search(r"mapping=([0-9a-f]+)-([0-9a-f]+)", res.stdout)
    lo, hi = int(m[1], 16), int(m[2], 16)
    assert (lo, hi) in [m[:2] for m in maps_of(orc["maps"])]
    assert doc["verdict"] == "guard-gap"
    assert (doc["below"]["start_address"], doc["below"]["end_address"]) == (lo, hi)
    assert doc["below"]["distance_bytes"] == orc["addr"] - hi
    assert doc["below"]["distance_bytes"] < doc["guard_gap_bytes"]
    assert doc["growth_requested_bytes"] < doc["rlimit_soft_bytes"]       # not the rlimit this time
    assert doc["fix_plan"]["kind"] == "heap"


def test_frame_jumping_over_the_mapping_below():
    prog = build("guard_gap")
    doc, orc, res = diagnose_live(prog, ["524288", "1048576"])
    lo = int(re.search(r"mapping=([0-9a-f]+)-", res.stdout)[1], 16)
    assert orc["addr"] < lo
    assert doc["verdict"] == "stack-clash-jump" and doc["below"]["start_address"] == lo


# -- faults that are not stack problems -------------------------------------------------------

@pytest.mark.parametrize("mode", ["null", "heap"])
def test_not_a_stack_fault(mode):
    prog = build("badptr")
    doc, orc, res = diagnose_live(prog, [mode])
    target = int(re.search(r"target=(0x[0-9a-f]+|\(nil\))", res.stdout)[1], 0)
    assert doc["verdict"] == "not-stack" and doc["fault_address"] == target == orc["addr"]
    assert doc["culprit"] is None and doc["fix_plan"]["kind"] == "code"
    if mode == "null":
        assert "NULL" in doc["headline"]
    else:
        heap = next(m for m in maps_of(orc["maps"]) if m[3] == "[heap]")
        near = {n["name"]: n for n in doc["nearest"]}
        assert near["[heap]"]["distance_bytes"] == target - heap[1]
        assert "[heap]" in doc["headline"]


PIVOT = r"""
#include <stdio.h>
int main(void) {
    printf("new_sp=%p\n", (void *)0x10000);
    fflush(stdout);
    __asm__ volatile("mov $0x10000, %rsp; push %rax");   /* a stack pivot to a bad address */
    return 0;
}
"""


@pytest.mark.skipif(ARCH != "x86_64", reason="x86_64 inline assembly (examples/stack/pivot.c covers aarch64)")
def test_corrupt_stack_pointer_is_not_a_stack_jump():
    prog = compile_c(PIVOT, name="stack_pivot", flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog)
    new_sp = int(re.search(r"new_sp=(0x[0-9a-f]+)", res.stdout)[1], 16)
    assert doc["sp_address"] == orc["sp"] == new_sp and doc["fault_address"] == orc["addr"] == new_sp - 8
    assert doc["verdict"] == "corrupt-sp" and "stack pointer itself is corrupt" in doc["headline"]
    assert doc["fix_plan"]["kind"] == "code"


ALTSTACK = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) void in_handler(void) { __asm__ volatile("" ::: "memory"); }
static void handler(int s) { (void)s; in_handler(); _exit(3); }
long rec(long n) { volatile char pad[64]; pad[0] = n; return rec(n + 1) + pad[0]; }
int main(void) {
    stack_t ss = { .ss_sp = malloc(1 << 16), .ss_size = 1 << 16 };
    sigaltstack(&ss, 0);
    struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_ONSTACK };
    sigaction(SIGSEGV, &sa, 0);
    printf("altstack=%p\n", ss.ss_sp);
    fflush(stdout);
    return (int)rec(0);
}
"""


def test_handler_on_sigaltstack_diagnoses_the_fault_it_caught():
    """Stopped at a breakpoint inside the SIGSEGV handler (on its sigaltstack): the fault the
    handler is handling is read from the signal frame and diagnosed on the interrupted stack."""
    prog = compile_c(ALTSTACK, name="stack_altstack", flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog, setup=("handle SIGSEGV nostop noprint pass",
                                               "break in_handler", "run"))
    alt = int(re.search(r"altstack=(0x[0-9a-f]+)", res.stdout)[1], 16)
    assert alt <= orc["sp"] < alt + (1 << 16)                    # gdb: sp is on the altstack
    stack = next(m for m in maps_of(orc["maps"]) if m[3] == "[stack]")
    assert doc["stopped_by"]["signal_name"] == "SIGTRAP" and doc["signal_handler"]["on_altstack"]
    assert doc["signal_handler"]["altstack"] == {"start_address": alt, "size": 1 << 16}
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    assert doc["signal"]["signal_name"] == "SIGSEGV" and stack[0] - 4096 <= doc["fault_address"] < stack[0]
    assert doc["recursion"]["functions"] == ["rec"] and doc["recursion"]["depth_exact"]
    assert all(fr["size"] is None or fr["size"] < (1 << 20) for fr in doc["frames"])


SIGBUS_SRC = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);     /* an empty file */
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("map=%p\n", (void *)p);
    fflush(stdout);
    p[100] = 1;                                                   /* past its end: SIGBUS */
    return 0;
}
"""


def test_sigbus_past_the_end_of_a_mapped_file(tmp_path):
    prog = compile_c(SIGBUS_SRC, name="stack_sigbus", flags=["-g", "-O0"])
    data = tmp_path / "empty.bin"
    doc, orc, res = diagnose_live(prog, [str(data)])
    base = int(re.search(r"map=(0x[0-9a-f]+)", res.stdout)[1], 16)
    assert orc["signo"] == 7 and doc["fault_address"] == orc["addr"] == base + 100
    assert data.stat().st_size == 0 and any(m[3] == str(data) for m in maps_of(orc["maps"]))
    assert doc["verdict"] == "not-stack"
    assert "past the end of the file" in doc["headline"] and "protection" not in doc["headline"]


def test_stripped_seed_still_finds_the_sp_moving_instruction():
    """No symbols: the culprit's start comes from its caller's direct call; the instruction
    is checked against objdump of the stripped binary."""
    prog = compile_c(EX / "teststack.c", name="teststack_stripped", flags=["-O0", "-s"])
    doc, orc, res = diagnose_live(prog, ["1920", "1080"], extra=["stack-diagnose"])
    assert_no_traceback(res)
    assert doc["verdict"] == "rlimit"
    ins = doc["culprit"]["instruction"]
    assert ins is not None and is_vla_sub(ins["text"]) and ins["dynamic"]
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(prog)], capture_output=True,
                          text=True).stdout
    base = next(m[0] for m in maps_of(orc["maps"]) if m[3] == str(prog))
    assert re.search(rf"^\s*{ins['address'] - base:x}:\s+{DYNAMIC_SUB}", dump, re.M)
    # the unnamed function is named by its start: the target of main's call, per objdump
    start = int(re.search(r"function at (0x[0-9a-f]+) \(no symbol\)", doc["culprit"]["symbol"])[1], 16)
    calls = re.findall(r"call\s+([0-9a-f]+) <", dump)
    assert f"{start - base:x}" in calls
    assert "None()" not in res.stdout


# -- core files -------------------------------------------------------------------------------

def core_of(prog, args, tmp_path):
    core = tmp_path / f"{prog.name}.core"
    res = run_gdb(["run", f"generate-core-file {core}"], program=prog, args=args)
    assert core.exists(), res.output
    return core


@pytest.mark.parametrize("name,args,verdict", [
    ("teststack", ["1920", "1080"], "rlimit"),
    ("thread_overflow", [], "thread-overflow"),
    ("badptr", ["null"], "not-stack"),
])
def test_core_files(name, args, verdict, tmp_path):
    prog = build(name)
    core = core_of(prog, args, tmp_path)
    res = run_gdb([*json_wrapped("stack-diagnose --json"), "stack-diagnose"], program=prog,
                  core=core)
    assert_no_traceback(res)
    doc = ints(res.json_documents()[-1])
    assert doc["verdict"] == verdict and doc["thread"]["target"] == "core"
    if doc["thread"]["main"]:
        assert "not recorded in a core file" in doc["fact_sources"]["RLIMIT_STACK"]
    if name == "teststack":
        assert doc["culprit"]["symbol"] == "calc_array"
        assert doc["fix_plan"]["ulimit_kib"] and passes_with([prog, *args], doc["fix_plan"]["ulimit_kib"] * 1024)
        assert any("RLIMIT_STACK inferred" in n for n in doc["notes"])
    if name == "thread_overflow":
        assert passes_with([prog, doc["fix_plan"]["stacksize_bytes"]])


def test_stripped_binary_still_gets_a_verdict(tmp_path):
    prog = build("teststack")
    stripped = tmp_path / "teststack-stripped"
    shutil.copy(prog, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    doc, orc, res = diagnose_live(stripped, ["1920", "1080"])
    assert doc["verdict"] == "rlimit" and doc["fix_plan"]["ulimit_kib"] == 16384


# -- bad input ------------------------------------------------------------------------------

def test_bad_input_is_one_line_errors():
    prog = build("teststack")
    res = run_gdb(["stack-diagnose", "stack-diagnose --thread", "stack-diagnose --thread 1 --all-threads",
                   "stack-diagnose --bogus", "break main", "run", "stack-diagnose --thread 7",
                   "stack-diagnose --kernel", "info breakpoints", "kill", "stack-diagnose",
                   "echo still-alive\\n"], program=prog)
    assert_no_traceback(res)
    err = res.stderr
    assert "needs a stopped process or a core file, but the program is loaded but not running" in err
    assert "expected one argument" in err
    assert "not allowed with argument" in err
    assert "unrecognized arguments: --bogus" in err
    assert "there is no thread 7" in err
    assert "stack-diagnose --kernel:" in err and "Fix:" in err
    assert "still-alive" in res.stdout
    bps = res.stdout[res.stdout.index("Num"):]
    assert bps.count("breakpoint") == 1 + bps.count("breakpoint already hit")  # only ours


def test_no_program_at_all():
    res = run_gdb(["stack-diagnose"])
    assert "there is no process" in res.stderr and "Fix:" in res.stderr
    assert_no_traceback(res)


def test_exited_process():
    prog = build("teststack")
    res = run_gdb(["run", "stack-diagnose"], program=prog)
    assert "needs a stopped process or a core file" in res.stderr
    assert_no_traceback(res)


def test_kernel_written_core_of_a_thread_overflow(tmp_path):
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write into the working directory")
    prog = build("thread_overflow")
    run = subprocess.run(["prlimit", "--core=unlimited", str(prog)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode != 0
    cores = [p for p in tmp_path.iterdir() if p.name.startswith(pattern.split("%")[0] or "core")]
    if not cores:
        pytest.skip(f"no core written (core_pattern {pattern!r})")
    doc = ints(run_gdb(json_wrapped("stack-diagnose --json"), program=prog, core=cores[0]).json_documents()[-1])
    assert doc["verdict"] == "thread-overflow" and doc["thread"]["target"] == "core"
    assert doc["stack_mapping"]["end_address"] - doc["stack_mapping"]["start_address"] == THREAD_MIN
    assert doc["stack_mapping"]["guard_range"]["perms"] == "---p"           # the kernel records PROT_NONE
    assert passes_with([prog, doc["fix_plan"]["stacksize_bytes"]])


TWO_FRAMES = r"""
#include <alloca.h>
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) int leaf(void) { volatile char b[256 << 10]; b[0] = 1; return b[0]; }
__attribute__((noinline)) int big(size_t n) { char *p = alloca(n); memset(p, 0, n); return leaf() + p[1]; }
int main(int argc, char **argv) { return big(strtoul(argv[1], 0, 0)) == 99; }
"""


def test_culprit_is_the_biggest_frame_not_the_faulting_one():
    prog = compile_c(TWO_FRAMES, name="two_frames", flags=["-g", "-O0"])
    n = 8_200_000                      # fits alone; the 256 KiB callee then overflows
    doc, orc, res = diagnose_live(prog, [str(n)])
    assert doc["frames"][0]["symbol"] == "leaf"
    c = doc["culprit"]
    assert c["symbol"] == "big" and c["level"] == 1
    assert n <= c["size"] <= n + 4096
    assert is_vla_sub(c["instruction"]["text"])
    assert doc["verdict"] == "rlimit"
    assert passes_with([prog, n], doc["fix_plan"]["ulimit_kib"] * 1024)


SLEEPER = r"""
#include <stdio.h>
#include <unistd.h>
volatile long depth;
long down(long n) { volatile char pad[100]; pad[0] = n; depth = n;
  if (n == 5000) { printf("ready\n"); fflush(stdout); for (;;) pause(); }
  return down(n + 1) + pad[0]; }
int main(void) { return (int)down(1); }
"""


def test_attached_process_health_report():
    from tests.support.gdbrun import background

    prog = compile_c(SLEEPER, name="sleeper", flags=["-g", "-O0"])
    with background([prog], ready="ready") as (proc, _):
        with open(f"/proc/{proc.pid}/limits") as fh:
            limit = next(l for l in fh if l.startswith("Max stack size")).split()[3]
        res = run_gdb([*json_wrapped("stack-diagnose --json"), "detach"], pid=proc.pid)
        assert_no_traceback(res)
        doc = ints(res.json_documents()[-1])
        assert proc.poll() is None                      # still alive after we detached
    assert doc["verdict"] == "healthy" and doc["thread"]["target"] == "live"
    assert doc["recursion"]["functions"][0] == "down" and abs(doc["recursion"]["depth"] - 5000) <= 1
    assert str(doc["rlimit_soft_bytes"]) == limit


def test_thread_with_clash_protection_hits_its_guard_page():
    prog = build("thread_overflow", "-O2", "-fstack-clash-protection")
    doc, orc, res = diagnose_live(prog, [str(THREAD_MIN), "1048576"])
    guard = next(m for m in maps_of(orc["maps"]) if m[1] == doc["stack_mapping"]["start_address"])
    assert guard[2] == "---p" and guard[0] <= orc["addr"] < guard[1]     # inside the guard
    assert doc["verdict"] == "thread-overflow" and doc["cause"] == "clash-probe"
    assert 1048576 <= doc["clash_probe"]["requested_size"] <= 1048576 + 8192
    assert passes_with([prog, doc["fix_plan"]["stacksize_bytes"], 1048576])
