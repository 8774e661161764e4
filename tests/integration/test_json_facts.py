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


def _commands() -> dict[str, list[tuple[str, str]]]:
    """{command: [(option, metavar)]} from each command's --help (its options sections)."""
    names = [c["name"] for c in gdb_json([], "toolkit commands")["commands"]]
    cmds = []
    for name in names:
        cmds += [f"echo @@HELP {name}@@\\n", f"{name} --help"]
    res = run_gdb(cmds)
    assert_no_traceback(res)
    parts = re.split(r"^@@HELP (.+?)@@$", res.stdout, flags=re.M)
    helps = dict(zip(parts[1::2], parts[2::2]))
    assert sorted(helps) == sorted(names), res.output[-2000:]
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


def test_every_option_given_an_empty_value_is_a_usage_error():
    """`ktypes --btf ''` loaded the running kernel's BTF and `got --diff ''` compared with the
    previous run: '' read as "not given".  Every value-taking option of every command, given ''
    (and `--opt=`), is now a usage error naming the option, as one document."""
    commands = _commands()
    lines = []
    for name, opts in sorted(commands.items()):
        for opt, _ in opts:
            lines += [_line(name, f"{opt} ''"), _line(name, f"{opt}=")]
    assert len(lines) >= 40, commands           # the usage lines name the options
    chunks, stderr = _documents(lines)
    problems = []
    for line, chunk in zip(lines, chunks):
        try:
            doc = json.loads(chunk)
        except ValueError:
            problems.append(f"{line}: not one document: {chunk[:200]!r}")
            continue
        opt = re.search(r"(--[\w-]+)(=| '')", line).group(1)
        err = doc.get("error") or {}
        if doc["ok"] or err.get("kind") != "usage" or f"{opt} was given an empty value" not in err["message"]:
            problems.append(f"{line}: {err or doc['result']}")
        elif validate_document(doc):
            problems.append(f"{line}: {validate_document(doc)[:2]}")
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
    for line, chunk in zip(lines, chunks):
        try:
            doc = json.loads(chunk)
        except ValueError:
            problems.append(f"{line}: not one document: {chunk[:200]!r}")
            continue
        if validate_document(doc):
            problems.append(f"{line}: {validate_document(doc)[:2]}")
            continue
        if doc["ok"]:
            problems.append(f"{line}: ok without a program or with a missing file")
            continue
        err = doc["error"]
        if err["kind"] == "usage":
            if not err.get("usage", "").startswith("usage: "):
                problems.append(f"{line}: a usage error without its usage line: {err}")
        elif not (err["cause"] and err["fix"]):
            problems.append(f"{line}: an error without its cause and fix: {err}")
        if err["message"].split(". Fix:")[0] not in stderr:
            problems.append(f"{line}: the gdb error was not raised for {err['message']!r}")
    assert not problems, problems
