"""got, plt and plt-walk: one JSON vocabulary (got's keys, the common location object, words
of memory as "0x..." strings) and prose that keeps paths whole and follows gdb's styles
(issue 14; the findings "from term80 (05:45)").

Oracles, none from the code under test: readelf -rW (relocation kinds and names, the slot
count), readelf -lW (the RELRO segment), nm / objdump / addr2line (the call site's function,
offset and source line), the width arithmetic of a wrapped line, and the escape sequences
gdb itself prints for its address, function and filename styles (read back from a tmux
screen in the same session).
"""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.gdbrun import REPO, addr, assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.plt_oracles import nm_symbols, objdump_calls

pytestmark = pytest.mark.gdb

SOURCE = REPO / "examples" / "plt" / "hello_calls.c"


@pytest.fixture
def short_tmp():
    """A private directory with a short name (pytest's are ~70 characters: a path under them
    leaves no room on an 80-column line for the case where it should fit)."""
    d = tempfile.mkdtemp(prefix="gtk-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _program_in(tmp_path, *parts) -> str:
    """hello_calls built at tmp_path/parts... (directory and file names holding spaces)."""
    built = compile_c(SOURCE, flags=["-g", "-Wl,-z,lazy"])
    target = tmp_path.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(built, target)
    return str(target)


def _readelf_slots(path) -> dict[int, tuple[str, str]]:
    """{link-time slot address: (reloc_type, symbol)} of the GOT relocations, from readelf."""
    out = subprocess.run(["readelf", "-rW", path], capture_output=True, text=True, check=True).stdout
    slots = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 5 and re.fullmatch(r"[0-9a-f]{8,16}", f[0]) and f[2].startswith("R_") \
                and not f[2].endswith("RELATIVE"):
            slots[int(f[0], 16)] = (f[2], f[4].split("@")[0])
    return slots


def _kind(reloc_type: str) -> str:
    """readelf's R_X86_64_JUMP_SLOT without the architecture: JUMP_SLOT."""
    return re.sub(r"^R_(X86_64|386|AARCH64|ARM)_", "", reloc_type)


def _relro(path) -> tuple[int, int]:
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    f = next(ln.split() for ln in out.splitlines() if ln.split()[:1] == ["GNU_RELRO"])
    return int(f[2], 16), int(f[2], 16) + int(f[5], 16)


@pytest.mark.parametrize("width,parts", [
    (80, ("a b", "hello calls")),                                      # the path fits the line
    (40, ("a b", "hello calls")),                                      # 'path:' leaves no room
    (80, ("x" * 30 + " y", "z" * 30 + " w", "hello calls")),           # longer than the line
])
def test_got_heading_keeps_a_path_with_spaces_whole(short_tmp, width, parts):
    prog = _program_in(short_tmp, *parts)
    res = run_gdb([f"set width {width}", "start", "echo ==GOT==\\n", "got puts", "got"], program=prog)
    assert_no_traceback(res)
    lines = res.stdout.split("==GOT==\n", 1)[1].splitlines()
    heads = [ln for ln in lines if ln.startswith(prog + ":")]
    assert len(heads) == 2, (prog, res.stdout)        # whole, at the start of a line, each time
    for ln in lines:                                  # nothing else is wider than gdb's width
        assert len(ln) <= width or ln == prog + ":", (len(ln), ln)
    if len(prog) + 2 + len("PIE") > width:
        assert heads == [prog + ":"] * 2              # alone: no room for a word beside it
    # counted nouns: readelf's GOT relocations for the whole table, one for 'got puts'
    n = len(_readelf_slots(prog))
    text = "\n".join(lines)
    assert re.search(r"\b1 slot\b(?!s)", text) and f"{n} slots" in text, text      # on one line each
    assert "1 slots" not in text


def test_the_three_commands_say_one_fact_under_one_key(short_tmp):
    prog = _program_in(short_tmp, "a b", "hello calls")
    res = run_gdb(["start", *json_wrapped("got --json"), *json_wrapped("plt --json"),
                   *json_wrapped("plt-walk puts --json"), *json_wrapped("plt-walk __cxa_finalize --json")],
                  program=prog)
    assert_no_traceback(res)
    got, plt, walk, walk_data = res.json_documents()
    bias = addr(got["objects"][0]["bias"])
    assert isinstance(got["objects"][0]["bias"], str) and got["objects"][0]["bias"].startswith("0x")
    lo, hi = _relro(prog)
    assert [addr(a) for a in got["objects"][0]["relro_range"]] == [bias + lo, bias + hi]
    assert all(isinstance(a, str) for a in got["objects"][0]["relro_range"])
    oracle = _readelf_slots(prog)
    slots = {addr(s["address"]) - bias: s for s in got["slots"]}
    assert set(slots) == set(oracle)
    for off, (rtype, name) in oracle.items():
        s = slots[off]
        assert s["reloc_type"] == rtype and s["kind"] == _kind(rtype), (s, rtype)
        assert s["symbol"].split("@")[0] == name
        assert isinstance(s["value"], str) and isinstance(s["file_value"], str)
    # plt-walk: got's kind and reloc_type (readelf), got's value, no slot_type
    for w in (walk, walk_data):
        off = addr(w["slot_address"]) - bias
        assert (w["reloc_type"], w["kind"]) == (oracle[off][0], _kind(oracle[off][0]))
        assert "slot_type" not in w
        assert w["value"] == slots[off]["value"] and w["state"] == slots[off]["state"]
    assert walk["kind"] == "JUMP_SLOT" and walk_data["kind"] == "GLOB_DAT"
    # plt: state is got's state word, target got's target, for the same slot
    by_slot = {s["address"]: s for s in got["slots"]}
    stubs = [s for s in plt["stubs"] if s["slot_address"] in by_slot]
    assert stubs
    for s in stubs:
        g = by_slot[s["slot_address"]]
        assert (s["state"], s["target"]) == (g["state"], g["target"]), (s, g)
    # plt-walk hops: a location object; the call site is main+N at the line addr2line names
    hops = {h["step"]: h for h in walk["hops"]}
    call = hops["call site"]
    assert "where" not in call and set(call["location"]) == {"address", "symbol", "offset", "file", "line",
                                                             "object"}
    main = nm_symbols(prog)["main"][0]
    site = next(a for a, t in objdump_calls(prog, "main") if "<puts@plt>" in t)
    assert addr(call["location"]["address"]) == bias + site
    assert (call["location"]["symbol"], call["location"]["offset"]) == ("main", site - main)
    line = subprocess.run(["addr2line", "-e", prog, hex(site)], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert f"{call['location']['file']}:{call['location']['line']}" == line.rsplit("/", 1)[-1].split()[0]
    assert call["location"]["object"] == "hello calls" and call["section"] == ".text"
    assert hops["stub"]["location"]["symbol"] == "puts@plt" and hops["stub"]["section"] == ".plt"
    assert hops["GOT slot"]["section"] == ".got.plt" and hops["GOT slot"]["location"]["symbol"] is None


def test_live_write_names_the_writer_as_a_location(short_tmp):
    prog = _program_in(short_tmp, "a b", "hello calls")
    res = run_gdb(["start", *json_wrapped("plt-walk puts --live --json"), "kill"], program=prog)
    assert_no_traceback(res)
    (walk,) = res.json_documents()
    live = walk["live"]
    assert set(live) == {"location", "backtrace", "old", "new", "target", "write_count"}
    assert live["location"]["symbol"] == "_dl_fixup" and live["location"]["object"].startswith("ld-linux")
    assert all(isinstance(live[k], str) and live[k].startswith("0x") for k in ("old", "new"))
    assert live["backtrace"][0] == live["location"]
    assert any(f["symbol"] == "main" and f["file"] == "hello_calls.c" for f in live["backtrace"])


def _escape_before(rows: list[str], token: str, pattern: str | None = None) -> str:
    """The escape sequence the screen shows just before *token* (or *pattern*, a regular
    expression): gdb's own style for it, or ours."""
    for r in rows:
        m = re.search(r"(\x1b\[[0-9;]*m)" + (pattern or re.escape(token)), r)
        if m:
            return m.group(1)
    raise AssertionError(f"{token!r} is not styled in {[ascii(r) for r in rows]}")


def test_styles_are_gdbs_own_when_styling_is_on(short_tmp):
    from tests.support.tmux import TmuxGdb

    prog = _program_in(short_tmp, "a b", "hello calls")
    with TmuxGdb(width=80, program=prog) as t:
        t.run("set style address foreground magenta")     # not the defaults: they are followed
        t.run("set style function foreground cyan")
        t.run("start")
        gdb_rows = t.run("print &main", styled=True) + t.run("frame", styled=True)
        main_at = re.search(r"0x[0-9a-f]+", "".join(gdb_rows)).group(0)
        address, function = _escape_before(gdb_rows, main_at), _escape_before(gdb_rows, "main")
        filename = _escape_before(gdb_rows, "", r"[^\x1b\s]*hello_calls\.c")      # 'at FILE:LINE' of 'frame'
        walk = t.json("plt-walk puts")
        rows = t.run("plt-walk puts", styled=True)
        for h in walk["hops"]:
            assert _escape_before(rows, h["address"]) == address, h
        assert _escape_before(rows, walk["slot_address"]) == address
        assert _escape_before(rows, walk["symbol"]) == function
        assert _escape_before(rows, "main+") == function and _escape_before(rows, "puts@plt") == function
        assert _escape_before(rows, "hello_calls.c") == filename
        got_rows = t.run("got puts", styled=True)
        assert _escape_before(got_rows, prog) == filename           # the heading's path
        t.run("set style enabled off")
        for c in ("plt-walk puts", "got puts"):
            assert not any("\x1b[" in r for r in t.run(c, styled=True)), c
    res = run_gdb(["start", "plt-walk puts", "got puts", "plt puts"], program=prog)     # batch: plain
    assert "\x1b[" not in res.stdout and prog + ":" in res.stdout
