"""Hostile files, paths and arguments across commands (the classes behind three defects found in
use: ``ksym --kallsyms /proc/kmsg`` blocked gdb, ``vg-leaks --min-bytes -5`` was accepted,
``vg-start PROG --json`` took the program's ``--json``).

Oracles are outside the toolkit: ``stat -f`` says /proc/kmsg and trace_pipe are files of procfs /
tracefs (regular files that are kernel streams), ``grep`` says a file has no ``ADDRESS TYPE
NAME`` line, the program run under vg-start prints the argv it received, valgrind's command line
as /proc/PID/cmdline has it.  One gdb session per test; every command must answer within the
timeout (a blocked read would hold gdb until it is killed)."""
import os
import re
import shutil
import socket
import subprocess

import pytest

from tests.support.gdbrun import compile_c, run_gdb

pytestmark = pytest.mark.gdb

KMSG = "/proc/kmsg"
TRACE_PIPE = "/sys/kernel/tracing/trace_pipe"


def _fs_type(path: str) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip()


def _q(path) -> str:
    return '"' + str(path) + '"'


def _errors_by_command(res, commands):
    """{command: [stderr lines it printed]}, from markers echoed to stderr between commands."""
    out = {}
    parts = re.split(r"^=== (\d+)$", res.stderr.split("=== END")[0], flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        out[commands[int(parts[i])]] = [ln for ln in parts[i + 1].splitlines() if ln.strip()]
    return out


def _marked(commands):
    argv = []
    for i, c in enumerate(commands):
        argv += [f"python import sys; sys.stderr.write('=== {i}\\n'); sys.stderr.flush()", c]
    return argv + ["python import sys; sys.stderr.write('=== END\\n')", "echo GTK-ALIVE\\n"]


@pytest.mark.skipif(os.geteuid() != 0, reason="/proc/kmsg is readable by root only")
def test_kernel_streams_are_refused_before_reading(tmp_path):
    assert _fs_type(KMSG) == "proc"              # a "regular file" of procfs: the kernel's log stream
    link = tmp_path / "kallsyms"
    link.symlink_to(KMSG)                        # the check is on the file opened, not the name
    prog = compile_c("int main(void) { return 0; }\n", name="streams_prog")
    streams = [KMSG]
    if os.path.exists(TRACE_PIPE) and _fs_type(TRACE_PIPE) == "tracefs":
        streams.append(TRACE_PIPE)
    commands = []
    for s in streams:
        commands += [f"ksym vfs_read --kallsyms {s}", f"ksym vfs_read --system-map {s}", f"kcore {s}",
                     f"ktypes --btf {s}", f"got --diff {s}", f"vg-start --stdin {s} {prog}"]
    commands.append(f"ksym vfs_read --kallsyms {_q(link)}")
    res = run_gdb(_marked(commands), timeout=60)
    assert "GTK-ALIVE" in res.stdout, res.stderr
    assert "Traceback" not in res.output
    errors = _errors_by_command(res, commands)
    for c in commands:
        lines = errors.get(c)
        assert lines and len(lines) == 1, (c, lines)
        assert "is a kernel stream" in lines[0] and "not a file" in lines[0], (c, lines)
        named = str(link) if str(link) in c else next(s for s in streams if s in c)
        assert named in lines[0], (c, lines)          # the message names the path given
    assert "valgrind pid" not in res.stdout          # nothing was started on the kernel log


def test_files_without_symbols_are_not_symbol_tables(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    words = tmp_path / "words"
    words.write_text("hello world\nthis is no kallsyms\n")
    files = [empty, words, "/bin/true"]
    if os.path.exists("/sys/kernel/tracing/trace") and os.geteuid() == 0:
        files.append("/sys/kernel/tracing/trace")
    for f in files:                              # the oracle: no "ADDRESS TYPE NAME" line at all
        grep = subprocess.run(["grep", "-caE", r"^[0-9a-fA-F]+ [A-Za-z] [^ ]", str(f)],
                              capture_output=True, text=True)
        assert grep.stdout.strip() == "0", (f, grep.stdout)
    commands = []
    for f in files:
        commands += [f"ksym vfs_read --kallsyms {_q(f)}", f"kdis vfs_read --kallsyms {_q(f)}"]
        if f != "/bin/true":        # an ELF --system-map is read as a vmlinux ("no .symtab")
            commands.append(f"ksym vfs_read --system-map {_q(f)}")
    res = run_gdb(_marked(commands), timeout=60)
    errors = _errors_by_command(res, commands)
    for c in commands:
        lines = errors.get(c)
        # before: "no kernel symbol matches", or (all([]) is true) "shows every address as 0
        # (kernel.kptr_restrict...)", naming "<text>" for a System.map
        assert lines and len(lines) == 1 and "is not a symbol table" in lines[0], (c, lines)
        assert "kptr_restrict" not in lines[0] and "<text>" not in lines[0], (c, lines)


def test_odd_paths_say_what_they_are(tmp_path):
    loop = tmp_path / "loop1"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    prog = compile_c("int main(void) { return 0; }\n", name="odd_paths_prog")
    commands = [f"ksym vfs_read --kallsyms {_q(loop)}", f"ktypes --btf {_q(loop)}",
                f"got --diff {_q(loop)}",
                f"vg-start --stdin {_q(sock_path)} {prog}", f"vg-start --stdout {_q(sock_path)} {prog}"]
    own = [f"vg-start --stdin /proc/self/environ {prog}", f"vg-start --stdin /proc/thread-self/comm {prog}"]
    try:
        res = run_gdb(_marked(commands + own), timeout=60)
    finally:
        sock.close()
    errors = _errors_by_command(res, commands + own)
    # /proc/self opened by gdb is gdb's: the program would have read gdb's environment
    for c in own:
        assert len(errors[c]) == 1 and "is gdb's own /proc/" in errors[c][0], (c, errors[c])
    assert "valgrind pid:" not in res.stdout
    # a loop was called "a symbolic link, which is not followed here" (these options follow links)
    for c in commands[:3]:
        assert errors[c] and "loop of symbolic links" in errors[c][0], (c, errors[c])
    # a socket as the program's stdin was "a FIFO: the program's output cannot go to it"
    for c in commands[3:]:
        assert len(errors[c]) == 1 and "is a socket" in errors[c][0] and "FIFO" not in errors[c][0], \
            (c, errors[c])


# (command, accepted?) for values the user may type: negative, zero, 2^64, 2^64+1, hex, suffixes.
# Accepted ones reach the next check ("needs a connection to a valgrind gdbserver");
# refused ones name the option, the value and the range, on one line.
NUMERIC = [
    ("vg-leaks --min-bytes -5", False), ("vg-leaks --min-bytes 0", True),
    ("vg-leaks --min-bytes 0x10", True), ("vg-leaks --min-bytes 1k", True),
    ("vg-leaks --min-bytes 18446744073709551615", True),
    ("vg-leaks --min-bytes 18446744073709551616", False),
    ("vg-leaks --top 0", False), ("vg-leaks --top -1", False), ("vg-leaks --top 18446744073709551617", False),
    ("vg-leaks --top 0x10", True), ("vg-leaks --depth 0", False), ("vg-leaks --group-by -2", False),
    ("vg-watch 1 --count 0", False), ("vg-watch 1 --count -5", False),
    ("vg-watch 1 --count 18446744073709551617", False), ("vg-watch 1 --count 3", True),
    ("vg-watch 1 --top -5", False), ("vg-watch 1 --top 0", False), ("vg-watch 1 --top 5", True),
    ("vg-attach 0", False), ("vg-attach -5", False), ("vg-attach 18446744073709551617", False),
    ("vg-errors --top -1", False), ("vg-errors --top 0", True), ("vg-errors --top 18446744073709551617", False),
    ("vg-block 1 --limit -1", False), ("vg-block 1 --limit 0", True), ("vg-block 1 --limit 0x10", True),
    ("vg-block 1 --limit 18446744073709551617", False),
]


TIMEOUTS = ["ktrace vfs_read --timeout inf", "ktrace vfs_read --timeout nan",
            "ktrace vfs_read --timeout -1"]
# finite but huge: 'vg-watch 1e300' slept into "internal error: OverflowError: timestamp too large"
SECONDS = ["vg-watch 1e300", "vg-watch 31536001 --count 2", "vg-start --timeout 1e300 /bin/true"]


def test_numeric_options_mean_something_or_are_refused():
    commands = [c for c, _ in NUMERIC] + TIMEOUTS + SECONDS
    res = run_gdb(_marked(commands), timeout=60)
    assert "Traceback" not in res.output
    errors = _errors_by_command(res, commands)
    for c, ok in NUMERIC:
        lines = errors.get(c)
        assert lines and len(lines) == 1, (c, lines)
        if ok:
            assert "needs a connection to a valgrind gdbserver" in lines[0], (c, lines)
            continue
        option, value = c.split()[-2:]
        option = "PID" if c.startswith("vg-attach") else option
        # one line: the option, the value as typed, the range ("--top 0 is out of range")
        assert f"{option} {value} is out of range" in lines[0] and " Fix: give " in lines[0], (c, lines)
    for c in TIMEOUTS:          # inf was refused as "--timeout must be positive"
        value = c.split()[-1]
        assert errors[c] == [f"--timeout {value} is not a finite positive number of seconds. Fix: "
                             "give seconds, e.g. --timeout 10 (none: until the count or Ctrl-C)."], \
            (c, errors[c])
    for c in SECONDS:           # a usage error: the message, then the usage line
        assert "not a positive number of seconds up to a year (31536000)" in errors[c][0], \
            (c, errors[c])
        assert errors[c][1].startswith("usage: "), (c, errors[c])


ARGV_PROG = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) printf("ARG[%d]=%s\n", i, argv[i]);
    return 0;
}
"""


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_vg_start_words_after_program_are_the_programs(tmp_path):
    prog = compile_c(ARGV_PROG, name="argv_prog", flags=["-g"])
    dash = tmp_path / "-dash"                  # a program whose name starts with '-'
    shutil.copy(prog, dash)
    res = run_gdb([f"vg-start {prog} -x --help --json -- --num-callers=7", "continue",
                   "vg-start --json -- -dash a", "continue"], cwd=tmp_path, timeout=120)
    args = re.findall(r"^ARG\[(\d+)\]=(.*)$", res.stdout, flags=re.M)
    # the oracle: what each program printed as its own argv
    assert args == [("1", "-x"), ("2", "--help"), ("3", "--json"), ("1", "a")], res.output
    # the first vg-start answered as text (the program's --json is not vg-start's), with
    # valgrind's option after "--" on valgrind's command line, before the program
    first = res.stdout.split("ARG[1]=-x")[0]
    assert "valgrind pid:" in first and '"command": "vg-start"' not in first, res.output
    assert re.search(r"--num-callers=7 \S*argv_prog -x --help --json", first), res.output
    # "--" before PROGRAM ends vg-start's options: -dash ran, and that vg-start answered in JSON
    assert '"command": "vg-start"' in res.stdout and str(dash) in res.stdout, res.output
    assert "Traceback" not in res.output


LEAKY = r"""
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    void *p = malloc(40);
    printf("PROGRAM-OUTPUT %p\n", p);
    p = 0;
    return 0;
}
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's link needs root (lchown)")
@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_outputs_are_not_written_through_planted_links(tmp_path):
    """Root writing --stdout/--log/--export/--plot into /tmp: a symlink or a file another user
    planted at that name must not be written through (fs.protected_symlinks/regular may be 0,
    as on this machine).  The oracle: the victim files' bytes, read back, and what exists."""
    prog = compile_c(LEAKY, name="planted_prog", flags=["-g"])
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)                         # like /tmp
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = shared / "out"
    link.symlink_to(victim)
    os.lchown(link, 65534, 65534)                # planted by nobody
    foreign = shared / "theirs"
    foreign.write_text("theirs\n")
    os.chown(foreign, 65534, 65534)
    mine = shared / "mine.csv"                   # a new name: created (O_EXCL), not refused
    commands = [f"vg-start --stdout {link} {prog}", f"vg-start --log {link} {prog}",
                f"vg-start --stdout {foreign} {prog}", f"vg-start --log {foreign} {prog}",
                f"vg-start --main {prog}", "vg-leaks",
                f"vg-leaks --history --export {link}", f"vg-leaks --history --plot {foreign}.svg",
                f"vg-leaks --history --export {foreign}", f"vg-leaks --history --export {mine}"]
    per_pid = f"vg-start --log {shared}/vg-%p.log {prog}"
    commands.insert(0, per_pid)               # before the vg-start that connects
    os.symlink(victim, f"{foreign}.svg")
    os.lchown(f"{foreign}.svg", 65534, 65534)
    res = run_gdb(_marked(commands), timeout=120)
    errors = _errors_by_command(res, commands)
    assert victim.read_text() == "precious\n" and foreign.read_text() == "theirs\n", res.output
    assert not errors.get(commands[5]) and not errors.get(commands[6]), res.output   # connected
    for c in commands[1:5] + commands[7:10]:
        lines = errors.get(c)
        # one refusal line (gdb's own chatter on stderr, e.g. a slow vgdb's, may sit beside it)
        refusals = [ln for ln in lines or () if "owned by uid 65534" in ln
                    and "a directory anyone may write" in ln]
        assert len(refusals) == 1, (c, lines, res.output)
    assert mine.exists() and mine.stat().st_uid == os.geteuid(), res.output
    # %p: only valgrind knows the name, so links planted at vg-PID.log cannot be checked first
    assert errors[per_pid] and "%p in " in errors[per_pid][0] \
        and "a directory anyone may write" in errors[per_pid][0], errors[per_pid]
    assert res.stdout.count("valgrind pid:") == 1        # only the plain vg-start started one


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_a_newline_in_a_path_does_not_start_a_line(tmp_path):
    """A file named "new<LF>line<ESC>[31m": errors escaped it, but report values (kcore's
    "kcore:", vg-start's "program stdin:") and notes ("note: no BTF prototypes: ...") printed
    the newline, so "line..." began a line of its own, indistinguishable from the toolkit's."""
    from tests.support.kcore_fixture import write_kcore

    text = 0xffffffff81000000
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text(f"{text:016x} T _stext\n{text + 0x1000:016x} T vfs_read\n")
    odd = tmp_path / "new\nline\x1b[31m"
    write_kcore(odd, {text: b"\x90" * 0x2000}, "OSRELEASE=6.1.0-test\n")
    assert "new\nline\x1b[31m" in os.listdir(tmp_path)       # the name really holds LF and ESC
    prog = compile_c("int main(void) { return 0; }\n", name="newline_prog")
    gdb_path = str(odd)         # a -ex argument may hold a newline: gdb takes it as one line
    res = run_gdb([f'kcore "{gdb_path}"', f'ksym vfs_read --kallsyms {kallsyms} --btf "{gdb_path}"',
                   f'vg-start --stdin "{gdb_path}" {prog}', "kill"], timeout=120)
    assert "Traceback" not in res.output
    shown = [ln for ln in res.stdout.splitlines() if "[31m" in ln]
    assert len(shown) >= 4, res.stdout                  # kcore:, its note, the BTF note, stdin:
    assert all("new\\x0aline\\x1b[31m" in ln for ln in shown), res.stdout
    assert not any(ln.strip().startswith("line") for ln in res.stdout.splitlines()), res.stdout


def test_an_edited_got_report_is_refused_not_diffed(tmp_path):
    """got --diff on a saved report whose fields got --json never writes (an object {"a": 1},
    an address 2^70, a value "zzz"): it was diffed as it was (the object shown as Python's
    repr, the address as 0x400000000000000000, the value read as absent).  The oracle for the
    untouched file: it is got --json's own output, so it diffs with nothing changed."""
    import json

    prog = compile_c("int main(void) { return 0; }\n", name="gotdiff_prog")
    saved = tmp_path / "got.json"
    run_gdb([f"pipe got --json | cat > {saved}"], program=prog)
    doc = json.loads(saved.read_text())
    slots = doc["result"]["slots"]
    assert slots, doc
    edits = {"object": {"a": 1}, "address": 2 ** 70, "value": "zzz", "symbol": 7}
    files = []
    for key, value in edits.items():
        bad = json.loads(saved.read_text())
        bad["result"]["slots"][0][key] = value
        f = tmp_path / f"edited-{key}.json"
        f.write_text(json.dumps(bad))
        files.append((f, key))
    commands = [f"got --diff {saved}"] + [f"got --diff {f}" for f, _ in files]
    res = run_gdb(_marked(commands), program=prog)
    errors = _errors_by_command(res, commands)
    assert f"0 changed, {len(slots)} unchanged" in res.stdout, res.output
    for (f, key), c in zip(files, commands[1:]):
        lines = errors.get(c)
        assert lines and len(lines) == 1 and f"slots[0] has {key} " in lines[0] \
            and "never writes" in lines[0], (c, lines)


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("vgdb"),
                    reason="valgrind/vgdb not installed")
def test_a_range_past_the_top_of_the_address_space_is_refused():
    """vg-check 0xffffffffffffffff 16 answered "16 bytes at 0xffffffffffffffff are NOT
    addressable": 15 of those bytes do not exist (2^64 wraps to 0).  A range ending exactly at
    2^64 (-8 8, gdb's 'x -8' convention) is still asked of valgrind."""
    prog = compile_c("int main(void) { return 0; }\n", name="toprange_prog", flags=["-g"])
    commands = ["vg-check 0xffffffffffffffff 16", "vg-vbits -8 9", "vg-check -8 8"]
    res = run_gdb([f"vg-start --main {prog}", *_marked(commands)], timeout=120)
    errors = _errors_by_command(res, commands)
    top = 1 << 64
    for c in commands[:2]:
        addr = int(c.split()[1], 0) % top
        length = int(c.split()[2])
        assert addr + length > top                         # the arithmetic, independently
        assert errors[c] == [f"{c.split()[0]}: {length} bytes at 0x{addr:x} run past the end of the "
                             f"64-bit address space. Fix: give a length up to {top - addr} there, "
                             "or a lower address."], (c, errors[c])
    assert "8 bytes at 0xfffffffffffffff8 are NOT addressable" in res.stdout, res.output
