"""Adversarial cases of the review of issue 13 (got/plt/plt-walk), each a defect found and
fixed: what the dynamic linker really did where the first version told another story.
Every expected value comes from an independent oracle: LD_DEBUG=bindings, the program's own
printed addresses (dlsym, &function), /proc/PID/maps and /proc/PID/mem, readelf/nm/objdump,
c++filt."""
import os
import re
import subprocess

import pytest

from tests.support.gdbrun import addr, assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.plt_oracles import HAVE_I386, I686, NO_I386

pytestmark = pytest.mark.gdb

CHECKPOINT = '__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }\n'


def _bindings(exe, env=None, args=(), cwd=None) -> str:
    """LD_DEBUG=bindings of one run: the dynamic linker's own account of every binding."""
    e = dict(os.environ, LD_DEBUG="bindings", **(env or {}))
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=e, cwd=cwd).stderr


def _readelf(*args) -> str:
    return subprocess.run(["readelf", *map(str, args)], capture_output=True, text=True, check=True).stdout


def _slots(doc, obj=None):
    return {r["symbol"].split("@")[0]: r for r in doc["slots"] if obj is None or r["object"] == obj}


def _no_overwritten(doc):
    bad = [(r["object"], r["symbol"], r["audit"]["why"]) for r in doc["slots"]
           if r["audit"] and r["audit"]["verdict"] == "overwritten"]
    assert not bad, bad


# -- a non-PIE program's canonical PLT entry --------------------------------------------------
CANON_LIB = r"""
#include <stdio.h>
void *lib_addr_puts(void) { return (void *)&puts; }     /* a GLOB_DAT slot for puts */
"""
CANON_MAIN = r"""
#include <stdio.h>
void *lib_addr_puts(void);
""" + CHECKPOINT + r"""
int main(void) {
    void *mine = (void *)&puts;           /* non-PIE: puts's address is its PLT entry here */
    printf("mine=%p lib=%p\n", mine, lib_addr_puts());
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_glob_dat_bound_to_the_programs_canonical_plt_entry_is_not_overwritten():
    """A non-PIE program that takes &puts exports puts as an undefined symbol whose value is
    its PLT entry; ld.so binds every other object's GLOB_DAT for puts to that entry (pointer
    equality), and LD_DEBUG says so.  The audit called it a hijack."""
    lib = compile_c(CANON_LIB, name="libcanon.so", flags=["-shared", "-fPIC"])
    exe = compile_c(CANON_MAIN, name="canon_main",
                    flags=["-no-pie", "-fno-pic", "-Wl,-z,lazy", f"-L{lib.parent}", "-lcanon",
                           f"-Wl,-rpath,{lib.parent}"])
    dyn = _readelf("--dyn-syms", "-W", exe)
    und = re.search(r"([0-9a-f]{16})\s+0 FUNC\s+GLOBAL DEFAULT\s+UND puts", dyn)
    assert und and int(und.group(1), 16), dyn                     # the canonical PLT entry
    assert re.search(r"binding file .*libcanon\.so .* to .*canon_main .*: normal symbol `puts'",
                     _bindings(exe))
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --all-objects --audit --json"),
                   "got --object libcanon --audit", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    m = re.search(r"mine=(0x[0-9a-f]+) lib=(0x[0-9a-f]+)", res.stdout)
    assert m.group(1) == m.group(2) and int(m.group(1), 16) == int(und.group(1), 16)
    row = _slots(doc, "libcanon.so")["puts"]
    assert addr(row["value"]) == int(m.group(1), 16)
    assert row["target"] == "puts@plt in canon_main"
    assert row["audit"]["verdict"] == "ok", row["audit"]
    assert "canon_main" in row["audit"]["expected"] and "PLT" in row["audit"]["expected"]
    # the program's own JUMP_SLOT still binds libc (a PLT-class lookup skips undefined symbols)
    assert _slots(doc, "canon_main")["printf"]["audit"]["verdict"] == "ok"
    _no_overwritten(doc)
    assert "OVERWRITTEN" not in res.stdout


# -- symbol versions: an unversioned reference takes the oldest version -------------------------
VLIB = r"""
int foo_v1(void) { return 1; }
int foo_v2(void) { return 2; }
int bar(void) { return 3; }
__asm__(".symver foo_v1, foo@VER_1");
__asm__(".symver foo_v2, foo@@VER_2");
"""
VLIB_PLAIN = "int foo(void) { return 0; }\nint bar(void) { return 0; }\n"
VMAIN = r"""
#include <stdio.h>
int foo(void); int bar(void);
""" + CHECKPOINT + r"""
int main(void) { printf("foo=%d bar=%d\n", foo(), bar()); fflush(stdout); checkpoint(); return 0; }
"""


def _versioned_lib(tmp_path):
    plain = compile_c(VLIB_PLAIN, name="libv.so", flags=["-shared", "-fPIC", "-Wl,-soname,libv.so"])
    vmap = tmp_path / "libv.map"
    vmap.write_text("VER_1 { local: foo_v1; foo_v2; };\nVER_2 { global: bar; } VER_1;\n")
    versioned = compile_c(VLIB, name="libv.so", out_dir=tmp_path / "v",
                          flags=["-shared", "-fPIC", "-Wl,-soname,libv.so", f"-Wl,--version-script={vmap}"])
    return plain, versioned


def test_unversioned_reference_binds_the_oldest_version_not_overwritten(tmp_path):
    """A program linked against an unversioned libv.so runs with a libv.so that defines
    foo@VER_1 and foo@@VER_2: glibc binds the OLDEST version (index 2), VER_1, for an
    unversioned reference ("old binaries keep the old ABI"); bar has one version and binds it."""
    plain, versioned = _versioned_lib(tmp_path)
    assert plain.parent != versioned.parent
    dyn = _readelf("--dyn-syms", "-W", versioned)
    assert "foo@VER_1" in dyn and "foo@@VER_2" in dyn
    exe = compile_c(VMAIN, name="vmain_old", out_dir=tmp_path / "old", flags=["-Wl,-z,lazy", f"-L{plain.parent}", "-lv",
                                                    f"-Wl,-rpath,{versioned.parent}"])
    assert "foo@" not in _readelf("-rW", exe)                       # an unversioned reference
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert "foo=1 bar=3" in run.stdout                               # VER_1's implementation ran
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --audit --json '^(foo|bar)$'"), "kill"],
                  program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    rows = _slots(doc)
    # gdb names the slot's value from libv.so's own symbol table: VER_1's implementation
    info = run_gdb(["break checkpoint", "run", f"info symbol {rows['foo']['value']}", "kill"], program=exe)
    assert re.search(r"(foo_v1|foo@VER_1) in section \.text", info.stdout), info.stdout
    assert rows["foo"]["audit"]["verdict"] == "ok", rows["foo"]["audit"]
    assert rows["foo"]["audit"]["expected"].startswith("foo@VER_1 in libv.so")
    assert rows["foo"]["target"].startswith("foo")
    assert rows["bar"]["audit"]["verdict"] == "ok" and rows["bar"]["audit"]["expected"].startswith("bar@VER_2")
    _no_overwritten(doc)
    # the versioned build (foo@VER_2 reference) binds the default version, VER_2
    exe2 = compile_c(VMAIN, name="vmain_new", out_dir=tmp_path / "new", flags=["-Wl,-z,lazy", f"-L{versioned.parent}", "-lv",
                                                     f"-Wl,-rpath,{versioned.parent}"])
    res2 = run_gdb(["break checkpoint", "run", *json_wrapped("got --audit --json '^foo$'"), "kill"], program=exe2)
    foo2 = _slots(res2.json_documents()[0])["foo"]
    assert "foo=2" in res2.stdout and foo2["symbol"] == "foo@VER_2"
    assert foo2["audit"]["verdict"] == "ok" and foo2["audit"]["expected"].startswith("foo@VER_2")


# -- which file is mapped: a relative dlopen name, a library replaced on disk ------------------
RLIB = '#include <stdio.h>\nint rfunc(void) { return puts("rfunc"); }\n'
DECOY = "int rfunc(void) { return 0; }\nint other(int x) { return x + 1; }\n"
RMAIN = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *h = dlopen("./sub/librel.so", RTLD_LAZY);     /* a relative name, kept as l_name */
    if (!h) { printf("%s\n", dlerror()); return 1; }
    ((int (*)(void))dlsym(h, "rfunc"))();
    if (chdir(argv[1])) return 2;                       /* ... and the cwd moves on */
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def _maps_path(stdout: str, name: str) -> set[str]:
    """Paths of the mappings named *name* in gdb's 'info proc mappings' (/proc/PID/maps)."""
    return {ln.split()[-1] for ln in stdout.splitlines() if ln.strip().endswith(name)}


def test_relative_dlopen_name_after_chdir_reads_the_mapped_file(tmp_path):
    """dlopen("./sub/librel.so") keeps the relative name in l_name; after chdir() it names
    another file (here a decoy with other imports).  The table must describe the mapped file
    (/proc/PID/maps), not whatever the name resolves to now."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "decoy" / "sub").mkdir(parents=True)
    lib = compile_c(RLIB, name="librel.so", out_dir=tmp_path / "sub", flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    compile_c(DECOY, name="librel.so", out_dir=tmp_path / "decoy" / "sub", flags=["-shared", "-fPIC"])
    exe = compile_c(RMAIN, name="relmain", out_dir=tmp_path, flags=["-Wl,-z,lazy"])
    relocs = {r.split()[4].split("@")[0] for r in _readelf("-rW", lib).splitlines() if "JUMP_SLOT" in r}
    assert relocs == {"puts"}
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --object librel --audit --json"),
                   "info proc mappings", "kill"], program=exe, args=[tmp_path / "decoy"], cwd=tmp_path)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert _maps_path(res.stdout, "librel.so") == {str(lib)}              # the kernel's answer
    assert [o["path"] for o in doc["objects"]] == [str(lib)]
    assert doc["objects"][0]["stale"] is None
    rows = _slots(doc)
    assert rows["puts"]["kind"] == "JUMP_SLOT" and rows["puts"]["target"] == "puts in libc.so.6"
    _no_overwritten(doc)
    assert any("./sub/librel.so" in n and "/proc/PID/maps" in n for n in doc["notes"]), doc["notes"]


XLIB_V1 = '#include <stdio.h>\nint xfunc(void) { return puts("x v1"); }\n'
XLIB_V2 = ('#include <stdlib.h>\n#include <string.h>\nint pad(void) { return (int)strlen("abc"); }\n'
           'int xfunc(void) { return atoi("2"); }\n')
XMAIN = "int xfunc(void);\n" + CHECKPOINT + "int main(void) { xfunc(); checkpoint(); return 0; }\n"


def test_library_replaced_on_disk_is_read_from_the_mapping(tmp_path):
    """A package upgrade renames a new libx.so over the one a running process mapped.  The
    table must still describe the code that runs (read from /proc/PID/map_files), not the new
    file's slots flagged as overwritten."""
    lib = compile_c(XLIB_V1, name="libx.so", out_dir=tmp_path / "lib", flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    new = compile_c(XLIB_V2, name="libx.so", out_dir=tmp_path / "new", flags=["-shared", "-fPIC"])
    original = _readelf("-rW", lib)
    assert "puts" in original and "atoi" not in original and "atoi" in _readelf("-rW", new)
    exe = compile_c(XMAIN, name="xmain", out_dir=tmp_path, flags=["-Wl,-z,lazy", f"-L{lib.parent}", "-lx",
                                                               f"-Wl,-rpath,{lib.parent}"])
    res = run_gdb(["break checkpoint", "run", f"shell mv {new} {lib}",
                   *json_wrapped("got --object libx --audit --json"), "got --object libx",
                   "info proc mappings", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert any(str(lib) in ln and ln.endswith("(deleted)") for ln in res.stdout.splitlines())   # /proc/PID/maps
    assert "atoi" in _readelf("-rW", lib)                              # the file on disk is the new one
    rows = _slots(doc)
    assert "puts" in rows and "atoi" not in rows
    assert rows["puts"]["state"] == "resolved" and rows["puts"]["target"] == "puts in libc.so.6"
    _no_overwritten(doc)
    assert doc["objects"][0]["path"] == str(lib)
    assert any("replaced" in n and "libx.so" in n for n in doc["notes"]), doc["notes"]


# -- LD_AUDIT: la_symbind may bind a symbol to anything -----------------------------------------
AUDITOR = r"""
#define _GNU_SOURCE
#include <link.h>
#include <string.h>
#include <unistd.h>
int my_puts(const char *s) {      /* write(2): this namespace's stdio buffers are not the program's */
    write(1, "[audited] ", 10); write(1, s, strlen(s)); return (int)write(1, "\n", 1);
}
unsigned int la_version(unsigned int v) { return LAV_CURRENT; }
unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie) {
    return LA_FLG_BINDTO | LA_FLG_BINDFROM;
}
uintptr_t la_symbind64(Elf64_Sym *sym, unsigned int ndx, uintptr_t *refcook, uintptr_t *defcook,
                       unsigned int *flags, const char *symname) {
    return strcmp(symname, "puts") == 0 ? (uintptr_t)my_puts : sym->st_value;
}
"""
AUDITED_MAIN = "#include <stdio.h>\n" + CHECKPOINT + \
    'int main(void) { puts("hello"); printf("%d\\n", 7); fflush(stdout); checkpoint(); return 0; }\n'


@pytest.mark.parametrize("how", ["LD_AUDIT", "DT_AUDIT"])
def test_la_symbind_redirection_is_not_called_a_hijack(how):
    """An audit module's la_symbind returned its own my_puts for puts: ld.so wrote that into
    the slot.  LD_DEBUG=bindings still says puts was looked up in libc; the slot holds
    my_puts in the auditor: 'redirected' by the auditor, not 'overwritten'."""
    aud = compile_c(AUDITOR, name="libauditor.so", flags=["-shared", "-fPIC"])
    flags = ["-Wl,-z,lazy"] + ([f"-Wl,--audit={aud}"] if how == "DT_AUDIT" else [])
    exe = compile_c(AUDITED_MAIN, name=f"audited_{how}", flags=flags)
    env = {"LD_AUDIT": str(aud)} if how == "LD_AUDIT" else {}
    assert re.search(r"to .*libc\.so\.6.*: normal symbol `puts'", _bindings(exe, env))
    setup = [f"set environment LD_AUDIT={aud}"] if env else []
    res = run_gdb([*setup, "break checkpoint", "run", *json_wrapped("got --audit --json"), "got --audit", "kill"],
                  program=exe)
    assert_no_traceback(res)
    assert "[audited] hello" in res.stdout                              # la_symbind's choice ran
    doc = res.json_documents()[0]
    puts = _slots(doc)["puts"]
    assert puts["target"].startswith("my_puts in libauditor.so")
    assert puts["audit"]["verdict"] == "redirected", puts["audit"]
    assert "libauditor.so" in puts["audit"]["why"] and "la_symbind" in puts["audit"]["why"]
    assert puts["audit"]["expected"].startswith("puts@GLIBC_2.2.5 in libc.so.6")
    assert _slots(doc)["printf"]["audit"]["verdict"] == "ok"
    _no_overwritten(doc)
    assert "REDIRECTED: puts@GLIBC_2.2.5" in res.stdout


# -- LD_BIND_NOT: the slot stays the lazy stub although the function was called ---------------
def test_ld_bind_not_audit_does_not_claim_not_called():
    exe = compile_c("#include <stdio.h>\n" + CHECKPOINT +
                    'int main(void) { puts("called"); fflush(stdout); checkpoint(); return 0; }\n',
                    name="bindnot", flags=["-Wl,-z,lazy"])
    res = run_gdb(["set environment LD_BIND_NOT=1", "break checkpoint", "run",
                   *json_wrapped("got --audit --json '^puts$'"), *json_wrapped("plt-walk puts --json"), "kill"],
                  program=exe)
    assert_no_traceback(res)
    assert "called" in res.stdout                                       # puts WAS called
    got, walk = res.json_documents()
    puts = _slots(got)["puts"]
    # the slot still holds the file's word (readelf -x .got.plt) plus the load bias
    slot_off = addr(puts["address"]) - addr(got["objects"][0]["bias"])
    dump = subprocess.run(["objdump", "-s", f"--start-address={slot_off}", f"--stop-address={slot_off + 8}", exe],
                          capture_output=True, text=True, check=True).stdout
    word = re.search(rf"^\s*{slot_off:x} ([0-9a-f]{{8}}) ([0-9a-f]{{8}})", dump, re.M)
    file_word = int.from_bytes(bytes.fromhex(word.group(1) + word.group(2)), "little")
    assert puts["state"] == "unresolved" and addr(puts["value"]) == file_word + addr(got["objects"][0]["bias"])
    assert "not called yet" not in puts["audit"]["why"] and "LD_BIND_NOT" in puts["audit"]["why"]
    lazy_hop = next(h for h in walk["hops"] if h["step"] == "lazy stub")
    assert "first call only" not in lazy_hop["note"] and "every call" in lazy_hop["note"]


# -- a TLS slot without a symbol (a static __thread variable, initial-exec) ---------------------
TLS_LOCAL_LIB = r"""
static __thread int counter_tls = 3;
static __thread long table_tls[4] = {1, 2, 3, 4};
int *counter_addr(void) { return &counter_tls; }
long table_at(int i) { return table_tls[i]; }
"""
TLS_LOCAL_MAIN = r"""
#include <stdio.h>
int *counter_addr(void); long table_at(int i);
""" + CHECKPOINT + r"""
int main(void) {
    printf("tpoff=%ld sum=%ld\n", (long)((char *)counter_addr() - (char *)__builtin_thread_pointer()), table_at(2));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_local_tls_slot_names_its_variable_from_the_symbol_table():
    """A static __thread variable reached with the initial-exec model gets a TPOFF slot with
    no symbol, only an addend (its offset in the module's TLS block); .symtab still names
    the variable at that offset.  The slot said 'TLS offset 0x0 in the TLS block of X of X'."""
    lib = compile_c(TLS_LOCAL_LIB, name="libtlslocal.so", flags=["-shared", "-fPIC", "-ftls-model=initial-exec"])
    exe = compile_c(TLS_LOCAL_MAIN, name="tlslocal_main", flags=[f"-L{lib.parent}", "-ltlslocal",
                                                                 f"-Wl,-rpath,{lib.parent}"])
    rel = [ln.split() for ln in _readelf("-rW", lib).splitlines() if "R_X86_64_TPOFF64" in ln]
    addends = {int(r[-1], 16) for r in rel if len(r) == 4}               # no symbol: value only
    syms = {ln.split()[7]: int(ln.split()[1], 16) for ln in _readelf("-sW", lib).splitlines()
            if " TLS " in ln and len(ln.split()) >= 8}
    assert addends == {syms["counter_tls"], syms["table_tls"]}, (addends, syms)
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --object libtlslocal --json"),
                   "got --object libtlslocal", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    tpoff = int(re.search(r"tpoff=(-?\d+)", res.stdout).group(1))
    rows = {r["tls"]["variable"]: r for r in doc["slots"] if r["kind"] == "TLS_TPOFF"}
    assert set(rows) == {"counter_tls", "table_tls"}, list(rows)
    assert rows["counter_tls"]["tls"]["offset"] == tpoff                   # the CPU's own answer
    assert rows["counter_tls"]["tls"]["object"] == "libtlslocal.so"
    assert rows["counter_tls"]["target"] == f"TLS counter_tls of libtlslocal.so: thread pointer -0x{-tpoff:x}"
    assert "libtlslocal.so of libtlslocal.so" not in res.stdout


# -- C++: every name a user reads is demangled (got targets, the audit, plt) --------------------
CXX_MAIN = r"""
#include <map>
#include <string>
#include <vector>
#include <cstdio>
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main() {
    std::map<std::string, std::vector<std::string>> m;
    m["key"].push_back(std::string(40, 'x'));
    std::printf("%zu\n", m.size());
    checkpoint();
    return 0;
}
"""


def _cxxfilt(names):
    out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")
    return dict(zip(names, out))


def test_cpp_targets_audit_and_plt_are_demangled():
    exe = compile_c(CXX_MAIN, name="cxx_names", compiler="g++", flags=["-Wl,-z,lazy"])
    dtor = "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEED1Ev"
    assert dtor in _readelf("-rW", exe)
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --audit --json"), *json_wrapped("plt --json"),
                   *json_wrapped("plt basic_string --json"), *json_wrapped(f"plt-walk {dtor} --json"), "kill"],
                  program=exe)
    assert_no_traceback(res)
    got, plt, plt_rx, walk = res.json_documents()
    assert walk["symbol"] == _cxxfilt([dtor])[dtor] + "@GLIBCXX_3.4.21" and walk["symbol_raw"].startswith(dtor)
    assert "_Z" not in walk["target"] + " ".join(walk["first_call"] + walk["later_calls"])
    resolved = [r for r in got["slots"] if r["state"] == "resolved" and (r["target_symbol_raw"] or "").startswith("_Z")]
    assert resolved, [r["target"] for r in got["slots"]]
    shown = _cxxfilt([r["target_symbol_raw"] for r in resolved])        # the oracle: binutils' demangler
    for r in resolved:
        assert r["target_symbol"] == shown[r["target_symbol_raw"]]
        assert r["target"].startswith(shown[r["target_symbol_raw"]]) and "_Z" not in r["target"]
        assert "_Z" not in (r["audit"]["expected"] or "") + r["audit"]["why"], r["audit"]
    stubs = [s for s in plt["stubs"] if (s["symbol_raw"] or "").startswith("_Z")]
    assert stubs
    names = _cxxfilt([s["symbol_raw"].split("@")[0] for s in stubs])
    for s in stubs:
        raw, _, ver = s["symbol_raw"].partition("@")
        assert s["symbol"] == names[raw] + (f"@{ver}" if ver else "")
        assert "_Z" not in (s["state"] or "") + (s["target"] or "")          # 'slot now' too
    assert plt_rx["stubs"] and all("basic_string" in s["symbol"] for s in plt_rx["stubs"])


# -- static-pie: the .plt note counts the ifunc stubs, nothing else -----------------------------
def test_static_pie_plt_note_counts_ifunc_stubs():
    exe = compile_c("#include <stdio.h>\n#include <string.h>\n"
                    'int main(int c, char **v) { printf("%zu\\n", strlen(v[0])); return 0; }\n',
                    name="spie_count", flags=["-static-pie"])
    rel = _readelf("-rW", exe)
    plt_part = rel[rel.index("'.rela.plt'"):]
    irelative = sum("R_X86_64_IRELATIVE" in ln for ln in plt_part.splitlines())
    plt_got = subprocess.run(["objdump", "-d", "-j", ".plt.got", exe], capture_output=True, text=True).stdout
    assert irelative and "jmp" in plt_got            # the oracle: N ifunc stubs, plus a .plt.got stub
    res = run_gdb([*json_wrapped("plt --json")], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert f"its .plt holds {irelative} IRELATIVE (ifunc) stubs" in " ".join(doc["notes"]), doc["notes"]


# -- an audit of nothing -----------------------------------------------------------------------
def test_audit_with_no_matching_slot_says_so():
    exe = compile_c("#include <stdio.h>\n" + CHECKPOINT + 'int main(void) { puts("x"); checkpoint(); return 0; }\n',
                    name="audit_nomatch", flags=["-Wl,-z,lazy"])
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --audit no_such_name --json"),
                   "got --audit no_such_name", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    assert doc["slots"] == [] and doc["notes"] == ["no GOT slot matched"], doc["notes"]
    assert "note: audit:\n" not in res.stdout and "note: no GOT slot matched" in res.stdout


# -- i386: _dl_fixup gets the byte offset that the stub pushed ---------------------------------
@pytest.mark.skipif(not HAVE_I386, reason=NO_I386)
def test_i386_story_passes_the_pushed_relocation_offset():
    exe = compile_c("#include <stdio.h>\n#include <stdlib.h>\n" + CHECKPOINT +
                    'int main(void) { puts("x"); checkpoint(); return atoi("1"); }\n',
                    name="story32", flags=["-Wl,-z,lazy"], compiler=I686)
    dis = subprocess.run(["objdump", "-d", "-j", ".plt", exe], capture_output=True, text=True).stdout
    stub = dis[dis.index("<atoi@plt>:"):]
    pushed = int(re.search(r"push\s+\$0x([0-9a-f]+)", stub).group(1), 16)
    assert pushed and pushed % 8 == 0                       # i386 pushes a byte offset into .rel.plt
    res = run_gdb(["break checkpoint", "run", *json_wrapped("plt-walk atoi --json"), "kill"], program=exe)
    assert_no_traceback(res)
    walk = res.json_documents()[0]
    story = " ".join(walk["first_call"])
    assert f"_dl_fixup(link_map, {pushed})" in story, story
    assert f"relocation offset {pushed} (entry {pushed // 8} of .rel.plt" in story
    lazy = next(h for h in walk["hops"] if h["step"] == "lazy stub")
    assert "relocation offset" in lazy["note"]
    plt0 = next(h for h in walk["hops"] if h["step"] == ".plt[0]")
    assert not any("add byte ptr [eax], al" in c for c in plt0["code"]), plt0["code"]   # zero padding


# -- a weak undefined function: its GLOB_DAT stays 0 even after a library defining it loads ---
WEAK_DEF = "#include <stdio.h>\nvoid wf(void) { puts(\"wf\"); }\n"
WEAK_MAIN = r"""
#include <dlfcn.h>
#include <stdio.h>
extern void wf(void) __attribute__((weak));
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    printf("wf=%p dlsym=%p\n", (void *)wf, h ? dlsym(h, "wf") : 0);
    if (wf) wf();
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_weak_undefined_function_story_does_not_promise_a_later_binding():
    lib = compile_c(WEAK_DEF, name="libwdef.so", flags=["-shared", "-fPIC"])
    exe = compile_c(WEAK_MAIN, name="weak_later", flags=["-Wl,-z,lazy"])
    assert "R_X86_64_GLOB_DAT" in next(ln for ln in _readelf("-rW", exe).splitlines() if " wf" in ln)
    res = run_gdb(["break checkpoint", "run", *json_wrapped("plt-walk wf --json"), "kill"], program=exe, args=[lib])
    assert_no_traceback(res)
    m = re.search(r"wf=(\S+) dlsym=(0x[0-9a-f]+)", res.stdout)
    assert m.group(1) == "(nil)"                  # the program's own view after dlopen(RTLD_GLOBAL)
    walk = res.json_documents()[0]
    assert addr(walk["value"]) == 0 and walk["state"] == "null"
    story = " ".join(walk["first_call"] + walk["later_calls"])
    assert "unless an object defining" not in story
    assert "dlopen" in story and "stays 0" in story, story


# -- the vDSO: glibc's time/gettimeofday ifuncs choose the kernel's implementation ------------
VDSO_MAIN = r"""
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
""" + CHECKPOINT + r"""
int main(void) {
    struct timeval tv;
    gettimeofday(&tv, 0);
    printf("%ld %ld\n", (long)time(0), (long)tv.tv_sec);
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_slots_bound_into_the_vdso_are_named_and_not_overwritten(tmp_path):
    """On x86_64 glibc's time() and gettimeofday() are ifuncs whose resolvers return the
    vDSO's functions: every process that calls them has a slot pointing into [vdso].  got
    said '0x7fff... (no loaded object)' and the audit called it OVERWRITTEN."""
    exe = compile_c(VDSO_MAIN, name="vdso_calls", flags=["-Wl,-z,lazy"])
    core = tmp_path / "core"
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --all-objects --audit --json"),
                   "info proc mappings", f"gcore {core}", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    vdso = next(ln.split() for ln in res.stdout.splitlines() if ln.strip().endswith("[vdso]"))
    lo, hi = int(vdso[0], 16), int(vdso[1], 16)                       # /proc/PID/maps
    rows = _slots(doc, "vdso_calls")
    for name in ("time", "gettimeofday"):
        r = rows[name]
        assert lo <= addr(r["value"]) < hi, (name, hex(addr(r["value"])), vdso)
        assert r["target_object"] == "linux-vdso.so.1" and r["target"].startswith(name)
        assert r["audit"]["verdict"] == "ok" and "vDSO" in r["audit"]["why"], r["audit"]
        info = run_gdb(["break checkpoint", "run", f"info symbol {r['value']}", "kill"], program=exe)
        assert re.search(rf"\b{name} in section \.text of system-supplied DSO", info.stdout), info.stdout
    assert not any("linux-vdso" in o["path"] for o in doc["objects"])  # no file, no slots: not listed
    _no_overwritten(doc)
    # the vDSO is in the core too
    res2 = run_gdb([*json_wrapped("got --audit --json")], program=exe, core=core)
    assert_no_traceback(res2)
    rows2 = _slots(res2.json_documents()[0])
    assert rows2["time"]["target_object"] == "linux-vdso.so.1" and rows2["time"]["audit"]["verdict"] == "ok"


# -- a dynamic TLSDESC: the descriptor's argument points at (module id, offset) ----------------
TD_LIB = "__thread int td_small = 1;\n__thread int td_big[100000] = {2};\n" \
         "int td_get(int i) { return td_big[i] + td_small; }\n"
TD_MAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW);      /* too big for the static TLS surplus: dynamic */
    size_t modid = 0;
    dlinfo(h, RTLD_DI_TLS_MODID, &modid);
    printf("modid=%zu get=%d\n", modid, ((int (*)(int))dlsym(h, "td_get"))(0));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_dynamic_tlsdesc_shows_module_and_offset():
    lib = compile_c(TD_LIB, name="libtdyn.so", flags=["-shared", "-fPIC", "-mtls-dialect=gnu2"])
    exe = compile_c(TD_MAIN, name="tdyn_main", flags=[])
    syms = {ln.split()[7]: int(ln.split()[1], 16) for ln in _readelf("--dyn-syms", "-W", lib).splitlines()
            if " TLS " in ln and len(ln.split()) >= 8}
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --object libtdyn --json"), "kill"],
                  program=exe, args=[lib])
    assert_no_traceback(res)
    modid = int(re.search(r"modid=(\d+)", res.stdout).group(1))          # dlinfo's answer
    assert modid
    rows = {r["tls"]["variable"]: r for r in res.json_documents()[0]["slots"] if r["kind"] == "TLSDESC"}
    big = rows["td_big"]
    assert "_dl_tlsdesc_dynamic" in big["tls"]["resolver"]
    assert big["tls"]["module_id"] == modid and big["tls"]["offset"] == syms["td_big"]
    assert f"module {modid}" in big["target"] and f"offset 0x{syms['td_big']:x}" in big["target"]
    assert "(module, offset)" not in big["target"]


# -- dlmopen: the second namespace's ld.so is the same mapping, not a second object -----------
DLM_LIB = "#include <stdio.h>\nint lib_hello(const char *s) { return printf(\"hello %s\\n\", s); }\n"
DLM_MAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *h = dlmopen(LM_ID_NEWLM, argv[1], RTLD_LAZY);
    ((int (*)(const char *))dlsym(h, "lib_hello"))("ns");
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_dlmopen_namespace_shares_ld_so_once():
    """glibc lists ld.so in every namespace, but it is one mapping relocated once (for the base
    namespace): its slots appeared twice and, judged against the new namespace's scope, as four
    'other-definition' verdicts in every dlmopen process."""
    lib = compile_c(DLM_LIB, name="libdlmns.so", flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    exe = compile_c(DLM_MAIN, name="dlm_once", flags=["-Wl,-z,lazy"])
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --all-objects --audit --json"),
                   "info proc mappings", "kill"], program=exe, args=[lib])
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    maps = [ln.split() for ln in res.stdout.splitlines() if ln.strip().endswith("ld-linux-x86-64.so.2")]
    assert len({m[0] for m in maps if m[3] == "0x0"}) == 1                 # one mapping of ld.so
    rtld = [o for o in doc["objects"] if "ld-linux" in o["path"]]
    assert len(rtld) == 1 and rtld[0]["namespace"] == 0, rtld
    assert any(o["namespace"] == 1 and o["path"].endswith("libdlmns.so") for o in doc["objects"])
    odd = [(r["object"], r["symbol"], r["audit"]["verdict"]) for r in doc["slots"]
           if r["audit"]["verdict"] not in ("ok", "lazy", "n/a")]
    assert not odd, odd


# -- gdb -p on a process whose program file was deleted (a daemon after an upgrade) -------------
def test_attach_to_a_process_whose_program_was_deleted(tmp_path):
    import shutil
    import time

    src = "#include <stdio.h>\n#include <unistd.h>\n" \
          'int main(void) { puts("ready"); fflush(stdout); for (;;) sleep(1); }\n'
    built = compile_c(src, name="deleted_prog", flags=["-Wl,-z,lazy"])
    prog = tmp_path / "deleted_prog"
    shutil.copy(built, prog)
    proc = subprocess.Popen([str(prog)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        prog.unlink()                                           # gdb can no longer find the program
        res = run_gdb([*json_wrapped("got --json"), "got", "info proc mappings"], pid=proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert_no_traceback(res)
    assert any(str(prog) in ln and ln.endswith("(deleted)") for ln in res.stdout.splitlines())    # maps
    doc = res.json_documents()[0]
    rows = _slots(doc)
    expected = {ln.split()[4].split("@")[0] for ln in _readelf("-rW", built).splitlines() if "JUMP_SLOT" in ln}
    assert expected and expected <= set(rows), (expected, list(rows))
    assert rows["puts"]["state"] == "resolved" and rows["puts"]["target"] == "puts in libc.so.6"
    assert doc["objects"][0]["path"] == f"{prog} (deleted)"
    assert any("deleted" in n and f"/proc/{proc.pid}/exe" in n for n in doc["notes"]), doc["notes"]


# -- 80 columns: a demangled C++ name longer than the terminal is wrapped between words --------
def test_long_demangled_names_are_not_folded_mid_word_at_80_columns():
    from tests.support.tmux import TmuxGdb

    exe = compile_c(CXX_MAIN, name="cxx_names", compiler="g++", flags=["-Wl,-z,lazy"])
    with TmuxGdb(width=80, height=50, program=exe, history=200000) as t:
        t.run("break checkpoint")
        t.run("run")
        for cmd in ("got", "plt"):
            rows = t.run(cmd)
            assert any("std::__cxx11::basic_string<char," in r for r in rows), rows[:20]
            assert not t.folded_rows(), t.folded_rows()[:3]              # the terminal folded nothing
            assert all(len(r) <= 80 for r in rows)


def test_plt_walk_accepts_the_demangled_name_got_shows():
    """got shows 'std::__throw_bad_alloc()@GLIBCXX_3.4'; plt-walk of that name said 'no GOT slot'."""
    exe = compile_c(CXX_MAIN, name="cxx_names", compiler="g++", flags=["-Wl,-z,lazy"])
    raw = "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEED1Ev"
    shown = _cxxfilt([raw])[raw]                                      # the oracle
    res = run_gdb(["break checkpoint", "run", *json_wrapped(f"plt-walk '{shown}' --json"),
                   *json_wrapped(f"plt-walk '{shown}@GLIBCXX_3.4.21' --json"), "kill"], program=exe)
    assert_no_traceback(res)
    a, b = res.json_documents()
    assert a["symbol_raw"] == b["symbol_raw"] == f"{raw}@GLIBCXX_3.4.21"
    assert a["symbol"] == f"{shown}@GLIBCXX_3.4.21"


# -- RTLD_GLOBAL: a later library binds to an earlier dlopen'ed one ----------------------------
GLOBAL_PROVIDER = "int gfunc(void) { return 7; }\n"
GLOBAL_USER = "int gfunc(void);\nint use_g(void) { return gfunc() + 1; }\n"      # no DT_NEEDED on it
GLOBAL_MAIN = r"""
#include <dlfcn.h>
#include <stdio.h>
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *g = dlopen(argv[1], RTLD_LAZY | RTLD_GLOBAL);
    void *u = dlopen(argv[2], RTLD_LAZY);
    printf("use_g=%d\n", ((int (*)(void))dlsym(u, "use_g"))());
    fflush(stdout);
    checkpoint();
    return g == 0;
}
"""


def test_rtld_global_binding_is_explained_precisely():
    prov = compile_c(GLOBAL_PROVIDER, name="libgprov.so", flags=["-shared", "-fPIC"])
    user = compile_c(GLOBAL_USER, name="libguser.so", flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    exe = compile_c(GLOBAL_MAIN, name="global_main", flags=["-Wl,-z,lazy"])
    assert "libgprov" not in _readelf("-d", user)
    assert re.search(r"binding file .*libguser\.so .* to .*libgprov\.so .*: normal symbol `gfunc'",
                     _bindings(exe, args=[prov, user]))
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --object libguser --audit --json"), "kill"],
                  program=exe, args=[prov, user])
    assert_no_traceback(res)
    row = _slots(res.json_documents()[0])["gfunc"]
    assert row["target"] == "gfunc in libgprov.so" and row["audit"]["verdict"] == "other-definition"
    why = row["audit"]["why"]
    assert "RTLD_GLOBAL" in why and "DEEPBIND" not in why and "another namespace" not in why, why


# -- RTLD_DEEPBIND: a dlopen'ed library prefers its own definitions ----------------------------
DEEP_LIB = "int common_fn(void) { return 100; }\nint deep_entry(void) { return common_fn(); }\n"
DEEP_MAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int common_fn(void) { return 1; }
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *d = dlopen(argv[1], RTLD_LAZY | RTLD_DEEPBIND);
    printf("deep=%d main=%d\n", ((int (*)(void))dlsym(d, "deep_entry"))(), common_fn());
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_rtld_deepbind_binding_is_explained_precisely():
    lib = compile_c(DEEP_LIB, name="libdeepb.so", flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    exe = compile_c(DEEP_MAIN, name="deep_main", flags=["-rdynamic", "-Wl,-z,lazy"])
    assert re.search(r"binding file .*libdeepb\.so .* to .*libdeepb\.so .*: normal symbol `common_fn'",
                     _bindings(exe, args=[lib]))
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --object libdeepb --audit --json"), "kill"],
                  program=exe, args=[lib])
    assert_no_traceback(res)
    assert "deep=100 main=1" in res.stdout
    row = _slots(res.json_documents()[0])["common_fn"]
    assert row["target"] == "common_fn in libdeepb.so" and row["audit"]["verdict"] == "other-definition"
    why = row["audit"]["why"]
    assert "RTLD_DEEPBIND" in why and "DF_SYMBOLIC" not in why and "protected" not in why, why
