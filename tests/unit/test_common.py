import argparse

import pytest

from gdb_toolkit.common import procfs
from gdb_toolkit.common.args import ArgParser, HelpRequested, parse_int
from gdb_toolkit.common.disasm import disassemble, normalize_arch
from gdb_toolkit.common.errors import ToolkitError, UsageError
from gdb_toolkit.common.render import human_size, to_jsonable
from gdb_toolkit.common.table import Col, render_table
from dataclasses import dataclass


def test_error_is_one_line_with_fix():
    e = ToolkitError("no process is running.", "start it with run.")
    assert str(e) == "no process is running. Fix: start it with run."
    assert "\n" not in str(e)


def test_argparser_reports_usage_instead_of_exiting():
    p = ArgParser("demo")
    p.add_argument("--count", type=int)
    with pytest.raises(UsageError) as exc:
        p.parse(["--bogus"])
    assert "unrecognized arguments: --bogus" in str(exc.value)
    assert "usage: demo" in str(exc.value)
    with pytest.raises(UsageError):
        p.parse(["--count", "x"])
    with pytest.raises(HelpRequested) as h:
        p.parse(["--help"])
    assert "--count" in h.value.text
    assert p.parse(["--json"]).json is True
    assert "--json" in p.option_strings()


def test_argparser_keeps_argparse_usage_api():
    """Commands build a UsageError with parser.format_usage() (ktrace: no target, --pid with
    --all): the record parser answers it as argparse does, one usage line, not AttributeError."""
    p = ArgParser("demo")
    p.add_argument("target", nargs="?")
    assert p.format_usage().startswith("usage: demo [-h] [--json] [target]")
    assert p.format_usage().count("\n") <= 1


def test_usage_error_is_the_message_and_one_usage_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    p = ArgParser("demo-with-many-options")
    for name in ("stdin", "stdout", "tty", "log", "timeout", "kallsyms", "system-map"):
        p.add_argument(f"--{name}", metavar=name.upper())
    p.add_argument("program")
    with pytest.raises(UsageError) as exc:
        p.parse(["--bogus"])
    lines = str(exc.value).splitlines()
    assert len(lines) == 2, lines
    assert lines[1].startswith("usage: demo-with-many-options [-h] [--json]") and lines[1].endswith(" program")


def test_parse_int_bases_and_suffixes():
    assert parse_int("0x10") == 16
    assert parse_int("64k") == 65536
    assert parse_int("8M") == 8 << 20
    with pytest.raises(argparse.ArgumentTypeError):
        parse_int("zz")


@dataclass
class _Row:
    addr: int
    raw: bytes


def test_to_jsonable_handles_dataclasses_and_bytes():
    assert to_jsonable([_Row(1, b"\xcc")]) == [{"addr": 1, "raw": "cc"}]


def test_table_never_clips_and_fits_width_when_words_allow():
    # the old renderers clipped ("aaaa…"); now nothing is lost: too wide -> wrap or records
    rows = [["a" * 80, "b" * 80]]
    text = render_table([Col("x"), Col("y")], rows, 60)
    assert "…" not in text and "a" * 80 in text and "b" * 80 in text
    words = [[" ".join(["word"] * 30), " ".join(["more"] * 30)]]
    text = render_table([Col("x"), Col("y")], words, 60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert text.count("word") == 30 and text.count("more") == 30


def test_human_size():
    assert human_size(15_974_400) == "15.2 MiB"
    assert human_size(65536) == "64.0 KiB"
    assert human_size(12) == "12 B"


def test_disassemble_x86_and_arm64():
    ins = disassemble(bytes.fromhex("f30f1efa4883ec10c3"), 0x1000, "x86_64")
    assert [i.mnemonic for i in ins] == ["endbr64", "sub", "ret"]
    assert ins[1].address == 0x1004
    arm = disassemble((0xd4200080).to_bytes(4, "little"), 0x2000, "aarch64")
    assert arm[0].mnemonic == "brk" and "#0x4" in arm[0].op_str
    assert normalize_arch("i386:x86-64") == "x86_64"
    assert normalize_arch("aarch64") == "aarch64"
    with pytest.raises(ToolkitError):
        normalize_arch("mips")


def test_disassemble_marks_bad_bytes():
    ins = disassemble(b"\x90\xff\xff", 0, "x86_64")
    assert ins[-1].mnemonic == "(bad)"


MAPS = """\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 1234 /tmp/prog
7ffd4a1f0000-7ffd4a211000 rw-p 00000000 00:00 0                          [stack]
7ffd4a2fe000-7ffd4a300000 r-xp 00000000 00:00 0
"""

LIMITS = """\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max stack size            8388608              unlimited            bytes
"""


def test_parse_maps_and_limits():
    maps = procfs.parse_maps(MAPS)
    assert maps[1].path == "[stack]" and maps[1].size == 0x21000
    assert maps[2].label == "[anon]"
    assert procfs.find_mapping(maps, 0x7ffd4a1f0010) is maps[1]
    limits = procfs.parse_limits(LIMITS)
    assert limits["Max stack size"].soft == 8388608
    assert limits["Max stack size"].hard is None


def test_read_maps_of_missing_process():
    with pytest.raises(ToolkitError, match="does not exist"):
        procfs.read_maps(2 ** 22 + 12345)


def test_read_real_self_maps_and_limits():
    import os
    import resource

    maps = procfs.read_maps(os.getpid())
    assert any(m.path == "[stack]" for m in maps)
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    lim = procfs.read_limits(os.getpid())["Max stack size"].soft
    assert lim == (None if soft == resource.RLIM_INFINITY else soft)


def test_to_json_is_one_document_small_indented_large_compact():
    import json

    from gdb_toolkit.common.render import INDENT_LIMIT, to_json

    small = to_json([_Row(1, b"\x90")])
    assert "\n" in small and json.loads(small) == [{"addr": 1, "raw": "90"}]
    big_rows = [_Row(i, b"\xcc" * 8) for i in range(INDENT_LIMIT // 20)]
    big = to_json(big_rows)
    assert "\n" not in big and len(json.loads(big)) == len(big_rows)


def test_table_fits_width_when_a_header_is_the_widest_cell():
    cols = [Col("check", "state"), Col("status", "state"), Col("detail"), Col("fix"),
            Col("used by")]
    rows = [["kallsyms addresses", "missing", " ".join(["d" * 9] * 6), " ".join(["f" * 9] * 7),
             " ".join(["u" * 9] * 5)],
            ["gdb", "ok", "13.1", "", ""]]
    for width in (60, 80, 100):
        text = render_table(cols, rows, width)
        assert max(len(line) for line in text.splitlines()) <= width, (width, text)
        assert text.count("d" * 9) == 6 and text.count("f" * 9) == 7, text


def test_human_size_reaches_tib_and_pib():
    assert human_size(3 << 40) == "3.0 TiB"
    assert human_size(int(12.5 * (1 << 50))) == "12.5 PiB"
    assert human_size(-(2 << 40)) == "-2.0 TiB"


def test_options_with_a_value_are_parsed_without_argparse():
    """kdis vfs_read --kcore PATH, vg-start --log FILE, kprobe-show -n 3: common.args answers
    an option with a separate value itself (argparse, gettext and locale: ~3 ms of a first
    call); the fuzz target and tests/integration/test_args_fast_path.py check that the answer
    is argparse's."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfrom gdb_toolkit.common.args import ArgParser, parse_int\n"
            "p = ArgParser('k')\np.add_argument('where')\np.add_argument('n', nargs='?', type=parse_int)\n"
            "p.add_argument('--kcore')\np.add_argument('-c', '--count', type=int, default=3)\n"
            "p.add_argument('--arg', action='append')\n"
            "ns = p.parse(['vfs_read', '8', '--kcore', '/x y', '-c', '5', '--arg', 'a', '--arg', 'b'])\n"
            "print(sorted(vars(ns).items()), 'argparse' in sys.modules)\n"
            "p.parse(['vfs_read', '--kcore=/x'])\nprint('argparse' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[('arg', ['a', 'b']), ('count', 5), ('json', False), ('kcore', '/x y'), ('n', 8), "
        "('where', 'vfs_read')] False", "True"]


@pytest.mark.parametrize("limits", [None, (8 << 20, -1), (1 << 20, 64 << 20), (-1, -1), (4096, 4096)])
def test_own_stack_limit_is_resource_getrlimit(limits):
    """procfs.own_stack_limit (/proc/self/limits) against resource.getrlimit, in a child whose
    RLIMIT_STACK is set to each case (-1: RLIM_INFINITY) where the hard limit allows it."""
    import subprocess
    import sys

    code = ("import resource, sys; from gdb_toolkit.common.procfs import own_stack_limit\n"
            f"want = {limits!r}\n"
            "if want is not None:\n"
            "    inf = resource.RLIM_INFINITY\n"
            "    soft, hard = (inf if v == -1 else v for v in want)\n"
            "    cur = resource.getrlimit(resource.RLIMIT_STACK)[1]\n"
            "    if cur != inf and (hard == inf or hard > cur): sys.exit(3)\n"
            "    resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))\n"
            "s, h = resource.getrlimit(resource.RLIMIT_STACK)\n"
            "i = resource.RLIM_INFINITY\n"
            "assert own_stack_limit() == (None if s == i else s, None if h == i else h), "
            "(own_stack_limit(), s, h)\n")
    repo = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    if r.returncode == 3:
        pytest.skip(f"the hard RLIMIT_STACK here is below {limits}")
    assert r.returncode == 0, r.stderr


def test_smaps_vmflags_against_the_kernels_own_file(tmp_path):
    """parse_smaps_vmflags on this process's real /proc/self/smaps: one entry per mapping of
    /proc/self/maps (the oracle: the same ranges, in order), [stack] flagged "gd"; and a path
    that ends in "kB" or holds ':' is still a mapping's header."""
    import re

    from gdb_toolkit.common.procfs import parse_smaps_vmflags

    with open("/proc/self/smaps") as f:
        smaps = f.read()
    with open("/proc/self/maps") as f:
        maps = f.read()
    got = parse_smaps_vmflags(smaps)
    ranges = [tuple(int(x, 16) for x in ln.split()[0].split("-")) for ln in maps.splitlines()]
    # mappings can come and go between the two reads (the allocator): compare the common part
    assert len(got) >= len(ranges) - 4 and len(got) > 5
    assert [r for r in ranges if r in {(a, b) for a, b, _ in got}] == [(a, b) for a, b, _ in got
                                                                       if (a, b) in set(ranges)]
    stack = next(ln for ln in maps.splitlines() if ln.endswith("[stack]"))
    lo = int(stack.split("-")[0], 16)
    assert "gd" in next(fl for a, b, fl in got if a == lo)
    hostile = ("7f0000000000-7f0000001000 r--p 00000000 08:01 42    /tmp/size 4 kB\n"
               "Size:                  4 kB\n"
               "VmFlags: rd mr mw me\n"
               "7f0000002000-7f0000003000 rw-p 00000000 08:01 43    /tmp/a: b\n"
               "Rss:                   0 kB\n"
               "VmFlags: rd wr mr mw me gd\n"
               "zz-7f0000004000 rw-p 00000000 00:00 0\n"
               "VmFlags: rd\n")
    assert parse_smaps_vmflags(hostile) == [
        (0x7f0000000000, 0x7f0000001000, frozenset({"rd", "mr", "mw", "me"})),
        (0x7f0000002000, 0x7f0000003000, frozenset({"rd", "wr", "mr", "mw", "me", "gd"}))]
    assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", stack.split()[0])


def test_one_word_splitter_two_kinds_of_command_line():
    """common.args.split_words is the one splitter of got/plt (names) and the kernel commands
    (gdb expressions); the two kinds share blank and backslash rules and differ only in what
    quotes and brackets do.  Expected words are written from gdb's own rules: a whole quoted
    word loses its quotes (gdb.string_to_argv), ``\\ `` is an escaped blank, and a name as
    common.names.escape_name prints it (``ev\\xe9il``) comes back as printed."""
    from gdb_toolkit.common.args import split_expression_words, split_name_words, split_words

    shared = {
        r"/tmp/my\ core -n 3": ["/tmp/my core", "-n", "3"],
        r"ev\xe9il q\\te": [r"ev\xe9il", r"q\\te"],
        "'a b' \"c d\"": ["a b", "c d"],
        r"it\'s": ["it's"],
        r"'a\'b'": ["a'b"],
        "  x\t y  ": ["x", "y"],
        "''": [""],
        "trail\\": ["trail\\"],
    }
    for line, words in shared.items():
        assert split_name_words(line) == words, line
        assert split_expression_words(line) == words, line
    differ = {                          # line: (names, expressions)
        "a'b c'd": (["ab cd"], ["a'b c'd"]),
        "f(a, b) 4": (["f(a,", "b)", "4"], ["f(a, b)", "4"]),
        '$ksym("vfs_write")+5 8': (["$ksym(vfs_write)+5", "8"], ['$ksym("vfs_write")+5', "8"]),
        "x[1 ] ]y": (["x[1", "]", "]y"], ["x[1 ]", "]y"]),
    }
    for line, (names, exprs) in differ.items():
        assert split_name_words(line) == split_words(line) == names, line
        assert split_expression_words(line) == split_words(line, expressions=True) == exprs, line


def test_deps_find_spec_answers_as_importlib_util_does():
    """deps.find_spec (importlib's frozen _find_spec, ~0.3 ms less than importing importlib.util)
    must find what importlib.util.find_spec finds, loaded or not, present or not.  Each name is
    asked in a fresh interpreter so neither answer comes from a module the other imported."""
    import subprocess
    import sys
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[2])
    probe = ("import sys\nsys.path.insert(0, sys.argv[2])\nimport importlib.util\n"
             "from gdb_toolkit.common.deps import find_spec\n"
             "name = sys.argv[1]\n"
             "mine = find_spec(name)\n"
             "theirs = importlib.util.find_spec(name)\n"
             "print(repr(mine and (mine.name, mine.origin)) == repr(theirs and (theirs.name, theirs.origin)))\n")
    for name in ("capstone", "elftools", "elftools.elf.elffile", "tabulate", "os", "sys", "json",
                 "gdb_toolkit_no_such_module"):
        out = subprocess.run([sys.executable, "-I", "-c", probe, name, root], capture_output=True,
                             text=True, timeout=60)
        assert out.stdout.strip() == "True", (name, out.stdout, out.stderr)
