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
from tests.unit.test_kernel_kprobes import KALLSYMS, build_kernel, kernel_types  # noqa: F401 (fixture)

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
         "setup": ["start"], "commands": [
             "got", "plt", "plt-walk puts", "got --audit --preview", "plt-walk puts --live", "got --diff",
             "plt-walk memcpy"]},
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


def _kernel_session(request, tmp_path_factory) -> list[dict]:
    """The kernel commands on a synthetic kernel core (tests/unit/test_kernel_kprobes.py: kprobes,
    an optimized one, BTF from gcc -gbtf), so their documents take part in the checks here:
    this machine has no /proc/kcore, and the guest tests only validate each against its schema.
    None when gcc cannot emit BTF (the schema check still covers them)."""
    try:
        types = request.getfixturevalue("kernel_types")
    except pytest.skip.Exception:
        return []
    tmp = tmp_path_factory.mktemp("kernel")
    core = build_kernel(tmp, types)
    (tmp / "kallsyms").write_text(KALLSYMS)
    src = f"--kcore {core} --kallsyms {tmp / 'kallsyms'}"
    btf = f"--btf {types[0].path}"
    return [{"why": "a synthetic kernel core", "program": None, "setup": [], "commands": [
        f"kcore {core} --kallsyms {tmp / 'kallsyms'}", f"kx vfs_write 16 {src}",
        f"kdis vfs_write 3 {src}", f"ksym vfs_write+2 {src}", f"ksym vfs_write {src}",
        f"kprobe-list {src} {btf}",
        f"kprobe-show vfs_write+2 {src} {btf}", f"ftrace-site vfs_write {src}"]}]


def _with_json(command: str) -> str:
    """*command* asking for JSON: vg-start's own options come before PROGRAM (every word after
    it is the program's, ``--json`` too), every other command takes ``--json`` anywhere."""
    if command.startswith("vg-start "):
        return "vg-start --json " + command[len("vg-start "):]
    return command + " --json"


@pytest.fixture(scope="module")
def documents(request, tmp_path_factory):
    """{command name: envelope} from real gdb runs (the last document of each command; every
    document is kept in ALL_DOCUMENTS for the schema check)."""
    tmp = str(tmp_path_factory.mktemp("json"))
    found, outputs = {}, []
    ALL_DOCUMENTS.clear()
    for s in _sessions(tmp) + _kernel_session(request, tmp_path_factory):
        cmds = list(s["setup"])
        for c in s["commands"]:
            cmds += [c[1:]] if c.startswith("@") else json_wrapped(_with_json(c))
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


def test_ksym_says_where_an_address_falls_as_a_location(documents):
    """ksym's match: `address` is the symbol's start, `location` where the query falls (its
    offset from the start): the synthetic kernel's kallsyms file is the oracle.  Version 4 had
    `offset` beside the start `address`, a location-looking object whose address was not the
    position."""
    docs = {d["result"]["query"]: d["result"] for d in ALL_DOCUMENTS if d["command"] == "ksym" and d["ok"]}
    if "vfs_write+2" not in docs:
        pytest.skip("no synthetic kernel here (gcc without -gbtf)")
    start = next(int(a, 16) for a, _, n in (line.split() for line in KALLSYMS.splitlines() if line.strip())
                 if n == "vfs_write")
    for query, off in (("vfs_write+2", 2), ("vfs_write", 0)):
        (m,) = docs[query]["matches"]
        assert int(m["address"], 16) == start and "offset" not in m, m
        assert m["location"] == {"address": f"0x{start + off:x}", "symbol": "vfs_write", "offset": off,
                                 "file": None, "line": None, "object": "vmlinux"}, m


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
    "slot_type": "kind (JUMP_SLOT) + reloc_type (R_X86_64_JUMP_SLOT), as got says them",
    # schema version 4: one key for each of these facts
    "frame_no": "level (a frame's number, gdb/MI's word; frame_level beside frame_function)",
    "frame_num": "level", "frame_number": "level",
    "hits": "hit_count (a count)", "misses": "miss_count (a count)",
    "module": "object (the module or vmlinux, as a location's object)",
    # counts end in _count (found after the first version-4 round; version 4 had not shipped)
    "found": "found_count (a count)", "shown": "shown_count (a count)",
    "rounds": "round_count (a count)", "records_total": "record_count (a count)",
    "records_matched": "matched_record_count (a count)",
    "ok": "the envelope's boolean only; a verdict has its own key (vg-check's passed)",
    # schema version 5
    "unchanged": "unchanged_count (a count)",
}

#: plural words that are units, not things counted: an integer under them is an amount
#: (`definite_bytes`, `armed_seconds`, vg-vbits' `vbits`), not a count needing `_count`
UNIT_PLURALS = ("bytes", "blocks", "bits", "seconds", "ns", "us", "ms")


def integer_key_problem(key: str) -> str | None:
    """The name rules for a key holding an integer (docs/json.md, the common vocabulary):
    a count ends in `_count` -- an integer under a plural noun (`refs`, `writes`,
    `snapshots`, `sampled_frames`, `growth_calls`) is one; a bare thread number is
    `thread_num`, a frame's `level`.  Shared by the document and the schema checks."""
    last = key.rsplit("_", 1)[-1]
    if last.endswith("s") and not last.endswith(("ss", *UNIT_PLURALS)) and not key.endswith("_count"):
        return f"an integer under the plural {key!r} is a count: '{key.removesuffix('s')}_count'"
    if key == "thread" or key.endswith("_thread"):
        return f"a bare thread number under {key!r}: '{key}_num' (as thread_num)"
    if key == "frame":
        return "a frame's number is 'level'"
    return None

#: relocation kinds as got's `kind` says them; a string equal to one under another key is the
#: same fact under a second name (plt-walk said `slot_type`)
RELOC_KINDS = {"JUMP_SLOT", "GLOB_DAT", "IRELATIVE", "TLSDESC", "TLS_TPOFF", "TLS_DTPMOD", "TLS_DTPOFF",
               "COPY", "RELATIVE", "ABS"}
#: a state is a word or two (resolved, bound-at-load, partly defined, int3): never a sentence
STATE_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9/-]*( [A-Za-z][A-Za-z0-9/-]*)?$")
#: "main+49", "vfs_write+0x2", "ext4_file_open+0x0 [ext4]": a code position written as text;
#: it is a location object
SYMBOL_OFFSET = re.compile(r"^[A-Za-z_.$][\w.$@]*\+(0x[0-9a-f]+|\d+)( \[[\w.-]+\])?$")
#: "bpf_prog_6deef7357e7b4530_trace [bpf]": a symbol with its kernel module, as text
SYMBOL_MODULE = re.compile(r"^[A-Za-z_.$][\w.$@]* \[[\w.-]+\]$")
#: "mm->mmap_base", "signal->rlim[3].rlim_cur": a C member path (never a file's)
MEMBER_PATH = re.compile(r"^[A-Za-z_]\w*(->|\[\d+\])")
#: integers that are quantities, not addresses or words of memory, whatever their size
QUANTITY = re.compile(r"(^|_)(size|sizes|bytes|count|ns|us|ms|time|offset|line|pid|tid|id|ino|inode|"
                      r"limit|rlimit|total|records|blocks|depth|frames|distance|free|used|kb|pages)$")


#: a source position written as one string ("recurse.c:17"): scripts then parse it, and one
#: command's "where"/"source" is another's file + line
FILE_LINE = re.compile(r"^[^\s:]+\.[A-Za-z+]+:\d+$")


def keyed_values(data, path="result"):
    """(path, key, value, the dict holding it) for every key at any depth (lists: their
    first 50 items): what the vocabulary checks below walk."""
    if isinstance(data, dict):
        for k, v in data.items():
            here = f"{path}.{k}"
            yield here, k, v, data
            yield from keyed_values(v, here)
    elif isinstance(data, list):
        for i, v in enumerate(data[:50]):
            yield from keyed_values(v, f"{path}[{i}]")


def vocabulary_problems(data, path="result") -> list[str]:
    out = []
    for here, k, v, holder in keyed_values(data, path):
        if k in FORBIDDEN_KEYS:
            out.append(f"{here}: use {FORBIDDEN_KEYS[k]}")
        if isinstance(v, str) and FILE_LINE.match(v) and not {"file", "line"} <= holder.keys():
            out.append(f"{here}: the source position {v!r} also as 'file' and 'line' beside it")
        if k == "location" and v is not None and not isinstance(v, dict):
            out.append(f"{here}: a location is an object {{address, symbol, offset, file, line, object}}")
        if isinstance(v, str) and k != "query" and (SYMBOL_OFFSET.match(v) or   # query: the user's words
                                   ((k == "symbol" or k.endswith("_symbol")) and SYMBOL_MODULE.match(v))):
            out.append(f"{here}: the position {v!r} as text: a location object {{address, symbol, offset, ...}}")
        if k == "path" and ("c_type" in holder or (isinstance(v, str) and MEMBER_PATH.search(v))):
            out.append(f"{here}: 'path' is a file path; a struct member's path is 'member_path'")
        if k.endswith("handler") and isinstance(v, str):
            out.append(f"{here}: a handler is code: '{k}_location' (a location object), not text")
        if isinstance(v, int) and not isinstance(v, bool) and k not in FORBIDDEN_KEYS and integer_key_problem(k):
            out.append(f"{here}: {integer_key_problem(k)}")
        if k == "offset" and {"address", "symbol"} <= holder.keys() and \
                not {"file", "line", "object"} <= holder.keys():
            out.append(f"{here}: a position as loose keys (address, symbol, offset): a location "
                       "object {address, symbol, offset, file, line, object} under 'location'")
        if k == "frame_level" and "frame_function" not in holder:
            out.append(f"{here}: a frame's number is 'level' (frame_level only in a location "
                       "beside frame_function: the frame holding it)")
        if k in ("args", "captured") and isinstance(v, dict) and any(
                not isinstance(x, int) and x is not None for x in v.values()):
            out.append(f"{here}: traced values are numbers (null when inexact); the words are '{k}_words'")
        if k.endswith("_words") and isinstance(v, dict) and any(
                x is not None and not (isinstance(x, str) and x.startswith("0x")) for x in v.values()):
            out.append(f"{here}: words are '0x...' strings")
        if k == "where" and isinstance(v, str) and not re.fullmatch(r"[a-z]+", v):
            out.append(f"{here}: a position as text ({v!r}): a location object")
        if k != "kind" and isinstance(v, str) and v in RELOC_KINDS:
            out.append(f"{here}: the relocation kind {v!r} is 'kind' (got's key)")
        if k != "reloc_type" and isinstance(v, str) and re.fullmatch(r"R_[A-Z0-9]+_[A-Z0-9_]+", v):
            out.append(f"{here}: the relocation name {v!r} is 'reloc_type' (got's key)")
        if k == "state" and isinstance(v, str) and not STATE_WORD.match(v):
            out.append(f"{here}: a state is a word, not {v!r} (the sentence goes under another key)")
        if (k == "address" or k.endswith("_address")) and isinstance(v, int) and v >= 1 << 53:
            out.append(f"{here}: an address above 2**53 as a number (jq/JavaScript lose it): '0x...'")
    return out


def hex_problems(data, path="result") -> list[str]:
    """Integers of address size (2**32 and above) that are not quantities: an address or a
    word of memory (a slot's value, a load bias) printed as a number in a command whose
    addresses are "0x..." strings (docs/json.md)."""
    out = []
    for here, k, v, _ in keyed_values(data, path):
        if QUANTITY.search(k):
            continue
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1 << 32:
            out.append(f"{here}: an address or word of memory as a number: '0x...'")
        elif isinstance(v, list) and any(isinstance(x, int) and not isinstance(x, bool) and x >= 1 << 32
                                         for x in v):
            out.append(f"{here}: addresses or words of memory as numbers: '0x...'")
    return out


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
    problems: dict[str, list[str]] = {}
    for doc in ALL_DOCUMENTS:       # every document: got --audit/--diff, plt-walk --live too
        if doc["ok"]:
            found_here = vocabulary_problems(doc["result"]) + hex_problems(doc["result"])
            problems.setdefault(doc["command"], []).extend(re.sub(r"\[\d+\]", "[]", p) for p in found_here)
    problems = {n: sorted(set(p)) for n, p in problems.items() if p}
    assert not problems, problems
    # every vg-* result names the valgrind it asked (vg-who, vg-check, vg-vbits did not); a
    # vg-attach that only lists the valgrinds running here (other users' too) asked none
    nopid = sorted({d["command"] for d in ALL_DOCUMENTS if d["ok"] and d["command"].startswith("vg-")
                    and not isinstance(d["result"].get("pid"), int)
                    and d["result"].get("connected") is not False})
    assert not nopid, f"{nopid}: the valgrind pid under 'pid'"


def test_vocabulary_rules_catch_the_version_3_spellings():
    """The rules above fail on what version 3 printed (so a regression fails the suite)."""
    v3 = {
        "kdis": {"symbol": "vfs_write+0x2", "insns": [{"target_symbol": "kprobe_optinsn_page+0x7c [__builtin__kprobes]"}]},
        "kprobe-list": {"probes": [{"symbol": "ext4_file_open+0x0 [ext4]", "hits": 3, "misses": 0,
                                    "bpf": [{"bpf_func_symbol": "bpf_prog_6deef7357e7b4530_trace [bpf]"}]}]},
        "ksym": {"matches": [{"symbol": "ext4_file_open", "module": "ext4"}]},
        "vg-who": {"pointers": [{"location": {"frame_no": 1, "frame_function": "main"}}]},
        "stack-diagnose": {"culprit": {"frame_level": 1}, "signal_handler": {"frame": 2}},
        "ktrace": {"events": [{"args": {"buf": "0xffff888003a1c000", "count": 4}, "arg_words": {"count": 4}}]},
        # found after the first version-4 round, renamed inside version 4 (not shipped yet)
        "ktask": {"fields": [{"path": "comm", "c_type": "char[16]"}, {"path": "mm->get_unmapped_area"}]},
        "kprobe-show": {"probes": [{"handler": "my_pre [mymod]", "post_handler": None,
                                    "ret_handler": "kretprobe_dispatcher"}]},
        "ftrace-site": {"enabled": {"trampoline_address": "0xffffffffc02c3000",
                                    "handler": "kprobe_ftrace_handler+0x0/0x1b0"}},
        "vg-errors": {"counts": {"found": 1, "shown": 1, "vgdb_error": 0}},
        "vg-leaks": {"records_total": 7, "records_matched": 2},
        "stack-diagnose-recursion": {"recursion": {"rounds": 3}},
        "vg-check": {"check": "defined", "ok": False},
    }
    found = {name: vocabulary_problems(doc) for name, doc in v3.items()}
    assert all(found.values()), found
    assert len(found["kprobe-list"]) == 4 and len(found["stack-diagnose"]) == 2, found
    assert len(found["ktrace"]) == 2 and len(found["kdis"]) == 2, found
    assert len(found["ktask"]) == 2 and len(found["kprobe-show"]) == 2, found
    assert len(found["vg-errors"]) == 2 and len(found["vg-leaks"]) == 2, found
    v4 = {"location": {"address": 1, "symbol": "vfs_write", "offset": 2, "file": None, "line": None,
                       "object": "vmlinux"}, "hit_count": 3, "level": 1,
          "pointers": [{"location": {"frame_level": 1, "frame_function": "main"}}],
          "args": {"buf": None, "count": 4}, "arg_words": {"buf": "0xffff888003a1c000", "count": "0x4"},
          "objects": [{"path": "/usr/lib/x86_64-linux-gnu/libc.so.6"}, {"path": "linux-vdso.so.1"}],
          "fields": [{"member_path": "mm->get_unmapped_area", "c_type": "unsigned long (*)(...)",
                      "target_location": None}],
          "probes": [{"handler_location": None, "post_handler_location": None}],
          "counts": {"found_count": 1, "shown_count": 1, "vgdb_error": 0}, "record_count": 7,
          "matched_record_count": 2, "recursion": {"round_count": 3}, "passed": False}
    assert vocabulary_problems(v4) == []


def json_type(value) -> str:
    """The JSON type a Python value is printed as (integers and floats are both numbers)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def key_types(data, command: str, seen: dict) -> dict:
    """{key: {json type: {commands}}} for every key at any depth of `data` (null aside: an
    unknown value may be null under any key)."""
    if isinstance(data, dict):
        for k, v in data.items():
            if v is not None:
                seen.setdefault(k, {}).setdefault(json_type(v), set()).add(command)
            key_types(v, command, seen)
    elif isinstance(data, list):
        for v in data:
            key_types(v, command, seen)
    return seen


# Schema version 3 renamed the last keys that had two types (docs/json.md, "Versions"): there is
# no allow-list any more, a key given a second type anywhere fails the two tests below.


def key_type_conflicts(documents: list[dict]) -> dict[str, dict[str, list[str]]]:
    """Keys printed with more than one JSON type across all documents (whole envelopes: the
    error object's keys count too): {key: {type: [commands]}}."""
    seen: dict = {}
    for doc in documents:
        key_types(doc, doc["command"], seen)
    return {k: {t: sorted(c) for t, c in sorted(types.items())}
            for k, types in sorted(seen.items()) if len(types) > 1}


def test_key_type_conflicts_are_found():
    docs = [{"command": "a", "result": {"record": 3, "fix": "run it", "n": None}},
            {"command": "b", "result": {"x": [{"record": {"id": 1}}], "n": 2},
             "error": {"fix": "again"}}]
    assert key_type_conflicts(docs) == {"record": {"number": ["a"], "object": ["b"]}}


def test_a_key_has_one_json_type_in_every_command(documents):
    """The same fact has the same key in every command (docs/json.md), so one key has one
    type: a script reading `.size` or `.fix` must not meet a number in one command and a
    list or object in another."""
    conflicts = key_type_conflicts(ALL_DOCUMENTS)
    assert not conflicts, "keys with two JSON types: " + "; ".join(
        f"{k}: " + ", ".join(f"{t} in {cmds}" for t, cmds in v.items()) for k, v in conflicts.items())


def schema_key_types(base=REPO / "gdb_toolkit" / "schemas") -> dict[str, dict[str, set]]:
    """{key: {json type: {schema files}}} for every property of every schema in *base*, from
    its declared type ($ref followed; enum/const by their values; oneOf/anyOf united; null
    aside).  Catches what the documents cannot: commands that fail on this machine."""
    import json

    cache: dict = {}

    def load(name):
        if name not in cache:
            cache[name] = json.loads((base / name).read_text())
        return cache[name]

    def types_of(s, doc, depth=0):
        if not isinstance(s, dict) or depth > 20:
            return None
        if "$ref" in s:
            name, _, frag = s["$ref"].partition("#")
            target = root = load(name) if name else doc
            for part in [p for p in frag.split("/") if p]:
                target = target[part]
            return types_of(target, root, depth + 1)
        if "type" in s:
            t = s["type"] if isinstance(s["type"], list) else [s["type"]]
            return {"number" if x == "integer" else x for x in t if x != "null"}
        if "enum" in s or "const" in s:
            return {json_type(v) for v in s.get("enum", [s.get("const")]) if v is not None}
        for key in ("oneOf", "anyOf"):
            if key in s:
                out = set()
                for branch in s[key]:
                    t = types_of(branch, doc, depth + 1)
                    if t is None:
                        return None
                    out |= t
                return out
        return None

    seen: dict = {}

    def walk(node, doc, name):
        if isinstance(node, dict):
            for k, v in (node.get("properties") or {}).items():
                for t in types_of(v, doc) or ():
                    seen.setdefault(k, {}).setdefault(t, set()).add(name)
            for v in node.values():
                walk(v, doc, name)
        elif isinstance(node, list):
            for v in node:
                walk(v, doc, name)

    for path in sorted(base.glob("*.schema.json")):
        walk(load(path.name), load(path.name), path.name.removesuffix(".schema.json"))
    return seen


def schema_key_conflicts(base=REPO / "gdb_toolkit" / "schemas") -> dict:
    return {k: {t: sorted(c) for t, c in v.items()} for k, v in schema_key_types(base).items()
            if len(v) > 1}


def test_schemas_give_a_key_one_json_type():
    """Kernel commands cannot run here (no /proc/kcore): their schemas stand for their documents
    (the guest tests validate the real ones against them)."""
    conflicts = schema_key_conflicts()
    assert not conflicts, conflicts


def schema_name_problems(base=REPO / "gdb_toolkit" / "schemas") -> dict[str, list[str]]:
    """The name rules of the vocabulary (integer_key_problem, FORBIDDEN_KEYS) applied to every
    property the shipped schemas declare: the kernel commands' keys too, which only the guest
    prints.  {key: [schema files]}."""
    out: dict = {}
    for key, types in schema_key_types(base).items():
        files = sorted(set().union(*types.values()) - {"envelope"})    # the envelope's own `ok`
        why = FORBIDDEN_KEYS.get(key) or (integer_key_problem(key) if "number" in types else None)
        if why and files:
            out[f"{key}: {why}"] = files
    return out


def test_schemas_follow_the_key_name_rules():
    problems = schema_name_problems()
    assert not problems, problems


def test_key_name_rules_catch_the_version_4_counts(tmp_path):
    """What version 4 printed fails the rules (documents and schemas), what version 5 prints
    passes: counts without `_count`, a bare thread number, ksym's position as loose keys."""
    import json

    v4 = {
        "ftrace-site": {"enabled": {"refs": 1, "flags": ["R"], "text": "vfs_read (1) R"}},
        "plt-walk": {"live": {"writes": 2}},
        "vg-watch": {"snapshots": 4},
        "stack-diagnose": {"recursion": {"sampled_frames": 40, "round_count": None},
                           "kernel": {"growth_calls": 3},
                           "damaged_threads": [{"num": 2, "by_thread": 1, "frames_covered": True}]},
        "got": {"diff": {"unchanged": 7}},
        "ksym": {"matches": [{"symbol": "vfs_write", "address": "0xffffffff81000000", "offset": 2,
                              "object": "vmlinux"}]},
    }
    found = {name: vocabulary_problems(doc) for name, doc in v4.items()}
    assert all(len(p) == 1 for n, p in found.items() if n != "stack-diagnose"), found
    assert len(found["stack-diagnose"]) == 3, found
    v5 = {"enabled": {"ref_count": 1}, "live": {"write_count": 2}, "snapshot_count": 4,
          "recursion": {"sampled_frame_count": 40}, "kernel": {"growth_call_count": 3},
          "damaged_threads": [{"num": 2, "by_thread_num": 1, "frames_covered": True}],
          "diff": {"unchanged_count": 7}, "definite_bytes": 3, "armed_seconds": 2, "vbits": 255,
          "matches": [{"symbol": "vfs_write", "address": "0xffffffff81000000", "object": "vmlinux",
                       "location": {"address": "0xffffffff81000002", "symbol": "vfs_write", "offset": 2,
                                    "file": None, "line": None, "object": "vmlinux"}}]}
    assert vocabulary_problems(v5) == []
    # the schema side sees the same names
    (tmp_path / "a.schema.json").write_text(json.dumps({"type": "object", "properties": {
        "refs": {"type": "integer"}, "by_thread": {"type": ["integer", "null"]},
        "snapshot_count": {"type": "integer"}, "bytes": {"type": "integer"},
        "flags": {"type": "array"}}}))
    assert sorted(k.split(":")[0] for k in schema_name_problems(tmp_path)) == ["by_thread", "refs"]


def test_help_under_json_is_one_document():
    """`NAME -h --json` prints one document, as every --json does: toolkit commands' listing
    of NAME alone (its usage lines, examples, schema), valid against toolkit-commands'
    schema; the prose help is not printed.  Checked against the command table's metadata."""
    from gdb_toolkit.gdbsupport.command_table import ENTRIES

    res = run_gdb([*json_wrapped("got -h --json"), *json_wrapped("toolkit doctor --help --json"),
                   *json_wrapped("tk vg-start --help --json")])
    assert_no_traceback(res)
    docs = res.envelopes()
    assert len(docs) == 3, res.output
    for doc, name in zip(docs, ("got", "toolkit doctor", "vg-start")):
        assert doc["ok"] and doc["command"] == "toolkit commands" and validate_document(doc) == []
        (entry,) = doc["result"]["commands"]
        table = next(e for e in ENTRIES if e[1] == name)
        assert entry["name"] == name and entry["usage_lines"] == table[-1]["usage_lines"], (entry, table)
        assert entry["schema"] == schema_file(name) and doc["result"]["functions"] == []
    assert "Usage:" not in res.stdout


def test_schema_key_conflicts_are_found(tmp_path):
    """The schema walk sees a second type through a $ref into another file, an enum and an
    anyOf (null aside), inside items and $defs."""
    import json

    (tmp_path / "common.schema.json").write_text(json.dumps({"$defs": {"word": {"type": "string"}}}))
    (tmp_path / "a.schema.json").write_text(json.dumps({"type": "object", "properties": {
        "value": {"$ref": "common.schema.json#/$defs/word"},
        "rows": {"type": "array", "items": {"$ref": "#/$defs/row"}}},
        "$defs": {"row": {"type": "object", "properties": {"flags": {"enum": ["R", "I"]}}}}}))
    (tmp_path / "b.schema.json").write_text(json.dumps({"type": "object", "properties": {
        "value": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "flags": {"type": "array"}, "same": {"type": ["string", "null"]}}}))
    assert schema_key_conflicts(tmp_path) == {"value": {"number": ["b"], "string": ["a"]},
                                              "flags": {"array": ["b"], "string": ["a"]}}


def _strings(data):
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield k
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)


#: a string in a document may hold a newline or a tab (help and prose lines), never another
#: control character or an undecodable byte: a name is escaped where a command reads it
#: (docs/json.md "Names"), so a raw one means a name slipped through unescaped
_RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def test_no_document_string_holds_a_raw_control_character(documents):
    """Every document of every command (the sessions above): no string holds ESC, CR, another C0
    control, DEL or a lone surrogate.  Hostile names themselves: test_names_roundtrip.py (got,
    plt, plt-walk, ksym, kdis) and the test below (paths and thread names)."""
    bad = [(doc["command"], s) for doc in ALL_DOCUMENTS for s in _strings(doc) if _RAW.search(s)]
    assert not bad, bad[:5]


def test_names_are_escaped_the_same_way_in_every_command(tmp_path):
    """A name that holds a literal backslash sequence and a byte that is not UTF-8 reads the
    same in every command's JSON (docs/json.md, "Names"): `\\\\` for the backslash, `\\xNN` for
    the byte -- so `\\x41` typed in a name and the byte 0x41 never give one string.  The
    program's path (with a byte that is not UTF-8), its object name and its thread name (comm,
    valid UTF-8 with a backslash) are all of it.  stack-diagnose's thread name kept a literal
    backslash as it was (the JSON layer escapes only strings with undecodable bytes): a comm
    typed `p\\x41r` and one holding the byte 0x41 read the same."""
    import shutil

    hello = compile_c(REPO / "examples" / "plt" / "hello_calls.c", flags=["-g"])
    rec = compile_c(REPO / "examples" / "stack" / "recurse.c", flags=["-g", "-O0"])
    d = os.path.join(os.fsencode(tmp_path), b"d\\x41\xff")
    os.mkdir(d)
    progs = {}
    for name, src in (("hello", hello), ("rec", rec)):
        dst = os.path.join(d, b"p\\x41" + name[0].encode())   # comm p\x41h: valid UTF-8, a backslash
        shutil.copy(src, dst)
        progs[name] = os.fsdecode(dst)
    #: the oracle, written out: backslash doubled, the byte as \xfe / \xff
    dir_text, stem = "d\\\\x41\\xff", "p\\\\x41"
    pre = ["set startup-with-shell off"]        # the shell would eat the backslash
    runs = [
        (progs["hello"], ["start"], ["got", "plt", "plt-walk puts", "got --all-objects"]),
        (progs["rec"], ["run"], ["stack-diagnose", "stack-diagnose --all-threads"]),
    ]
    seen = []
    for prog, setup, cmds in runs:
        lines = list(setup)
        for c in cmds:
            lines += json_wrapped(c + " --json")
        res = run_gdb(lines, program=prog, pre=pre, timeout=300)
        assert_no_traceback(res)
        docs = res.envelopes()
        assert len(docs) == len(cmds), res.output
        for doc in docs:
            assert doc["ok"], doc
            for s in _strings(doc["result"]):
                if "x41" in s:
                    seen.append((doc["command"], s))
                    assert stem in s and (dir_text in s or "d\\x41" not in s), (doc["command"], s)
                    assert "p\\\\x41h" in s or "p\\\\x41r" in s, (doc["command"], s)
    cmds_seen = {c for c, _ in seen}
    assert cmds_seen == {"got", "plt", "plt-walk", "stack-diagnose"}, seen


def open_objects(base=REPO / "gdb_toolkit" / "schemas") -> list[str]:
    """Schema objects that let an unknown key through: one with `properties` and no
    `"additionalProperties": false`, or an object without properties that is not a map
    (`additionalProperties` a schema for its values: ktrace's args, kcore's vmcoreinfo).  Only
    the envelope's `result` is open: the command's own schema checks it."""
    import json

    out = []

    def walk(node, where):
        if isinstance(node, dict):
            t = node.get("type")
            is_object = t == "object" or (isinstance(t, list) and "object" in t)
            if "properties" in node and node.get("additionalProperties") is not False:
                out.append(f"{where}: additionalProperties is not false")
            elif is_object and "properties" not in node and not isinstance(node.get("additionalProperties"), dict):
                out.append(f"{where}: an object of any keys")
            for k, v in node.items():
                if k not in ("if", "then", "else"):    # conditions on an object defined beside them
                    walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    for path in sorted(base.glob("*.schema.json")):
        walk(json.loads(path.read_text()), path.name)
    return out


def test_schemas_have_no_open_objects():
    """A key a schema does not know fails validation (a misspelt or renamed key is caught by the
    tests that validate every real document): the location object, the envelope and its error
    object, got's tls/audit, vg-leaks/vg-watch total_series and stack-diagnose's runtime details
    let any key through before."""
    assert open_objects() == []


def test_open_objects_are_found(tmp_path):
    import json

    (tmp_path / "a.schema.json").write_text(json.dumps({"type": "object", "properties": {
        "a": {"type": "object", "properties": {"x": {"type": "integer"}}},
        "b": {"type": "object"}, "c": {"type": "object", "additionalProperties": {"type": "string"}},
        "d": {"type": ["object", "null"], "properties": {}, "additionalProperties": False}},
        "additionalProperties": False}))
    assert open_objects(tmp_path) == ["a.schema.json/properties/a: additionalProperties is not false",
                                      "a.schema.json/properties/b: an object of any keys"]


def _mutations(result, limit=40):
    """(what, mutated copy) of *result*: an unknown key added to an object, a value given a
    type no schema gives it (a list for a scalar, a string for a list or an object)."""
    import copy

    spots = []

    def walk(node, path):
        if isinstance(node, dict):
            spots.append(("object", path))
            for k, v in node.items():
                spots.append(("value", path + [k]))
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node[:2]):
                walk(v, path + [i])

    walk(result, [])
    step = max(1, len(spots) // limit)
    for kind, path in spots[::step]:
        doc = copy.deepcopy(result)
        node = doc
        for p in path[:-1] if kind == "value" else path:
            node = node[p]
        if kind == "object":
            node["zz_not_a_key"] = {"x": [1]}     # of no type a map's values have either
            yield f"{path}: an unknown key", doc
        else:
            v = node[path[-1]]
            node[path[-1]] = "a string" if isinstance(v, (list, dict)) else [v]
            yield f"{path}: {type(v).__name__} -> {type(node[path[-1]]).__name__}", doc


def test_a_wrong_key_or_type_fails_validation(documents):
    """Every real document, broken on purpose at spread-out places (an unknown key in an
    object, a value of another JSON type), fails its schema: the schemas are tight enough that
    a renamed key or a re-typed value cannot pass unseen."""
    from gdb_toolkit.common.schemas import _validator

    passed, validators = [], {}
    for doc in ALL_DOCUMENTS:
        if not doc["ok"]:
            continue
        name = schema_file(doc["command"])
        v = validators.setdefault(name, _validator(name))
        for what, bad in _mutations(doc["result"]):
            if v.is_valid(bad):
                passed.append(f"{doc['command']} {what}")
    assert not passed, passed


def test_every_command_answers_any_line_with_one_document():
    """Every registered command, given lines a script may send by mistake -- an unknown option,
    `--json` twice, `--json` first, help -- prints exactly one document between the markers
    (json.loads of the whole chunk: no stray text, no warning, no second document), valid
    against the envelope (and, when ok, its schema); each error document's message is also
    gdb's error on stderr (the error is still raised).  No target is loaded: the commands that
    need one fail with their own error."""
    names = registered()
    lines, asked = [], []
    for name in names:
        for line in (f"{name} --bogus-option --json", f"{name} --json --json", f"{name} --json",
                     f"{name} -h --json", f"{name} --json=yes"):
            lines += json_wrapped(line)
            asked.append(line)
    res = run_gdb(lines, timeout=600)
    assert_no_traceback(res)
    chunks = re.findall(re.escape("@@GTK-JSON-BEGIN@@") + r"\n(.*?)" + re.escape("@@GTK-JSON-END@@"),
                        res.stdout, flags=re.S)
    assert len(chunks) == len(asked), res.output[-3000:]
    import json

    problems = []
    for line, chunk in zip(asked, chunks):
        try:
            doc = json.loads(chunk)
        except ValueError as exc:
            problems.append(f"{line}: not one JSON document ({exc}): {chunk[:200]!r}")
            continue
        errs = validate_document(doc)
        if errs:
            problems.append(f"{line}: {errs[:3]}")
        if ("--bogus-option" in line or "=" in line) and (doc["ok"] or doc["error"]["kind"] != "usage"):
            problems.append(f"{line}: not a usage error: {doc['error']}")
        if "-h" in line.split() and not (doc["ok"] and doc["command"] == "toolkit commands"):
            problems.append(f"{line}: help is toolkit commands' document: {doc}")
        if not doc["ok"] and doc["error"]["message"].split(". Fix:")[0] not in res.stderr:
            problems.append(f"{line}: no gdb error on stderr for {doc['error']['message']!r}")
    assert not problems, problems
