"""Issue 11 item 2 and the helper audit, as an attacker would check it: gdb runs (as root) with
LD_PRELOAD naming a library whose constructor records every process that loads it, in a
directory holding planted Python modules.  No helper the toolkit starts may load the library or
the modules (the user's own program under vg-start is the user's business and not tested here).

The library records into a path compiled into it, so dropping other variables cannot hide a
load.  LD_PRELOAD is set from gdb's Python after gdb started (gdb itself must not load it)."""
import os
import shutil

import pytest

from tests.support.gdbrun import compile_c
from tests.support.hostile import run_hostile

pytestmark = pytest.mark.gdb

EVIL = r"""
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void record(void) {
    char buf[512] = {0};
    int fd = open("/proc/self/cmdline", O_RDONLY);
    int n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;
    for (int i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
    FILE *f = fopen(MARKER, "a");
    if (f) { fprintf(f, "%s\n", buf); fclose(f); }
}
"""


@pytest.fixture
def trap(tmp_path):
    marker = tmp_path / "loaded-by"
    lib = compile_c(EVIL, name="libevil.so", flags=["-shared", "-fPIC", f'-DMARKER="{marker}"'])
    cwd = tmp_path / "clone"
    cwd.mkdir()
    for mod in ("json", "bcc", "sitecustomize", "runpy", "subprocess"):
        (cwd / f"{mod}.py").write_text(f"open({str(marker)!r}, 'a').write('python module {mod}\\n')\n")
    setup = ("python import os; os.environ['LD_PRELOAD'] = " + repr(str(lib)) +
             "; os.environ['PYTHONPATH'] = " + repr(str(cwd)) +
             "; os.environ['PYTHONSTARTUP'] = " + repr(str(cwd / "json.py")))
    return marker, cwd, setup


def _loaded(marker):
    return marker.read_text() if marker.exists() else ""


@pytest.mark.parametrize("command", [
    "toolkit doctor",
    "ktrace vfs_read --timeout 1",
    # a tracepoint reaches the root worker even on a kernel without kprobes (this host)
    "ktrace tracepoint:syscalls:sys_enter_getpid --timeout 1",
    "ktypes --force",
])
def test_no_helper_loads_the_callers_preload_or_modules(command, trap):
    if command.startswith("ktypes") and not (os.path.exists("/sys/kernel/btf/vmlinux")
                                            and shutil.which("bpftool")):
        pytest.fail("ktypes needs /sys/kernel/btf/vmlinux and bpftool (scripts/setup.sh)")
    marker, cwd, setup = trap
    run = run_hostile([setup, command], cwd=cwd, timeout=180)
    assert run.alive, run.describe()
    assert _loaded(marker) == "", f"loaded by: {_loaded(marker)}\n{run.describe()}"


def test_vgdb_helpers_get_no_loader_or_shell_variables(trap, tmp_path):
    """vg-start runs the user's program under valgrind with the user's environment (their
    business); but the helpers around it -- the shell gdb forks for ``target remote |``, vgdb
    behind it, the standalone vgdb that probes and queries -- must not load gdb's LD_PRELOAD nor
    run a BASH_ENV script (gdb forks the pipe with $SHELL: bash reads BASH_ENV)."""
    marker, cwd, setup = trap
    script = tmp_path / "bash_env.sh"
    script.write_text(f"echo 'BASH_ENV script ran' >> {marker}\n")
    prog = compile_c("#include <stdlib.h>\nint main(void) { malloc(7); return 0; }\n", name="vgenv")
    setup += f"; os.environ['BASH_ENV'] = {str(script)!r}; os.environ['ENV'] = {str(script)!r}"
    run = run_hostile([setup, f"vg-start {prog}", "vg-leaks", "vg-errors", "continue"], cwd=cwd,
                      timeout=180, env={"SHELL": "/bin/bash"})
    assert run.alive, run.describe()
    users = ("/bin/sh -e /usr/bin/valgrind", "/usr/bin/valgrind", str(prog))  # valgrind + program
    # vg-start execs valgrind through setpriv (its parent-death signal): the same process,
    # with the environment valgrind gets, before it becomes valgrind
    from gdb_toolkit.valgrind.launch import setpriv_pdeathsig

    if setpriv_pdeathsig():
        users += (f"{setpriv_pdeathsig()} --pdeathsig KILL -- /usr/bin/valgrind ",)
    helpers = [ln for ln in _loaded(marker).splitlines() if not ln.startswith(users)]
    assert helpers == [], f"helpers that loaded gdb's LD_PRELOAD / ran BASH_ENV: {helpers}\n{run.describe()}"


def test_vg_attach_probe_gets_no_loader_or_shell_variables(trap, tmp_path):
    """vg-attach probes the valgrind with a standalone vgdb before gdb's ``target remote |``."""
    import subprocess

    marker, cwd, setup = trap
    script = tmp_path / "bash_env.sh"
    script.write_text(f"echo 'BASH_ENV script ran' >> {marker}\n")
    vgtmp = tmp_path / "tmp"                 # valgrind's vgdb FIFOs live in TMPDIR: keep them ours
    vgtmp.mkdir()
    prog = compile_c("#include <stdlib.h>\nint main(void) { malloc(7); return 0; }\n", name="vgenv")
    import time

    err = tmp_path / "valgrind.err"          # a file, not a pipe: valgrind blocked writing to a full
    with open(err, "wb") as errf:            # pipe holds its signals and ignores SIGTERM
        vg = subprocess.Popen(["valgrind", "--vgdb=yes", "--vgdb-error=0", str(prog)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                              env=dict(os.environ, TMPDIR=str(vgtmp)))
    try:
        deadline = time.monotonic() + 60
        while b"target remote" not in err.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)                  # valgrind says when vgdb can connect
        setup += f"; os.environ['BASH_ENV'] = {str(script)!r}"
        run = run_hostile([setup, f"vg-attach {vg.pid}", "vg-leaks", "kill"], cwd=cwd, timeout=120,
                          env={"SHELL": "/bin/bash", "TMPDIR": str(vgtmp)})
        assert run.alive, run.describe()
        assert "connected to valgrind pid" in run.result.stdout, run.describe()
    finally:
        vg.terminate()
        try:
            vg.wait(20)
        except subprocess.TimeoutExpired:
            vg.kill()                        # its FIFOs are in vgtmp, removed with tmp_path
            vg.wait()
    assert _loaded(marker) == "", f"loaded by: {_loaded(marker)}\n{run.describe()}"
