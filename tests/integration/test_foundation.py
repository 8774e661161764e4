"""The loader, the toolkit prefix and doctor, driven through real gdb."""
import json
import os
import subprocess

import pytest

from tests.support.gdbrun import (GDB, GDBINIT, REPO, assert_no_traceback, gdb_json, run_gdb)

pytestmark = pytest.mark.gdb


def test_doctor_table_is_truthful_here():
    res = run_gdb(["toolkit doctor --quick"])
    assert_no_traceback(res)
    assert "check" in res.stdout and "status" in res.stdout
    kcore_line = next(l for l in res.stdout.splitlines() if l.startswith("/proc/kcore"))
    expected = "ok" if os.access("/proc/kcore", os.R_OK) else "missing"
    assert expected in kcore_line


def test_doctor_json_matches_independent_facts():
    doc = gdb_json([], "toolkit doctor --quick")
    rows = {c["name"]: c for c in doc["checks"]}
    assert rows["gdb"]["detail"].startswith(
        subprocess.run([GDB, "--version"], capture_output=True, text=True).stdout.split()[3][:4])
    assert rows["root"]["state"] == ("ok" if os.geteuid() == 0 else "limited")
    assert rows["BTF"]["state"] == ("ok" if os.path.exists("/sys/kernel/btf/vmlinux") else "missing")
    import shutil
    assert rows["vgdb"]["state"] == ("ok" if shutil.which("vgdb") else "missing")
    # ptrace: CAP_SYS_PTRACE is claimed only when this process's CapEff has it (bit 19)
    capeff = int(next(ln for ln in open("/proc/self/status") if ln.startswith("CapEff:")).split()[1], 16)
    assert ("CAP_SYS_PTRACE" in rows["ptrace"]["detail"]) == bool(capeff >> 19 & 1 and os.geteuid() == 0)
    # the interpreter named is one that exists (gdb's sys.executable may not)
    py = rows["python (gdb's)"]["detail"].split(" at ", 1)[1]
    assert os.path.isfile(py), rows["python (gdb's)"]
    if not os.path.exists("/proc/kcore"):
        assert rows["/proc/kcore"]["fix"]
    for check in doc["checks"]:
        if check["state"] == "missing":
            assert check["fix"], check


def test_bad_arguments_give_usage_not_traceback():
    res = run_gdb(["toolkit doctor --bogus", "echo still-alive\\n"])
    assert_no_traceback(res)
    assert "unrecognized arguments: --bogus" in res.stderr
    assert "usage: toolkit doctor" in res.stderr
    assert "still-alive" in res.stdout


def test_help_and_command_listing():
    res = run_gdb(["help toolkit", "toolkit commands"])
    assert "toolkit doctor" in res.stdout
    assert "Example" in res.stdout


def test_every_command_has_help_with_example_and_json():
    doc = gdb_json([], "toolkit commands")
    names = [c["name"] for c in doc["commands"]]
    assert "toolkit doctor" in names
    cmds = []
    for n in names:
        cmds += [f"echo @@HELP {n}@@\\n", f"help {n}"]
    res = run_gdb(cmds)
    assert_no_traceback(res)
    pages = dict(part.split("@@\n", 1) for part in res.stdout.split("@@HELP ")[1:])
    assert sorted(pages) == sorted(names)
    for n, text in pages.items():     # each command's own page, not a total over all pages
        assert "Example" in text and "Usage:" in text, (n, text)


def test_every_command_gives_a_usage_error_for_a_bogus_option():
    names = [c["name"] for c in gdb_json([], "toolkit commands")["commands"]]
    res = run_gdb([*(f"{n} --bogus" for n in names), "echo still-alive\\n"])
    assert_no_traceback(res)
    assert "still-alive" in res.stdout
    usage = [ln for ln in res.stderr.splitlines() if ln.startswith("usage: ")]
    # each error is its message and one usage line, however long the usage
    assert len(res.stderr.splitlines()) == 2 * len(names), res.stderr
    for n in names:
        assert any(ln.startswith(f"usage: {n} ") or ln == f"usage: {n}" for ln in usage), (n, res.stderr)


def test_loading_twice_and_from_another_directory(tmp_path):
    res = run_gdb([f"source {GDBINIT}", "toolkit commands"], cwd=tmp_path)
    assert_no_traceback(res)
    assert "toolkit doctor" in res.stdout
    assert res.stdout.count("toolkit doctor") == 1


def test_python_import_when_on_path(tmp_path):
    env = {"PYTHONPATH": str(REPO)}
    res = run_gdb(["python import gdb_toolkit", "toolkit commands"], source=False, env=env)
    assert "toolkit doctor" in res.stdout, res.output


def test_help_option_prints_help():
    res = run_gdb(["toolkit doctor --help"])
    assert "--quick" in res.stdout


def test_tab_completion_of_options():
    res = run_gdb(["complete toolkit doctor --q"])
    assert "toolkit doctor --quick" in res.stdout


def test_heavy_modules_not_imported_at_load():
    """Start-up stays cheap: no heavy dependency, and not even argparse or
    dataclasses (which pulls in inspect/ast), is imported by loading."""
    heavy = ("capstone", "elftools", "bcc", "tabulate", "argparse", "dataclasses")
    res = run_gdb([f"python import sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"])
    assert res.stdout.strip().endswith("[]"), res.output


def test_every_command_has_a_docs_page_linked_from_the_index():
    names = [c["name"] for c in gdb_json([], "toolkit commands")["commands"]]
    index = (REPO / "docs" / "index.md").read_text()
    for name in names:
        page = "toolkit.md" if name.startswith("toolkit") else f"{name}.md"
        assert (REPO / "docs" / "commands" / page).exists(), name
        assert f"commands/{page}" in index, name


def test_value_completion_hook_and_options_together(tmp_path):
    """A command's own values (plt-walk: the program's imports) and its options both complete."""
    from tests.support.gdbrun import compile_c

    prog = compile_c('#include <stdio.h>\nint main(){puts("x");return 0;}\n', "complete_me")
    res = run_gdb([f"file {prog}", "complete plt-walk pu", "complete plt-walk --li",
                   "complete vg-start /usr/bin/gd"])
    assert "plt-walk puts" in res.stdout
    assert "plt-walk --live" in res.stdout
    assert "vg-start /usr/bin/gdb" in res.stdout      # value_completer (filenames) still works


def test_option_values_complete(tmp_path):
    """After an option that takes a value, <Tab> completes the value: got/plt/plt-walk
    --object offer the loaded objects (oracle: the process's /proc/PID/maps), a FILE or PATH
    offers file names, a choice its choices (it completed symbols or nothing before)."""
    from tests.support.gdbrun import compile_c

    prog = compile_c('#include <stdio.h>\nint main(){puts("x");return 0;}\n', "complete_opts")
    (tmp_path / "saved-got.json").write_text("{}")
    res = run_gdb(["start", "complete got --object libc",
                   "complete plt-walk puts --object /", "complete plt --object ld-",
                   f"complete got --diff {tmp_path}/saved-", "complete stack-diagnose --thread ",
                   f"complete vg-start --log {tmp_path}/sa", f"complete vg-start --main {tmp_path}/sa",
                   "complete ktrace --method kp",
                   "python import gdb; print('PID', gdb.selected_inferior().pid)",
                   "python print(open('/proc/%d/maps' % gdb.selected_inferior().pid).read())"],
                  program=prog)
    maps = res.stdout.split("PID ", 1)[1]
    libc = next(ln.split()[-1] for ln in maps.splitlines() if "/libc.so" in ln or "/libc-" in ln)
    ld = next(ln.split()[-1] for ln in maps.splitlines() if "/ld-linux" in ln)
    base = libc.rsplit("/", 1)[1]
    assert f"got --object {base}" in res.stdout, res.output
    offered = {os.path.realpath(ln.split()[-1]) for ln in res.stdout.splitlines()
               if ln.startswith("plt-walk puts --object /")}
    assert {os.path.realpath(libc), os.path.realpath(ld), os.path.realpath(prog)} <= offered, res.output
    assert f"plt --object {ld.rsplit('/', 1)[1]}" in res.stdout
    assert f"got --diff {tmp_path}/saved-got.json" in res.stdout
    # gdb's own filename completer completed the whole argument text: nothing after an option
    assert f"vg-start --log {tmp_path}/saved-got.json" in res.stdout
    assert f"vg-start --main {tmp_path}/saved-got.json" in res.stdout
    assert "ktrace --method kprobe" in res.stdout
    assert "stack-diagnose --thread 1" in res.stdout     # its own values: gdb's thread numbers


# A first call imports what its own path needs (issue 14: < 15 ms of imports per first command;
# bench/first_call.py times them).  These modules cost milliseconds each and no first call needs
# them: argparse (an error or an unusual argv only), dataclasses/inspect/typing (common.record,
# collections.abc), shutil/tempfile/random (helper_process.which, private_dirs), json (--json only),
# the optional packages, gzip/glob (the doctor reads config.gz through zlib), ctypes itself.
FIRST_CALL_NEVER = ("argparse", "gettext", "dataclasses", "inspect", "ast", "dis", "typing", "shutil",
                    "tempfile", "random", "bz2", "lzma", "gzip", "glob", "fnmatch", "platform", "hashlib",
                    "json", "ctypes", "capstone", "tabulate", "bcc", "asyncio", "email", "uuid",
                    "pickle", "sysconfig")
# ... and these only where the command starts a process with subprocess.Popen (helpers and
# vg-start's valgrind are started with os.posix_spawn: none here), or disassembles
# (capstone_lite binds libcapstone through _ctypes, without the ctypes package), or reports
# versions (the doctor)
FIRST_CALL_PROCESS = ("subprocess", "selectors", "threading")


def _setpriv_pdeathsig():
    from gdb_toolkit.valgrind.launch import setpriv_pdeathsig

    return setpriv_pdeathsig()


FIRST_CALL_ONLY_WHERE_NEEDED = FIRST_CALL_PROCESS + ("_ctypes", "elftools")
FIRST_CALL_ALLOWED = {
    # the doctor's helpers (valgrind --version, the bcc probe) run through os.posix_spawn
    # (helper_process.run_helper): no subprocess
    "toolkit doctor --quick": {"_ctypes", "elftools"},
    "got --json": {"json"},
    "plt": {"_ctypes"}, "plt-walk puts": {"_ctypes"}, "stack-diagnose": {"_ctypes"},
    "kdis (kcore)": {"_ctypes"}, "kprobe-show (kcore)": {"_ctypes"},
}
# vg-start spawns valgrind with os.posix_spawn through setpriv --pdeathsig (valgrind.launch.
# start_valgrind): no subprocess; only without a suitable setpriv does it use subprocess.Popen
VG_START_POPEN = _setpriv_pdeathsig() is None
if VG_START_POPEN:
    FIRST_CALL_ALLOWED["vg-start"] = set(FIRST_CALL_PROCESS)

# toolkit modules a first call does without (what it needs is elsewhere, cheaper): the
# kernel package's kprobe parsers for the doctor's tracefs directories, error_reports' parsers
# for vg-start's error count (valgrind.error_counts), plt-walk's --live module for a hop's source
# line (gdbsupport.safe_gdb.source_of); and signal/locale (subprocess's imports, ~1.8 ms) where
# processes are started through os.posix_spawn and SIGINT is blocked through _signal
FIRST_CALL_NOT_TOOLKIT = {
    "toolkit doctor --quick": ("gdb_toolkit.kernel", "signal", "locale"),
    "vg-start": ("gdb_toolkit.valgrind.error_reports",
                 "signal", "locale"),    # gdb_session's sigmask is _signal's; helper_process's which
    "plt-walk puts": ("gdb_toolkit.plt.gdb_watch",),        # --live's watchpoint module
    "plt": ("gdb_toolkit.plt.demangle",),       # a C program: no C++ target to demangle
    # a dump without kprobe_table: kdis's probe marks and kprobe-list's "no source of kprobes"
    # end before a table walk or a report (kernel.session imports them there); the kernel
    # modules read bytes with _struct/_bisect, what struct.py and bisect.py re-export
    "kdis (kcore)": ("gdb_toolkit.kernel.kprobes", "gdb_toolkit.kernel.kprobe_table", "struct", "bisect"),
    "kprobe-list (kcore)": ("gdb_toolkit.kernel.kprobes", "gdb_toolkit.kernel.kprobe_table"),
    "ksym (kcore)": ("struct", "bisect"),
}
# (no vg-* report imports subprocess & co.: see "vg-leaks (no session)"; session_state and
# launch name subprocess.Popen in strings; after vg-start too, unless vg-start had to use Popen)


def _heavy(module: str) -> bool:
    top = module.split(".")[0]
    return top in FIRST_CALL_NEVER or top in FIRST_CALL_ONLY_WHERE_NEEDED


def test_first_calls_import_no_heavy_module_and_preload_what_they_need(tmp_path):
    """Every command's first call in a fresh gdb (bench/first_call.py's cases: user-space
    programs compiled here, a crafted kcore, a valgrind session for each vg-* report) leaves
    none of the heavy modules above in sys.modules; and the modules the registry preloads
    for each command (gdbsupport/first_call_modules.py) are the ones its cases imported,
    recorded here with preloading off (tests/support/first_calls.record)."""
    from gdb_toolkit.gdbsupport.first_call_modules import MODULES
    from tests.support.first_calls import preload_lists, record

    recorded = record(tmp_path)
    found = {}
    for label, rec in recorded.items():
        new = rec["new"]
        shared_session = any(c.startswith("vg-start ") for c in rec["setup"])  # after vg-start
        if not shared_session and not any(m.startswith("gdb_toolkit.") for m in new):
            found[label] = ["(imported no toolkit module: did the command run?)"]
        allowed = FIRST_CALL_ALLOWED.get(label, set())
        if shared_session and VG_START_POPEN:     # vg-start's Popen loaded them
            allowed = allowed | set(FIRST_CALL_PROCESS)
        bad = sorted(m for m in new if _heavy(m) and m.split(".")[0] not in allowed)
        bad += sorted(m for m in new for x in FIRST_CALL_NOT_TOOLKIT.get(label, ())
                      if m == x or m.startswith(x + "."))
        if bad:
            found[label] = bad
    assert len(recorded) >= 25, list(recorded)
    assert found == {}, found
    assert preload_lists(recorded) == MODULES, \
        "gdbsupport/first_call_modules.py is stale: run /usr/bin/python3 scripts/first_call_modules.py --update"
