"""Adversarial audit of the command behaviour rules (issue 14 items 4, 6, 7, 9 and the
guide's "Every command" rule), in real gdb: cases found broken by the cmdaudit pass, each
failing before its fix.  Oracles: /proc/kallsyms, gdb's own values, the error text's shape."""
import re

import pytest

from tests.support.gdbrun import GDBINIT, assert_no_traceback, gdb_json, run_gdb

pytestmark = pytest.mark.gdb

USERS_FUNCTION = '''\
import gdb
class UsersKsym(gdb.Function):
    """$ksym -- the user's own."""
    def __init__(self):
        super().__init__("ksym")
    def invoke(self, *args):
        return 4242
UsersKsym()
'''


def kallsyms_address(name: str) -> int | None:
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                addr, _, sym = line.split()[:3]
                if sym == name:
                    return int(addr, 16) or None
    except OSError:
        return None
    return None


def test_an_existing_convenience_function_or_variable_is_kept(tmp_path):
    """gdb.Function('ksym') silently replaced a $ksym the user (or another extension) had,
    and a `set $kprobe = ...` from ~/.gdbinit: both are now kept, the toolkit's functions
    are $tk_ksym / $tk_kprobe, said once at load and in `toolkit commands`."""
    script = tmp_path / "users_ksym.py"
    script.write_text(USERS_FUNCTION)
    pre = [f"source {script}", "set $kprobe = 3"]
    res = run_gdb([*pre, f"source {GDBINIT}", 'print $ksym("do_sys_openat2")', "print $kprobe",
                   "toolkit commands", "help function tk_ksym"], source=False)
    assert_no_traceback(res)
    assert "$1 = 4242" in res.stdout and "$2 = 3" in res.stdout, res.stdout + res.stderr
    kept = [ln for ln in res.stderr.splitlines() if "kept the existing" in ln]
    assert len(kept) == 1 and "$ksym, $kprobe" in kept[0] and "$tk_ksym" in kept[0], res.stderr
    assert '$tk_ksym("name")' in res.stdout and "$tk_kprobe(ADDR)" in res.stdout, res.stdout
    assert '\n$tk_ksym("name") -- a kernel symbol' in res.stdout, res.stdout   # its help
    doc = gdb_json([*pre, f"source {GDBINIT}"], "toolkit commands", source=False)
    names = [f["name"] for f in doc["functions"]]
    assert "$tk_ksym" in names and "$ksym" not in names, names
    assert any("$ksym" in n for n in doc["notes"]), doc["notes"]
    want = kallsyms_address("do_sys_openat2")
    if want is None:
        pytest.skip("/proc/kallsyms has no do_sys_openat2 address here (kptr_restrict or "
                    "not root): the toolkit's $tk_ksym cannot be checked against it")
    res = run_gdb([*pre, f"source {GDBINIT}", 'print/x $tk_ksym("do_sys_openat2")'], source=False)
    assert f"= {want:#x}" in res.stdout, res.stdout + res.stderr


def test_free_convenience_names_stay_plain():
    """Without a prior $ksym nothing is renamed and no note is printed."""
    res = run_gdb(["toolkit commands"])
    assert "kept the existing" not in res.stderr and "$tk_" not in res.stdout
    assert '$ksym("name")' in res.stdout


def _unreadable_at_start(path: str) -> bool:
    import os

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.pread(fd, 8, 0)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.parametrize("command", ["kcore {}", "ksym vfs_read --kcore {}", "ktypes --kcore {}"])
def test_a_kernel_dump_that_cannot_be_read_is_a_cause_and_fix(command):
    """/proc/self/mem is a 'regular' file whose first bytes cannot be read (EIO): every
    command taking a dump said 'internal error: OSError' instead of what is wrong."""
    path = "/proc/self/mem"
    if not _unreadable_at_start(path):
        pytest.skip(f"reading {path} at offset 0 succeeds on this kernel: no such file to try")
    res = run_gdb([command.format(path)])
    assert_no_traceback(res)
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1, res.stderr
    assert err[0].startswith(f"cannot read {path}: ") and "Fix: " in err[0], err


def test_an_expression_error_from_ksym_has_one_fix():
    """`kx $ksym("nosuch")` said 'Fix: check the name ... Fix: give a number or a valid gdb
    expression.' -- two fixes on one line; the function's own fix is the one that helps."""
    name = "gdb_toolkit_no_such_symbol"
    assert kallsyms_address(name) is None
    for command in (f'kx $ksym("{name}")', f'kdis $ksym("{name}")+5 4'):
        res = run_gdb([command])
        assert_no_traceback(res)
        line = res.stderr.strip()
        assert "\n" not in line and line.count("Fix:") == 1, line
        assert f"'{name}'" in line and "check the name" in line, line


def test_an_unset_convenience_variable_says_so():
    """`ktask $ktask comm` (the help's example) before any ktrace: gdb's 'Cannot convert
    value to long' named neither the cause (never set) nor how $ktask gets a value."""
    res = run_gdb(["ktask $ktask comm", "kx $gdb_toolkit_unset 8"])
    assert_no_traceback(res)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2, res.stderr
    assert "'$ktask' has no value" in lines[0] and "ktrace" in lines[0].split("Fix:")[1], lines
    assert "'$gdb_toolkit_unset' has no value" in lines[1] and "Fix: set it first" in lines[1]
    assert "Cannot convert value" not in res.stderr


def test_unrecognized_arguments_are_shown_as_typed():
    """argparse joined the extra words with blanks: `vg-errors ''` said 'unrecognized
    arguments: ' (nothing to see) and `got a 'b c'` named two words 'b c'."""
    res = run_gdb(["vg-errors ''", "got a 'b c'", "toolkit doctor \"it's\""])
    assert_no_traceback(res)
    assert "vg-errors: unrecognized arguments: ''\n" in res.stderr, res.stderr
    assert "got: unrecognized arguments: 'b c'\n" in res.stderr, res.stderr
    assert "toolkit doctor: unrecognized arguments: \"it's\"\n" in res.stderr, res.stderr


def _comm_of_gdb_unchanged(res) -> None:
    assert "@@comm gdb" in res.stdout, res.stdout[-500:]


@pytest.mark.parametrize("option", ["--stdout", "--log"])
def test_vg_start_never_writes_into_a_kernel_file(tmp_path, option):
    """`vg-start --stdout /proc/sys/kernel/core_pattern prog` (or --log) sent the program's
    output or valgrind's log into a sysctl: procfs/sysfs files are 'regular files'.  The test
    uses /proc/self/comm (gdb's own name: harmless) and reads it back as the oracle."""
    from tests.support.gdbrun import REPO, compile_c

    prog = compile_c(REPO / "examples" / "valgrind" / "memleakloop.c", flags=["-g", "-O0"])
    res = run_gdb([f"vg-start {option} /proc/self/comm {prog} 1",
                   'python print("@@comm", open("/proc/self/comm").read().strip())'])
    assert_no_traceback(res)
    _comm_of_gdb_unchanged(res)
    err = [ln for ln in res.stderr.splitlines() if "/proc/self/comm" in ln]
    assert len(err) == 1 and "is a kernel file (proc)" in err[0] and "Fix: " in err[0], res.stderr
    assert "connected in:" not in res.stdout             # nothing was started


def test_vg_leaks_export_refuses_kernel_files_and_a_failed_write_is_one_line(tmp_path):
    """`vg-leaks --history --export /proc/self/mem` was 'internal error: OSError: [Errno 5]'
    (the write failed), and a writable kernel file took the series."""
    from tests.support.gdbrun import REPO, compile_c

    prog = compile_c(REPO / "examples" / "valgrind" / "memleakloop.c", flags=["-g", "-O0"])
    good = tmp_path / "series.csv"
    res = run_gdb([f"vg-start --stdout /dev/null --log {tmp_path}/vg.log {prog} 2",
                   "break checkpoint", "continue", "vg-leaks",
                   "vg-leaks --history --export /proc/self/mem",
                   "vg-leaks --history --export /proc/self/comm",
                   "vg-leaks --history --plot /proc/self/comm.svg",
                   f"vg-leaks --history --export {good}",
                   'python print("@@comm", open("/proc/self/comm").read().strip())', "kill"],
                  timeout=180)
    assert_no_traceback(res)
    _comm_of_gdb_unchanged(res)
    for path in ("/proc/self/mem", "/proc/self/comm"):
        err = [ln for ln in res.stderr.splitlines() if ln.startswith(path)]
        assert len(err) == 1 and "is a kernel file (proc)" in err[0], res.stderr
    assert good.read_text().startswith("pid,seq,time,kind"), res.stderr   # a real file still works


def test_vg_start_tty_must_be_a_terminal(tmp_path):
    """`vg-start --tty FILE` (documented as a terminal device) took a regular file and appended
    the program's output to it: --tty ~/.bashrc edited the file.  The file is the oracle."""
    from tests.support.gdbrun import REPO, compile_c

    prog = compile_c(REPO / "examples" / "plt" / "hello_calls.c", flags=["-g"])
    victim = tmp_path / "not-a-tty.txt"
    victim.write_text("original\n")
    res = run_gdb([f"vg-start --tty {victim} {prog}", "continue"], timeout=120)
    assert_no_traceback(res)
    assert victim.read_text() == "original\n"
    assert f"--tty {victim} is not a terminal. Fix: " in res.stderr, res.stderr


def test_vg_attach_names_a_few_stale_fifos_not_all(tmp_path):
    """With many dead valgrinds' FIFOs left in $TMPDIR (valgrind killed by SIGKILL leaves
    them), 'vg-attach' printed one error line naming every pid (150 on a test machine)."""
    import os

    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    dead = [pid_max + 10 + i for i in range(12)]           # no process can have these pids
    for pid in dead:
        os.mkfifo(tmp_path / f"vgdb-pipe-from-vgdb-to-{pid}-by-me-on-here")
    res = run_gdb([f"vg-attach --vgdb-prefix {tmp_path}/vgdb-pipe"])
    assert_no_traceback(res)
    line = res.stderr.strip()
    assert "\n" not in line and line.startswith("no running valgrind process"), line
    shown = [int(p) for p in re.findall(r"\b(\d{5,})\b", line)]
    assert shown == dead[:5] and "and 7 more" in line, line


def test_vg_start_with_an_empty_program_name_says_so():
    """`vg-start ''` said "program '' is a directory" (the empty name joined to the cwd)."""
    res = run_gdb(["vg-start ''"])
    assert_no_traceback(res)
    assert res.stderr.strip().startswith("no program given"), res.stderr


def _readelf(prog, flags) -> str:
    import subprocess

    return subprocess.run(["readelf", "-W", *flags, str(prog)], capture_output=True, text=True,
                          check=True).stdout


def test_got_and_plt_complete_the_programs_imports():
    """`got <Tab>` and `plt <Tab>` (a REGEX, usually a name) offered nothing while plt-walk
    offered the imports.  Oracle: readelf -- got: every symbol a GOT relocation names (data
    hooks such as __gmon_start__ included); plt: the undefined FUNC symbols."""
    from tests.support.gdbrun import REPO, compile_c

    prog = compile_c(REPO / "examples" / "plt" / "hello_calls.c", flags=["-g", "-Wl,-z,lazy"])
    relocs = {ln.split()[4].split("@")[0] for ln in _readelf(prog, ["-r"]).splitlines()
              if "R_X86_64_" in ln and "R_X86_64_COPY" not in ln and len(ln.split()) >= 5}
    funcs = {ln.split()[7].split("@")[0] for ln in _readelf(prog, ["--dyn-syms"]).splitlines()
             if len(ln.split()) >= 8 and ln.split()[6] == "UND" and ln.split()[3] == "FUNC"}
    assert "__gmon_start__" in relocs and "__gmon_start__" not in funcs
    res = run_gdb(["echo @@got\\n", "complete got ", "echo @@plt\\n", "complete plt ",
                   "echo @@tk\\n", "complete tk plt pu"], program=prog)
    assert_no_traceback(res)
    parts = dict(re.findall(r"@@(\w+)\n(.*?)(?=@@|\Z)", res.stdout, re.S))
    assert {ln.split()[1] for ln in parts["got"].splitlines()} == relocs, parts["got"]
    assert {ln.split()[1] for ln in parts["plt"].splitlines()} == funcs, parts["plt"]
    assert parts["tk"].split() == ["tk", "plt", "puts"], parts["tk"]


def test_a_users_toolkit_command_is_not_replaced_silently(tmp_path):
    """gdb.Command('toolkit') replaced a user's `define toolkit` without a word.  The prefix
    holds every command, so it is replaced -- and said, at load and in toolkit commands."""
    script = tmp_path / "mine.gdb"
    script.write_text("define toolkit\n  echo users-toolkit\\n\nend\n")
    res = run_gdb([f"source {script}", f"source {GDBINIT}", "toolkit commands"], source=False)
    assert_no_traceback(res)
    said = [ln for ln in res.stderr.splitlines() if "replaced the existing 'toolkit'" in ln]
    assert len(said) == 1 and said[0].startswith("gdb_toolkit: "), res.stderr
    assert "note: replaced the existing 'toolkit'" in res.stdout, res.stdout
    clean = run_gdb(["toolkit commands"])             # nothing said when nothing was there
    assert "replaced" not in clean.stderr + clean.stdout


def test_short_abbreviations_of_gdbs_own_commands_still_work():
    """gdb resolves a unique prefix: `k` is kill.  The kernel commands' aliases (kx, ksym...)
    made `k` 'Ambiguous command' -- a daily habit broken by loading the toolkit -- and `go`
    (goto-bookmark, beside got), `ft` (ftrace, beside ftrace-site).  Oracle: the same
    abbreviations in gdb without the toolkit."""
    plain_gdb = run_gdb(["set max-completions unlimited", "complete "], source=False).stdout.split()
    ours = {c["name"] for c in gdb_json([], "toolkit commands")["commands"]} | {"tk", "toolkit"}
    abbrevs = sorted({name[:n] for name in ours for n in (1, 2) if len(name) > n})
    resolving = [a for a in abbrevs if a not in plain_gdb and
                 len({c for c in plain_gdb if c.startswith(a)}) == 1]
    assert "k" in resolving, resolving            # kill: the case that matters most
    marks = [x for a in resolving for x in (f"echo @@{a}\\n", f"help {a}")]
    before = run_gdb(marks, source=False)
    after = run_gdb(marks)
    assert_no_traceback(after)
    assert "Ambiguous command" not in after.stderr, after.stderr
    split = lambda out: dict(re.findall(r"@@(\w+)\n(.*?)(?=@@|\Z)", out, re.S))  # noqa: E731
    b, a = split(before.stdout), split(after.stdout)
    # a first line naming the command and its aliases ("kill, k" once restored) is dropped
    names_line = re.compile(r"\A[\w-]+(, [\w-]+)*\n")
    for abbrev in resolving:
        assert names_line.sub("", a[abbrev]) == names_line.sub("", b[abbrev]), abbrev


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below *pid*, from /proc (the oracle)."""
    import os

    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents[int(entry)] = (ppid, cmd or stat.split("(", 1)[1].split(")")[0] + " <defunct>")
    out, frontier = [], {pid}
    while frontier:
        found = [(p, c) for p, (pp, c) in parents.items() if pp in frontier]
        out += found
        frontier = {p for p, _ in found}
    return out


def test_ctrl_c_during_toolkit_doctor_leaves_no_helper():
    """Ctrl-C while `toolkit doctor` runs its bcc probe (a python3 in its own session, which
    gdb's SIGINT never reaches) left that process running, or a zombie: run_helper neither
    killed nor reaped it on KeyboardInterrupt."""
    import subprocess
    import time

    from tests.support.tmux import TmuxGdb

    with TmuxGdb(width=120) as t:
        gdb_pid = int(subprocess.run(["tmux", "-S", t.socket, "list-panes", "-F", "#{pane_pid}"],
                                     capture_output=True, text=True).stdout.split()[0])
        t.type("toolkit doctor")
        t.send_keys("Enter")
        deadline = time.monotonic() + 20
        helper = []
        while not helper and time.monotonic() < deadline:
            helper = [d for d in _descendants(gdb_pid) if "import bcc" in d[1]]
            time.sleep(0.02)
        if not helper:
            pytest.skip("the doctor's bcc probe never ran long enough to interrupt here")
        t.send_keys("C-c")
        t.wait_prompt(timeout=60)
        time.sleep(0.5)
        left = _descendants(gdb_pid)
        assert not left, left


def test_kernel_addresses_beyond_64_bits_are_refused_not_wrapped():
    """$ksym("0x1ffffffffffffffff") answered 0xffffffffffffffff and
    $ksym("do_sys_openat2+0x99999999999999999999") some unrelated address (masked to 64
    bits): kx/kdis/kprobe-show then read a wrong place.  The oracle for the fitting case is
    /proc/kallsyms."""
    want = kallsyms_address("do_sys_openat2")
    if want is None:
        pytest.skip("/proc/kallsyms has no do_sys_openat2 address here (kptr_restrict or not root)")
    res = run_gdb(['print/x $ksym("0x1ffffffffffffffff")',
                   'print/x $ksym("do_sys_openat2+0x99999999999999999999")',
                   'kx do_sys_openat2-0xffffffffffffffff 8',
                   'print/x $ksym("do_sys_openat2+0x10")'])
    assert_no_traceback(res)
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 3 and all("outside the 64-bit address space. Fix: " in e
                                     for e in errors), res.stderr
    assert f"= {want + 0x10:#x}" in res.stdout, res.stdout


def test_a_users_command_with_an_underscore_keeps_its_abbreviation(tmp_path):
    """The abbreviation keeper passed a name from gdb's own `complete` list to the alias
    check, which refused '_' with a ValueError at load: a user's `define vg_run` (the only
    gdb command starting with 'vg') left the toolkit half-registered.  Oracle: gdb without
    the toolkit runs the user's command for `vg`, and so must gdb with it."""
    script = tmp_path / "mine.gdb"
    script.write_text("define vg_run\n  echo users-vg-run\\n\nend\n")
    before = run_gdb([f"source {script}", "vg"], source=False)
    assert "users-vg-run" in before.stdout, before.stdout + before.stderr
    res = run_gdb([f"source {script}", f"source {GDBINIT}", "vg", "toolkit commands"], source=False)
    assert_no_traceback(res)
    assert "ValueError" not in res.stderr and "users-vg-run" in res.stdout, res.stdout + res.stderr
    assert "vg-leaks" in res.stdout and "ktrace" in res.stdout, res.stdout   # every command there
