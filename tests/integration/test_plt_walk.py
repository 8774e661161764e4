"""plt-walk in real gdb: static walk vs objdump/readelf, the --live watchpoint walk (writer,
old -> new vs dlsym, clean-up, program left stopped), -fno-plt, IBT, and every bad input."""
import re

import pytest

from tests.support.gdbrun import addr, assert_no_traceback, gdb_error_lines, json_wrapped, run_gdb
from tests.support.plt_oracles import (build_demo, build_hello, nm_symbols, objdump_calls, objdump_stubs,
                                       program_said, readelf_relocs)

pytestmark = pytest.mark.gdb


def test_static_walk_of_a_lazy_binary():
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    res = run_gdb([*json_wrapped("plt-walk puts --json"), "plt-walk puts"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    hops = {h["step"]: h for h in doc["hops"]}
    call = next(a for a, t in objdump_calls(exe, "main") if "<puts@plt>" in t)
    stub = next(a for a, s in objdump_stubs(exe).items() if s["name"] == "puts@plt")
    relocs = [r for r in readelf_relocs(exe) if r["section"] == ".rela.plt"]
    index = next(i for i, r in enumerate(relocs) if r["name"] == "puts")
    assert addr(hops["call site"]["address"]) == call
    assert addr(hops["stub"]["address"]) == stub
    assert addr(hops["GOT slot"]["address"]) == relocs[index]["offset"]
    assert addr(hops["lazy stub"]["address"]) == stub + 6 and f"push {index}" in hops["lazy stub"]["code"][0]
    assert ".plt[0]" in hops
    assert f"relocation index {index}" in " ".join(doc["first_call"])
    assert "First call:" in res.stdout and "Later calls:" in res.stdout


def test_live_walk_reports_dl_fixup_and_cleans_up():
    exe, _, _ = build_demo()
    res = run_gdb(["break checkpoint", "run", *json_wrapped("plt-walk getpid --live --json"),
                   "maint info breakpoints", "echo @@FRAME\\n", "frame", "continue"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    said = program_said(res.stdout)
    live = doc["live"]
    assert live["location"]["symbol"] == "_dl_fixup"
    assert live["location"]["object"].startswith("ld-linux")
    assert any("_dl_runtime_resolve" in (f["symbol"] or "") for f in live["backtrace"])
    assert any(f["symbol"] == "main" for f in live["backtrace"])
    assert addr(live["old"]) == addr(doc["value"]) and doc["state"] == "unresolved"
    assert addr(live["new"]) == said["getpid"]                      # dlsym's answer
    assert live["target"] == "getpid in libc.so.6"
    maint = res.stdout.split("@@GTK-JSON-END@@")[-1].split("@@FRAME")[0]
    assert "watchpoint" not in maint.lower()                  # nothing left behind
    after = res.stdout.split("@@FRAME")[1]
    assert "_dl_fixup" in after.splitlines()[1]               # still stopped inside the resolver
    assert "pid=" in after                                    # and 'continue' runs to the end


def test_live_walk_on_resolved_or_bound_slot_is_refused_cleanly():
    exe = build_hello(["-Wl,-z,now"], name="hello_pie-now")
    res = run_gdb(["break checkpoint", "run", "plt-walk puts --live", "maint info breakpoints", "kill"],
                  program=exe)
    assert_no_traceback(res)
    err = [l for l in gdb_error_lines(res) if "plt-walk" in l or "already" in l]
    assert err and "already bound-at-load" in err[0] and "Fix:" in err[0]
    assert "watchpoint" not in res.stdout.lower()


def test_fno_plt_walk_calls_through_the_slot():
    exe = build_hello(["-fno-plt"], name="hello_fno-plt")
    res = run_gdb(["break checkpoint", "run", *json_wrapped("plt-walk puts --json"),
                   *json_wrapped("plt --json"), "kill"], program=exe)
    walk, plt = res.json_documents()
    hops = {h["step"]: h for h in walk["hops"]}
    assert "stub" not in hops and "-fno-plt" in hops["call site"]["note"]
    assert walk["kind"] == "GLOB_DAT" and walk["state"] == "bound-at-load"
    assert walk["target"] == "puts in libc.so.6"
    assert not [s for s in plt["stubs"] if s["symbol"].startswith("puts")]


def test_ibt_walk_uses_plt_sec_and_lazy_entry():
    exe = build_hello(["-fcf-protection", "-Wl,-z,ibtplt", "-Wl,-z,lazy"], name="hello_ibt")
    res = run_gdb([*json_wrapped("plt-walk puts --json")], program=exe)
    doc = res.json_documents()[0]
    hops = {h["step"]: h for h in doc["hops"]}
    oracle = {s["name"]: (a, s["section"]) for a, s in objdump_stubs(exe).items()}
    assert (addr(hops["stub"]["address"]), ".plt.sec") == oracle["puts@plt"]
    assert hops["stub"]["code"][0].endswith("endbr64")
    assert hops["lazy stub"]["section"] == ".plt" and hops["lazy stub"]["location"]["object"] == doc["object"]


@pytest.mark.parametrize("setup,command,program,expect", [
    ([], "got", False, "no executable is loaded"),
    ([], "plt-walk puts", False, "no executable is loaded"),
    ([], "got '('", True, "bad regular expression"),
    ([], "plt 'a[' ", True, "bad regular expression"),
    ([], "plt-walk no_such_function", True, "no GOT slot for 'no_such_function'"),
    ([], "plt-walk puts --live", True, "needs a process"),
    ([], "plt-walk", True, "the following arguments are required: symbol"),
])
def test_bad_input_is_one_line(setup, command, program, expect):
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy") if program else None
    res = run_gdb([*setup, command, "echo still-alive\\n"], program=exe)
    assert_no_traceback(res)
    assert expect in res.stderr, res.output
    assert "still-alive" in res.stdout


def test_live_walk_on_core_is_refused(tmp_path):
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    core = tmp_path / "core"
    run_gdb(["break checkpoint", "run", f"gcore {core}", "kill"], program=exe)
    res = run_gdb(["plt-walk atoi --live", "plt-walk atoi", "echo still-alive\\n"], program=exe, core=core)
    assert_no_traceback(res)
    assert "needs a live process, but the target is a core file" in res.stderr
    assert "unresolved" in res.stdout and "still-alive" in res.stdout


def test_starti_before_relocation_and_completion():
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    res = run_gdb(["starti", *json_wrapped("got --json"), "complete plt-walk pu", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    jumps = [r for r in doc["slots"] if r["kind"] == "JUMP_SLOT"]
    # ld.so has not run: the slots hold the unrelocated file values
    assert jumps and all(r["state"] == "not-relocated" and addr(r["value"]) == addr(r["file_value"]) for r in jumps)
    assert "plt-walk puts" in res.stdout


def test_walk_inside_a_shared_library_and_a_dlopened_plugin():
    exe, lib, plugin = build_demo()
    res = run_gdb(["break checkpoint", "run", *json_wrapped("plt-walk strlen --json"),
                   *json_wrapped("plt-walk toupper --json"), "kill"], program=exe, args=[plugin])
    assert_no_traceback(res)
    strlen, toupper = res.json_documents()
    said = program_said(res.stdout)
    for doc, path, func, entry, callee in ((strlen, lib, "lib_hello", "lib_hello", "strlen"),
                                           (toupper, plugin, "plugin_run", "plugin_run", "toupper")):
        bias = said[entry] - nm_symbols(path)[entry][0]
        hops = {h["step"]: h for h in doc["hops"]}
        call = next(a for a, t in objdump_calls(path, func) if f"<{callee}@plt>" in t)
        assert doc["object"] == path.name
        assert addr(hops["call site"]["address"]) == bias + call
        assert hops["call site"]["location"]["symbol"] == func and hops["call site"]["location"]["offset"] > 0
        assert doc["target"] == f"{callee} in libc.so.6" or doc["target"].startswith("__strlen")


@pytest.mark.parametrize("flags,name,writer,frames", [
    (["-Wl,-z,lazy"], "hello_pie-lazy", "_dl_fixup", "_dl_runtime_resolve"),
    (["-Wl,-z,now"], "hello_pie-now", "elf_dynamic_do_Rela", "_dl_relocate_object"),
])
def test_live_walk_from_starti(flags, name, writer, frames):
    """From the first instruction: the lazy slot's load-time rebias is not mistaken for the
    binding; a BIND_NOW slot is seen being filled by ld.so's relocation pass."""
    exe = build_hello(flags, name=name)
    nm_main = nm_symbols(exe)["main"][0]
    res = run_gdb(["starti", *json_wrapped("plt-walk atoi --live --json"),
                   "print/x (long)&main", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert doc["state"] == "not-relocated"
    live = doc["live"]
    assert live["location"]["symbol"] == writer and any(frames in (f["symbol"] or "") for f in live["backtrace"])
    bias = int(res.stdout.split("= 0x")[-1].split()[0], 16) - nm_main
    stub = next(a for a, s in objdump_stubs(exe).items() if s["name"] == "atoi@plt")
    assert addr(live["old"]) == stub + 6            # the file's value (ld points it at the push even for -z now)
    assert live["target"] == "atoi in libc.so.6"
    if "lazy" in name:
        assert live["write_count"] == 2                                   # rebias first, then _dl_fixup
    assert bias > 0


def test_after_exit_got_falls_back_to_the_file_and_live_is_refused():
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    res = run_gdb(["run", *json_wrapped("got --json"), "plt-walk atoi --live", "echo still-alive\\n"],
                  program=exe)
    assert_no_traceback(res)
    assert res.json_documents()[0]["mode"] == "file"
    assert "needs a process, but none is running" in res.stderr and "still-alive" in res.stdout


def test_walk_prefers_the_object_of_the_selected_frame():
    """Stopped in lib_hello (libpltlib.so): its printf goes through the library's own PLT and
    GOT slot (still unresolved), not the executable's (already resolved)."""
    exe, lib, _ = build_demo()
    res = run_gdb(["break lib_hello", "run", *json_wrapped("plt-walk printf --json"),
                   "echo @@ADDR\\n", "print/x (long)&lib_hello", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    gdb_addr = int(res.stdout.split("@@ADDR")[1].split("= ")[1].split()[0], 16)     # gdb's own answer
    bias = gdb_addr - nm_symbols(lib)["lib_hello"][0]
    hops = {h["step"]: h for h in doc["hops"]}
    call = next(a for a, t in objdump_calls(lib, "lib_hello") if "<printf@plt>" in t)
    slot = next(r["offset"] for r in readelf_relocs(lib) if r["name"] == "printf")
    assert doc["object"] == lib.name
    assert addr(hops["call site"]["address"]) == bias + call
    assert addr(doc["slot_address"]) == bias + slot and doc["state"] == "unresolved"


def test_refused_irelative_and_null_weak_slot_explain_themselves():
    exe, _, _ = build_demo()
    import subprocess

    nm = subprocess.run(["nm", "-D", str(exe)], capture_output=True, text=True).stdout
    assert re.search(r"^\s+w __gmon_start__$", nm, re.M), nm          # weak, undefined
    res = run_gdb(["break checkpoint", "run", "plt-walk add --live",
                   *json_wrapped("plt-walk __gmon_start__ --json"), "maint info breakpoints", "kill"],
                  program=exe)
    assert_no_traceback(res)
    err = next(l for l in gdb_error_lines(res) if "already" in l)
    # add is an IRELATIVE slot of a lazily linked binary: "-z lazy" is not the fix, starti is
    assert "IRELATIVE" in err and "'starti'" in err and "-z lazy" not in err
    doc = res.json_documents()[0]
    assert doc["state"] == "null" and addr(doc["value"]) == 0
    assert "weak" in doc["first_call"][0] and "goes straight" not in " ".join(doc["later_calls"])
    assert "watchpoint" not in res.stdout.split("@@GTK-JSON-END@@")[-1].lower()
