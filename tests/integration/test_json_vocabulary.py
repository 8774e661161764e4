"""The same fact under the same key (docs/json.md), checked against independent oracles:
a source position is ``file`` + ``line`` in every command (stack-diagnose's frames said
"recurse.c:17" under ``source`` only; vg-who's location of a stack-held pointer had file
and line null while valgrind names them).  The vocabulary rule itself runs over every
command's document in test_json_contract.py (``FILE_LINE``).

Oracles: binutils' addr2line for a frame's pc, valgrind's own ``who_points_at`` monitor
output for the frame holding a pointer.
"""
import json
import re
import shutil
import subprocess

import pytest

from tests.support.gdbrun import REPO, compile_c, json_wrapped, run_gdb

pytestmark = pytest.mark.gdb


def test_stack_diagnose_frames_give_file_and_line_as_addr2line_does():
    prog = compile_c(REPO / "examples" / "stack" / "recurse.c", name="recurse_nopie",
                     flags=["-g", "-O0", "-no-pie"])
    res = run_gdb(["run > /dev/null", *json_wrapped("stack-diagnose --json")], program=prog,
                  timeout=240)
    (doc,) = res.envelopes()
    frames = doc["result"]["frames"]
    assert frames
    for f in frames[:6]:
        pc = int(f["pc_address"], 16)
        # a caller's line is the call's, before its return address (gdb and addr2line agree)
        at = pc if f["level"] == 0 else pc - 1
        out = subprocess.run(["addr2line", "-e", str(prog), hex(at)], capture_output=True,
                             text=True, check=True).stdout.strip()
        path, _, line = out.rpartition(":")
        line = int(line.split()[0])
        assert (f["file"], f["line"]) == (path.rsplit("/", 1)[-1], line), (f, out)
        assert f["source"] == f"{f['file']}:{f['line']}"
    culprit = doc["result"]["culprit"]
    if culprit and culprit["source"]:
        assert f"{culprit['file']}:{culprit['line']}" == culprit["source"]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_vg_who_names_the_frame_source_of_a_stack_pointer(tmp_path):
    """memleakloop's main holds a 32-byte block in a local: vg-who on that block finds the
    pointer on main's stack; valgrind says 'created by main (memleakloop.c:36)'."""
    prog = compile_c(REPO / "examples" / "valgrind" / "memleakloop.c", flags=["-g", "-O0"])
    script = (
        "python\n"
        "import gdb, json\n"
        "def doc(c):\n"
        "    return json.loads(gdb.execute(c, to_string=True))['result']\n"
        "rec = next(r for r in doc('vg-leaks --json')['records']\n"
        "           if r['bytes'] == 32 and (r['location'] or {}).get('symbol') == 'main')\n"
        "b = doc('vg-block %d --json' % rec['record'])['blocks'][0]['address']\n"
        "print('ORACLE-BEGIN'); print(gdb.execute('monitor who_points_at %s' % b, to_string=True)); print('ORACLE-END')\n"
        "print('DOC-BEGIN'); gdb.execute('vg-who %s --json' % b); print('DOC-END')\n"
        "end")
    res = run_gdb([f"vg-start --main --stdout {tmp_path}/out --log {tmp_path}/vg.log {prog} 3",
                   "break checkpoint", "continue", script], timeout=240)
    assert "DOC-END" in res.stdout, res.output
    oracle = res.stdout.split("ORACLE-BEGIN", 1)[1].split("ORACLE-END", 1)[0]
    m = re.search(r"created by (\S+) \(([^():]+):(\d+)\)", oracle)
    assert m, res.output
    doc = json.loads(res.stdout.split("DOC-BEGIN", 1)[1].split("DOC-END", 1)[0])
    stack_ptrs = [p for p in doc["result"]["pointers"] if p["location"]["kind"] == "stack"]
    assert stack_ptrs, doc
    loc = stack_ptrs[0]["location"]
    assert loc["frame_function"] == m.group(1)
    assert (loc["file"], loc["line"]) == (m.group(2), int(m.group(3)))


@pytest.mark.parametrize("line", ["ksym \"do_sys_open --json", "kx (linux_banner 16 --json",
                                  "got 'puts --json", "vg-who g_buf[0 --json"])
def test_json_asked_on_a_line_that_cannot_be_split_is_still_json(line):
    """An unbalanced quote or bracket swallowed the rest of the line, --json included: the
    error came out as text and stdout held no document for the script."""
    from gdb_toolkit.common.schemas import validate_document

    res = run_gdb([*json_wrapped(line), "echo still-alive\\n"])
    docs = res.envelopes()
    assert len(docs) == 1, res.output
    (doc,) = docs
    assert doc["command"] == line.split()[0] and doc["ok"] is False, doc
    assert validate_document(doc) == []
    assert doc["error"]["message"].split(". Fix:")[0] in res.stderr      # the gdb error too
    assert "still-alive" in res.stdout
