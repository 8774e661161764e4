"""The JSON contract's error side, swept over every command with real gdb (issue 14): what a
script sends by mistake -- an option given '' as its value, a file that does not exist, no
process -- is answered with ONE envelope on stdout, ok=false, its error saying the cause and
(for a failure) the fix.  The options swept are the ones each command's documented usage lines
name (`toolkit commands --json`), not a list kept here.
"""
import json
import re

import pytest

from gdb_toolkit.common.schemas import validate_document
from tests.support.gdbrun import JSON_BEGIN, JSON_END, assert_no_traceback, gdb_json, json_wrapped, run_gdb

pytestmark = [pytest.mark.gdb]
pytest.importorskip("jsonschema", reason="python3-jsonschema: run scripts/setup.sh")

#: `  --btf PATH   BTF ...`, `  --diff [FILE]  changes ...`, `  -n N  ...`: an option taking a
#: value, as the options sections of a command's --help list it
VALUE_OPTION = re.compile(r"^  (?:-\w(?: [A-Z][A-Z_-]*)?, )?(--?[a-z][\w-]*) \[?([A-Z][A-Z_-]*)\]?(?:  |$)", re.M)
#: metavars naming a file to read or write
FILE_METAVARS = {"FILE", "PATH", "DEV"}


def _helps() -> dict[str, str]:
    """{command: its --help text}, every command, from one gdb."""
    names = [c["name"] for c in gdb_json([], "toolkit commands")["commands"]]
    cmds = []
    for name in names:
        cmds += [f"echo @@HELP {name}@@\\n", f"{name} --help"]
    res = run_gdb(cmds)
    assert_no_traceback(res)
    parts = re.split(r"^@@HELP (.+?)@@$", res.stdout, flags=re.M)
    helps = dict(zip(parts[1::2], parts[2::2]))
    assert sorted(helps) == sorted(names), res.output[-2000:]
    return helps


def _commands() -> dict[str, list[tuple[str, str]]]:
    """{command: [(option, metavar)]} from each command's --help (its options sections)."""
    helps = _helps()
    out = {}
    for name, text in helps.items():
        opts = []
        for opt, meta in VALUE_OPTION.findall(text):
            if (opt, meta) not in opts:
                opts.append((opt, meta))
        out[name] = opts
    return out


def _line(name: str, words: str) -> str:
    # vg-start: its own options come before PROGRAM
    return f"{name} --json {words} /bin/true" if name == "vg-start" else f"{name} {words} --json"


def _documents(lines: list[str]) -> tuple[list, str]:
    cmds = []
    for line in lines:
        cmds += json_wrapped(line)
    res = run_gdb(cmds, timeout=600)
    assert_no_traceback(res)
    chunks = re.findall(re.escape(JSON_BEGIN) + r"\n(.*?)" + re.escape(JSON_END), res.stdout, flags=re.S)
    assert len(chunks) == len(lines), res.output[-3000:]
    return chunks, res.stderr


def _parsed(lines: list[str], chunks: list[str], problems: list[str]):
    """(line, its JSON document) for each chunk that is one document; the others are problems."""
    for line, chunk in zip(lines, chunks):
        try:
            yield line, json.loads(chunk)
        except ValueError:
            problems.append(f"{line}: not one document: {chunk[:200]!r}")


def test_every_option_given_an_empty_value_is_a_usage_error():
    """`ktypes --btf ''` loaded the running kernel's BTF and `got --diff ''` compared with the
    previous run: '' read as "not given".  Every value-taking option of every command, given ''
    (and `--opt=`), is now a usage error naming the option, as one document, its fix naming the
    command's --help (a command's usage error had `fix: null`)."""
    commands = _commands()
    lines = []
    for name, opts in sorted(commands.items()):
        for opt, _ in opts:
            lines += [_line(name, f"{opt} ''"), _line(name, f"{opt}=")]
    assert len(lines) >= 40, commands           # the usage lines name the options
    # an optional positional naming a file, given '': `kcore ''` read /proc/kcore
    files = [n for n, text in _helps().items() if re.search(r"^  (path|file)  ", text, re.M)]
    assert "kcore" in files, files
    lines += [f"{n} '' --json" for n in files]
    chunks, stderr = _documents(lines)
    problems = []
    for line, doc in _parsed(lines, chunks, problems):
        opt = re.search(r"(--[\w-]+)(=| '')", line)
        said = f"{opt.group(1)} was given an empty value" if opt else "was given as ''"
        err = doc.get("error") or {}
        if doc["ok"] or err.get("kind") != "usage" or said not in err["message"]:
            problems.append(f"{line}: {err or doc['result']}")
        elif validate_document(doc):
            problems.append(f"{line}: {validate_document(doc)[:2]}")
        elif not err["fix"] or f"'{line.split(' --')[0].split(' ')[0]}" not in err["fix"]:
            problems.append(f"{line}: a usage error's fix names the command's --help: {err['fix']!r}")
        elif err["message"] not in stderr:
            problems.append(f"{line}: the gdb error was not raised")
    assert not problems, problems


def test_every_error_is_one_envelope_with_cause_and_fix():
    """Every command, with no program loaded, and every option naming a file given one that
    does not exist: one document each, ok=false, valid, its error a cause and a fix (a usage
    error: its usage line instead), and the same message raised as gdb's error."""
    commands = _commands()
    missing = "/nonexistent/jsonfacts-missing"
    lines = []
    for name, opts in sorted(commands.items()):
        if name.startswith("toolkit") or name in ("vg-attach", "vg-start", "ktypes", "kcore", "ktrace"):
            continue        # these succeed without a program (vg-start starts one)
        lines.append(_line(name, ""))
    for name, opts in sorted(commands.items()):
        for opt, meta in opts:
            if meta in FILE_METAVARS and not (name == "vg-start" and opt in ("--stdout", "--log")):
                lines.append(_line(name, f"{opt} {missing}"))   # vg-start creates those two
    chunks, stderr = _documents(lines)
    problems = []
    for line, doc in _parsed(lines, chunks, problems):
        if validate_document(doc):
            problems.append(f"{line}: {validate_document(doc)[:2]}")
            continue
        if doc["ok"]:
            problems.append(f"{line}: ok without a program or with a missing file")
            continue
        err = doc["error"]
        if err["kind"] == "usage" and not err.get("usage", "").startswith("usage: "):
            problems.append(f"{line}: a usage error without its usage line: {err}")
        if not (err["cause"] and err["fix"]):       # a usage error too: `.error.fix` is never null
            problems.append(f"{line}: an error without its cause and fix: {err}")
        if err["message"].split(". Fix:")[0] not in stderr:
            problems.append(f"{line}: the gdb error was not raised for {err['message']!r}")
    assert not problems, problems


def _docs_escape(raw: bytes) -> str:
    """docs/json.md's rule for a name, written out here (the oracle, not the toolkit's
    escape_name): a byte that is not UTF-8 or a control character is \\xNN, a backslash \\\\."""
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        if "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xdc00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def test_vg_attach_escapes_a_hostile_program_name_and_argument(tmp_path):
    """A valgrind running a program whose file name and argument hold a byte that is not UTF-8,
    ESC and a literal backslash sequence: vg-attach's JSON gives both in the one escaped
    convention of docs/json.md (as got, plt and stack-diagnose do), in the listing and the
    connection alike, and no string holds a raw control character."""
    import os
    import shutil
    import subprocess
    import time

    if not shutil.which("valgrind") or not shutil.which("vgdb"):
        pytest.skip("valgrind/vgdb not installed")
    name = b"p\\x41\xfe\x1b[2Jq"
    prog = os.path.join(os.fsencode(tmp_path), name)
    shutil.copy(shutil.which("sleep"), prog)
    arg = b"60\xff"             # sleep refuses it at once -- after gdb let it run, not before
    env = dict(os.environ, TMPDIR=str(tmp_path))
    vg = subprocess.Popen(["valgrind", "--vgdb=yes", "--vgdb-error=0", f"--log-file={tmp_path}/vg.log",
                           prog, arg], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(f.startswith(f"vgdb-pipe-from-vgdb-to-{vg.pid}-") for f in os.listdir(tmp_path)):
            assert time.monotonic() < deadline and vg.poll() is None, "valgrind did not open its FIFO"
            time.sleep(0.2)
        res = run_gdb([*json_wrapped("vg-attach --json"), "detach"], env={"TMPDIR": str(tmp_path)}, timeout=120)
        assert_no_traceback(res)
    finally:
        vg.kill()
        vg.wait()
    (doc,) = res.envelopes()
    assert doc["ok"] and validate_document(doc) == [], doc
    r = doc["result"]
    (p,) = [p for p in r["processes"] if p["pid"] == vg.pid]
    want_name, want_arg = _docs_escape(name), _docs_escape(arg)
    assert want_name == "p\\\\x41\\xfe\\x1b[2Jq" and want_arg == "60\\xff"
    assert r["connected"] and r["pid"] == vg.pid
    for program in (r["program"], p["program"]):
        assert program.endswith("/" + want_name), (program, want_name)
        assert program == _docs_escape(prog), program
    assert p["arguments"] == [want_arg], p
    raw = [s for s in json.dumps(doc, ensure_ascii=False) if s < " " and s not in "\n\t"]
    assert not raw and "\x1b" not in res.stdout.split("@@GTK-JSON-BEGIN@@")[1], raw


def test_long_help_under_json_is_a_document_for_every_command():
    """`NAME --help --json` (the long spelling; cmdaudit saw `got --help --json` print the prose
    help) and `tk NAME --help --json`: toolkit commands' document for NAME alone, every command."""
    names = [c["name"] for c in gdb_json([], "toolkit commands")["commands"]]
    lines = [f"{n} --help --json" for n in names] + [f"tk {n.removeprefix('toolkit ')} --json --help" for n in names]
    chunks, _ = _documents(lines)
    problems = []
    for line, doc in _parsed(lines, chunks, problems):
        want = line.split(" --")[0]
        want = want if not want.startswith("tk ") else next(n for n in names if n in (want[3:], "toolkit " + want[3:]))
        if not (doc["ok"] and doc["command"] == "toolkit commands" and validate_document(doc) == []
                and [c["name"] for c in doc["result"]["commands"]] == [want]):
            problems.append(f"{line}: {str(doc)[:200]}")
    assert not problems, problems
