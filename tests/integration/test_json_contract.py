"""One JSON contract (issue 14): every registered command's real ``--json`` output,
produced by real gdb on real programs, validated by the jsonschema package against
the envelope and the command's own schema shipped in gdb_toolkit/schemas/.

Commands are run in a few gdb sessions that give each a real subject (a running
program, a crashed one, a valgrind, this machine's kernel).  A command may fail
where this machine lacks what it needs (no /proc/kcore here): its error envelope is
validated then, and the commands that must succeed on any machine set up by
scripts/setup.sh are listed in MUST_SUCCEED.

PENDING_RESULT_SCHEMAS lists the commands whose owners have not shipped a result
schema yet: only their envelope is checked.  It may only shrink: a test fails when
a listed command has a schema file (remove it from the list then).
"""
import os
import re

import pytest

from gdb_toolkit.common.schemas import has_schema, schema_file, validate_document
from tests.support.gdbrun import REPO, assert_no_traceback, compile_c, json_wrapped, run_gdb

pytestmark = [pytest.mark.gdb]
jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema: run scripts/setup.sh")

PENDING_RESULT_SCHEMAS: set[str] = set()

MUST_SUCCEED = {"toolkit commands", "toolkit doctor", "got", "plt", "plt-walk", "stack-diagnose",
                "vg-start", "vg-leaks", "vg-who", "vg-block", "vg-vbits", "vg-check", "vg-errors"}


ALL_DOCUMENTS: list[dict] = []


def _sessions(tmp: str) -> list[dict]:
    plt_prog = compile_c(REPO / "examples" / "plt" / "hello_calls.c", flags=["-g"])
    stack_prog = compile_c(REPO / "examples" / "stack" / "recurse.c", flags=["-g", "-O0"])
    vbits = compile_c(REPO / "examples" / "valgrind" / "vbits.c", flags=["-g", "-O0"])
    return [
        {"why": "no target", "program": None, "setup": [], "commands": [
            "toolkit commands", "toolkit doctor --quick",
            "ksym do_sys_openat2", "kcore", "kprobe-list", "kprobe-show do_sys_openat2",
            "kdis do_sys_openat2 4", "kx linux_banner 16", "ftrace-site vfs_read",
            "ktask 1 comm", "ktypes",
            "ktrace tracepoint:syscalls:sys_enter_getppid --all --count 1 --timeout 2",
            "vg-attach"]},
        {"why": "a running dynamically linked program", "program": plt_prog,
         "setup": ["start"], "commands": ["got", "plt", "plt-walk puts"]},
        {"why": "a program killed by deep recursion", "program": stack_prog,
         "setup": ["run > /dev/null"], "commands": ["stack-diagnose --all-threads", "stack-diagnose"]},
        {"why": "a program under valgrind", "program": None,
         "setup": [], "commands": [
             f"vg-start --main --stdout {tmp}/vg.out --log {tmp}/vg.log {vbits}",
             "@break checkpoint", "@continue > /dev/null",
             "vg-leaks", "vg-who g_buf", "vg-block 1", "vg-vbits g_buf 16",
             "vg-check g_buf 10 defined", "vg-errors", "vg-leaks --history", "vg-block g_buf",
             "vg-watch 0.5 --count 2"]},
    ]


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """{command name: envelope} from real gdb runs (the last document of each command; every
    document is kept in ALL_DOCUMENTS for the schema check)."""
    tmp = str(tmp_path_factory.mktemp("json"))
    found, outputs = {}, []
    ALL_DOCUMENTS.clear()
    for s in _sessions(tmp):
        cmds = list(s["setup"])
        for c in s["commands"]:
            cmds += [c[1:]] if c.startswith("@") else json_wrapped(c + " --json")
        res = run_gdb(cmds, program=s["program"], timeout=300)
        assert_no_traceback(res)
        outputs.append(res.output)
        for doc in res.envelopes():
            found[doc["command"]] = doc
            ALL_DOCUMENTS.append(doc)
    return found, "\n".join(outputs)


def registered() -> list[str]:
    from tests.support.gdbrun import gdb_json

    return [c["name"] for c in gdb_json([], "toolkit commands")["commands"]]


def test_every_registered_command_is_exercised(documents):
    found, output = documents
    missing = sorted(set(registered()) - set(found))
    assert not missing, f"no --json document from {missing}: add them to _sessions\n{output[-3000:]}"


def test_every_document_matches_its_schema(documents):
    found, _ = documents
    problems = {}
    for doc in ALL_DOCUMENTS:            # every document, also a command's second run
        name = doc["command"]
        errs = validate_document(doc, require_result_schema=name not in PENDING_RESULT_SCHEMAS)
        if errs:
            problems.setdefault(name, []).extend(errs)
    assert not problems, problems


def test_commands_that_must_work_here_succeeded(documents):
    found, _ = documents
    failed = {n: found[n]["error"] for n in MUST_SUCCEED if n in found and not found[n]["ok"]}
    assert not failed, failed
    if os.path.exists("/proc/kallsyms") and os.geteuid() == 0:
        assert found["ksym"]["ok"], found["ksym"]


def test_pending_list_only_shrinks():
    done = sorted(n for n in PENDING_RESULT_SCHEMAS if has_schema(n))
    assert not done, f"{done} have a schema now: remove them from PENDING_RESULT_SCHEMAS"
    for name in registered():
        if name not in PENDING_RESULT_SCHEMAS:
            assert has_schema(name), f"{name}: ship gdb_toolkit/schemas/{schema_file(name)}"


def test_errors_are_json_on_stdout_and_a_gdb_error():
    res = run_gdb([*json_wrapped("toolkit doctor --bogus --json"), "echo still-alive\\n"])
    (doc,) = res.envelopes()
    assert doc["ok"] is False and doc["result"] is None
    assert doc["error"]["kind"] == "usage" and doc["error"]["usage"].startswith("usage: toolkit doctor")
    assert validate_document(doc) == []
    assert "unrecognized arguments: --bogus" in res.stderr        # the gdb error is still raised
    assert "still-alive" in res.stdout


#: the common vocabulary (docs/json.md): keys that must not appear, and why
FORBIDDEN_KEYS = {
    "warnings": "notes", "messages": "notes", "assumptions": "notes",
    "valgrind_pid": "pid (the real pid)", "type": "kind / reloc_type / symbol_type",
}


#: a source position written as one string ("recurse.c:17"): scripts then parse it, and one
#: command's "where"/"source" is another's file + line
FILE_LINE = re.compile(r"^[^\s:]+\.[A-Za-z+]+:\d+$")


def vocabulary_problems(data, path="result") -> list[str]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            here = f"{path}.{k}"
            if k in FORBIDDEN_KEYS:
                out.append(f"{here}: use {FORBIDDEN_KEYS[k]}")
            if isinstance(v, str) and FILE_LINE.match(v) and not {"file", "line"} <= data.keys():
                out.append(f"{here}: the source position {v!r} also as 'file' and 'line' beside it")
            if k == "location" and v is not None and not isinstance(v, dict):
                out.append(f"{here}: a location is an object {{address, symbol, offset, file, line, object}}")
            if (k == "address" or k.endswith("_address")) and isinstance(v, int) and v >= 1 << 53:
                out.append(f"{here}: an address above 2**53 as a number (jq/JavaScript lose it): '0x...'")
            out += vocabulary_problems(v, here)
    elif isinstance(data, list):
        for i, v in enumerate(data[:50]):
            out += vocabulary_problems(v, f"{path}[{i}]")
    return out


#: commands whose results still use other words for the common facts (their owners convert them)
PENDING_VOCABULARY: set = set()


def test_every_result_has_notes(documents):
    """`notes` is the one place for human sentences (docs/json.md): a script reads
    `.result.notes[]` of any command.  vg-errors kept its remark only in the text, and
    toolkit doctor, kx and stack-diagnose --all-threads had no `notes`."""
    missing = sorted({d["command"] for d in ALL_DOCUMENTS
                      if d["ok"] and not isinstance(d["result"].get("notes"), list)})
    assert not missing, missing
    for name in [c for c in registered()]:
        from gdb_toolkit.common.schemas import schema_file
        import json

        schema = json.loads((REPO / "gdb_toolkit" / "schemas" / schema_file(name)).read_text())
        shapes = [schema] if "properties" in schema else [
            schema["$defs"][s["$ref"].split("/")[-1]] if "$ref" in s else s
            for s in schema.get("oneOf", []) + schema.get("anyOf", [])]
        for shape in shapes:
            assert "notes" in shape.get("required", []), (name, "its schema must require notes")


def test_results_use_the_common_vocabulary(documents):
    found, _ = documents
    problems = {name: sorted(set(re.sub(r"\[\d+\]", "[]", p) for p in vocabulary_problems(doc["result"])))
                for name, doc in found.items() if doc["ok"]}
    problems = {n: p for n, p in problems.items() if p}
    unexpected = {n: p for n, p in problems.items() if n not in PENDING_VOCABULARY}
    assert not unexpected, unexpected
    fixed = sorted(n for n in PENDING_VOCABULARY if n in found and found[n]["ok"] and n not in problems)
    assert not fixed, f"{fixed} use the vocabulary now: remove them from PENDING_VOCABULARY"
