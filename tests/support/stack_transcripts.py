"""stack-diagnose's docs transcripts (docs/commands/stack-diagnose.md): one recipe per verdict,
real programs from examples/stack, real gdb; cores made at generation time (gdb's gcore, or
qemu-user for aarch64)."""
import glob
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.gdbrun import GDB, REPO

EX = "examples/stack/"
PTHREAD = ["-g", "-O0", "-pthread"]
GOADDR = [(r"0xc0[0-9a-f]{8}\b", "0xc0XXXXXXXX"), (r"\b\d+(\.\d+)? MiB stack", "N MiB stack"),
          # how many OS threads the Go runtime has started by then (sysmon, GC workers...) and
          # where gdb's notices of them fall in the program's output vary with timing/load:
          # compared without them (the transcript keeps the lines of its run)
          (r"\[New LWP N\]\n", "")]

#: the signal frame's size is the CPU's (xsave state: AT_MINSIGSTKSZ 3376 B with AVX-512, 1776 B
#: without): it moves every size and distance measured from a handler's frame or the sigframe
SIGFRAME = [(r"\b\d+ B\b", "N B"), (r"\b\d+\.\d (KiB|MiB)\b", r"N.N \1"),
            (r"MINSIGSTKSZ\), \d+ here", "MINSIGSTKSZ), N here")]


def _gcore(setup, args):
    """A core_by hook: run the program under gdb with *setup*, write a core at the fault."""
    def make(tmp: Path, binary: Path) -> Path:
        from tests.support.transcripts import INFERIOR_SHELL

        core = tmp / "core"
        # the same fixed environment as the transcript's own gdb (addresses depend on its size)
        subprocess.run([GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
                        "-iex", "unset environment", "-iex", "set environment LANG=C.UTF-8",
                        *sum((["-ex", c] for c in setup), []), "-ex", "run",
                        "-ex", f"generate-core-file {core}", "--args", str(binary), *args],
                       capture_output=True, timeout=120, cwd=tmp, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, SHELL=INFERIOR_SHELL))
        return core
    return make


def _a64_build(name):
    def make(tmp: Path) -> Path:
        out = tmp / name
        subprocess.run(["aarch64-linux-gnu-gcc", "-g", "-O0", "-no-pie", f"-fdebug-prefix-map={REPO}=.",
                        "-o", str(out), str(REPO / EX / f"{name}.c")], check=True, cwd=REPO)
        return out
    return make


def _qemu_core(args):
    def make(tmp: Path, binary: Path) -> Path:
        subprocess.run(["prlimit", "--core=unlimited", "qemu-aarch64", "-L", "/usr/aarch64-linux-gnu",
                        str(binary), *args], cwd=tmp, capture_output=True, timeout=120,
                       env={"LANG": "C.UTF-8"})          # a fixed environment: fixed addresses
        made = sorted(glob.glob(str(tmp / "qemu_*.core")))
        for extra in glob.glob(str(tmp / "core*")):
            os.unlink(extra)
        core = tmp / "qemu.core"
        os.rename(made[-1], core)
        return core
    return make


def _go_build(tmp: Path) -> Path:
    out = tmp / "goroutine_overflow"
    cache = tmp / "gocache"
    env = dict(os.environ, GOCACHE=str(cache), GOPATH=str(cache), GO111MODULE="off")
    go = shutil.which("go", path="/usr/bin:/bin") or "go"
    subprocess.run([go, "build", "-o", str(out), str(REPO / EX / "goroutine_overflow.go")],
                   check=True, cwd=tmp, env=env, capture_output=True)
    shutil.rmtree(cache, ignore_errors=True)
    return out


def recipes(Recipe) -> dict:
    w = 80
    return {
        "stack-teststack": Recipe(["run 1920 1080", "stack-diagnose"], source=EX + "teststack.c", width=w),
        "stack-handled": Recipe(["handle SIGSEGV nostop noprint pass", "run 1920 1080", "stack-diagnose"],
                                source=EX + "handled.c", width=w, mask=[(r"pid=\d+", "pid=N")]),
        "stack-recursion": Recipe(["run", "stack-diagnose", "print depth"], source=EX + "recurse_helper.c",
                                  width=w),
        "stack-rlimit-as": Recipe([f"set exec-wrapper prlimit --stack={64 << 20} --as={24 << 20}",
                                   f"run {30 << 20}", "stack-diagnose"], source=EX + "alloca_huge.c", width=w),
        "stack-guard-gap": Recipe(["run", "stack-diagnose"], source=EX + "guard_gap.c", width=w),
        "stack-blocked": Recipe(["run 2097152 4194304 none", "stack-diagnose"], source=EX + "guard_gap.c",
                                width=w),
        "stack-clash-jump": Recipe(["run 4000 5000", "stack-diagnose"], source=EX + "teststack.c", width=w),
        "stack-thread-overflow": Recipe(["run", "stack-diagnose"], source=EX + "thread_overflow.c",
                                        flags=PTHREAD, width=w),
        "stack-thread-clash": Recipe(["run 262144 530000", "stack-diagnose", "stack-diagnose --thread 3"],
                                     source=EX + "thread_clash.c", flags=PTHREAD, width=w),
        "stack-altstack": Recipe(["run 65536 262144", "continue", "stack-diagnose"], source=EX + "altstack.c",
                                 width=w, mask=SIGFRAME, loose=True),
        "stack-other": Recipe([f"set exec-wrapper prlimit --stack={4 << 20}", "run 1024 768",
                               "stack-diagnose --rlimit 8M"], source=EX + "teststack.c", width=w),
        "stack-user-stack": Recipe(["run 131072 vla 307200", "stack-diagnose"],
                                   source=EX + "coroutine.c", width=w),
        "stack-sigframe": Recipe(["run", "continue", "stack-diagnose"], source=EX + "crash_handler.c",
                                 flags=PTHREAD, width=w, mask=SIGFRAME, loose=True),
        "stack-smash": Recipe(["run " + "A" * 44, "stack-diagnose"], source=EX + "smash.c",
                              flags=["-g", "-O0", "-fstack-protector-strong"], width=w),
        "stack-corrupt-sp": Recipe(["run below200m", "stack-diagnose"], source=EX + "pivot.c", width=w),
        "stack-not-stack": Recipe(["run heap", "stack-diagnose"], source=EX + "badptr.c", width=w),
        "stack-healthy": Recipe(["break recurse if n == 30000", "run", "stack-diagnose"],
                                source=EX + "recurse.c", width=w),
        "stack-core-small-limit": Recipe(
            ["stack-diagnose", "stack-diagnose --rlimit 4096"], source=EX + "teststack.c", width=w,
            core_by=_gcore([f"set exec-wrapper prlimit --stack={4 << 20}"], ["1024", "768"]),
            shell="gdb teststack core      # gcore of 'ulimit -s 4096; ./teststack 1024 768'"),
        "stack-core-qemu-aarch64": Recipe(
            ["stack-diagnose"], builder=_a64_build("teststack"), core_by=_qemu_core(["1920", "1080"]),
            gdb="gdb-multiarch", pre=["set sysroot /usr/aarch64-linux-gnu"], width=w,
            shell="gdb-multiarch teststack qemu.core   # qemu-aarch64 ./teststack 1920 1080: core dumped"),
        "stack-go": Recipe(["break runtime.fatalthrow", "run", "stack-diagnose"], builder=_go_build,
                           pre=["set auto-load python-scripts off"],
                           width=w, mask=GOADDR, timeout=600),
    }
