"""The first call of every command, as bench/first_call.py times it and
tests/integration/test_foundation.py checks its imports: the programs (compiled here, and a
crafted kcore whose text is real x86_64 code) and the (label, set-up, program, command) cases."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def programs(tmp: Path) -> dict:
    from tests.support.gdbrun import compile_c
    from tests.support.kcore_fixture import write_code_kcore

    return {
        "hello": compile_c(REPO / "examples" / "plt" / "hello_calls.c", flags=["-g"]),
        "recurse": compile_c(REPO / "examples" / "stack" / "recurse.c", flags=["-g", "-O0"]),
        "vbits": compile_c(REPO / "examples" / "valgrind" / "vbits.c", flags=["-g", "-O0"]),
        **write_code_kcore(tmp),     # the kernel commands' crafted kcore (real x86_64 text)
    }


def cases(p: dict, tmp: Path) -> list[tuple[str, list[str], str | None, str]]:
    """(label, set-up commands, program, command)."""
    vg = [f"vg-start --main --stdout {tmp}/vg.out --log {tmp}/vg.log {p['vbits']}",
          "break checkpoint", "continue"]
    src = f"--kcore {p['kcore']} --kallsyms {p['kallsyms']}"
    return [
        ("toolkit commands", [], None, "toolkit commands"),
        ("toolkit doctor --quick", [], None, "toolkit doctor --quick"),
        ("got (file)", [], p["hello"], "got"),
        ("got (live)", ["start"], p["hello"], "got"),
        ("got --json", ["start"], p["hello"], "got --json"),
        ("plt", ["start"], p["hello"], "plt"),
        ("plt-walk puts", ["start"], p["hello"], "plt-walk puts"),
        ("stack-diagnose", ["run > /dev/null"], p["recurse"], "stack-diagnose"),
        ("ksym", [], None, "ksym do_sys_openat2"),
        ("ktypes", [], None, "ktypes"),
        ("ktask (no kcore here)", [], None, "ktask 1"),
        ("kcore (file)", [], None, f"kcore {p['kcore']} --kallsyms {p['kallsyms']}"),
        ("kdis (kcore)", [], None, f"kdis vfs_read 16 {src}"),
        ("kx (kcore)", [], None, f"kx linux_banner 64 {src}"),
        ("ksym (kcore)", [], None, f"ksym vfs_write {src}"),
        ("ftrace-site (kcore)", [], None, f"ftrace-site vfs_read {src}"),
        ("kprobe-show (kcore)", [], None, f"kprobe-show do_sys_openat2 {src}"),
        ("kprobe-list (kcore)", [], None, f"kprobe-list {src}"),
        # a report in a gdb that vg-start did not start (ends in its "no connection" error
        # here; a session attached by hand pays the same imports): no process modules
        ("vg-leaks (no session)", [], None, "vg-leaks"),
        ("vg-start", [], p["vbits"],
         f"vg-start --main --stdout {tmp}/vg1.out --log {tmp}/vg1.log {p['vbits']}"),
        ("vg-leaks", vg, None, "vg-leaks"),
        ("vg-vbits", vg, None, "vg-vbits g_buf 16"),
        ("vg-who", vg, None, "vg-who g_buf"),
        ("vg-block", vg, None, "vg-block g_buf"),
        ("vg-check", vg, None, "vg-check g_buf 16 defined"),
        ("vg-errors", vg, None, "vg-errors"),
        ("vg-watch", vg, None, "vg-watch 1 --count 1"),
    ]


# Run in gdb after the set-up: the command's first call with gdb_toolkit's preloading off
# (common/fast_import.py), so what is recorded is what the call itself imports -- in the order
# the modules FINISH loading (each after the modules it imported), the order preloading uses.
RECORD_PROBE = r'''
import gdb, json, sys
import importlib._bootstrap as _bootstrap
import gdb_toolkit.common.fast_import as _fast
import gdb_toolkit.gdbsupport.first_call_modules
_load = _fast.load
_fast.load = lambda names: None
before = set(sys.modules)
done = []
_find_and_load = _bootstrap._find_and_load
def _recording(name, import_):
    module = _find_and_load(name, import_)
    if name not in before and name not in done:
        done.append(name)
    return module
_bootstrap._find_and_load = _recording
try:
    gdb.execute(CMD, to_string=True)
except gdb.error:
    pass
_bootstrap._find_and_load = _find_and_load
_fast.load = _load
print("@@FIRST" + json.dumps({"order": done, "new": sorted(set(sys.modules) - before)}))
'''


def record(tmp: Path, jobs: int = 2) -> dict[str, dict]:
    """{label: {"cmd": command line, "setup": [...], "order": [...], "new": [...]}} of every
    case, each in a fresh gdb."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.gdbrun import run_gdb

    p = programs(tmp)

    def one(i_case):
        i, (label, setup, program, cmd) = i_case
        script = tmp / f"record_first_call_{i}.py"
        script.write_text(f"CMD = {cmd!r}\n" + RECORD_PROBE)
        res = run_gdb(list(setup) + [f"source {script}"], program=program, timeout=300)
        found = [ln for ln in res.stdout.splitlines() if ln.startswith("@@FIRST")]
        if len(found) != 1:
            raise RuntimeError(f"{label}: no record in gdb's output:\n{res.output[-3000:]}")
        return label, dict(json.loads(found[0][len("@@FIRST"):]), cmd=cmd, setup=list(setup))

    with ThreadPoolExecutor(jobs) as pool:
        return dict(pool.map(one, enumerate(cases(p, tmp))))


def command_of(cmd: str, names) -> str:
    """The command name (as the command table spells it) that command line *cmd* runs."""
    return max((n for n in names if cmd == n or cmd.startswith(n + " ")), key=len)


def preload_lists(recorded: dict[str, dict]) -> dict[str, tuple]:
    """{command name: modules} (what gdbsupport/first_call_modules.py holds): per command,
    the modules all of its cases imported, in the first case's order.  Not the union: a
    module another case needs costs that case only importlib's toll (~0.15 ms in gdb) when
    it is missing here, while a module a case does not need costs it a whole module when it
    is preloaded anyway (`got`'s tables for `got --json`, its envelope for `got`)."""
    from gdb_toolkit.gdbsupport.command_table import ENTRIES

    names = [e[1] for e in ENTRIES if e[0] == "command"]
    out: dict[str, list] = {}
    for rec in recorded.values():
        order = rec["order"]
        name = command_of(rec["cmd"], names)
        out[name] = [m for m in out[name] if m in order] if name in out else list(order)
    return {k: tuple(v) for k, v in sorted(out.items())}
