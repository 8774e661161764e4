"""got/plt/plt-walk against the dynamic linker's runtime truth on shapes the other PLT tests
do not build (the pltreal review): each a defect found and fixed.  Expected values come from
independent oracles: readelf on the unmodified file, LD_DEBUG=bindings, the program's own
dladdr/dlsym answers printed from inside the process, and gdb's own x/gx."""
import ast
import os
import re
import shutil
import struct
import subprocess

import pytest

from tests.support.gdbrun import addr, assert_no_traceback, compile_c, json_wrapped, run_gdb

pytestmark = pytest.mark.gdb

CHECKPOINT = '__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }\n'


def _readelf(*args) -> str:
    return subprocess.run(["readelf", *map(str, args)], capture_output=True, text=True, check=True).stdout


def _got_relocs(path) -> dict[int, tuple[str, str]]:
    """readelf -rW: offset -> (type, symbol) of every GLOB_DAT / JUMP_SLOT relocation."""
    out = {}
    for ln in _readelf("-rW", path).splitlines():
        f = ln.split()
        if len(f) >= 5 and re.fullmatch(r"[0-9a-f]{8,16}", f[0]) and f[2].endswith(("_GLOB_DAT", "_JUMP_SLOT")):
            out[int(f[0], 16)] = (f[2].split("_", 3)[-1], f[4])
    return out


def _section(path, name) -> tuple[int, int]:
    """(address, size) of a section, from readelf -SW."""
    for ln in _readelf("-SW", path).splitlines():
        m = re.search(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", ln)
        if m and m.group(1) == name:
            return int(m.group(2), 16), int(m.group(3), 16)
    raise AssertionError(f"no {name} in {path}")


def _strip_section_headers(src, dst):
    """What sstrip does: drop the section header table (e_shoff/e_shnum/e_shstrndx = 0 and the
    table cut off).  ld.so never reads section headers, so the object still loads and runs."""
    data = bytearray(open(src, "rb").read())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    del data[shoff:]
    struct.pack_into("<Q", data, 0x28, 0)
    struct.pack_into("<HHH", data, 0x3A, 0, 0, 0)
    with open(dst, "wb") as fh:
        fh.write(data)
    os.chmod(dst, 0o755)
    assert "There are no sections" in _readelf("-SW", dst)


# -- objects without section headers (sstrip) -----------------------------------------------
NOSH_LIB = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int nfn(const char *s) { puts(s); return (int)strlen(s); }
int never_called(void) { return atoi("3"); }
"""
NOSH_MAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int nfn(const char *s);
""" + CHECKPOINT + r"""
int main(void) {
    Dl_info info;
    dladdr((void *)nfn, &info);
    nfn("hello");
    printf("base=%p puts=%p\n", info.dli_fbase, dlsym(RTLD_DEFAULT, "puts"));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_library_without_section_headers_has_its_slots_from_the_dynamic_segment(tmp_path):
    """A library stripped of its section header table (sstrip) loads and runs: ld.so finds
    its relocations through DT_RELA/DT_JMPREL.  Before the fix 'got' said '0 slots (no
    dynamic relocations)' and 'plt' blamed -fno-plt."""
    lib = compile_c(NOSH_LIB, name="libnosh.so", out_dir=tmp_path / "orig",
                    flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    (tmp_path / "lib").mkdir()
    stripped = tmp_path / "lib" / "libnosh.so"
    _strip_section_headers(lib, stripped)
    exe = compile_c(NOSH_MAIN, name="noshmain", out_dir=tmp_path,
                    flags=["-Wl,-z,lazy", f"-L{lib.parent}", "-lnosh", f"-Wl,-rpath,{stripped.parent}", "-ldl"])
    want = _got_relocs(lib)                                  # the oracle: the unmodified file
    assert {s for _, s in want.values()} >= {"puts@GLIBC_2.2.5", "strlen@GLIBC_2.2.5", "atoi@GLIBC_2.2.5"}
    plt_lo, plt_size = _section(lib, ".plt")           # it has a PLT, readelf says where
    env = dict(os.environ, LD_DEBUG="bindings")
    bindings = subprocess.run([str(exe)], capture_output=True, text=True, env=env).stderr
    assert re.search(r"binding file \S*libnosh.so \[0\] to \S*libc.so.6 \[0\]: normal symbol `puts'", bindings)
    assert not re.search(r"binding file \S*libnosh.so .*`atoi'", bindings)     # never called: lazy

    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --object libnosh --audit --json"),
                   "plt --object libnosh", "plt-walk --object libnosh atoi",
                   "kill"], program=exe)
    assert_no_traceback(res)
    m = re.search(r"base=(0x[0-9a-f]+) puts=(0x[0-9a-f]+)", res.stdout)
    base, puts = int(m.group(1), 16), int(m.group(2), 16)
    doc = res.json_documents()[0]
    assert doc["objects"][0]["plt"] is True
    rows = {addr(r["address"]) - base: r for r in doc["slots"]}
    assert {off: r["symbol"] for off, r in rows.items()} == {off: s for off, (_, s) in want.items()}
    assert {off: r["kind"] for off, r in rows.items()} == {off: t for off, (t, _) in want.items()}
    by_name = {r["symbol"].split("@")[0]: r for r in doc["slots"]}
    assert by_name["puts"]["state"] == "resolved" and addr(by_name["puts"]["value"]) == puts
    atoi = by_name["atoi"]
    assert atoi["state"] == "unresolved" and atoi["audit"]["verdict"] == "lazy"
    assert plt_lo <= addr(atoi["value"]) - base < plt_lo + plt_size         # still its lazy stub
    assert all(r["audit"]["verdict"] in ("ok", "lazy") for r in doc["slots"]), doc["slots"]
    assert "no section headers" in res.stdout and "-fno-plt" not in res.stdout, res.stdout
    walk = res.stdout[res.stdout.index("atoi@GLIBC_2.2.5 in libnosh.so"):]
    assert "unresolved" in walk.splitlines()[0] and "pushes relocation index" in walk


def test_executable_without_section_headers_file_view_matches_readelf(tmp_path):
    """The program itself without section headers, before 'run': every GOT relocation
    readelf finds in the unmodified file, and the lazy JUMP_SLOT shown as its lazy stub (the
    file value readelf -x .got.plt shows), not 'set by ld.so at load (BIND_NOW)'."""
    lib = compile_c(NOSH_LIB, name="libnosh.so", out_dir=tmp_path / "orig",
                    flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    exe = compile_c(NOSH_MAIN, name="noshmain", out_dir=tmp_path / "orig",
                    flags=["-Wl,-z,lazy", f"-L{lib.parent}", "-lnosh", f"-Wl,-rpath,{lib.parent}", "-ldl"])
    stripped = tmp_path / "noshmain"
    _strip_section_headers(exe, stripped)
    want = _got_relocs(exe)
    got_plt, _ = _section(exe, ".got.plt")
    dump = "".join(ln.split()[1:5] and "".join(ln.split()[1:5]) for ln in
                   _readelf("-x", ".got.plt", exe).splitlines() if ln.strip().startswith("0x"))
    words = [int.from_bytes(bytes.fromhex(dump[i:i + 16]), "little") for i in range(0, len(dump) - 15, 16)]
    res = run_gdb([*json_wrapped("got --json")], program=stripped)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    rows = {addr(r["address"]): r for r in doc["slots"]}
    assert {a: r["symbol"] for a, r in rows.items()} == {a: s for a, (_, s) in want.items()}
    jump = [r for r in doc["slots"] if r["kind"] == "JUMP_SLOT"]
    assert len(jump) == sum(1 for t, _ in want.values() if t == "JUMP_SLOT") >= 4    # dladdr, puts, printf...
    for r in jump:
        assert r["state"] == "unresolved", r
        assert addr(r["value"]) == words[(addr(r["address"]) - got_plt) // 8]


# -- two versions of one symbol, both imported --------------------------------------------
VLIB = r"""
int vfoo_1(void) { return 1; }
int vfoo_2(void) { return 2; }
__asm__(".symver vfoo_1,vfoo@VER_1");
__asm__(".symver vfoo_2,vfoo@@VER_2");
"""
VMAP = "VER_1 { global: vfoo; local: *; };\nVER_2 { global: vfoo; } VER_1;\n"
VMAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int vfoo(void);
int old_vfoo(void);
__asm__(".symver old_vfoo,vfoo@VER_1");
""" + CHECKPOINT + r"""
int main(void) {
    printf("%d %d\n", vfoo(), old_vfoo());
    void *h = dlopen("libver.so", RTLD_NOW | RTLD_NOLOAD);
    printf("v1=%p v2=%p\n", dlvsym(h, "vfoo", "VER_1"), dlvsym(h, "vfoo", "VER_2"));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_two_versions_of_one_symbol_are_told_apart_and_a_swap_is_overwritten(tmp_path):
    """A program imports vfoo@VER_2 (the default) and vfoo@VER_1 (an old reference).  Both
    slots used to read "vfoo in libver.so"; after the VER_1 slot is overwritten with the
    VER_2 definition the audit said 'other-definition' (any version of the name passed as
    "a definition").  ld.so's check_match never binds a VER_1 reference to VER_2: that slot
    was written by someone else, and its target must say which version it holds."""
    (tmp_path / "ver.map").write_text(VMAP)
    lib = compile_c(VLIB, name="libver.so", out_dir=tmp_path,
                    flags=["-shared", "-fPIC", f"-Wl,--version-script={tmp_path / 'ver.map'}"])
    exe = compile_c(VMAIN, name="vermain", out_dir=tmp_path,
                    flags=["-no-pie", "-fno-pic", "-Wl,-z,lazy", f"-L{tmp_path}", "-lver", f"-Wl,-rpath,{tmp_path}",
                           "-ldl"])
    slots = {s: off for off, (t, s) in _got_relocs(exe).items() if s.startswith("vfoo@")}
    assert set(slots) == {"vfoo@VER_1", "vfoo@VER_2"}
    bindings = subprocess.run([str(exe)], capture_output=True, text=True,
                              env=dict(os.environ, LD_DEBUG="bindings")).stderr
    for ver in ("VER_1", "VER_2"):
        assert re.search(rf"binding file \S*vermain \[0\] to \S*libver.so \[0\]: normal symbol `vfoo' \[{ver}\]",
                         bindings)
    assert "vfoo@VER_1" in _readelf("--dyn-syms", "-W", lib) and "vfoo@@VER_2" in _readelf("--dyn-syms", "-W", lib)
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --audit vfoo --json"),
                   *[f"info symbol *(long *){slots[s]:#x}" for s in ("vfoo@VER_1", "vfoo@VER_2")],
                   "python v2 = int(gdb.parse_and_eval('*(long *)%d' % " + str(slots["vfoo@VER_2"]) + "))",
                   "python gdb.execute('set var *(long *)%d = %d' % (" + str(slots["vfoo@VER_1"]) + ", v2))",
                   *json_wrapped("got --audit vfoo --json"), "kill"], program=exe)
    assert_no_traceback(res)
    m = re.search(r"v1=(0x[0-9a-f]+) v2=(0x[0-9a-f]+)", res.stdout)
    v1, v2 = int(m.group(1), 16), int(m.group(2), 16)
    info = re.findall(r"^(vfoo@@?VER_\d) in section", res.stdout, re.M)      # gdb's own names
    assert info == ["vfoo@VER_1", "vfoo@@VER_2"], res.stdout
    before, after = ({r["symbol"]: r for r in d["slots"]} for d in res.json_documents())
    assert addr(before["vfoo@VER_1"]["value"]) == v1 and addr(before["vfoo@VER_2"]["value"]) == v2
    assert {r["audit"]["verdict"] for r in before.values()} == {"ok"}
    assert addr(after["vfoo@VER_1"]["value"]) == v2
    assert after["vfoo@VER_1"]["audit"]["verdict"] == "overwritten", after["vfoo@VER_1"]["audit"]
    assert after["vfoo@VER_1"]["target"] == "vfoo@@VER_2 in libver.so"      # gdb: vfoo@@VER_2
    assert after["vfoo@VER_2"]["target"] == "vfoo in libver.so" and after["vfoo@VER_2"]["audit"]["verdict"] == "ok"


# -- the program file deleted or replaced while it runs under gdb --------------------------
RUN_MAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
""" + CHECKPOINT + r"""
int main(void) {
    printf("puts=%p abs=%d\n", dlsym(RTLD_DEFAULT, "puts"), abs(-3));
    fflush(stdout);
    puts("called");
    checkpoint();
    return 0;
}
"""
OTHER_MAIN = "#include <string.h>\n#include <stdlib.h>\nint main(int c, char **v) { return (int)strlen(v[0]) + atoi(v[0]); }\n"


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_program_deleted_or_replaced_after_run_is_read_from_proc_exe(tmp_path, how):
    """'run', then the program file is deleted or an upgrade renames a new build over it.
    The process still maps the old file (/proc/PID/exe).  Before the fix: deleted -> 'cannot
    read PROG'; replaced -> the new file's relocations applied to the old GOT (a puts slot
    shown as strlen, with only a warning)."""
    exe = compile_c(RUN_MAIN, name="runmain", out_dir=tmp_path / "orig", flags=["-no-pie", "-Wl,-z,lazy", "-ldl"])
    other = compile_c(OTHER_MAIN, name="other", out_dir=tmp_path / "orig", flags=["-no-pie"])
    prog = tmp_path / "prog"
    shutil.copy(exe, prog)
    want = _got_relocs(exe)
    assert any(s.startswith("puts@") for _, s in want.values()) and \
        not any(s.startswith("strlen@") for _, s in want.values())
    change = f"shell rm {prog}" if how == "deleted" else f"shell cp {other} {prog}.new && mv {prog}.new {prog}"
    res = run_gdb(["break checkpoint", "run", change, *json_wrapped("got --audit --json"), "info inferiors", "kill"],
                  program=prog)
    assert_no_traceback(res)
    puts = int(re.search(r"puts=(0x[0-9a-f]+)", res.stdout).group(1), 16)
    doc = res.json_documents()[0]
    rows = {addr(r["address"]): r for r in doc["slots"]}
    assert {a: r["symbol"] for a, r in rows.items()} == {a: s for a, (_, s) in want.items()}   # non-PIE: no bias
    by_name = {r["symbol"].split("@")[0]: r for r in doc["slots"]}
    assert by_name["puts"]["state"] == "resolved" and addr(by_name["puts"]["value"]) == puts
    assert {r["audit"]["verdict"] for r in doc["slots"]} <= {"ok", "lazy"}, doc["slots"]
    assert any("deleted or replaced" in n and "/exe" in n for n in doc["notes"]), doc["notes"]


# -- an object dlopen has mapped but not yet relocated (catch load) -------------------------
PLUG = '#include <stdio.h>\nint plug(void) { return puts("plug"); }\n'
PLUG_MAIN = r"""
#include <dlfcn.h>
#include <stdio.h>
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_LAZY);
    int (*p)(void) = (int (*)(void))dlsym(h, "plug");
    p();
    checkpoint();
    return 0;
}
"""


def _got_plt_words(path) -> dict[int, int]:
    """Link-time address -> the file's word in .got.plt (readelf -x)."""
    lo, _ = _section(path, ".got.plt")
    dump = "".join("".join(ln.split()[1:5]) for ln in _readelf("-x", ".got.plt", path).splitlines()
                   if ln.strip().startswith("0x"))
    return {lo + i // 2: int.from_bytes(bytes.fromhex(dump[i:i + 16]), "little") for i in range(0, len(dump) - 15, 16)}


def test_object_mapped_by_dlopen_but_not_relocated_yet(tmp_path):
    """gdb's 'catch load' stops at ld.so's r_debug notification, after dlopen mapped the
    object and before it relocated it.  Its GOT still holds the file's words.  Before the
    fix: 'binding now ... loaded by dlopen with RTLD_NOW' (it was RTLD_LAZY), GLOB_DATs
    'null (weak symbol not defined anywhere)' and __cxa_finalize 'overwritten'."""
    plug = compile_c(PLUG, name="libplug.so", out_dir=tmp_path, flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    exe = compile_c(PLUG_MAIN, name="plugmain", out_dir=tmp_path, flags=["-ldl"])
    relocs = _got_relocs(plug)
    puts_at = next(off for off, (t, s) in relocs.items() if s.startswith("puts@"))
    file_word = _got_plt_words(plug)[puts_at]
    assert file_word                                                     # the unbiased lazy stub
    res = run_gdb(["break main", "run", "catch load libplug", "continue",
                   # the oracle, outside the toolkit: the first mapping of libplug.so in
                   # /proc/PID/maps is its load base (its first PT_LOAD is at 0); read the word there
                   "python base = next(int(l.split('-')[0], 16) for l in open('/proc/%d/maps' % "
                   "gdb.selected_inferior().pid) if l.rstrip().endswith('/libplug.so'))",
                   f"python print('XBASE', hex(base), 'XWORD', hex(int.from_bytes(bytes("
                   f"gdb.selected_inferior().read_memory(base + {puts_at}, 8)), 'little')))",
                   *json_wrapped("got --object libplug --audit --json"),
                   # ld.so at the same stop: long relocated (its RELRO read-only in maps)
                   "python print('XLDSO', ' '.join(l.split()[1] for l in open('/proc/%d/maps' % "
                   "gdb.selected_inferior().pid) if l.rstrip().endswith('ld-linux-x86-64.so.2')))",
                   *json_wrapped("got --object ld-linux --audit --json"),
                   "delete", "break checkpoint", "continue",
                   *json_wrapped("got --object libplug --audit --json"), "kill"], program=exe, args=[plug])
    assert_no_traceback(res)
    early, ldso, late = res.json_documents()
    # a dlopen'ed object waiting for relocation says nothing of ld.so's own: its slots keep their
    # verdicts (before the fix: all 'not-relocated ... ld.so's bootstrap self-relocation')
    perms = re.search(r"XLDSO (.*)", res.stdout).group(1).split()
    assert "r--p" in perms, perms                                    # the RELRO is read-only
    assert ldso["slots"] and all(r["audit"]["verdict"] != "not-relocated" for r in ldso["slots"]), ldso["slots"]
    rows = {r["symbol"]: r for r in early["slots"]}
    m = re.search(r"XBASE (0x[0-9a-f]+) XWORD (0x[0-9a-f]+)", res.stdout)
    base, word = int(m.group(1), 16), int(m.group(2), 16)
    assert word == file_word             # not relocated: the file's word, without the load bias
    assert set(rows) == {s for _, s in relocs.values()}
    assert addr(rows[relocs[puts_at][1]]["address"]) == puts_at + base
    assert addr(rows[relocs[puts_at][1]]["value"]) == word
    for r in early["slots"]:
        assert r["state"] == "not-relocated" and r["audit"]["verdict"] == "not-relocated", r
    assert early["objects"][0]["binding"] == "lazy" and "RTLD_NOW" not in early["objects"][0]["binding_reason"]
    assert {r["audit"]["verdict"] for r in late["slots"]} <= {"ok"}, late["slots"]
    assert {r["symbol"]: r["state"] for r in late["slots"]}[relocs[puts_at][1]] == "resolved"


# -- plt-walk of a slot holding what ld.so never writes -------------------------------------
def test_walk_of_a_slot_pointing_nowhere_or_back_into_the_plt_warns(tmp_path):
    """A slot overwritten with an unmapped address, or with its own .plt[0]: the walk used to
    tell the textbook story ("later calls -> puts directly") for a call that faults or
    re-enters the resolver without its push."""
    exe = compile_c(RUN_MAIN, name="runmain", out_dir=tmp_path, flags=["-no-pie", "-Wl,-z,lazy", "-ldl"])
    relocs = _got_relocs(exe)
    puts_at = next(a for a, (_, s) in relocs.items() if s.startswith("puts@"))
    printf_at = next(a for a, (_, s) in relocs.items() if s.startswith("printf@"))
    plt0, _ = _section(exe, ".plt")
    res = run_gdb(["break checkpoint", "run", "info proc mappings",
                   f"set var *(unsigned long *){puts_at:#x} = 0xdead0000",
                   f"set var *(unsigned long *){printf_at:#x} = {plt0:#x}",
                   *json_wrapped("plt-walk puts --json"), *json_wrapped("plt-walk printf --json"),
                   *json_wrapped("plt-walk dlsym --json"), "kill"], program=exe)
    assert_no_traceback(res)
    maps = [tuple(int(x, 16) for x in ln.split()[:2]) for ln in res.stdout.splitlines()
            if re.match(r"\s+0x[0-9a-f]+\s+0x[0-9a-f]+", ln)]
    assert maps and not any(lo <= 0xDEAD0000 < hi for lo, hi in maps)         # unmapped: the oracle
    puts, printf, dlsym = res.json_documents()
    assert any("0xdead0000" in n and "no loaded object" in n for n in puts["notes"]), puts["notes"]
    assert any(f"{plt0:#x}" in n and "own PLT" in n for n in printf["notes"]), printf["notes"]
    assert not any("WARNING" in n for n in dlsym["notes"]), dlsym["notes"]     # untouched, resolved


# -- an rtld-audit module with la_pltenter: _dl_runtime_profile never writes the slots ------
PLTENTER_AUDITOR = r"""
#define _GNU_SOURCE
#include <link.h>
unsigned int la_version(unsigned int v) { return LAV_CURRENT; }
unsigned int la_objopen(struct link_map *m, Lmid_t l, uintptr_t *c) { return LA_FLG_BINDTO | LA_FLG_BINDFROM; }
Elf64_Addr la_x86_64_gnu_pltenter(Elf64_Sym *sym, unsigned int ndx, uintptr_t *refcook, uintptr_t *defcook,
                                  La_x86_64_regs *regs, unsigned int *flags, const char *symname,
                                  long *framesizep) { return sym->st_value; }
"""
CALLS_MAIN = "#include <stdio.h>\n" + CHECKPOINT + \
    'int main(void) { puts("one"); puts("two"); fflush(stdout); checkpoint(); return 0; }\n'


def test_pltenter_auditor_slots_are_never_written_not_uncalled(tmp_path):
    """With an LD_AUDIT module defining la_pltenter, ld.so installs _dl_runtime_profile in
    GOT[2]: every call goes through _dl_profile_fixup, which never writes the slot.  puts
    was called twice, yet its slot holds the lazy stub: before the fix the audit said
    'not called yet' and the walk promised '_dl_fixup ... writes its address'."""
    aud = compile_c(PLTENTER_AUDITOR, name="libpltenter.so", out_dir=tmp_path, flags=["-shared", "-fPIC"])
    exe = compile_c(CALLS_MAIN, name="callsmain", out_dir=tmp_path, flags=["-no-pie", "-Wl,-z,lazy"])
    puts_at = next(a for a, (_, s) in _got_relocs(exe).items() if s.startswith("puts@"))
    stub = _got_plt_words(exe)[puts_at]
    res = run_gdb([f"set environment LD_AUDIT={aud}", "break checkpoint", "run",
                   f"x/gx {puts_at:#x}", f"info symbol *(long *){_section(exe, '.got.plt')[0] + 16:#x}",
                   *json_wrapped("got --audit puts --json"), *json_wrapped("plt-walk puts --json"),
                   "plt-walk puts --live", "echo alive\\n", "kill"], program=exe)
    assert_no_traceback(res)
    assert "one\ntwo" in res.stdout                                          # called twice
    word = int(re.search(rf"{puts_at:#x}[^:]*:\s+(0x[0-9a-f]+)", res.stdout).group(1), 16)
    assert word == stub                                                      # gdb: still the lazy stub
    assert re.search(r"_dl_runtime_profile\w* in section", res.stdout)       # gdb: GOT[2]
    got, walk = res.json_documents()
    row = got["slots"][0]
    assert row["state"] == "unresolved" and addr(row["value"]) == word
    assert "not called yet" not in row["audit"]["why"] and "never writes" in row["audit"]["why"]
    assert "_dl_runtime_profile" in got["objects"][0]["binding_reason"]
    story = " ".join(walk["first_call"] + walk["later_calls"])
    assert "_dl_profile_fixup" in story and "writes its address" not in story
    assert "no write to watch" in res.stderr and "alive" in res.stdout


# -- a tail call at the very end of the code segment ----------------------------------------
TAIL_LIB = '#include <stdio.h>\nint plug(void) { return puts("plug"); }\n'


def test_tail_call_at_the_end_of_the_code_segment_is_found(tmp_path):
    """-O2 turns plug() into 'lea; jmp puts@plt', the last bytes of the executable segment.
    The candidate check read 16 bytes past the jump, beyond the segment, and the walk said
    'no call of puts found ... (called only through a function pointer, or not at all)'."""
    lib = compile_c(TAIL_LIB, name="libtail.so", out_dir=tmp_path, flags=["-shared", "-fPIC", "-O2"])
    exe = compile_c(PLUG_MAIN, name="tailmain", out_dir=tmp_path, flags=["-ldl"])
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib], capture_output=True, text=True).stdout
    m = re.search(r"<plug>:\n(?:.*\n)*?\s+([0-9a-f]+):\s+jmp\s+[0-9a-f]+ <puts@plt>", dis)
    assert m, dis                                                  # objdump: the tail jump
    jmp_at = int(m.group(1), 16)
    text_end = max(int(f[2], 16) + int(f[5], 16) for f in
                   (ln.split() for ln in _readelf("-lW", lib).splitlines()) if f and f[0] == "LOAD" and "E" in f[6:8])
    assert jmp_at + 5 + 16 > text_end                              # within 16 bytes of the segment's end
    res = run_gdb(["break checkpoint", "run", *json_wrapped("plt-walk --object libtail puts --json"), "kill"],
                  program=exe, args=[lib])
    assert_no_traceback(res)
    walk = res.json_documents()[0]
    call = walk["hops"][0]
    assert call["step"] == "call site", walk["hops"]
    loc = call["location"]
    assert (loc["symbol"], loc["offset"]) == ("plug", jmp_at - int(re.search(r"([0-9a-f]+) <plug>:", dis).group(1), 16))
    assert "tail call" in call["note"] and not any("no call of" in n for n in walk["notes"])


# -- stopped during start-up relocation: ld.so's own slots hold its bootstrap binding -------
def test_ld_so_slots_before_its_final_self_relocation_are_not_relocated():
    """ld.so binds its own JUMP_SLOTs (_dl_catch_error...) first to its own definitions
    (bootstrap), and again -- to libc's, which the lookup scope finds first -- after every
    other start-up object, then write-protects its RELRO.  Stopped at _dl_relocate_object
    in between, the audit said 'other-definition ... an interposer loaded later, or the slot
    was overwritten'."""
    exe = compile_c("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n", name="tiny")
    res = run_gdb(["starti", "break _dl_relocate_object", "continue",
                   "python import gdb",
                   "python maps = open('/proc/%d/maps' % gdb.selected_inferior().pid).read().splitlines()",
                   "python print('XLDSO', [(l.split()[0], l.split()[1]) for l in maps "
                   "if l.endswith('/ld-linux-x86-64.so.2')])",
                   *json_wrapped("got --all-objects --audit _dl_catch_error --json"),
                   "delete", "break main", "continue",
                   *json_wrapped("got --all-objects --audit _dl_catch_error --json"), "kill"], program=exe)
    assert_no_traceback(res)
    if "Breakpoint 1, _dl_relocate_object" not in res.stdout:
        pytest.skip("ld.so has no _dl_relocate_object symbol here")
    ldso_maps = ast.literal_eval(re.search(r"XLDSO (\[.*\])", res.stdout).group(1))
    base = min(int(r.split("-")[0], 16) for r, _ in ldso_maps)
    relro = next(int(f[2], 16) for f in (ln.split() for ln in _readelf("-lW", "/lib64/ld-linux-x86-64.so.2")
                                         .splitlines()) if f and f[0] == "GNU_RELRO")
    perm = next(p for r, p in ldso_maps if int(r.split("-")[0], 16) <= base + relro < int(r.split("-")[1], 16))
    assert perm == "rw-p"                     # the oracle: its RELRO is still writable (not yet protected)
    early, late = res.json_documents()
    (e,) = [r for r in early["slots"] if r["object"].startswith("ld-linux")]
    (l,) = [r for r in late["slots"] if r["object"].startswith("ld-linux")]
    assert e["target"].endswith("in ld-linux-x86-64.so.2") and l["target"].endswith("in libc.so.6")
    assert e["audit"]["verdict"] == "not-relocated", e["audit"]
    assert l["audit"]["verdict"] == "ok", l["audit"]


def test_relr_now_noplt_object_mapped_but_not_relocated(tmp_path):
    """The same stop for a -z now -fno-plt library with packed relative relocations (DT_RELR):
    no RELATIVE in .rela.dyn, no lazy JUMP_SLOT, only GLOB_DATs whose file word is 0 -- the
    first RELR address tells whether ld.so has relocated it."""
    plug = compile_c(PLUG, name="librelr.so", out_dir=tmp_path,
                     flags=["-shared", "-fPIC", "-fno-plt", "-Wl,-z,now", "-Wl,-z,pack-relative-relocs"])
    relr = _readelf("-rW", plug)
    if ".relr.dyn" not in relr:
        pytest.skip("the linker does not pack relative relocations (-z pack-relative-relocs)")
    first = int(re.search(r"'\.relr\.dyn'.*\n(?:.*offsets?\n)?\s*([0-9a-f]{8,16})", relr).group(1), 16)
    exe = compile_c(PLUG_MAIN, name="relrmain", out_dir=tmp_path, flags=["-ldl"])
    word = ("python print('XWORD', hex(int.from_bytes(bytes(gdb.selected_inferior().read_memory(next(int(l.split('-')[0], 16)"
            " for l in open('/proc/%d/maps' % gdb.selected_inferior().pid) if l.rstrip().endswith('/librelr.so')) + "
            f"{first}, 8)), 'little')))")
    res = run_gdb(["break main", "run", "catch load librelr", "continue", word,
                   *json_wrapped("got --object librelr --audit --json"), "delete", "break checkpoint", "continue",
                   word, *json_wrapped("got --object librelr --audit --json"), "kill"], program=exe, args=[plug])
    assert_no_traceback(res)
    before, after = (int(w, 16) for w in re.findall(r"XWORD (0x[0-9a-f]+)", res.stdout))
    early, late = res.json_documents()
    bias = addr(late["objects"][0]["bias"])
    assert after == before + bias and before < bias          # the oracle: relocated only after the stop
    assert {r["state"] for r in early["slots"]} == {"not-relocated"}, early["slots"]
    assert "RTLD_NOW" not in early["objects"][0]["binding_reason"]
    assert {r["audit"]["verdict"] for r in late["slots"]} <= {"ok"}, late["slots"]
