"""got / plt in real gdb: file view, live lazy process, LD_BIND_NOW, -z now, core file,
static and stripped binaries, dlopen'ed and linked shared objects.  Expected values come from
readelf/objdump/nm, the program's own dlsym() output and gdb's own 'info symbol'."""
import os
import re

import pytest

from tests.support.gdbrun import addr, assert_no_traceback, gdb_json, json_wrapped, run_gdb
from tests.support.plt_oracles import (build_demo, build_hello, nm_symbols, objdump_stubs,
                                       program_said, readelf_relocs, readelf_relro, stripped_copy)

pytestmark = pytest.mark.gdb


def _rows(doc, obj=None):
    return {r["symbol"].split("@")[0]: r for r in doc["slots"] if obj is None or r["object"] == obj}


@pytest.fixture(scope="module")
def demo_live():
    """plt_demo stopped at checkpoint() with the plugin dlopen'ed: got/plt JSON + oracles."""
    exe, lib, plugin = build_demo()
    nm_main = nm_symbols(exe)["main"][0]
    memcpy_off = next(r["offset"] for r in readelf_relocs(exe) if r["name"] == "memcpy")
    res = run_gdb(["set pagination off", "break checkpoint", "run",
                   *json_wrapped("got --all-objects --json"), *json_wrapped("plt --json"),
                   f"info symbol *(long *)((char *)&main - {nm_main} + {memcpy_off})",
                   *json_wrapped("got --json"), "kill"],
                  program=exe, args=[plugin])
    assert_no_traceback(res)
    docs = res.json_documents()
    assert len(docs) == 3, res.output
    return dict(exe=exe, lib=lib, plugin=plugin, all=docs[0], plt=docs[1], main=docs[2],
                said=program_said(res.stdout), out=res.stdout, nm_main=nm_main)


def test_resolved_slots_equal_dlsym(demo_live):
    rows = _rows(demo_live["all"], "plt_demo")
    said = demo_live["said"]
    for name in ("memcpy", "puts", "printf", "lib_hello"):
        assert rows[name]["state"] == "resolved", rows[name]
        assert addr(rows[name]["value"]) == said[name], name
    assert rows["puts"]["target"] == "puts in libc.so.6"
    assert rows["lib_hello"]["target_object"] == "libpltlib.so"


def test_ifunc_target_named_like_gdb_info_symbol(demo_live):
    m = re.search(r"^(\S+) in section \.text of .*libc\.so\.6", demo_live["out"], re.M)
    assert m, demo_live["out"]
    memcpy = _rows(demo_live["all"], "plt_demo")["memcpy"]
    # gdb may pick another alias at the same address (memmove/memcpy twins): compare addresses
    assert memcpy["target_symbol"].replace("memcpy", "memmove") == m.group(1).replace("memcpy", "memmove")
    assert memcpy["target_symbol"] != "memcpy"        # the implementation, not the ifunc


def test_unresolved_slot_is_file_value_plus_bias(demo_live):
    exe = demo_live["exe"]
    bias = demo_live["said"]["main"] - demo_live["nm_main"]
    stubs = {s["name"]: a for a, s in objdump_stubs(exe).items()}
    rows = _rows(demo_live["all"], "plt_demo")
    for name in ("getpid", "dlerror"):
        assert rows[name]["state"] == "unresolved"
        assert addr(rows[name]["value"]) == bias + stubs[f"{name}@plt"] + 6
    slots = {r["name"]: r["offset"] for r in readelf_relocs(exe)}
    assert addr(rows["getpid"]["address"]) == bias + slots["getpid"]
    assert addr(demo_live["all"]["objects"][0]["bias"]) == bias


def test_relro_protection_matches_readelf(demo_live):
    exe = demo_live["exe"]
    bias = demo_live["said"]["main"] - demo_live["nm_main"]
    lo, hi = readelf_relro(exe)
    for r in demo_live["main"]["slots"]:
        assert r["read_only_now"] == (lo + bias <= addr(r["address"]) < hi + bias), r


def test_shared_objects_own_plt_and_dlopen(demo_live):
    said = demo_live["said"]
    objects = {os.path.basename(o["path"]) for o in demo_live["all"]["objects"]}
    assert {"plt_demo", "libpltlib.so", "plugin.so", "libc.so.6"} <= objects
    lib = _rows(demo_live["all"], "libpltlib.so")
    assert lib["strlen"]["state"] == "resolved" and addr(lib["printf"]["value"]) == said["printf"]
    plugin = _rows(demo_live["all"], "plugin.so")
    assert addr(plugin["puts"]["value"]) == said["puts"]
    assert plugin["puts"]["state"] in ("resolved", "bound-at-load")   # dlopen(RTLD_NOW)
    # the stubs of the executable: objdump's addresses + bias
    bias = said["main"] - demo_live["nm_main"]
    oracle = {a + bias for a, s in objdump_stubs(demo_live["exe"]).items() if s["name"].endswith("@plt")}
    assert {addr(s["address"]) for s in demo_live["plt"]["stubs"] if s["kind"] == "stub"} == oracle


def test_own_ifunc_irelative_resolved(demo_live):
    rows = _rows(demo_live["main"])
    assert rows["add"]["kind"] == "IRELATIVE"
    assert rows["add"]["target_symbol"] == "add_generic"
    bias = demo_live["said"]["main"] - demo_live["nm_main"]
    assert addr(rows["add"]["value"]) == bias + nm_symbols(demo_live["exe"])["add_generic"][0]


def test_file_view_before_run():
    exe, _, _ = build_demo()
    doc = gdb_json([], "got", program=exe)
    assert doc["mode"] == "file"
    relocs = {r["offset"]: r for r in readelf_relocs(exe) if r["type"] in ("JUMP_SLOT", "GLOB_DAT", "IRELATIVE")}
    assert {addr(r["address"]) for r in doc["slots"]} == set(relocs)
    for r in doc["slots"]:
        if r["kind"] == "JUMP_SLOT":
            assert r["state"] == "unresolved"
        assert r["symbol"].split("@")[0] == (relocs[addr(r["address"])]["name"] or r["symbol"])


def test_ld_bind_now_run_resolves_everything_at_load():
    exe, _, _ = build_demo()
    res = run_gdb(["set environment LD_BIND_NOW=1", "break checkpoint", "run", *json_wrapped("got --json"), "kill"],
                  program=exe)
    doc = res.json_documents()[0]
    said = program_said(res.stdout)
    rows = _rows(doc)
    assert all(r["state"] != "unresolved" for r in doc["slots"]), doc
    assert addr(rows["getpid"]["value"]) == said["getpid"]
    assert rows["getpid"]["state"] == "bound-at-load"


def test_bind_now_full_relro():
    exe = build_hello(["-Wl,-z,now"], name="hello_pie-now")
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --json"), "kill"],
                  program=exe)
    doc = res.json_documents()[0]
    assert doc["objects"][0]["binding"] == "now"
    jumps = [r for r in doc["slots"] if r["kind"] == "JUMP_SLOT"]
    assert jumps and all(r["state"] == "bound-at-load" and r["read_only_now"] for r in jumps)
    assert {r["symbol"].split("@")[0] for r in jumps} >= {"puts", "atoi"}


def test_non_pie_addresses_are_link_time():
    exe = build_hello(["-no-pie", "-Wl,-z,lazy"], name="hello_nopie-lazy")
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --json"), "kill"], program=exe)
    doc = res.json_documents()[0]
    assert addr(doc["objects"][0]["bias"]) == 0 and doc["objects"][0]["kind"] == "executable"
    slots = {r["name"]: r["offset"] for r in readelf_relocs(exe) if r["type"] == "JUMP_SLOT"}
    rows = _rows(doc)
    assert addr(rows["puts"]["address"]) == slots["puts"] and rows["puts"]["state"] == "resolved"
    assert rows["atoi"]["state"] == "unresolved"


def test_core_file_shows_the_same_table(tmp_path):
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    core = tmp_path / "core.hello"
    live = run_gdb(["break checkpoint", "run", *json_wrapped("got --json"), f"gcore {core}", "kill"],
                   program=exe)
    doc_live = live.json_documents()[0]
    assert core.exists(), live.output
    doc_core = gdb_json([], "got", program=exe, core=core)
    assert doc_core["mode"] == "core"
    strip = lambda d: [(addr(r["address"]), addr(r["value"]), r["state"], r["target"], r["read_only_now"]) for r in d["slots"]]
    assert strip(doc_core) == strip(doc_live)


def test_static_binary():
    exe = build_hello(["-static"], name="hello_static")
    res = run_gdb(["got", "plt", *json_wrapped("got --json"), "starti", *json_wrapped("got --json"),
                   "break checkpoint", "continue", *json_wrapped("got --json"), "plt-walk puts", "kill"],
                  program=exe)
    assert_no_traceback(res)
    assert "statically linked" in res.stdout and "no PLT for imports" in res.stdout
    file_doc, starti_doc, live_doc = res.json_documents()
    n = len([r for r in readelf_relocs(exe) if r["type"] == "IRELATIVE"])
    assert len(file_doc["slots"]) == len(starti_doc["slots"]) == len(live_doc["slots"]) == n
    assert all(r["state"] == "bound-at-load" for r in live_doc["slots"])
    # at starti no ifunc resolver has run: the values are the file's, not a resolved target
    later = {addr(r["address"]): addr(r["value"]) for r in live_doc["slots"]}
    assert all(addr(r["value"]) != later[addr(r["address"])] for r in starti_doc["slots"])
    assert all(r["state"] == "not-relocated" for r in starti_doc["slots"])
    assert "statically linked and has no GOT slot for 'puts'" in res.stderr


def test_stripped_binary_still_named():
    exe = stripped_copy(build_demo()[0])
    res = run_gdb(["starti", "tbreak puts", "continue", *json_wrapped("got --json"),
                   *json_wrapped("plt --json"), "kill"], program=exe)
    got, plt = res.json_documents()
    names = {r["symbol"].split("@")[0] for r in got["slots"]}
    assert {r["name"] for r in readelf_relocs(exe) if r["type"] == "JUMP_SLOT"} <= names
    assert {s["symbol"].split("@")[0] for s in plt["stubs"] if s["kind"] == "stub"} >= {"puts", "getpid"}


def test_dlopen_by_relative_path_with_another_cwd(tmp_path):
    """dlopen("./plugin.so") in a process whose cwd is not gdb's: ld.so lists "./plugin.so",
    which must be found relative to the process, not silently dropped."""
    import shutil

    exe, lib, built = build_demo()
    (tmp_path / "plug").mkdir()
    plugin = tmp_path / "plug" / built.name
    shutil.copy(built, plugin)
    res = run_gdb([f"set cwd {plugin.parent}", "break checkpoint", "run",
                   *json_wrapped("got --all-objects --json"),
                   f"shell mv {plugin} {plugin}.gone", *json_wrapped("got --all-objects --json"), "kill"],
                  program=exe, args=["./" + plugin.name], cwd=tmp_path)
    assert_no_traceback(res)
    assert "plugin_run" in program_said(res.stdout)              # the dlopen worked
    found, gone = res.json_documents()
    rows = _rows(found, plugin.name)
    expected = {r["name"] for r in readelf_relocs(plugin.with_name(plugin.name + ".gone"))
                if r["type"] == "JUMP_SLOT"}
    assert expected and expected <= set(rows), (expected, sorted(rows))
    # a listed object whose file is not here any more is named in a note, not silently dropped
    assert not _rows(gone, plugin.name)
    assert any("./plugin.so" in n for n in gone["notes"]), gone["notes"]
