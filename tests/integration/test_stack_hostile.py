"""stack-diagnose next to other people's programs and files (issue 11): --kernel never re-runs
another user's program as root nor carries loader variables, a core's command line with
quotes is re-run exactly, names in any bytes, no capstone, crafted cores."""
import os

import shutil

import subprocess
import sys

import pytest

from tests.support.gdbrun import (REPO, assert_no_traceback, compile_c, gdb_argv, json_wrapped,
                                  run_gdb)
from tests.support.stack_oracles import MiB, build, diagnose_live, run_gdb_limited, ints

pytestmark = pytest.mark.gdb
FAKE = REPO / "tests" / "support" / "fake_stack_ktrace_worker.py"
FAKE_ENV = {"GDB_TOOLKIT_KTRACE_WORKER": f"{sys.executable} {FAKE}"}
NOBODY = 65534

WHO = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* who OUTDIR W H [ARGS...]: record who runs it in OUTDIR/<pid>, then the seed's VLA */
int main(int argc, char **argv) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%d", argv[1], getpid());
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "uid=%d euid=%d gid=%d preload=%s\n", getuid(), geteuid(), getgid(),
                getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "-");
        for (int i = 0; i < argc; i++) fprintf(f, "argv[%d]=%s\n", i, argv[i]);
        fclose(f);
    }
    int n = atoi(argv[2]) * atoi(argv[3]);
    long buf[n];
    for (int i = 0; i < n; i++) buf[i] = i;
    return (int)buf[n / 2] == 7;
}
"""
EVIL = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    char p[4096];
    snprintf(p, sizeof p, "%s/evil-%d-uid%d", getenv("EVIL_DIR"), getpid(), geteuid());
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}
"""


def _root():
    if os.geteuid() != 0:
        pytest.skip("needs root (to run a program as another user)")


@pytest.fixture
def shared():
    """A program, a preload library and a drop directory another user can use (in a private
    directory under /tmp that everyone may traverse: pytest's own is 0700)."""
    import tempfile
    from pathlib import Path

    _root()
    top = tempfile.mkdtemp(prefix="stack-shared-", dir="/tmp")
    os.chmod(top, 0o755)
    d = Path(top) / "shared"
    d.mkdir()
    os.chmod(d, 0o1777)
    prog = d / "who"
    shutil.copy(compile_c(WHO, name="who", flags=["-g", "-O0"]), prog)
    evil = d / "evil.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(evil), "-x", "c", "-"], input=EVIL,
                   text=True, check=True)
    for p in (prog, evil):
        os.chmod(p, 0o755)
    out = d / "out"
    out.mkdir()
    os.chmod(out, 0o1777)
    yield prog, evil, out
    shutil.rmtree(top, ignore_errors=True)


def records(out):
    found = {}
    for p in out.iterdir():
        if p.name.isdigit():
            found[int(p.name)] = p.read_text()
    return found


def test_kernel_rerun_drops_to_the_owner_and_drops_loader_variables(shared):
    prog, evil, out = shared
    wrapper = (f"set exec-wrapper setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
               f"env LD_PRELOAD={evil} EVIL_DIR={out}")
    doc, orc, res = diagnose_live(prog, [str(out), "1920", "1080", "it's"],
                                  setup=(wrapper, "run"), command="stack-diagnose --kernel --json",
                                  env=FAKE_ENV)
    k = doc["kernel"]
    recs = records(out)
    first = recs[orc["pid"]]
    assert "uid=65534" in first and f"preload={evil}" in first          # the original run
    assert f"evil-{orc['pid']}-uid65534" in os.listdir(out)
    rerun = recs[k["pid"]]                                               # the program's own word
    assert "uid=65534 euid=65534 gid=65534 preload=-" in rerun
    assert "argv[4]=it's" in rerun
    assert not [n for n in os.listdir(out) if n.startswith(f"evil-{k['pid']}-")]
    assert "LD_PRELOAD" in k["dropped_env"] and "uid 65534" in k["run_as"]
    assert "killed by SIGSEGV" == k["exit"]


def test_kernel_refuses_root_run_of_a_replaceable_program(tmp_path):
    _root()
    prog = tmp_path / "ts"
    shutil.copy(build("teststack"), prog)
    os.chmod(prog, 0o777)                                    # anyone could have replaced it
    res = run_gdb(["run", "stack-diagnose --kernel", "echo alive\\n"], program=prog,
                  args=["1920", "1080"], env=FAKE_ENV)
    assert_no_traceback(res)
    errs = [ln for ln in res.stderr.splitlines() if "--kernel" in ln]
    assert len(errs) == 1 and "as root" in errs[0] and "writable by others" in errs[0]
    assert "alive" in res.stdout
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_rerun(p, prog)]


def _is_rerun(pid, prog):
    try:
        return os.readlink(f"/proc/{pid}/exe") == str(prog)
    except OSError:
        return False


def test_unprivileged_caller_never_reruns_another_users_program(shared, tmp_path):
    prog, evil, out = shared
    core = out / "root.core"
    run_gdb(["run", f"generate-core-file {core}"], program=prog, args=[str(out), "1920", "1080"])
    os.chmod(core, 0o644)
    # nobody's gdb loads a copy of the toolkit beside the program: the checkout itself may sit
    # where only root can read it (a CI clone in a 0700 mktemp dir)
    toolkit = prog.parent.parent / "toolkit"
    shutil.copytree(REPO / "gdb_toolkit", toolkit / "gdb_toolkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            *gdb_argv([f"source {toolkit / 'gdb_toolkit' / 'gdbinit.py'}", "stack-diagnose --kernel",
                       "echo alive\\n"], program=prog, core=core, source=False)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **FAKE_ENV, TERM="dumb"), cwd="/")
    out_text = proc.stdout + proc.stderr
    assert "Traceback" not in out_text and "internal error" not in out_text
    assert "not yours" in out_text and "alive" in proc.stdout
    assert len(records(out)) == 1                          # only the original run wrote


def test_kernel_rerun_of_a_core_passes_quotes_exactly(shared, tmp_path):
    prog, evil, out = shared
    core = tmp_path / "quoted.core"
    args = [str(out), "1920", "1080", "it's a 'quote'", 'and "double"', "$(touch /tmp/x)"]
    res = run_gdb(["run", f"generate-core-file {core}"], program=prog, args=args)
    assert core.exists(), res.output
    before = set(records(out))
    res = run_gdb([*json_wrapped("stack-diagnose --kernel --json")], program=prog, core=core,
                  env=FAKE_ENV)
    assert_no_traceback(res)
    k = ints(res.json_documents()[-1])["kernel"]
    new = set(records(out)) - before
    assert len(new) == 1
    rerun = records(out)[new.pop()]
    for i, a in enumerate([str(prog), *args]):
        assert f"argv[{i}]={a}\n" in rerun
    assert "initial stack" in k["source"]


def test_without_capstone_it_degrades():
    prog = build("teststack")
    res = run_gdb(["run", *json_wrapped("stack-diagnose --json")], program=prog,
                  args=["1920", "1080"], pre=["python import sys; sys.modules['capstone'] = None"])
    assert_no_traceback(res)
    doc = ints(res.json_documents()[-1])
    assert doc["verdict"] == "rlimit" and doc["culprit"]["symbol"] == "calc_array"
    assert doc["culprit"]["instruction"] is None
    assert any("capstone is not installed" in n for n in doc["notes"])
    assert doc["fix_plan"]["ulimit_kib"] == 16384


MAPPER = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDONLY);
    char *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("map=%p\n", (void *)p);
    fflush(stdout);
    if (argc > 2) { long n = atol(argv[2]); long buf[n]; for (long i = 0; i < n; i++) buf[i] = i; return (int)buf[1]; }
    p[10] = 1;                           /* a write to a read-only file mapping */
    return 0;
}
"""


@pytest.fixture
def latin1(tmp_path):
    d = tmp_path / "caf\udce9"
    os.mkdir(os.fsencode(str(d)))
    prog = os.fsencode(str(d / "m\udce9pper"))
    shutil.copy(compile_c(MAPPER, name="mapper", flags=["-g", "-O0"]), prog)
    data = os.fsencode(str(d / "d\udce9ta"))
    with open(data, "wb") as fh:
        fh.write(b"\0" * 4096)
    return d, os.fsdecode(prog), os.fsdecode(data)


def test_non_utf8_names_live(latin1):
    d, prog, data = latin1
    doc, orc, res = diagnose_live(prog, [data], extra=["stack-diagnose"])
    assert doc["verdict"] == "not-stack"
    shown = "caf\\xe9/d\\xe9ta"                           # common.names' escaping
    assert shown in doc["headline"] and shown in res.stdout
    doc, orc, res = diagnose_live(prog, [data, str(2 * MiB)])
    assert doc["verdict"] == "rlimit"


def test_non_utf8_names_in_a_core(latin1, tmp_path):
    d, prog, data = latin1
    core = tmp_path / "c.core"
    run_gdb(["run", f"generate-core-file {core}"], program=prog, args=[data])
    res = run_gdb_limited(None, [*json_wrapped("stack-diagnose --json"), "stack-diagnose"],
                          program=prog, core=core)
    assert_no_traceback(res)
    doc = ints(res.json_documents()[-1])
    assert doc["verdict"] == "not-stack" and "caf\\xe9/d\\xe9ta" in doc["headline"]


# -- crafted cores: one line, gdb alive, bounded --------------------------------------------------

def _crafted_cores(tmp_path, seed_core):
    from tests.unit.test_stack_core_notes import crafted

    out = []
    for name, data in crafted(seed_core.read_bytes()):
        p = tmp_path / f"{name}.core"
        p.write_bytes(data)
        out.append(p)
    return out


def test_crafted_cores_give_one_line_errors(tmp_path):
    """sec's harness (tests/support/hostile.py): gdb alive, no traceback, one error line,
    peak RSS < 500 MB, < 30 s -- for every lying header and note of the parser's unit test."""
    from tests.support.hostile import assert_survived, run_hostile

    prog = build("teststack")
    seed = tmp_path / "seed.core"
    run_gdb(["run", f"generate-core-file {seed}"], program=prog, args=["1920", "1080"])
    reached = 0
    for core in _crafted_cores(tmp_path, seed):
        run = run_hostile(["stack-diagnose"], program=prog, core=core, timeout=60)
        if "is not a core dump" in run.result.stderr:       # gdb itself refused to load it
            assert run.alive and "Traceback" not in run.result.output
            continue
        reached += 1
        assert_survived(run, max_rss_mb=500, max_seconds=30)
    assert reached >= 4                                     # the note lies reach the parser
