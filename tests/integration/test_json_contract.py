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
        f"kdis vfs_write 3 {src}", f"ksym vfs_write {src}", f"kprobe-list {src} {btf}",
        f"kprobe-show vfs_write+2 {src} {btf}", f"ftrace-site vfs_write {src}"]}]


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
}

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
        if isinstance(v, str) and (SYMBOL_OFFSET.match(v) or
                                   ((k == "symbol" or k.endswith("_symbol")) and SYMBOL_MODULE.match(v))):
            out.append(f"{here}: the position {v!r} as text: a location object {{address, symbol, offset, ...}}")
        if k == "path" and ("c_type" in holder or (isinstance(v, str) and MEMBER_PATH.search(v))):
            out.append(f"{here}: 'path' is a file path; a struct member's path is 'member_path'")
        if k.endswith("handler") and isinstance(v, str):
            out.append(f"{here}: a handler is code: '{k}_location' (a location object), not text")
        if k == "frame" and isinstance(v, int) and not isinstance(v, bool):
            out.append(f"{here}: a frame's number is 'level'")
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
    # every vg-* result names the valgrind it asked (vg-who, vg-check, vg-vbits did not)
    nopid = sorted({d["command"] for d in ALL_DOCUMENTS if d["ok"] and d["command"].startswith("vg-")
                    and not isinstance(d["result"].get("pid"), int)})
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
