"""stack-diagnose on core files: the limit a core does not record (inferred from the refusal,
or given with --rlimit), a core without NT_SIGINFO (pr_cursig and the faulting instruction),
kernel-written cores, and qemu-user aarch64 cores.  Oracles: the live process's own limits and
$_siginfo before the core was written, readelf, and re-running the fix for real."""
import json
import os
import re
import shutil
import struct
import subprocess

import pytest

from tests.support.gdbrun import assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.stack_oracles import (EX, ORACLE, ORACLE_CMD, MiB, build, growth_rule,
                                         limit_of, passes_with, run_gdb_limited, ints)

pytestmark = pytest.mark.gdb
NT_SIGINFO = 0x53494749


def gcore(prog, args, core, setup=("run",)):
    """Run *prog* to its fault under gdb, read the oracle, write a core; the oracle."""
    res = run_gdb([*setup, ORACLE_CMD, f"generate-core-file {core}"], program=prog, args=args)
    assert core.exists(), res.output
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(ORACLE))
    return json.loads(line[len(ORACLE):])


def diagnose_core(prog, core, *cmds, limit=None):
    commands = [*json_wrapped("stack-diagnose --json " + " ".join(cmds)), "stack-diagnose " + " ".join(cmds)]
    res = (run_gdb_limited(limit, commands, program=prog, core=core) if limit
           else run_gdb(commands, program=prog, core=core))
    assert_no_traceback(res)
    return ints(res.json_documents()[-1]), res


@pytest.fixture(scope="module")
def small_limit_core(tmp_path_factory):
    """The seed's buffer at 1024x768 (6 MiB) in a program started under ulimit -s 4096."""
    prog = build("teststack")
    core = tmp_path_factory.mktemp("core") / "teststack.core"
    orc = gcore(prog, ["1024", "768"], core, setup=(f"set exec-wrapper prlimit --stack={4 * MiB}", "run"))
    return prog, core, orc


@pytest.mark.parametrize("analyst", [8 * MiB, 2 * MiB, "unlimited"])
def test_core_verdict_does_not_flip_with_the_analysts_limit(small_limit_core, analyst):
    prog, core, orc = small_limit_core
    growth, soft = growth_rule(orc)
    assert soft == 4 * MiB and growth > soft                  # what the live process had
    doc, res = diagnose_core(prog, core, limit=analyst)
    assert doc["verdict"] == "rlimit", doc["headline"]
    assert "RLIMIT_STACK was below 6.0 MiB" in doc["headline"]
    assert any("inferred" in n for n in doc["notes"])
    kib = doc["fix_plan"]["ulimit_kib"]
    assert passes_with([prog, 1024, 768], kib * 1024) and not passes_with([prog, 1024, 768], soft)


def test_rlimit_option_states_the_limit(small_limit_core):
    prog, core, orc = small_limit_core
    doc, res = diagnose_core(prog, core, "--rlimit 4096")
    assert doc["verdict"] == "rlimit" and doc["rlimit_soft_bytes"] == limit_of(orc)
    assert doc["fact_sources"]["RLIMIT_STACK"] == "given with --rlimit"
    doc, res = diagnose_core(prog, core, "--rlimit 8M")
    assert doc["verdict"] == "stack-other"                    # 8 MiB would have allowed 6 MiB
    assert "would have granted" in " ".join(doc["explanation"])
    bad = run_gdb(["stack-diagnose --rlimit lots", "echo alive\\n"], program=prog, core=core)
    assert_no_traceback(bad)
    errs = [ln for ln in bad.stderr.splitlines() if "--rlimit" in ln]
    assert errs and "is not a size" in errs[0] and "alive" in bad.stdout


def _drop_siginfo(src, dst):
    """A copy of core *src* whose NT_SIGINFO note is renamed (as in a core without one)."""
    data = bytearray(src.read_bytes())
    phoff, phnum = struct.unpack_from("<Q", data, 32)[0], struct.unpack_from("<H", data, 56)[0]
    done = 0
    for i in range(phnum):
        p_type, _f, off, _v, _p, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if p_type != 4:
            continue
        pos = off
        while pos + 12 <= off + filesz:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            if ntype == NT_SIGINFO:
                struct.pack_into("<I", data, pos + 8, 0x4E4F4E45)
                done += 1
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    assert done, "no NT_SIGINFO in the core"
    dst.write_bytes(bytes(data))
    notes = subprocess.run(["readelf", "-n", str(dst)], capture_output=True, text=True).stdout
    assert "NT_SIGINFO" not in notes and "NT_PRSTATUS" in notes     # readelf's word
    return dst


def test_core_without_siginfo_uses_pr_cursig_and_the_faulting_instruction(tmp_path):
    prog = build("teststack")
    core = tmp_path / "full.core"
    orc = gcore(prog, ["1920", "1080"], core)
    bare = _drop_siginfo(core, tmp_path / "nosiginfo.core")
    doc, res = diagnose_core(prog, bare)
    assert "pr_cursig" in doc["fact_sources"]["signal info"] and doc["signal"]["signal_name"] == "SIGSEGV"
    assert doc["fault_address"] == orc["addr"]                   # decoded == the kernel's si_addr
    assert "faulting instruction" in doc["fact_sources"]["fault address"]
    assert doc["verdict"] == "rlimit" and doc["culprit"]["symbol"] == "calc_array"


def test_kernel_written_core_of_a_small_limit(tmp_path):
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write into the working directory")
    prog = build("teststack")
    run = subprocess.run(["prlimit", "--core=unlimited", f"--stack={4 * MiB}", str(prog), "1024",
                          "768"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0
    cores = [p for p in tmp_path.iterdir() if p.name.startswith(pattern.split("%")[0] or "core")]
    if not cores:
        pytest.skip(f"no core written (core_pattern {pattern!r})")
    doc, res = diagnose_core(prog, cores[0])
    assert doc["verdict"] == "rlimit" and doc["thread"]["target"] == "core"
    assert "RLIMIT_STACK was below 6.0 MiB" in doc["headline"]
    assert doc["layout"] is None or doc["layout"]["aslr"] is not False   # a real run: ASLR on
    assert passes_with([prog, 1024, 768], doc["fix_plan"]["ulimit_kib"] * 1024)


# -- qemu-user aarch64 cores: no NT_SIGINFO, no NT_FILE, a fixed guest stack ---------------------

def _a64_tools():
    for tool in ("qemu-aarch64", "gdb-multiarch", "aarch64-linux-gnu-gcc"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (scripts/setup.sh installs it)")
    if not os.path.isdir("/usr/aarch64-linux-gnu"):
        pytest.skip("no aarch64 sysroot (libc6-dev-arm64-cross)")


QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]


def qemu_core(prog, args, tmp_path, stack=None):
    """Run *prog* under qemu-user until it faults; the core qemu wrote."""
    wd = tmp_path / "run"
    wd.mkdir(exist_ok=True)
    cmd = ["prlimit", "--core=unlimited", *([f"--stack={stack}"] if stack else []), *QEMU,
           str(prog), *map(str, args)]
    subprocess.run(cmd, cwd=wd, capture_output=True, timeout=120)
    cores = sorted(wd.glob("qemu_*.core"))
    for extra in wd.glob("core*"):                  # the host's own core of qemu, if any
        extra.unlink()
    assert cores, "qemu wrote no core"
    return cores[-1]


def a64_diagnose(prog, core, *extra):
    res = run_gdb_limited(None, ["set sysroot /usr/aarch64-linux-gnu",
                                 *json_wrapped("stack-diagnose --json"), "stack-diagnose", *extra],
                          gdb="gdb-multiarch", program=prog, core=core)
    assert_no_traceback(res)
    return ints(res.json_documents()[-1]), res


def a64(name, *flags):
    # qemu-user cores have no NT_FILE: gdb cannot relocate a PIE from them, so -no-pie
    return compile_c(EX / f"{name}.c", name=f"{name}-a64", flags=["-g", "-O0", "-no-pie", "-pthread", *flags],
                     compiler="aarch64-linux-gnu-gcc")


def test_qemu_aarch64_core_of_the_seed(tmp_path):
    _a64_tools()
    prog = a64("teststack")
    core = qemu_core(prog, ["1920", "1080"], tmp_path)
    notes = subprocess.run(["readelf", "-n", str(core)], capture_output=True, text=True).stdout
    assert "NT_SIGINFO" not in notes and "NT_PRSTATUS" in notes
    doc, res = a64_diagnose(prog, core)
    assert doc["thread"]["arch"] == "aarch64" and "pr_cursig" in doc["fact_sources"]["signal info"]
    assert doc["verdict"] == "rlimit", doc["headline"]              # not "healthy, 200%"
    assert "fixed" in doc["headline"] and doc["stack_mapping"]["guard_range"]["perms"] == "---p"
    ins = doc["culprit"]["instruction"]
    assert re.fullmatch(r"sub sp, sp, x\d+", ins["text"]) and ins["dynamic"]
    dump = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", str(prog)],
                          capture_output=True, text=True).stdout
    assert re.search(rf"^\s*{ins['address']:x}:\s+sub\s+sp, sp, x\d+", dump, re.M)
    kib = doc["fix_plan"]["ulimit_kib"]
    assert subprocess.run(["prlimit", f"--stack={kib * 1024}", *QEMU, str(prog), "1920", "1080"],
                          capture_output=True).returncode == 0


def test_qemu_aarch64_core_of_a_recursion(tmp_path):
    _a64_tools()
    prog = a64("recurse")
    core = qemu_core(prog, [], tmp_path)
    doc, res = a64_diagnose(prog, core, "echo @@DEPTH@@\\n", "print depth")
    depth = int(re.search(r"@@DEPTH@@\n\$\d+ = (\d+)", res.stdout)[1])
    r = doc["recursion"]
    assert doc["cause"] == "deep-recursion" and r["functions"] == ["recurse"]
    assert r["depth_exact"] and abs(r["depth"] - depth) <= 1


def test_qemu_aarch64_core_of_a_thread_overflow(tmp_path):
    _a64_tools()
    prog = a64("thread_overflow")
    core = qemu_core(prog, ["262144", "524288"], tmp_path)
    doc, res = a64_diagnose(prog, core)
    assert doc["verdict"] == "thread-overflow" and not doc["thread"]["main"]
    assert doc["stack_mapping"]["end_address"] - doc["stack_mapping"]["start_address"] == 262144
    size = doc["fix_plan"]["stacksize_bytes"]
    assert subprocess.run([*QEMU, str(prog), str(size), "524288"], capture_output=True).returncode == 0
