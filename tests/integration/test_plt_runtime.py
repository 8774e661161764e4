"""The runtime truth (issue 13 items 1-7): binding mode from the process, user watchpoints
left alone, dlmopen namespaces, TLS slots, which slot plt-walk walks, a file rebuilt on
disk, version-aware names, static-pie wording.  Oracles: the program's own dlsym/dlinfo
output, /proc/PID/maps and /proc/PID/mem, readelf/nm, LD_DEBUG=bindings, gdb's own
'info watchpoints' and 'info symbol'."""
import json
import os
import re
import shutil
import subprocess

import pytest

from tests.support.gdbrun import (addr, assert_no_traceback, compile_c, gdb_error_lines, json_wrapped,
                                  run_gdb)
from tests.support.plt_oracles import (HAVE_I386, I686, NO_I386, build_demo, build_hello, nm_symbols, program_said,
                                       readelf_relocs, readelf_sections)

pytestmark = pytest.mark.gdb


def _rows(doc, obj=None):
    return {r["symbol"].split("@")[0]: r for r in doc["slots"] if obj is None or r["object"] == obj}


# -- item 1: binding mode from the process ------------------------------------------------
def test_dlopen_rtld_now_is_bound_at_load_and_walk_says_so():
    """plt_demo dlopen()s the plugin with RTLD_NOW: its lazily linked GOT was bound inside
    dlopen (GOT[1]=GOT[2]=0, read here from /proc/PID/mem as the oracle)."""
    exe, _, plugin = build_demo()
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --object plugin.so --json"),
                   *json_wrapped("plt-walk toupper --json"), "plt-walk toupper --live",
                   "python import gdb; print('@@PID', gdb.selected_inferior().pid)",
                   "info proc mappings", "kill"], program=exe, args=[plugin])
    assert_no_traceback(res)
    got, walk = res.json_documents()
    obj = got["objects"][0]
    assert obj["binding"] == "now" and "GOT[1]=GOT[2]=0" in obj["binding_reason"]
    rows = _rows(got)
    assert rows["toupper"]["state"] == "bound-at-load" and rows["puts"]["state"] == "bound-at-load"
    assert walk["binding"] == "now" and walk["state"] == "bound-at-load"
    story = " ".join(walk["first_call"])
    assert "_dl_fixup" not in story and "bound at load" in story
    assert not any(h["step"] == ".plt[0]" and "GOT[1]=0x0" in h["note"] for h in walk["hops"])
    err = [l for l in gdb_error_lines(res) if "already" in l]
    assert err and "RTLD_NOW" in err[0]


def test_ld_bind_now_story_and_live_advice():
    exe, _, _ = build_demo()
    res = run_gdb(["set environment LD_BIND_NOW=1", "break checkpoint", "run",
                   *json_wrapped("plt-walk getpid --json"), "plt-walk getpid --live", "kill"], program=exe)
    assert_no_traceback(res)
    walk = res.json_documents()[0]
    assert walk["binding"] == "now" and "LD_BIND_NOW" in walk["binding_reason"]
    assert walk["state"] == "bound-at-load" and addr(walk["value"]) == program_said(res.stdout)["getpid"]
    assert "_dl_fixup" not in " ".join(walk["first_call"])
    err = next(l for l in gdb_error_lines(res) if "already" in l)
    assert "unset environment LD_BIND_NOW" in err


def test_lazy_object_reports_its_resolver_in_got2():
    """The lazy story names what GOT[2] really holds (gdb's 'info symbol' as the oracle)."""
    exe, _, _ = build_demo()
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --json"), *json_wrapped("plt-walk getpid --json"),
                   "kill"], program=exe)
    got, walk = res.json_documents()
    assert got["objects"][0]["binding"] == "lazy" and "GOT[2]=0x" in got["objects"][0]["binding_reason"]
    plt0 = next(h for h in walk["hops"] if h["step"] == ".plt[0]")
    assert re.search(r"GOT\[2\]=0x[0-9a-f]+ \(_dl_runtime_resolve_xsavec? in ld-linux", plt0["note"]), plt0


# -- item 2: user breakpoints and watchpoints untouched ------------------------------------
WATCHERS = r"""
#include <stdio.h>
#include <stdlib.h>
volatile long w1, w2, w3, w4;
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main(int argc, char **argv) {
    puts("start");
    checkpoint();
    w1 = atoi(argc > 1 ? argv[1] : "7");
    w2 = w1 + 1; w3 = w2 + 1; w4 = w3 + 1;
    printf("%ld\n", w4);
    return 0;
}
"""


def test_live_walk_keeps_four_hardware_watchpoints_hardware():
    exe = compile_c(WATCHERS, name="watchers", flags=["-Wl,-z,lazy", "-O0", "-g"])
    res = run_gdb(["break checkpoint", "run", "watch w1", "watch w2", "watch w3", "watch w4",
                   "echo @@BEFORE\\n", "info watchpoints", *json_wrapped("plt-walk atoi --live --json"),
                   "echo @@AFTER\\n", "info watchpoints", "continue", "kill"], program=exe)
    assert_no_traceback(res)
    before = res.stdout.split("@@BEFORE")[1].split("@@GTK-JSON-BEGIN")[0]
    after = res.stdout.split("@@AFTER")[1]
    assert before.count("hw watchpoint") == 4
    table = after.split("Continuing")[0] if "Continuing" in after else after
    assert table.count("hw watchpoint") == 4 and "\nwatchpoint" not in table.replace("hw watchpoint", "")
    doc = res.json_documents()[0]
    assert doc["live"]["location"]["symbol"] == "_dl_fixup"
    # the next continue stops at the user's first hardware watchpoint, as it would have
    assert "Hardware watchpoint 2: w1" in after


# -- item 5: which slot plt-walk walks ----------------------------------------------------
def test_walk_in_libc_frame_prefers_the_program_import():
    """Stopped inside libc (puts), 'plt-walk memcpy' must not walk libc's IRELATIVE slot."""
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    res = run_gdb(["break puts", "run", *json_wrapped("plt-walk memcpy --json"), "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert doc["object"] == exe.name and doc["kind"] == "JUMP_SLOT"
    assert "libc.so.6" in {c["object"] for c in doc["candidates"]}
    assert "also:" in " ".join(doc["notes"])


VERSIONED_LIB = r"""
int foo_v1(void) { return 1; }
int foo_v2(void) { return 2; }
__asm__(".symver foo_v1, foo@VER_1");
__asm__(".symver foo_v2, foo@@VER_2");
"""
VERSIONED_MAIN = r"""
#include <stdio.h>
int foo_old(void);
int foo(void);
__asm__(".symver foo_old, foo@VER_1");
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main(void) { printf("%d %d\n", foo_old(), foo()); checkpoint(); return 0; }
"""


@pytest.fixture(scope="module")
def versioned(tmp_path_factory):
    d = tmp_path_factory.mktemp("ver")
    (d / "v.map").write_text("VER_1 { global: foo; local: *; };\nVER_2 { global: foo; } VER_1;\n")
    lib = compile_c(VERSIONED_LIB, name="libver.so",
                    flags=["-shared", "-fPIC", f"-Wl,--version-script={d / 'v.map'}"])
    exe = compile_c(VERSIONED_MAIN, name="vermain",
                    flags=["-Wl,-z,lazy", f"-L{lib.parent}", "-lver", f"-Wl,-rpath,{lib.parent}"])
    return exe, lib


def test_two_versions_imported_walk_says_which_and_lists_the_other(versioned):
    exe, lib = versioned
    vers = {r["version"] for r in readelf_relocs(exe) if r["name"] == "foo"}
    assert vers == {"VER_1", "VER_2"}                                  # the oracle
    res = run_gdb([*json_wrapped("plt-walk foo --json"), *json_wrapped("plt-walk foo@VER_1 --json"),
                   *json_wrapped("got '^foo$' --json")], program=exe)
    assert_no_traceback(res)
    walk, walk1, got = res.json_documents()
    other = [c["symbol"] for c in walk["candidates"]]
    assert {walk["symbol"], *other} == {"foo@VER_1", "foo@VER_2"}
    assert walk1["symbol"] == "foo@VER_1"
    assert {r["symbol"] for r in got["slots"]} == {"foo@VER_1", "foo@VER_2"}   # '^foo$' matches both


def test_data_symbol_is_refused_fast():
    src = '#include <iostream>\nint main(){ std::cout << "hi" << std::endl; return 0; }\n'
    exe = compile_c(src, name="cout_prog.cc" if False else "cout_prog", compiler="g++",
                    flags=["-x", "c++", "-Wl,-z,lazy"])
    res = run_gdb(["break main", "run", "plt-walk _ZSt4cout", "plt-walk ''", "echo still-alive\\n",
                   *json_wrapped("got cout --object libstdc++ --json"), "kill"], program=exe, timeout=60)
    assert_no_traceback(res)
    errs = gdb_error_lines(res)
    assert any("_ZSt4cout" in e and "data symbol" in e for e in errs), errs
    assert any("no symbol given" in e for e in errs), errs
    got = res.json_documents()[0]
    row = next(r for r in got["slots"] if (r.get("symbol_raw") or "").startswith("_ZSt4cout"))
    assert row["symbol"].startswith("std::cout")                       # demangled, raw kept
    oracle = subprocess.run(["c++filt", "_ZSt4cout"], capture_output=True, text=True).stdout.strip()
    assert row["symbol"].split("@")[0] == oracle


# -- item 6: a file rebuilt on disk -----------------------------------------------------
def test_rebuilt_executable_is_detected(tmp_path):
    src = (build_hello.__globals__["EXAMPLES"] / "hello_calls.c").read_text()
    exe = tmp_path / "prog"
    subprocess.run(["gcc", "-Wl,-z,lazy", "-o", exe, "-x", "c", "-"], input=src, text=True, check=True)
    other = tmp_path / "prog2"
    subprocess.run(["gcc", "-Wl,-z,lazy", "-O2", "-o", other, "-x", "c", "-"],
                   input=src + "\nint extra_function(void) { return 42; }\n", text=True, check=True)
    ids = [re.search(r"Build ID: (\w+)", subprocess.run(["readelf", "-n", p], capture_output=True,
                                                        text=True).stdout).group(1) for p in (exe, other)]
    assert ids[0] != ids[1]                                            # the oracle
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --json"), f"shell rm -f {exe} && cp {other} {exe}",
                   *json_wrapped("got --json"), "got", "kill"], program=exe)
    assert_no_traceback(res)
    before, after = res.json_documents()
    assert before["objects"][0]["stale"] is None
    # the process still maps the old file (/proc/PID/exe): the table is read from it, so it
    # is the same table as before the rebuild, and a note says why (pltreal: it used to lay
    # the new file's relocations over the old GOT, with only a warning)
    assert after["objects"][0]["stale"] is None
    assert [(r["address"], r["symbol"], r["value"]) for r in after["slots"]] == \
        [(r["address"], r["symbol"], r["value"]) for r in before["slots"]]
    assert any("deleted or replaced" in n and f"{exe} (deleted)" in n for n in after["notes"]), after["notes"]


# -- item 7: names with and without versions; static-pie wording ---------------------------
def test_regex_matches_with_and_without_version():
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    res = run_gdb([*json_wrapped("got '^puts$' --json"), *json_wrapped("got '^puts@GLIBC_2.2.5$' --json"),
                   "got 'a{99999999999}'", "echo still-alive\\n"], program=exe)
    assert_no_traceback(res)
    a, b = res.json_documents()
    assert [r["symbol"] for r in a["slots"]] == [r["symbol"] for r in b["slots"]] == ["puts@GLIBC_2.2.5"]
    assert "bad regular expression" in res.stderr and "still-alive" in res.stdout


def test_static_pie_has_no_ld_so_wording_and_no_data_irelative():
    src = r"""
#include <string.h>
#include <stdio.h>
void *(*table[])(void *, const void *, size_t) = { memcpy };   /* an IRELATIVE data pointer */
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main(void) { char b[8]; table[0](b, "hi", 3); puts(b); checkpoint(); return 0; }
"""
    exe = compile_c(src, name="spie_table", flags=["-static-pie"])
    secs = readelf_sections(exe)
    data = [r for r in readelf_relocs(exe) if r["type"] == "IRELATIVE"
            and secs[".data"][0] <= r["offset"] < secs[".data"][0] + secs[".data"][1]]
    assert data, "the fixture must have an IRELATIVE in .data"
    res = run_gdb(["starti", *json_wrapped("got --json"), "break checkpoint", "continue",
                   *json_wrapped("got --json"), "kill"], program=exe)
    assert_no_traceback(res)
    early, late = res.json_documents()
    assert early["objects"][0]["kind"] == "static-pie executable"
    assert data[0]["offset"] not in {addr(r["address"]) - addr(late["objects"][0]["bias"]) for r in late["slots"]}
    assert all("ld.so" not in r["target"] for r in early["slots"])
    assert not any(r["symbol"].startswith("__libc_") for r in late["slots"]), [r["symbol"] for r in late["slots"]]


def test_completion_offers_imported_functions_only():
    exe, _, _ = build_demo()
    res = run_gdb(["complete plt-walk _", "complete plt-walk ge"], program=exe)
    assert "__gmon_start__" not in res.stdout and "_ITM_" not in res.stdout
    assert "plt-walk getpid" in res.stdout


# -- the auxiliary vector: /proc/PID/auxv for a live local process, gdb's for a core ---------
_AUXV_PROBE = r"""python
import json
from gdb_toolkit.common.procfs import parse_auxv
from gdb_toolkit.plt import gdb_live
gdb_said = parse_auxv(gdb.execute("info auxv", to_string=True))
print("@@AUXV " + json.dumps([gdb_said, gdb_live._local_auxv(WORD), gdb_live._auxv(WORD)]))"""


@pytest.mark.parametrize("compiler,word", [
    ("gcc", 8), pytest.param(I686, 4, marks=pytest.mark.skipif(not HAVE_I386, reason=NO_I386))])
def test_auxv_read_from_proc_equals_gdbs_info_auxv(compiler, word, tmp_path):
    exe = build_hello(["-Wl,-z,lazy"], compiler=compiler, name=f"hello_auxv{word}")
    core = tmp_path / "core"
    res = run_gdb(["break checkpoint", "run", _AUXV_PROBE.replace("WORD", str(word)),
                   f"generate-core-file {core}", "kill"], program=exe)
    assert_no_traceback(res)
    gdb_said, local, used = json.loads(res.stdout.split("@@AUXV ", 1)[1].splitlines()[0])
    for key in ("AT_PHDR", "AT_ENTRY", "AT_SYSINFO_EHDR", "AT_PAGESZ", "AT_BASE", "AT_RANDOM", "AT_EXECFN"):
        assert local[key] == gdb_said[key], key
    assert {k: v for k, v in gdb_said.items() if k in local} == {k: v for k, v in local.items() if k in gdb_said}
    assert used == local
    # a core: nothing to read in /proc -- gdb's own auxv (from the core's NT_AUXV note)
    res = run_gdb([_AUXV_PROBE.replace("WORD", str(word))], program=exe, core=core)
    assert_no_traceback(res)
    gdb_said, local, used = json.loads(res.stdout.split("@@AUXV ", 1)[1].splitlines()[0])
    assert local is None and used == gdb_said and used["AT_PHDR"]
