"""Names that are any bytes, one convention end to end (docs/json.md, "Names"): the symbols a
library exports and the path it is loaded from read the same in text and in every field of
got, got --audit, plt and plt-walk's --json (common.names.escape_name: ``\\xNN`` for a byte that
is not UTF-8 or a control character, ``\\\\`` for a backslash -- never a JSON ``\\u001b``, never
a backslash left single), a composed cell (got's target "SYM in LIB") escapes each part once,
and the text the toolkit printed for a name can be typed back: plt-walk NAME, got REGEX,
plt REGEX, --object PATH and Tab completion.

A slot holding an address in no loaded object -- unmapped, or anonymous memory -- is
``overwritten`` in got's state as in got --audit's verdict (one decision).

Oracles: the bytes the test wrote (readelf --dyn-syms shows them in the file), the printed
forms written out by hand below, readelf -r for the slots' offsets, /proc/PID/maps for the load
bias and for what is mapped."""
import json
import os
import re
import subprocess

import pytest

from tests.support.gdbrun import assert_no_traceback, json_wrapped, run_gdb

pytestmark = pytest.mark.gdb

#: raw name -> the printed form, written out (the oracle: not computed by the code under test)
NAMES = {
    b"ev\xe9il\x1b[2J'q": "ev\\xe9il\\x1b[2J'q",
    b"esc\x1bok": "esc\\x1bok",          # valid UTF-8 with ESC: was JSON "esc\u001bok"
    b"nl\tx\x01y": "nl\\x09x\\x01y",
    b"sp ace": "sp ace",
    b"q'uo\\te": "q'uo\\\\te",           # a backslash: was "q'uo\\te", one backslash in text
    b"x" * 100: "x" * 100,                # longer than 80 columns: printed whole
}
LIB = b"libn\\x41\xff.so"
LIB_SHOWN = "libn\\\\x41\\xff.so"
DIR = b"d\xe9\x1b"
DIR_SHOWN = "d\\xe9\\x1b"
SECTION = b".eh\x1bhdr\\"             # prog's .eh_frame_hdr renamed (no symbol inside it)
SECTION_SHOWN = ".eh\\x1bhdr\\\\"
#: how each printed name is typed on gdb's command line (blanks and quotes need a backslash
#: or quotes, as in any gdb command; the rest exactly as printed)
TYPED = {
    "ev\\xe9il\\x1b[2J'q": "\"ev\\xe9il\\x1b[2J'q\"",
    "sp ace": "'sp ace'",
    "q'uo\\\\te": "q\\'uo\\\\te",
}
WORD_COMPLETIONS = {"ev\\xe9il\\x1b[2J\\'q", "esc\\x1bok"}     # 'plt-walk e<Tab>' (as typed)


def _quoted_asm(name: bytes) -> bytes:
    return name.replace(b"\\", b"\\\\")


@pytest.fixture(scope="module")
def hostile_names(tmp_path_factory):
    """prog calls each name through its PLT; libn\\x41<ff>.so (in directory d<e9><ESC>)
    defines them (assembled: C cannot spell them)."""
    d = os.fsencode(tmp_path_factory.mktemp("names"))
    libdir = os.path.join(d, DIR)
    os.mkdir(libdir)
    note = b'.section .note.GNU-stack,"",@progbits\n'
    lib = b".text\n" + b"".join(b'.globl "%s"\n.type "%s", @function\n"%s":\n  ret\n' % ((_quoted_asm(n),) * 3)
                                for n in NAMES) + note
    prog = (b".text\n.globl main\n.type main, @function\nmain:\n  sub $8, %rsp\n"
            + b"".join(b'  call "%s"@PLT\n' % _quoted_asm(n) for n in NAMES)
            + b"  call checkpoint\n  xor %eax, %eax\n  add $8, %rsp\n  ret\n"
            + b".globl checkpoint\n.type checkpoint, @function\ncheckpoint:\n  ret\n" + note)
    with open(os.path.join(d, b"lib.s"), "wb") as f:
        f.write(lib)
    with open(os.path.join(d, b"prog.s"), "wb") as f:
        f.write(prog)
    lib_path = os.path.join(libdir, LIB)
    subprocess.run([b"gcc", b"-shared", b"-o", lib_path, b"lib.s"], cwd=d, check=True, capture_output=True)
    subprocess.run([b"gcc", b"-o", b"prog0", b"prog.s", lib_path, b"-Wl,-rpath," + libdir, b"-Wl,-z,lazy"],
                   cwd=d, check=True, capture_output=True)
    subprocess.run([b"objcopy", b"--rename-section", b".eh_frame_hdr=" + SECTION, b"prog0", b"prog"],
                   cwd=d, check=True, capture_output=True)
    prog_path = os.path.join(d, b"prog")
    # the renamed section's address, from readelf -S (readelf writes ESC as ^[)
    shdrs = subprocess.run(["readelf", "-S", "-W", prog_path], capture_output=True, check=True).stdout
    sec = re.search(rb"\] \.eh\^\[hdr\\\s+PROGBITS\s+([0-9a-f]+)", shdrs)
    assert sec, shdrs
    # the file holds the bytes we wrote: its .dynstr, raw, from objcopy
    dynstr = subprocess.run(["objcopy", "-O", "binary", "--only-section=.dynstr", prog_path, "/dev/stdout"],
                            capture_output=True, check=True).stdout
    assert set(NAMES) <= set(dynstr.split(b"\0")), dynstr
    # slot offsets by name, from readelf -r (R_X86_64_JUMP_SLOT rows; readelf writes a control
    # byte c as ^X, the other bytes as they are)
    relocs = subprocess.run(["readelf", "-r", "-W", prog_path], capture_output=True, check=True).stdout
    carets = {re.sub(rb"[\x00-\x1f]", lambda m: b"^" + bytes([m.group()[0] + 0x40]), n): n for n in NAMES}
    slots = {}
    for ln in relocs.splitlines():
        m = re.match(rb"([0-9a-f]+)\s+[0-9a-f]+\s+R_X86_64_JUMP_SLOT\s+[0-9a-f]+\s+(.*) \+ 0$", ln)
        if m and m.group(2) in carets:
            slots[carets[m.group(2)]] = int(m.group(1), 16)
    assert set(NAMES) <= set(slots), slots
    slots["section"] = int(sec.group(1), 16)
    return os.fsdecode(prog_path), slots


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


#: gdb Python run at the checkpoint: the load bias from /proc/PID/maps (the program's mapping
#: at file offset 0), a slot set to an unmapped address and one to anonymous memory (both from
#: the maps), each printed for the test to check against the same maps
_OVERWRITE = """import gdb, os, struct
pid = gdb.selected_inferior().pid
maps = [l.split() for l in open(f"/proc/{{pid}}/maps", errors="surrogateescape")]
prog = os.path.realpath(gdb.current_progspace().filename)  # ASCII here
bias = min(int(m[0].split("-")[0], 16) for m in maps if len(m) > 5 and m[5] == prog and int(m[2], 16) == 0)
anon = next(int(m[0].split("-")[0], 16) for m in maps if len(m) == 5 and m[1].startswith("rw"))
ranges = [tuple(int(x, 16) for x in m[0].split("-")) for m in maps]
unmapped = 0xdead0000
assert not any(lo <= unmapped < hi for lo, hi in ranges)
inf = gdb.selected_inferior()
inf.write_memory(bias + {esc}, struct.pack("<Q", unmapped))
inf.write_memory(bias + {space}, struct.pack("<Q", anon))
inf.write_memory(bias + {nl}, struct.pack("<Q", bias + {section} + 4))
print("GTK-OVERWROTE", hex(bias + {esc}), hex(unmapped), hex(bias + {space}), hex(anon))
"""


def test_names_read_and_typed_back_the_same_everywhere(hostile_names, tmp_path):
    prog, slots = hostile_names
    script = tmp_path / "overwrite.py"
    script.write_text(_OVERWRITE.format(esc=slots[b"esc\x1bok"], space=slots[b"sp ace"], nl=slots[b"nl\tx\x01y"],
                                        section=slots["section"]))
    cmds = ["break checkpoint", "run"]
    listed = ["got --all-objects --json", "got --audit --json", "plt --json"]
    for c in listed:
        cmds += json_wrapped(c)
    walks = [TYPED.get(shown, shown) for shown in NAMES.values()]
    for w in walks:
        cmds += json_wrapped(f"plt-walk {w} --json")
    filters = [f"got {w} --json" for w in walks] + [f"plt {w} --json" for w in walks]
    for c in filters:
        cmds += json_wrapped(c)
    cmds += json_wrapped(f"got --object '{DIR_SHOWN}' --json")
    cmds += ["echo GTK-COMPLETE\\n", "complete plt-walk e", "complete got --object libn",
             "echo GTK-COMPLETE-END\\n"]
    cmds += ["got"]          # text: the same rendering as in JSON
    cmds += [f"source {script}"]
    cmds += json_wrapped("got --audit --json")
    res = run_gdb(cmds, program=prog, timeout=180)
    assert_no_traceback(res)
    docs = res.envelopes()
    n_before = len(listed) + len(walks) + len(filters) + 1
    assert len(docs) == n_before + 1, res.output

    # every string of every document: no control character, no undecodable byte (they are
    # written \xNN), so JSON never carries a name as \u001b; and each name's printed form
    for doc in docs:
        for s in _strings(doc):
            assert not re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", s), (doc["command"], s)

    got_all, audit, plt = (d["result"] for d in docs[:3])
    by_symbol = {r["symbol"]: r for r in got_all["slots"] if r["object"] == "prog"}
    lib_path = [o["path"] for o in got_all["objects"] if o["path"].endswith(LIB_SHOWN)]
    assert lib_path and lib_path[0].endswith(f"/{DIR_SHOWN}/{LIB_SHOWN}"), got_all["objects"]
    for raw, shown in NAMES.items():
        row = by_symbol.get(shown)
        assert row is not None, (shown, sorted(by_symbol))
        # composed from raw parts, each escaped once
        assert row["target"] == f"{shown} in {LIB_SHOWN}", row
        assert row["target_symbol"] == shown and row["target_object"] == LIB_SHOWN, row
        assert row["state"] == "resolved", row
    audit_rows = {r["symbol"]: r for r in audit["slots"]}
    for shown in NAMES.values():
        a = audit_rows[shown]["audit"]
        assert a["verdict"] == "ok" and a["expected"] == f"{shown} in {LIB_SHOWN}", a
    stubs = {s["symbol"] for s in plt["stubs"]}
    assert set(NAMES.values()) <= stubs, stubs

    # typed back: plt-walk finds the same slot (readelf -r's offset + the bias got reports)
    bias = int(got_all["objects"][0]["bias"], 16)
    for doc, (raw, shown) in zip(docs[3:3 + len(walks)], NAMES.items()):
        assert doc["ok"], (shown, doc["error"])
        r = doc["result"]
        assert r["symbol"] == shown and int(r["slot_address"], 16) == bias + slots[raw], (shown, r)
    # got REGEX / plt REGEX given the printed text: exactly that name's row
    fdocs = docs[3 + len(walks):3 + len(walks) + len(filters)]
    for doc, shown in zip(fdocs, list(NAMES.values()) * 2):
        assert doc["ok"], (shown, doc["error"])
        rows = doc["result"]["slots"] if doc["command"] == "got" else doc["result"]["stubs"]
        assert [r["symbol"] for r in rows] == [shown], (doc["command"], shown, rows)
    by_dir = docs[n_before - 1]
    assert by_dir["ok"] and [o["path"] for o in by_dir["result"]["objects"]] == lib_path, by_dir

    # completion offers what plt-walk accepts (as typed: a quote backslash-escaped)
    comp = res.stdout.split("GTK-COMPLETE\n", 1)[1].split("GTK-COMPLETE-END", 1)[0].splitlines()
    assert {c.removeprefix("plt-walk ") for c in comp if c.startswith("plt-walk")} == WORD_COMPLETIONS, comp
    assert [c for c in comp if c.startswith("got")] == [f"got --object {LIB_SHOWN}"], comp

    # text: the same rendering, the long name whole on its line
    text = res.stdout.split("GTK-COMPLETE-END\n", 1)[1].split("GTK-OVERWROTE", 1)[0]
    for shown in NAMES.values():
        assert re.search(rf"\s{re.escape(shown)}\s+JUMP_SLOT\s", text), (shown, text)

    # overwritten: state and verdict agree for an unmapped address and anonymous memory
    m = re.search(r"GTK-OVERWROTE (0x\w+) (0x\w+) (0x\w+) (0x\w+)", res.stdout)
    assert m, res.output
    after = {int(r["address"], 16): r for r in docs[-1]["result"]["slots"]}
    for slot, value in ((m.group(1), m.group(2)), (m.group(3), m.group(4))):
        r = after[int(slot, 16)]
        assert int(r["value"], 16) == int(value, 16), r
        assert (r["state"], r["audit"]["verdict"]) == ("overwritten", "overwritten"), r
    # a value inside the program, in a section no symbol covers: named by its section, escaped
    r = after[int(m.group(1), 16) - slots[b"esc\x1bok"] + slots[b"nl\tx\x01y"]]
    assert r["target"] == f"prog:{SECTION_SHOWN}+0x4" and r["audit"]["verdict"] == "overwritten", r
    json.dumps(docs)     # the documents are valid JSON again (no surrogate left)


#: kernel symbols (a kallsyms copy, any bytes) -> printed form, written out
KNAMES = {
    b"ev\xe9il\x1b[2J'q": "ev\\xe9il\\x1b[2J'q",
    b"esc\x1bok": "esc\\x1bok",
    b"b\\s_x": "b\\\\s_x",
}
KTEXT = 0xffffffff81000000


def test_kernel_names_read_and_typed_back(tmp_path):
    """ksym and kdis on a fake kcore: each kallsyms name in its printed form in every JSON field
    (ksym's symbol and location, kdis's location and instructions' locations), the printed
    text typed back (ksym NAME, ksym NAME+OFF, kdis NAME) finds the symbol: its address from
    the kallsyms file we wrote.  Before: a valid UTF-8 name with ESC was JSON-escaped
    (\\u001b), a backslash left single, and the printed text was refused ("cannot read")."""
    from tests.support.kcore_fixture import write_kcore

    lines = [b"%016x T _stext" % KTEXT]
    addrs = {}
    for i, raw in enumerate(KNAMES):
        addrs[raw] = KTEXT + 0x1000 * (i + 1)
        lines.append(b"%016x t " % addrs[raw] + raw)
    lines.append(b"%016x T _etext" % (KTEXT + 0x1000 * (len(KNAMES) + 1)))
    (tmp_path / "kallsyms").write_bytes(b"\n".join(lines) + b"\n")
    kcore = write_kcore(tmp_path / "kcore", {KTEXT: b"\x90" * 0x1000 * (len(KNAMES) + 2)},
                        "OSRELEASE=6.1.0-test\n")
    src = f"--kallsyms {tmp_path / 'kallsyms'} --kcore {kcore}"
    cmds = []
    for raw, shown in KNAMES.items():
        q = '"' if "'" in shown else ""        # a quote in the name: quote the word
        cmds += json_wrapped(f"ksym {q}{shown}{q} {src} --json")
        cmds += json_wrapped(f"ksym {q}{shown}+0x10{q} {src} --json")
        cmds += json_wrapped(f"kdis {q}{shown}{q} 2 {src} --json")
    # Tab completion offers the names as ksym takes them back: /proc/kallsyms' cached name list
    # (kallsyms.symbol_names) holds our raw names here
    raw_list = sorted(n.decode("utf-8", "surrogateescape") for n in KNAMES)
    cmds += [f"python import gdb_toolkit.kernel.kallsyms as k; k._NAMES[('/proc/kallsyms', None, True)] = {raw_list!r}",
             "echo GTK-COMPLETE\\n", "complete ksym es", "complete ksym ev", "complete ksym b\\\\", "echo GTK-COMPLETE-END\\n"]
    res = run_gdb(cmds, timeout=120)
    assert_no_traceback(res)
    docs = res.envelopes()
    assert len(docs) == 3 * len(KNAMES), res.output
    comp = res.stdout.split("GTK-COMPLETE\n", 1)[1].split("GTK-COMPLETE-END", 1)[0].splitlines()
    assert comp == ["ksym esc\\x1bok", "ksym ev\\xe9il\\x1b[2J\\'q", "ksym b\\\\s_x"], comp
    for doc in docs:
        for s in _strings(doc):
            assert not re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", s), (doc["command"], s)
    for i, (raw, shown) in enumerate(KNAMES.items()):
        by_name, by_off, dis = docs[3 * i:3 * i + 3]
        for doc in (by_name, by_off, dis):
            assert doc["ok"], (shown, doc["error"])
        m = by_name["result"]["matches"]
        assert [(x["symbol"], int(x["address"], 16)) for x in m] == [(shown, addrs[raw])], m
        assert m[0]["location"]["symbol"] == shown, m
        o = by_off["result"]["matches"][0]["location"]
        assert (o["symbol"], o["offset"], int(o["address"], 16)) == (shown, 0x10, addrs[raw] + 0x10), o
        d = dis["result"]
        assert d["location"]["symbol"] == shown and int(d["location"]["address"], 16) == addrs[raw], d
        assert all(ins["location"]["symbol"] == shown for ins in d["insns"]), d["insns"]


def test_frame_function_name_printed_once(tmp_path):
    """stack-diagnose on a recursion whose function is named 'rec ESC ur \\ se' (assembled): the
    frame's function in --json and in text is its printed form (ESC as \\x1b, the backslash
    doubled); gdb hands frame names over raw, and they reached the JSON as \\u001b with a single
    backslash.  Oracle: the name we wrote, its printed form written out."""
    name = b"rec\x1bur\\se"
    shown = "rec\\x1bur\\\\se"
    q = name.replace(b"\\", b"\\\\")
    src = (b'.text\n.globl main\n.type main, @function\nmain:\n  sub $8, %%rsp\n  call "%s"\n  add $8, %%rsp\n'
           b'  ret\n.size main, .-main\n.globl "%s"\n.type "%s", @function\n"%s":\n  sub $4096, %%rsp\n'
           b'  movq $0, (%%rsp)\n  call "%s"\n  add $4096, %%rsp\n  ret\n.size "%s", .-"%s"\n'
           b'.section .note.GNU-stack,"",@progbits\n') % ((q,) * 7)
    (tmp_path / "r.s").write_bytes(src)
    subprocess.run(["gcc", "-o", str(tmp_path / "r"), str(tmp_path / "r.s")], check=True, capture_output=True)
    nm = subprocess.run(["nm", str(tmp_path / "r")], capture_output=True, check=True).stdout
    assert b" T " + name + b"\n" in nm, nm
    res = run_gdb(["run", "stack-diagnose", *json_wrapped("stack-diagnose --json")], program=tmp_path / "r",
                  timeout=120)
    assert_no_traceback(res)
    doc = res.envelopes()[-1]
    assert doc["ok"], doc
    for s in _strings(doc):
        assert not re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", s), s
    symbols = {f.get("symbol") for f in doc["result"]["frames"]}
    assert shown in symbols, symbols
    text = res.stdout.split("@@GTK-JSON-BEGIN", 1)[0]
    assert re.search(rf"#0\s+{re.escape(shown)}\s", text), text


def test_valgrind_frames_print_names_once(tmp_path):
    """vg-errors and vg-leaks on a program whose source file is named 'l ESC [2J k\\ .c' (valid
    UTF-8, a backslash): every frame's file, and the error's detail lines, carry the printed form
    (ESC as \\x1b, the backslash doubled) -- valgrind writes the bytes, which reached the JSON as
    \\u001b with a single backslash.  Oracle: the name we wrote, its printed form written out."""
    from tests.security.test_hostile_debug_names import LEAKY

    name = b"l\x1b[2Jk\\.c"
    shown = "l\\x1b[2Jk\\\\.c"
    (tmp_path / os.fsdecode(name)).write_bytes(LEAKY)
    subprocess.run([b"gcc", b"-g", b"-O0", b"-o", b"prog", name], cwd=tmp_path, check=True, capture_output=True)
    cmds = [f"vg-start {tmp_path / 'prog'}", "continue", "continue",
            *json_wrapped("vg-errors --json"), *json_wrapped("vg-leaks --json")]
    res = run_gdb(cmds, timeout=240)
    assert_no_traceback(res)
    docs = res.envelopes()
    assert len(docs) == 2 and all(d["ok"] for d in docs), res.output
    seen = []
    for doc in docs:
        for s in _strings(doc):
            assert not re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", s), (doc["command"], s)
            if "2Jk" in s:
                seen.append(s)
                assert shown in s, (doc["command"], s)
    assert any(s == shown for s in seen), seen       # a frame's file field


def test_valgrind_location_names_print_once(tmp_path):
    """vg-who on a global whose name is 'g ESC b \\ uf' (assembled): valgrind's description
    ('... inside data symbol "NAME"') and the location's symbol carry the printed form; they
    reached the JSON as \\u001b with a single backslash.  Oracle: nm, the printed form written out."""
    name = b"g\x1bb\\uf"
    shown = "g\\x1bb\\\\uf"
    q = name.replace(b"\\", b"\\\\")
    src = (b'.bss\n.globl "%s"\n.type "%s", @object\n.size "%s", 64\n"%s":\n  .zero 64\n'
           b'.text\n.globl main\n.type main, @function\nmain:\n  sub $8, %%rsp\n  lea "%s"(%%rip), %%rdi\n'
           b'  call checkpoint\n  xor %%eax, %%eax\n  add $8, %%rsp\n  ret\n'
           b'.section .note.GNU-stack,"",@progbits\n') % ((q,) * 5)
    (tmp_path / "p.s").write_bytes(src)
    (tmp_path / "c.c").write_text('void checkpoint(void *p) { __asm__ volatile("" :: "r"(p) : "memory"); }\n')
    subprocess.run(["gcc", "-g", "-O0", "-no-pie", "-o", "p", "p.s", "c.c"], cwd=tmp_path, check=True, capture_output=True)
    nm = subprocess.run(["nm", str(tmp_path / "p")], capture_output=True, check=True).stdout
    assert b" B " + name + b"\n" in nm, nm
    res = run_gdb([f"vg-start {tmp_path / 'p'}", "break checkpoint", "continue",
                   *json_wrapped("vg-who p --json")], timeout=240)
    assert_no_traceback(res)
    doc = res.envelopes()[-1]
    assert doc["ok"], doc
    for s in _strings(doc):
        assert not re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", s), s
    found = [s for s in _strings(doc) if "uf" in s]
    assert shown in found and any(f'data symbol "{shown}"' in s for s in found), found
