"""Oracles for stack-diagnose tests, independent of the code under test: the process's
/proc/PID/maps and limits and gdb's own $_siginfo read while it is stopped, the kernel's
growth rules applied by hand, programs' own counters, objdump, and re-running a program with
the suggested fix for real."""
import json
import os
import platform
import re
import shutil
import subprocess

from tests.support.gdbrun import REPO, assert_no_traceback, compile_c, json_wrapped

EX = REPO / "examples" / "stack"
ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(platform.machine(),
                                                                           platform.machine())
ORACLE = "@@ORACLE@@"
ORACLE_CMD = (
    "python import gdb, json, subprocess; p = gdb.selected_inferior().pid; "
    "si = gdb.parse_and_eval('$_siginfo'); "
    "print('" + ORACLE + "' + json.dumps({'pid': p, "
    "'maps': open(f'/proc/{p}/maps', errors='surrogateescape').read(), "
    "'limits': open(f'/proc/{p}/limits').read(), "
    "'prlimit': subprocess.run(['prlimit', '--pid', str(p), '--stack', '-o', 'SOFT,HARD', "
    "'--noheadings', '--raw'], capture_output=True, text=True).stdout, "
    "'signo': int(si['si_signo']), 'code': int(si['si_code']), "
    "'addr': int(si['_sifields']['_sigfault']['si_addr']) if int(si['si_signo']) in (7, 11) else None, "
    "'sp': int(gdb.parse_and_eval('$sp')) & (2**64 - 1), "
    "'pc': int(gdb.parse_and_eval('$pc')) & (2**64 - 1)}))")
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20

# what "the VLA's sp move" looks like: capstone's text, and objdump's (AT&T on x86_64)
VLA_SUB = {"x86_64": r"sub rsp, r\w+", "aarch64": r"sub sp, sp, x\d+"}[ARCH] if ARCH in (
    "x86_64", "aarch64") else r"sub .*"
DYNAMIC_SUB = {"x86_64": r"sub\s+%r\w+,%rsp", "aarch64": r"sub\s+sp, sp, x\d+"}.get(ARCH, r"sub")
THREAD_MIN = 128 << 10 if ARCH == "aarch64" else 64 << 10    # PTHREAD_STACK_MIN floor of the example


def is_vla_sub(text: str) -> bool:
    """Is *text* (capstone) a run-time sized sp decrement on this architecture?"""
    return re.fullmatch(VLA_SUB, text) is not None


def ints(doc):
    """A stack-diagnose result with its "0x..." address strings (the JSON contract) as ints,
    so tests compare them with /proc and gdb's numbers."""
    from gdb_toolkit.common.render import is_address_key

    if isinstance(doc, dict):
        return {k: (int(v, 16) if is_address_key(k) and isinstance(v, str) else ints(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [ints(v) for v in doc]
    return doc


def build(name: str, *flags, compiler: str = "gcc"):
    return compile_c(EX / f"{name}.c", flags=["-g", "-O0", "-pthread", *flags], compiler=compiler)


def maps_of(text: str) -> list[tuple[int, int, str, str]]:
    out = []
    for line in text.splitlines():
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
        if m:
            out.append((int(m[1], 16), int(m[2], 16), m[3], m[4].strip()))
    return out


def stack_of(orc: dict) -> tuple[int, int, str, str]:
    return next(m for m in maps_of(orc["maps"]) if m[3] == "[stack]")


def limit_of(orc: dict, row: str = "Max stack size") -> int | None:
    line = next(ln for ln in orc["limits"].splitlines() if ln.startswith(row))
    soft = line[26:].split()[0]
    return None if soft == "unlimited" else int(soft)


def diagnose_live(program, args=(), extra=(), setup=("run",), command="stack-diagnose --json",
                  env=None, pre=()):
    """Run *program* to its stop, then the oracle and *command*; (doc, oracle, result)."""
    res = run_gdb_limited(None, [*setup, ORACLE_CMD, *json_wrapped(command), *extra],
                          program=program, args=args, env=env, pre=pre)
    assert_no_traceback(res)
    docs = res.json_documents()
    assert docs, res.output
    for doc in docs:
        assert_valid(doc)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(ORACLE))
    return ints(docs[0]), json.loads(line[len(ORACLE):]), res


def assert_valid(result) -> None:
    """Every stack-diagnose result a test sees is checked against the shipped JSON schema."""
    try:
        from gdb_toolkit.common.schemas import errors
    except ImportError:                               # pragma: no cover
        return
    try:
        problems = errors(result, "stack-diagnose.schema.json")
    except ModuleNotFoundError:                       # no jsonschema: the contract test says so
        return
    assert not problems, problems


def run_prog(argv, stack_bytes=None, as_bytes=None, wrapper=(), timeout=120):
    cmd = [str(a) for a in argv]
    lim = []
    if stack_bytes is not None:
        lim.append(f"--stack={stack_bytes}")
    if as_bytes is not None:
        lim.append(f"--as={as_bytes}")
    if lim:
        cmd = ["prlimit", *lim, *cmd]
    return subprocess.run([*wrapper, *cmd], capture_output=True, text=True, timeout=timeout)


def passes_with(argv, stack_bytes=None, **kw) -> bool:
    return run_prog(argv, stack_bytes, **kw).returncode == 0


def passes_both_layouts(argv, stack_bytes=None, **kw) -> bool:
    """The fix works in a normal run and with randomisation off (as under gdb)."""
    return (passes_with(argv, stack_bytes, **kw)
            and passes_with(argv, stack_bytes, wrapper=("setarch", "-R"), **kw))


def growth_rule(orc: dict) -> tuple[int, int]:
    """acct_stack_growth by hand: (vm_end - page(fault), RLIMIT_STACK soft)."""
    stack = stack_of(orc)
    return stack[1] - (orc["addr"] & ~(PAGE - 1)), limit_of(orc)


def depth_printed(res) -> int:
    return int(re.search(r"@@DEPTH@@\n\$\d+ = (\d+)", res.stdout)[1])


DEPTH_CMDS = ("echo @@DEPTH@@\\n", "print depth")


def objdump(binary, intel=False) -> str:
    tool = "objdump"
    return subprocess.run([tool, "-d", "--no-show-raw-insn", *(["-M", "intel"] if intel else []),
                           str(binary)], capture_output=True, text=True).stdout


def have(tool: str) -> bool:
    return shutil.which(tool, path="/usr/bin:/bin") is not None or shutil.which(tool) is not None


def run_gdb_limited(stack_bytes, commands, gdb=None, env=None, timeout=300, **kw):
    """run_gdb with gdb itself (the analyst's shell) under another RLIMIT_STACK, or another
    gdb binary (gdb-multiarch); output bytes that are not UTF-8 (gdb echoes file names raw)
    are kept (surrogateescape)."""
    from tests.support.gdbrun import GdbResult, gdb_argv

    argv = gdb_argv(commands, **kw)
    if gdb:
        argv[0] = shutil.which(gdb) or gdb
    if stack_bytes is not None:
        argv = ["prlimit", f"--stack={stack_bytes}", *argv]
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("TERM", "dumb")
    proc = subprocess.run(argv, capture_output=True, text=True, errors="surrogateescape",
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)
    return GdbResult(proc.stdout, proc.stderr, proc.returncode)


def compile_other(source: str, name: str, lang: str):
    """A Rust or Go program built at test time (cached like compile_c)."""
    import hashlib
    import tempfile
    from pathlib import Path

    from tests.support.gdbrun import BUILD_DIR

    key = hashlib.sha256(f"{lang}\0{source}".encode()).hexdigest()[:12]
    out = Path(BUILD_DIR) / key
    out.mkdir(parents=True, exist_ok=True)
    binary = out / name
    if binary.exists():
        return binary
    src = out / f"{name}.{lang}"
    src.write_text(source)
    tool = shutil.which("rustc" if lang == "rs" else "go", path="/usr/bin:/bin") or (
        "rustc" if lang == "rs" else "go")          # Debian's, as scripts/setup.d/stack.sh installs
    if lang == "rs":
        cmd = [tool, "-g", "-o", str(binary), str(src)]
        env = None
    else:
        cache = tempfile.mkdtemp(prefix="gocache-")
        cmd = [tool, "build", "-o", str(binary), str(src)]
        env = dict(os.environ, GOCACHE=cache, GOPATH=cache, GOFLAGS="-mod=mod", GO111MODULE="off")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out, timeout=600)
    finally:
        if lang == "go":
            shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"build failed: {' '.join(cmd)}\n{proc.stderr}")
    return binary
