"""One fact, one key, one unit (docs/json.md, "The common vocabulary"), checked on every shipped
schema: the schemas declare every key of every command (kernel commands too, which only the
guest runs), and the real documents are validated against them by test_json_contract.py.

Three rules, each a class of mistake a script author meets:

* a number says what it is: a byte or time amount carries its unit in its key (`_bytes`,
  `_size`/`size`, `_offset`/`offset`, `_seconds`, `_ns`, `_kib`), a count is `count`/`*_count`;
  the few numbers with no unit (ids, ordinals, a frame's level, a signal number) are listed
  in DIMENSIONLESS, each with why;
* one fact is not spelt two ways: the docs' words, never their synonyms (`addr`, `len`,
  `lineno`, `filename`, `valgrind_pid` ...);
* one fact is not under two keys: an object `X` holding `K` where another object says
  `X_K` (stack-diagnose's `signal.name` beside `stopped_by.signal_name`).

One key having one JSON type everywhere is test_json_contract.py's
test_schemas_give_a_key_one_json_type.
"""
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "gdb_toolkit" / "schemas"

#: words that say a number's unit (or that it is a count), anywhere in its key
UNIT_WORDS = {"bytes", "size", "offset", "seconds", "ns", "us", "ms", "kib", "count",
              "blocks", "vbits"}     # vg-leaks' block counts, vg-vbits' bits (docs/json.md)

#: numbers with no unit, and why (docs/json.md says each): ids, ordinals and values
DIMENSIONLESS = {
    "pid": "a process id", "tid": "a thread id", "ppid": "a parent's process id",
    "tgid": "a thread group id", "namespace_pid": "ktask: gdb's pid of the task",
    "namespace_tgid": "ktask: gdb's tgid of the task", "id": "a kprobe's / a BPF program's / a goroutine's id",
    "module_id": "got's TLS module id", "namespace": "got's dlmopen namespace number",
    "level": "a frame's number (gdb's #N)", "first_level": "a frame's number",
    "frame_level": "a frame's number (vg-*'s 'in frame #N')", "line": "a source line number",
    "num": "a thread's number (stack-diagnose's thread object)", "thread_num": "a bare thread number",
    "by_thread_num": "a bare thread number", "signo": "a signal number", "si_code": "siginfo's si_code",
    "seq": "a snapshot's sequence number", "snapshot": "vg-leaks' snapshot number",
    "record": "a loss record number (vg-leaks)", "site_index": "an allocation site's index",
    "reloc_index": "a PLT stub's relocation index", "schema_version": "the contract's version",
    "integer": "ktask: a number read from memory", "byte_value": "vg-vbits: a byte's value",
    "retval": "a function's return value", "vgdb_error": "the --vgdb-error threshold (a number of errors)",
    "depth": "frames (a stack's depth)", "group_by": "vg-leaks --group-by: frames",
    "depth_estimate": "frames (stack used / the average frame)",
}

#: the docs' word for a fact -> the synonyms that must not name it (as a key or one of its words)
SYNONYMS = {
    "address": {"addr", "addrs"}, "size": {"len", "length", "sz"}, "line": {"lineno", "linenum"},
    "count": {"n", "nr", "cnt", "num_of", "number"}, "pid": {"valgrind_pid", "process_id"},
    "file": {"filename", "file_name", "filepath"}, "symbol": {"sym", "symname", "symbol_name"},
    "object": {"module", "mod", "lib", "library"}, "level": {"frame_no", "frame_num", "frame_number"},
    "notes": {"warnings", "messages", "assumptions", "warning"}, "function": {"func", "fn"},
    "seconds": {"secs", "sec", "duration", "elapsed"}, "kind": {"type"},
}
#: keys that hold a synonym word for a documented reason
SYNONYM_KEYS_ALLOWED = {
    "reloc_type": "readelf's name of a relocation (docs/json.md: never `type` alone)",
    "symbol_type": "kallsyms' letter (docs/json.md)", "c_type": "a member's C type (docs/json.md)",
    "type_source": "where the types came from (docs/json.md's `*_source`), not a kind",
    "module_id": "the ELF TLS module id (the dtv index: the TLS ABI's and glibc's word), a number "
                 "beside got's tls.object",
    "bpf_func_address": "the kernel's member name (struct bpf_prog's bpf_func)",
    "bpf_func_location": "the kernel's member name (struct bpf_prog's bpf_func; docs/json.md)",
}

#: `X.K` beside `X_K` that docs/json.md gives as two different facts
TWO_KEYS_ALLOWED = {
    ("thread", "num"): "thread is the object {num, tid, ...}; a bare thread number elsewhere is "
                       "thread_num (docs/json.md, `thread`)",
}


def _load(name: str, cache: dict) -> dict:
    if name not in cache:
        cache[name] = json.loads((SCHEMAS if not cache.get("__base__") else cache["__base__"])
                                 .joinpath(name).read_text())
    return cache[name]


def properties(base: Path = SCHEMAS):
    """(schema, parent key, key, declared JSON types) of every property of every schema, $refs
    followed for the types; parent is the key whose object holds it (None at a result's top)."""
    cache: dict = {"__base__": base}

    def resolve(s, doc, depth=0):
        while isinstance(s, dict) and "$ref" in s and depth < 20:
            name, _, frag = s["$ref"].partition("#")
            root = _load(name, cache) if name else doc
            s, doc = root, root
            for part in [p for p in frag.split("/") if p]:
                s = s[part]
            depth += 1
        return s, doc

    def types(s, doc, depth=0) -> set:
        s, doc = resolve(s, doc)
        if not isinstance(s, dict) or depth > 20:
            return set()
        out = set()
        if "type" in s:
            t = s["type"] if isinstance(s["type"], list) else [s["type"]]
            out |= {"number" if x == "integer" else x for x in t if x != "null"}
        for v in s.get("enum", [s["const"]] if "const" in s else []):
            if v is not None:
                out.add("number" if isinstance(v, (int, float)) and not isinstance(v, bool) else
                        {str: "string", bool: "boolean"}.get(type(v), "object"))
        for key in ("oneOf", "anyOf"):
            for branch in s.get(key, ()):
                out |= types(branch, doc, depth + 1)
        if "items" in s and "array" in out:
            out |= {f"array of {t}" for t in types(s["items"], doc, depth + 1)}
        return out

    out = []

    def walk(node, doc, name, parent):
        if isinstance(node, dict):
            for k, v in (node.get("properties") or {}).items():
                out.append((name, parent, k, types(v, doc)))
                walk(v, doc, name, k)
            for k, v in node.items():
                if k != "properties":       # a list's items: `detour[]` (each instruction's address
                    walk(v, doc, name, f"{parent}[]" if k == "items" and parent else parent)
        elif isinstance(node, list):
            for v in node:
                walk(v, doc, name, parent)

    for path in sorted(base.glob("*.schema.json")):
        doc = _load(path.name, cache)
        walk(doc, doc, path.name.removesuffix(".schema.json"), None)
    return out


def unit_problems(base: Path = SCHEMAS) -> dict[str, list[str]]:
    """{problem: [schemas]}: numbers (and lists of numbers) whose key says neither a unit nor
    that it is a count, and that DIMENSIONLESS does not list."""
    out: dict = {}
    for name, _, key, types in properties(base):
        if not ({"number", "array of number"} & types):
            continue
        words = set(key.split("_"))
        # a list says what each item is: `stale_fifo_pids`, `time_seconds_list`
        listed = "number" not in types and key.split("_")[-1].removesuffix("s") in DIMENSIONLESS
        if words & UNIT_WORDS or key in DIMENSIONLESS or listed:
            continue
        out.setdefault(f"{key}: a number that does not say its unit ('_bytes', '_seconds', ...) "
                       "or that it is a count ('_count')", []).append(name)
    return {k: sorted(set(v)) for k, v in out.items()}


def synonym_problems(base: Path = SCHEMAS) -> dict[str, list[str]]:
    out: dict = {}
    for name, _, key, _ in properties(base):
        if key in SYNONYM_KEYS_ALLOWED:
            continue
        words = key.split("_")
        for word, bad in SYNONYMS.items():
            hit = key in bad or any(w in bad for w in words) or any(
                "_".join(words[i:i + 2]) in bad for i in range(len(words) - 1))
            if hit:
                out.setdefault(f"{key}: the docs' word is '{word}'", []).append(name)
    return {k: sorted(set(v)) for k, v in out.items()}


def two_key_problems(base: Path = SCHEMAS) -> dict[str, list[str]]:
    """An object under X holding K, where a key X_K exists too: one fact, two keys."""
    props = properties(base)
    flat = {}
    for name, _, key, _ in props:
        flat.setdefault(key, set()).add(name)
    out: dict = {}
    for name, parent, key, _ in props:
        if parent is None or parent.endswith("[]") or (parent, key) in TWO_KEYS_ALLOWED:
            continue
        joined = f"{parent}_{key}"
        if joined in flat:
            out.setdefault(f"{parent}.{key} beside {joined} ({sorted(flat[joined])}): one fact, "
                           "one key", []).append(name)
    return {k: sorted(set(v)) for k, v in out.items()}


def test_numbers_say_their_unit():
    problems = unit_problems()
    assert not problems, problems


def test_no_synonyms_of_the_documented_words():
    problems = synonym_problems()
    assert not problems, problems


def test_one_fact_is_not_under_two_keys():
    problems = two_key_problems()
    assert not problems, problems


def test_the_allow_lists_are_used():
    """Every DIMENSIONLESS key is a number some schema declares (a stale entry would let a
    future key of that name through unchecked)."""
    numbers = {k for _, _, k, t in properties() if {"number", "array of number"} & t}
    stale = sorted(k for k in DIMENSIONLESS if k not in numbers and k + "s" not in numbers)
    assert not stale, stale


def test_the_rules_catch_what_version_5_printed(tmp_path):
    """The three rules on a schema holding version 5's spellings: each is found."""
    (tmp_path / "a.schema.json").write_text(json.dumps({"type": "object", "properties": {
        "stack_used": {"type": "integer"}, "guard_gap_bytes": {"type": "integer"},
        "time": {"type": "number"}, "time_seconds": {"type": "number"},
        "signal": {"type": "object", "properties": {"name": {"type": "string"}},
                   "additionalProperties": False},
        "stopped_by": {"type": "object", "properties": {"signal_name": {"type": "string"}},
                       "additionalProperties": False},
        "fault_addr": {"type": "string"}, "lineno": {"type": "integer"}, "reloc_type": {"type": "string"},
        "times": {"type": "array", "items": {"type": "number"}}, "pid": {"type": "integer"}},
        "additionalProperties": False}))
    assert sorted(k.split(":")[0] for k in unit_problems(tmp_path)) == ["lineno", "stack_used", "time", "times"]
    assert sorted(k.split(":")[0] for k in synonym_problems(tmp_path)) == ["fault_addr", "lineno"]
    assert [k.split(" ")[0] for k in two_key_problems(tmp_path)] == ["signal.name"]
