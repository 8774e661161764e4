"""stack-diagnose on real crashes (issue 12): every shape built at test time and checked
against oracles the test reads itself -- /proc/PID/maps and limits while stopped, the kernel's
growth rules applied by hand, the programs' own depth counters and printed addresses, objdump,
and re-running the program with the suggested fix for real (also with randomisation off, as
under gdb)."""
import re
import subprocess

import pytest

from tests.support.gdbrun import assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.stack_oracles import (ARCH, DEPTH_CMDS, EX, MiB, PAGE, build, compile_other,
                                         depth_printed, diagnose_live, growth_rule, have,
                                         limit_of, maps_of, objdump, passes_both_layouts,
                                         passes_with, stack_of, ints)

pytestmark = pytest.mark.gdb
x86_only = pytest.mark.skipif(ARCH != "x86_64", reason="x86_64 instructions / #SS")


# -- 1. a VLA filled top-down: the fault is just below [stack], sp far below it ---------------

TOPDOWN = r"""
#include <stdio.h>
#include <stdlib.h>
void calc_array(int w, int h) {
    int n = w * h;
    long buf[n];
    for (int i = n - 1; i >= 0; i--) buf[i] = i * 2;     /* the seed's loop, counting down */
    long s = 0;
    for (int i = 0; i < n; i++) s += buf[i];
    printf("%ld\n", s);
}
int main(int argc, char **argv) { calc_array(atoi(argv[1]), atoi(argv[2])); return 0; }
"""


def test_vla_filled_top_down_is_stack_growth():
    prog = compile_c(TOPDOWN, name="topdown", flags=["-g", "-O0"])
    doc, orc, res = diagnose_live(prog, ["1920", "1080"])
    stack = stack_of(orc)
    growth, soft = growth_rule(orc)
    assert stack[0] - PAGE <= orc["addr"] < stack[0] and orc["sp"] < stack[0] - 4 * MiB
    assert growth > soft                                   # the kernel's rule, by hand
    assert doc["verdict"] == "rlimit" and doc["cause"] == "huge-frame"
    assert doc["growth_requested_bytes"] == growth and doc["fault_address"] == orc["addr"]
    assert doc["culprit"]["symbol"] == "calc_array"
    kib = doc["fix_plan"]["ulimit_kib"]
    assert passes_both_layouts([prog, 1920, 1080], kib * 1024)
    assert not passes_with([prog, 1920, 1080], soft)


# -- 2. recursion whose fault lands deep inside a libc helper ---------------------------------

def test_recursion_found_above_a_helper_and_counted_exactly():
    prog = build("recurse_helper")
    doc, orc, res = diagnose_live(prog, extra=[*DEPTH_CMDS, "bt 3"])
    depth = depth_printed(res)
    assert doc["verdict"] == "rlimit" and doc["cause"] == "deep-recursion"
    r = doc["recursion"]
    assert r["functions"] == ["rec"] and r["first_level"] > 0   # the fault is in a helper
    assert doc["frames"][0]["symbol"] != "rec"
    assert r["depth_exact"] and abs(r["depth"] - depth) <= 1, (r, depth)
    assert doc["fix_plan"]["kind"] == "code" and "ulimit" not in doc["fix_plan"]["text"]
    # the recursion is unbounded: no limit would have helped (the oracle: 4x the stack fails)
    assert not passes_with([prog], 32 * MiB)


# -- 3. a corrupt stack pointer -----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["heap", "low", "libc", "below200m", "below2m", "noncanon"])
def test_corrupt_sp_is_named_not_a_huge_frame(mode):
    prog = build("pivot")
    doc, orc, res = diagnose_live(prog, [mode])
    new_sp = int(re.search(r"new_sp=(0x[0-9a-f]+)", res.stdout)[1], 16)
    assert doc["verdict"] == "corrupt-sp", doc["headline"]
    assert "stack pointer itself is corrupt" in doc["headline"]
    assert doc["culprit"] is None and doc["cause"] is None and doc["fix_plan"]["kind"] == "code"
    assert doc["stack_used_bytes"] is None or doc["stack_used_bytes"] < (1 << 40)   # never "-8191.9 PiB"
    assert abs(doc["sp_address"] - new_sp) <= 64 and doc["sp_address"] == orc["sp"]
    if mode == "noncanon" and ARCH == "x86_64":
        assert orc["signo"] == 7 and orc["code"] == 0x80       # #SS: SIGBUS, SI_KERNEL
        assert "non-canonical" in doc["headline"]
    assert "PiB" not in res.stdout


@x86_only
def test_sigbus_si_kernel_is_a_stack_segment_fault_not_gp():
    prog = build("pivot")
    doc, orc, res = diagnose_live(prog, ["ssdata"])
    assert orc["signo"] == 7 and orc["code"] == 0x80           # the kernel's own word: SIGBUS/SI_KERNEL
    assert doc["verdict"] == "not-stack"
    assert "#SS" in doc["headline"] and "#GP" not in doc["headline"]


# -- 4. a signal handler overflowing its alternate signal stack --------------------------------

def test_altstack_overflow_and_its_fix():
    prog = build("altstack")
    doc, orc, res = diagnose_live(prog, ["65536", "262144"], setup=("run", "continue"))
    alt = int(re.search(r"altstack=(0x[0-9a-f]+)", res.stdout)[1], 16)
    assert doc["verdict"] == "altstack-overflow"
    assert (doc["stack_mapping"]["start_address"], doc["stack_mapping"]["end_address"]) == (alt, alt + 65536)
    assert doc["signal_handler"]["on_altstack"] and doc["signal_handler"]["symbol"] == "handler"
    assert orc["addr"] < alt and doc["fault_address"] == orc["addr"]
    assert doc["culprit"]["symbol"] == "handler"
    size = doc["fix_plan"]["stacksize_bytes"]
    assert doc["fix_plan"]["kind"] == "sigaltstack" and str(size) in doc["fix_plan"]["text"]
    rerun = subprocess.run([str(prog), str(size), "262144"], capture_output=True, text=True)
    assert rerun.returncode == 0 and "handler ok" in rerun.stdout
    assert not passes_with([prog, 65536, 262144])


def test_handler_on_the_normal_stack_is_not_called_alternate():
    prog = build("altstack")
    doc, orc, res = diagnose_live(prog, ["65536", str(16 * MiB), "normal"], setup=("run", "continue"))
    stack = stack_of(orc)
    assert doc["signal_handler"]["on_altstack"] is False
    assert doc["verdict"] == "rlimit" and doc["culprit"]["symbol"] == "handler"
    assert doc["stack_mapping"]["end_address"] == stack[1]
    assert not any("alternate" in e for e in doc["explanation"])


# -- 5. after the program's own handler has run ------------------------------------------------

def test_fault_read_from_the_signal_frame_after_the_handler_aborted():
    prog = build("handled")
    doc, orc, res = diagnose_live(prog, ["1920", "1080"],
                                  setup=("handle SIGSEGV nostop noprint pass", "run"))
    caught = int(re.search(r"caught si_addr=(0x[0-9a-f]+)", res.stdout)[1], 16)
    assert orc["signo"] == 6                                    # gdb stopped on SIGABRT
    assert doc["stopped_by"]["signal_name"] == "SIGABRT"
    assert doc["signal"]["signal_name"] == "SIGSEGV" and doc["fault_address"] == caught
    assert doc["verdict"] == "rlimit" and doc["culprit"]["symbol"] == "calc_array"
    assert doc["signal_handler"]["symbol"] == "handler" and doc["signal_handler"]["on_altstack"]
    assert passes_both_layouts([prog, 1920, 1080], doc["fix_plan"]["ulimit_kib"] * 1024)


def test_attached_while_the_process_sits_in_its_handler():
    from tests.support.gdbrun import background

    prog = build("handled")
    with background([prog, "1920", "1080", "pause"], ready="caught") as (proc, lines):
        caught = int(re.search(r"si_addr=(0x[0-9a-f]+)", lines[-1])[1], 16)
        res = run_gdb([*json_wrapped("stack-diagnose --json"), "stack-diagnose", "detach"],
                      pid=proc.pid)
    assert_no_traceback(res)
    doc = ints(res.json_documents()[-1])
    assert doc["fault_address"] == caught and doc["verdict"] == "rlimit"
    assert doc["stopped_by"] is not None and doc["culprit"]["symbol"] == "calc_array"
    assert "healthy" not in res.stdout.split("VERDICT")[1].split("\n")[0]


def _rust_prog():
    if not have("rustc"):
        pytest.skip("rustc not installed (scripts/setup.d/stack.sh installs it)")
    src = r"""
fn rec(n: u64, v: &mut Vec<u64>) -> u64 { let a = [n; 32]; v.push(a[3]); if n == u64::MAX { return 0; } rec(n + 1, v) + a[(n % 32) as usize] }
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() > 1 {
        let kib: usize = args[1].parse().unwrap();
        let h = std::thread::Builder::new().name("worker".into()).stack_size(kib << 10)
            .spawn(move || { let mut v = Vec::new(); rec(0, &mut v) }).unwrap();
        println!("{}", h.join().unwrap());
    } else { let mut v = Vec::new(); println!("{}", rec(0, &mut v)); }
}
"""
    return compile_other(src, "rust_overflow", "rs")


@pytest.mark.parametrize("thread", [False, True], ids=["main", "spawned-thread"])
def test_rust_overflow_handler(thread):
    prog = _rust_prog()
    args = ["256"] if thread else []
    doc, orc, res = diagnose_live(prog, args, setup=("handle SIGSEGV nostop noprint pass", "run"),
                                  extra=["bt 12"])
    assert "has overflowed its stack" in res.stdout + res.stderr
    assert orc["signo"] == 6 and doc["stopped_by"]["signal_name"] == "SIGABRT"
    assert doc["runtime"]["kind"] == "rust"
    assert any("Rust's stack-overflow handler" in e for e in doc["explanation"])
    assert doc["cause"] == "deep-recursion" and doc["recursion"]["functions"][0].endswith("rec")
    maps = maps_of(orc["maps"])
    if thread:
        assert doc["verdict"] == "thread-overflow" and doc["thread"]["name"] == "worker"
        st = doc["stack_mapping"]
        assert (st["start_address"], st["end_address"], "rw-p") in [m[:3] for m in maps]
        assert st["end_address"] - st["start_address"] == 256 << 10                 # not Rust's 8 KiB sigaltstack
    else:
        assert doc["verdict"] == "rlimit" and doc["stack_mapping"]["end_address"] == stack_of(orc)[1]


# -- 6. one thread's stack overflowing into another's ------------------------------------------

TP = "fs_base" if ARCH == "x86_64" else "tpidr"


def test_thread_clash_names_the_damaged_thread():
    prog = build("thread_clash")
    tp_cmd = ("thread apply all python print('@@TP', gdb.selected_thread().num, "
              f"int(gdb.parse_and_eval('${TP}')))")
    doc, orc, res = diagnose_live(
        prog, ["262144", "530000"], extra=[*json_wrapped("stack-diagnose --all-threads --json"),
                                           "info threads", tp_cmd])
    threads = dict(re.findall(r"^\*?\s+(\d+)\s+Thread 0x[0-9a-f]+ \(LWP (\d+)\)", res.stdout, re.M))
    tps = {int(n): int(v) for n, v in re.findall(r"^@@TP (\d+) (\d+)$", res.stdout, re.M)}
    assert doc["verdict"] == "thread-clash" and not doc["thread"]["main"]
    victims = doc["damaged_threads"]
    assert len(victims) == 1
    v = victims[0]
    assert str(v["tid"]) == threads[str(v["num"])] and v["num"] != doc["thread"]["num"]
    # oracles: glibc puts each thread's TCB (its thread pointer) at the top of its block; the
    # victim's block top lies between the fault and the faulting thread's own TCB, and the
    # victim's guard page (---p in /proc maps) lies between the fault and the victim's top
    top = -(-(tps[v["num"]] + 1) // PAGE) * PAGE
    assert v["block_top_address"] == top and orc["addr"] < top < tps[doc["thread"]["num"]]
    assert any(m[2] == "---p" and orc["addr"] < m[0] < top for m in maps_of(orc["maps"]))
    everyone = {d["thread"]["num"]: d for d in ints(res.json_documents()[-1])["diagnoses"]}
    victim = everyone[v["num"]]
    assert victim["verdict"] == "thread-clash"                    # not "healthy"
    assert victim["damaged_threads"][0]["by_thread_num"] == doc["thread"]["num"]
    size = doc["fix_plan"]["stacksize_bytes"]
    assert passes_with([prog, size, 530000]) and not passes_with([prog, 262144, 530000])


# -- 7. clang: its probe loop and its VLAs -----------------------------------------------------

def _clang():
    if not have("clang"):
        pytest.skip("clang not installed (scripts/setup.d/stack.sh installs it)")


@x86_only
def test_clang_stack_clash_probe_loop():
    _clang()
    prog = build("alloca_huge", "-O2", "-fstack-clash-protection", compiler="clang")
    n = 32 << 20
    doc, orc, res = diagnose_live(prog, [str(n)])
    dump = objdump(prog, intel=True)
    assert re.search(r"xor\s+QWORD PTR \[rsp\],0x0", dump)          # clang's probe, per objdump
    assert doc["cause"] == "clash-probe" and doc["verdict"] == "rlimit"
    p = doc["clash_probe"]
    assert p["step_size"] == 4096 and n <= p["requested_size"] <= n + 4096
    assert "sub rsp, 0x1000" in doc["culprit"]["instruction"]["text"]
    kib = doc["fix_plan"]["ulimit_kib"]
    assert passes_both_layouts([prog, n], kib * 1024)
    assert not passes_with([prog, n], (n // 2))


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_clang_vla_moves_sp_with_mov(opt):
    _clang()
    prog = build("teststack", opt, compiler="clang")
    doc, orc, res = diagnose_live(prog, ["1920", "1080"])
    ins = doc["culprit"]["instruction"]
    assert ins is not None and ins["dynamic"], doc["culprit"]
    sp = "rsp" if ARCH == "x86_64" else "sp"
    assert re.fullmatch(rf"(mov {sp}, \w+|sub {sp}, .*)", ins["text"]), ins
    assert passes_with([prog, 1920, 1080], doc["fix_plan"]["ulimit_kib"] * 1024)


# -- 8. depth counts ---------------------------------------------------------------------------

def test_depth_through_two_call_sites():
    prog = build("recurse_sites")
    doc, orc, res = diagnose_live(prog, extra=list(DEPTH_CMDS))
    r = doc["recursion"]
    assert r["depth_exact"] and abs(r["depth"] - depth_printed(res)) <= 1


def test_depth_counts_live_frames_not_stale_ones():
    prog = build("stale_frames")
    doc, orc, res = diagnose_live(prog, ["100000", str(4 * MiB)], extra=list(DEPTH_CMDS))
    first = int(re.search(r"first=(\d+)", res.stdout)[1])
    live = depth_printed(res)
    assert first > live                               # the stale frames outnumber the live ones
    r = doc["recursion"]
    assert r["depth_exact"] and abs(r["depth"] - live) <= 1, (r, live)


def test_depth_of_a_1gib_stack_is_exact():
    """22 M frames: the chain is followed in 16 MiB reads, not a capped 256 MiB one."""
    prog = build("recurse")
    doc, orc, res = diagnose_live(prog, extra=list(DEPTH_CMDS),
                                  setup=(f"set exec-wrapper prlimit --stack={1 << 30}", "run"))
    assert limit_of(orc) == 1 << 30
    r = doc["recursion"]
    assert r["depth"] > 10_000_000
    assert r["depth_exact"] and abs(r["depth"] - depth_printed(res)) <= 1


def test_mutual_recursion_in_call_order():
    prog = build("mutual")
    doc, orc, res = diagnose_live(prog, extra=list(DEPTH_CMDS))
    r = doc["recursion"]
    assert r["functions"] == ["ping", "pong"]          # main calls ping, ping calls pong
    assert r["depth_exact"] and abs(r["depth"] - depth_printed(res)) <= 1


def test_stripped_recursion_is_named_by_its_start():
    prog = compile_c(EX / "recurse.c", name="recurse_stripped", flags=["-O0", "-s"])
    doc, orc, res = diagnose_live(prog)
    r = doc["recursion"]
    m = re.fullmatch(r"function at (0x[0-9a-f]+) \(no symbol\)", r["functions"][0])
    assert m, r
    base = next(mp[0] for mp in maps_of(orc["maps"]) if mp[3] == str(prog))
    start = int(m[1], 16) - base
    dump = objdump(prog)
    assert re.search(rf"(call|bl)\s+{start:x} <", dump)              # something calls it there
    assert "0x5555" not in r["functions"][0].split("(")[0].replace(m[1], "")


# -- 9. fixes that follow the address-space layout ---------------------------------------------

@pytest.mark.parametrize("w,h", [(4080, 4096), (4000, 5000)])
def test_ulimit_fix_moves_the_libraries(w, h):
    prog = build("teststack")
    doc, orc, res = diagnose_live(prog, [str(w), str(h)])
    assert doc["verdict"] in ("guard-gap", "stack-clash-jump")
    lay = doc["layout"]
    assert lay["aslr"] is False and lay["obstacle_moves_with_rlimit"]
    assert any("Address randomisation is off" in e for e in doc["explanation"])
    kib = doc["fix_plan"]["ulimit_kib"]
    assert doc["fix_plan"]["kind"] == "ulimit" and kib * 1024 >= w * h * 8
    assert passes_both_layouts([prog, w, h], kib * 1024)


def test_limit_raised_at_run_time_needs_it_at_exec():
    prog = build("setlimit")
    doc, orc, res = diagnose_live(prog, [str(256 * MiB), str(200 * MiB)])
    assert limit_of(orc) == 256 * MiB                       # the program raised it itself
    assert any("raised at run time" in n for n in doc["notes"])
    assert doc["layout"]["obstacle_moves_with_rlimit"]
    kib = doc["fix_plan"]["ulimit_kib"]
    assert passes_both_layouts([prog, 256 * MiB, 200 * MiB], kib * 1024)


def test_limit_lowered_at_run_time_is_flagged():
    prog = build("setlimit")
    doc, orc, res = diagnose_live(prog, [str(MiB), str(4 * MiB)])
    assert limit_of(orc) == MiB and doc["verdict"] == "rlimit"
    assert any("lowered at run time" in n for n in doc["notes"])
    kib = doc["fix_plan"]["ulimit_kib"]
    assert doc["fix_plan"]["kind"] == "code" and "setrlimit" in doc["fix_plan"]["text"]
    assert passes_with([prog, kib * 1024, 4 * MiB]) and not passes_with([prog, MiB, 4 * MiB])


def test_thread_fix_is_a_stack_size_that_works():
    prog = build("thread_overflow")
    size = 368 << 10
    doc, orc, res = diagnose_live(prog, [str(size), "380000"])
    assert doc["verdict"] == "thread-overflow"
    assert doc["stack_mapping"]["end_address"] - doc["stack_mapping"]["start_address"] == size
    new = doc["fix_plan"]["stacksize_bytes"]
    assert doc["fix_plan"]["kind"] == "pthread_attr_setstacksize" and new > size
    assert passes_with([prog, new, 380000]) and not passes_with([prog, size, 380000])


# -- 10. a PROT_NONE mapping below the stack; RLIMIT_AS -------------------------------------------

def test_prot_none_below_the_stack_lets_it_grow_up_to_it():
    prog = build("guard_gap")
    d2 = 2 * MiB
    doc, orc, res = diagnose_live(prog, [str(d2), str(4 * MiB), "none"])
    m = re.search(r"mapping=([0-9a-f]+)-([0-9a-f]+)", res.stdout)
    lo, hi = int(m[1], 16), int(m[2], 16)
    assert (lo, hi, "---p") in [x[:3] for x in maps_of(orc["maps"])]
    assert doc["verdict"] == "stack-blocked" and doc["below"]["end_address"] == hi
    # the oracle for "the gap applies to accessible mappings only": a buffer that needs the
    # room between the gap and the mapping passes below PROT_NONE but not below PROT_READ
    fits = d2 - (512 << 10)
    assert passes_with([prog, d2, fits, "none"]) and not passes_with([prog, d2, fits])
    assert doc["fix_plan"]["kind"] == "heap"                   # the program placed it: no limit helps


def test_rlimit_as_is_named_and_its_fix_works():
    prog = compile_c(r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) static int use(size_t n) { char b[n]; memset(b, 5, n); return b[n / 2]; }
int main(int argc, char **argv) { return use(strtoul(argv[1], 0, 0)) == 42; }
""", name="as_limit", flags=["-g", "-O0"])
    as_lim, vla = 24 * MiB, 30 * MiB
    doc, orc, res = diagnose_live(prog, [str(vla)], setup=(
        f"set exec-wrapper prlimit --stack={64 * MiB} --as={as_lim}", "run"))
    assert limit_of(orc, "Max address space") == as_lim
    assert doc["verdict"] == "rlimit-as"
    kib = int(re.search(r"ulimit -v (\d+)", doc["fix_plan"]["text"])[1])
    assert passes_with([prog, vla], 64 * MiB, as_bytes=kib * 1024)
    assert not passes_with([prog, vla], 64 * MiB, as_bytes=as_lim)


# -- 11. smaller ones ----------------------------------------------------------------------------

def test_three_big_frames_are_named():
    prog = build("big_frames")
    doc, orc, res = diagnose_live(prog)
    assert doc["cause"] == "big-frames"
    assert [f["symbol"] for f in doc["frames"][:3]][::-1] == ["a", "b", "c"] or \
        {"a", "b", "c"} <= {f["symbol"] for f in doc["frames"]}
    assert "a() 3.0 MiB, b() 3.0 MiB, c() 3.0 MiB" in doc["headline"]
    assert passes_with([prog], doc["fix_plan"]["ulimit_kib"] * 1024)


@pytest.mark.parametrize("protect", [False, True], ids=["no-probes", "stack-clash-protection"])
def test_probe_detection_matches_the_binary(protect):
    flags = ["-fstack-clash-protection"] if protect else ["-fno-stack-clash-protection"]
    prog = build("teststack", *flags)
    doc, orc, res = diagnose_live(prog, ["1920", "1080"])
    dump = objdump(prog)
    body = dump[dump.index("<calc_array>:"):]
    body = body[:body.index("\n\n")]
    probes = bool(re.search(r"(or|xor)q?\s+\$0x0,.*\(%rsp\)|str\s+xzr, \[sp", body))
    assert doc["clash_protection"] is probes is protect
    hint = " ".join(doc["explanation"])
    assert "-Wvla-larger-than" in hint
    assert ("no stack probes" in hint) is (not protect)


def test_go_program_gets_the_go_runtime_answer():
    if not have("go"):
        pytest.skip("go not installed (scripts/setup.d/stack.sh installs it)")
    prog = compile_other("""package main

import "fmt"

var depth int

func rec(n int) int { var a [16]int; a[n%16] = n; depth = n; return rec(n+1) + a[(n+3)%16] }

func main() { fmt.Println(rec(0)) }
""", "gorec", "go")
    res = run_gdb(["break runtime.fatalthrow", "run", *json_wrapped("stack-diagnose --json"),
                   "stack-diagnose"], program=prog, timeout=300)
    assert_no_traceback(res)
    doc = ints(res.json_documents()[-1])
    m = re.search(r"stack=\[(0x[0-9a-f]+), (0x[0-9a-f]+)\]", res.stdout + res.stderr)
    assert doc["verdict"] == "go-runtime" and "Go manages goroutine stacks" in " ".join(doc["explanation"])
    g = doc["runtime"]["details"]["goroutine"]
    assert (g["lo_address"], g["hi_address"]) == (int(m[1], 16), int(m[2], 16))     # the runtime's own words
    assert "healthy" not in doc["headline"]


def test_gdb_selection_is_left_as_it_was():
    """Read-only: the selected thread and frame are those the user had (gdb's own 'frame')."""
    prog = build("thread_clash")
    res = run_gdb(["run", "thread 1", "frame 2", "stack-diagnose --all-threads", "echo @@SEL\\n",
                   "thread", "frame"], program=prog, args=["262144", "530000"])
    assert_no_traceback(res)
    after = res.stdout.split("@@SEL\n", 1)[1]
    assert after.startswith("[Current thread is 1 ") and "\n#2 " in after
