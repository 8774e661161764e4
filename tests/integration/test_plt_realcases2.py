"""got/plt-walk against the dynamic linker's runtime truth, second round (pltreal2): ifunc
slots (libc's and a stripped library's), the vDSO, a slot holding an ifunc's resolver, and
a program with more dynamic entries than the first 64 (many DT_NEEDED) under
'set auto-solib-add off'.  Expected values come from independent oracles: readelf -s / -d
on the files, the program's own dlsym/dladdr answers printed from inside the process
(dlsym runs an ifunc's resolver, as ld.so does), and gdb's own memory writes and reads."""
import re
import shutil
import subprocess

import pytest

from tests.support.gdbrun import addr, assert_no_traceback, compile_c, json_wrapped, run_gdb

pytestmark = pytest.mark.gdb

CHECKPOINT = '__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }\n'


def _readelf(*args) -> str:
    return subprocess.run(["readelf", *map(str, args)], capture_output=True, text=True, check=True).stdout


def _dynsym_types(path) -> dict[str, tuple[str, int]]:
    """readelf --dyn-syms -W: defined name (version stripped) -> (type, value)."""
    out = {}
    for ln in _readelf("--dyn-syms", "-W", path).splitlines():
        f = ln.split()
        if len(f) >= 8 and f[0][:-1].isdigit() and f[6] != "UND":
            out.setdefault(f[7].split("@")[0], (f[3], int(f[1], 16)))
    return out


# -- ifunc choices: libc's strlen, the vDSO's time, a stripped library's own ifunc -----------
IFUNC_LIB = r"""
static int impl_a(int x) { return x + 1; }
static int impl_b(int x) { return x + 2; }
int impl_b_marker(void) { return 0; }
static void *pick(void) { return impl_b; }
int myf(int) __attribute__((ifunc("pick")));
int (*impl_b_address(void))(int) { return impl_b; }
int (*impl_a_address(void))(int) { return impl_a; }
"""
IFUNC_MAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
int myf(int);
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    Dl_info libc, mine;
    dladdr(dlsym(RTLD_DEFAULT, "printf"), &libc);
    dladdr(dlsym(RTLD_DEFAULT, "myf"), &mine);
    printf("%zu %d %d\n", strlen(argv[0]), myf(1), time(NULL) > 0);
    printf("libc=%p lib=%p strlen=%p time=%p myf=%p printf=%p\n", libc.dli_fbase, mine.dli_fbase,
           dlsym(RTLD_DEFAULT, "strlen"), dlsym(RTLD_DEFAULT, "time"), dlsym(RTLD_DEFAULT, "myf"),
           dlsym(RTLD_DEFAULT, "printf"));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_ifunc_slots_name_the_ifunc_and_a_resolver_in_a_slot_is_overwritten(tmp_path):
    """A slot bound to an ifunc holds the implementation its resolver chose (__strlen_avx2
    for strlen; the vDSO's time for libc's time; a stripped library's .text+0x... for its
    own ifunc): the target says which ifunc chose it.  Before the fix the strlen row read
    '__strlen_avx2 in libc.so.6' with no word of strlen, the stripped library's row an
    anonymous 'libif.so:.text+0x...', and a slot overwritten with the resolver's own address
    read 'strlen in libc.so.6' and audited 'ok' -- every call would run the resolver."""
    full = compile_c(IFUNC_LIB, name="libif.so", out_dir=tmp_path / "full", flags=["-shared", "-fPIC", "-O1"])
    (tmp_path / "lib").mkdir()
    lib = tmp_path / "lib" / "libif.so"
    subprocess.run(["strip", "--strip-all", "-o", str(lib), str(full)], check=True)
    exe = compile_c(IFUNC_MAIN, name="ifmain", out_dir=tmp_path,
                    flags=["-O1", "-Wl,-z,lazy", f"-L{lib.parent}", "-lif", f"-Wl,-rpath,{lib.parent}", "-ldl"])
    libc_path = next(ln.split("=>")[1].split()[0] for ln in subprocess.run(
        ["ldd", str(exe)], capture_output=True, text=True, check=True).stdout.splitlines() if "libc.so.6" in ln)
    libc_syms = _dynsym_types(libc_path)
    if libc_syms.get("strlen", ("",))[0] != "IFUNC":
        pytest.skip("this libc's strlen is not an ifunc")
    assert libc_syms["printf"][0] == "FUNC"
    assert _dynsym_types(lib)["myf"][0] == "IFUNC"
    # impl_b (the resolver's choice) from the unstripped library's own symbol table
    impl_b = next(int(ln.split()[1], 16) for ln in _readelf("-sW", full).splitlines() if ln.endswith(" impl_b"))

    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --json"), "plt-walk strlen", "kill"], program=exe)
    assert_no_traceback(res)
    m = re.search(r"libc=(0x[0-9a-f]+) lib=(0x[0-9a-f]+) strlen=(0x[0-9a-f]+) time=(0x[0-9a-f]+) "
                  r"myf=(0x[0-9a-f]+) printf=(0x[0-9a-f]+)", res.stdout)
    libc_base, lib_base, strlen_at, time_at, myf_at, printf_at = (int(g, 16) for g in m.groups())
    rows = {r["symbol"].split("@")[0]: r for r in res.json_documents()[0]["slots"]}

    s = rows["strlen"]
    assert addr(s["value"]) == strlen_at != libc_base + libc_syms["strlen"][1]    # the choice, not the resolver
    assert s["ifunc"] == {"symbol": "strlen", "object": "libc.so.6", "holds": "implementation"}
    assert s["target"].endswith("(chosen by ifunc strlen)") and s["target_object"] == "libc.so.6", s

    walk = res.stdout[res.stdout.index("strlen@GLIBC_2.2.5 in ifmain"):]
    impl = s["target"].split(" (chosen by")[0]
    assert "calls the resolver of the ifunc strlen in libc.so.6" in walk
    assert f"writes the implementation it returns ({impl})" in walk and f"-> {impl} directly" in walk

    f = rows["myf"]
    assert addr(f["value"]) == myf_at == lib_base + impl_b
    assert f["ifunc"] == {"symbol": "myf", "object": "libif.so", "holds": "implementation"}
    assert "(chosen by ifunc myf)" in f["target"], f

    p = rows["printf"]
    assert addr(p["value"]) == printf_at and p["ifunc"] is None and "ifunc" not in p["target"]

    if libc_syms.get("time", ("",))[0] == "IFUNC" and "time" in rows:
        t = rows["time"]
        assert addr(t["value"]) == time_at
        if t["target_object"] == "linux-vdso.so.1":
            assert t["ifunc"] == {"symbol": "time", "object": "libc.so.6", "holds": "implementation"}
            assert t["target"].endswith("(chosen by ifunc time in libc.so.6)"), t

    # plt-walk --live watches _dl_fixup write the slot: the value it writes is the choice
    res = run_gdb(["break main", "run", *json_wrapped("got --audit --json ^strlen$|^printf$"),
                   "plt-walk --live strlen", "kill"], program=exe)
    assert_no_traceback(res)
    lazy = {r["symbol"].split("@")[0]: r["audit"] for r in res.json_documents()[0]["slots"]}
    assert lazy["strlen"]["verdict"] == lazy["printf"]["verdict"] == "lazy"
    assert "(an ifunc: ld.so calls its resolver" in lazy["strlen"]["why"]        # readelf: IFUNC
    assert "ifunc" not in lazy["printf"]["why"]                                   # readelf: FUNC
    m = re.search(r"new (0x[0-9a-f]+) = (.*)", res.stdout)
    assert int(m.group(1), 16) == strlen_at and m.group(2).endswith(" (chosen by ifunc strlen)"), res.stdout

    # the resolver's own address in the slot (gdb writes it; readelf gives it; gdb runs the
    # program without address randomisation, so the second run has the same addresses)
    slot = addr(s["address"])
    resolver = libc_base + libc_syms["strlen"][1]
    res = run_gdb(["break checkpoint", "run", f"set var *(unsigned long *){slot:#x} = {resolver:#x}",
                   f"x/gx {slot:#x}", *json_wrapped("got --audit --json strlen"), "got --audit strlen",
                   "kill"], program=exe)
    assert_no_traceback(res)
    assert int(re.search(rf"^{slot:#x}[^:\n]*:\s+(0x[0-9a-f]+)", res.stdout, re.M).group(1), 16) == resolver
    row = res.json_documents()[0]["slots"][0]
    assert addr(row["value"]) == resolver
    assert row["ifunc"] == {"symbol": "strlen", "object": "libc.so.6", "holds": "resolver"}
    assert "ifunc resolver, not its choice" in row["target"]
    assert row["audit"]["verdict"] == "overwritten" and "resolver" in row["audit"]["why"], row["audit"]
    assert "OVERWRITTEN: strlen" in res.stdout


# -- DT_DEBUG past the 64th dynamic entry --------------------------------------------------
TINY = "int tiny_fn(int x) { return x + 1; }\n"
MANY_MAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int tiny_fn(int);
""" + CHECKPOINT + r"""
int main(void) {
    Dl_info info;
    dladdr(dlsym(RTLD_DEFAULT, "tiny_fn"), &info);
    printf("%d base=%p tiny_fn=%p\n", tiny_fn(1), info.dli_fbase, dlsym(RTLD_DEFAULT, "tiny_fn"));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_dt_debug_after_the_64th_dynamic_entry_is_found(tmp_path):
    """A program linked against 80 libraries has DT_DEBUG after 80 DT_NEEDED entries.  The
    link_map walk read only the first 64 entries of the loaded .dynamic and fell back to
    gdb's _r_debug symbol; with 'set auto-solib-add off' (common for huge programs) gdb has
    none, and got said 'not relocated yet' and '0x... (no loaded object)' for a bound slot."""
    tiny = compile_c(TINY, name="libtiny0.so", out_dir=tmp_path, flags=["-shared", "-fPIC"])
    names = [f"tiny{i}" for i in range(1, 80)]
    for n in names:
        shutil.copy(tiny, tmp_path / f"lib{n}.so")
    exe = compile_c(MANY_MAIN, name="manymain", out_dir=tmp_path,
                    flags=["-Wl,-z,lazy", "-Wl,--no-as-needed", f"-L{tmp_path}", "-ltiny0",
                           *[f"-l{n}" for n in names], f"-Wl,-rpath,{tmp_path}", "-ldl"])
    dyn = [ln.split()[1] for ln in _readelf("-dW", exe).splitlines() if ln.strip().startswith("0x")]
    assert dyn.index("(DEBUG)") > 64 and dyn.count("(NEEDED)") >= 80       # the shape under test

    res = run_gdb(["set auto-solib-add off", "break checkpoint", "run", "info proc mappings",
                   *json_wrapped("got --json tiny_fn"), *json_wrapped("got --all-objects --json ^tiny"),
                   "echo @@TEXT@@\\n", "got --all-objects ^tiny_fn$", "kill"], program=exe)
    assert_no_traceback(res)
    m = re.search(r"base=(0x[0-9a-f]+) tiny_fn=(0x[0-9a-f]+)", res.stdout)
    base, fn = int(m.group(1), 16), int(m.group(2), 16)
    mapped = set(re.findall(r"(/\S+/libtiny\d+\.so)\s*$", res.stdout, re.M))      # gdb's /proc/PID/maps
    assert len(mapped) == 80
    doc, every = res.json_documents()
    assert doc["objects"][0]["binding"] == "lazy" and "GOT[2]=" in doc["objects"][0]["binding_reason"]
    row = doc["slots"][0]
    assert row["state"] == "resolved" and addr(row["value"]) == fn
    assert row["target_object"] == "libtiny0.so" and row["target"] == "tiny_fn in libtiny0.so", row
    assert fn - base == _dynsym_types(tiny)["tiny_fn"][1]
    assert {o["path"] for o in every["objects"]} >= mapped
    # the text of a filtered --all-objects: one header (only the program imports tiny_fn:
    # readelf -r), not 83 headers of objects with nothing matching
    assert "tiny_fn" not in _readelf("-rW", tiny)
    text = res.stdout[res.stdout.index("@@TEXT@@"):]
    headers = [ln for ln in text.splitlines() if re.match(r"/\S+: .*binding ", ln)]
    assert len(headers) == 1 and headers[0].startswith(str(exe)), headers
    hidden = int(re.search(r"note: (\d+) objects without a matching slot not shown", text).group(1))
    assert hidden == len(every["objects"]) - 1


# -- the same library loaded twice by dlmopen(LM_ID_NEWLM) -----------------------------------
DPLUG = r"""
#include <stdio.h>
#include <string.h>
int dplug(const char *s) { return (int)strlen(s) + puts(s); }
"""
DMAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    void *a = dlmopen(LM_ID_NEWLM, argv[1], RTLD_LAZY), *b = dlmopen(LM_ID_NEWLM, argv[1], RTLD_LAZY);
    int (*fa)(const char *) = dlsym(a, "dplug"), (*fb)(const char *) = dlsym(b, "dplug");
    fa("a"); fb("b");
    struct link_map *la, *lb;
    dlinfo(a, RTLD_DI_LINKMAP, &la);
    dlinfo(b, RTLD_DI_LINKMAP, &lb);
    printf("a=%p b=%p puts_a=%p puts_b=%p\n", (void *)la->l_addr, (void *)lb->l_addr, dlsym(a, "puts"),
           dlsym(b, "puts"));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_one_library_in_two_dlmopen_namespaces(tmp_path):
    """The same libdplug.so dlmopen'ed into two new namespaces: each copy's puts slot holds
    its own namespace's libc (dlsym(handle, "puts") from inside the process, LD_DEBUG
    'libdplug.so [1] to libc.so.6 [1]'), and plt-walk names which copy it walked
    ('libdplug.so[ns1]', not a bare 'libdplug.so' the other copy also is).  glibc's one
    ld.so is listed in every namespace; LD_DEBUG names it '[0]' for every namespace's libc
    ('libc.so.6 [2] to ld-linux-x86-64.so.2 [0]'): before the fix a slot of namespace 0
    read 'in ld-linux-x86-64.so.2[ns2]', whichever alias sorted last."""
    lib = compile_c(DPLUG, name="libdplug.so", out_dir=tmp_path, flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    exe = compile_c(DMAIN, name="dmain", out_dir=tmp_path, flags=["-Wl,-z,lazy", "-ldl"])
    debug = subprocess.run([str(exe), str(lib)], capture_output=True, text=True,
                           env={"LD_DEBUG": "bindings", "PATH": "/usr/bin:/bin"}).stderr
    for ns in (1, 2):
        assert re.search(rf"binding file \S*libdplug.so \[{ns}\] to \S*libc.so.6 \[{ns}\]: normal symbol `puts'", debug)
    ldso = re.findall(r"binding file \S*libc.so.6 \[(\d)\] to \S*ld-linux\S* \[(\d)\]", debug)
    assert {n for n, _ in ldso} >= {"0", "1", "2"} and {m for _, m in ldso} == {"0"}, ldso

    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --all-objects --json ^puts$|tunable_get_val"),
                   *json_wrapped("plt-walk --object libdplug --json puts"), "kill"], program=exe, args=[lib])
    assert_no_traceback(res)
    m = re.search(r"a=(0x[0-9a-f]+) b=(0x[0-9a-f]+) puts_a=(0x[0-9a-f]+) puts_b=(0x[0-9a-f]+)", res.stdout)
    base_a, base_b, puts_a, puts_b = (int(g, 16) for g in m.groups())
    assert puts_a != puts_b
    got, walk = res.json_documents()
    ns_of = {addr(o["bias"]): o["namespace"] for o in got["objects"] if o["path"].endswith("libdplug.so")}
    assert set(ns_of) == {base_a, base_b} and {ns_of[base_a], ns_of[base_b]} == {1, 2}
    puts_rows = {r["object"]: r for r in got["slots"] if r["symbol"].startswith("puts@") and "dplug" in r["object"]}
    for base, want in ((base_a, puts_a), (base_b, puts_b)):
        ns = ns_of[base]
        row = puts_rows[f"libdplug.so[ns{ns}]"]
        assert addr(row["value"]) == want and row["target_object"] == f"libc.so.6[ns{ns}]", row
    tunable = [r for r in got["slots"] if r["symbol"].startswith("__tunable_get_val")]
    assert {r["object"] for r in tunable} >= {"libc.so.6", "libc.so.6[ns1]", "libc.so.6[ns2]"}
    assert {r["target_object"] for r in tunable} == {"ld-linux-x86-64.so.2"}, tunable
    first = min(ns_of.values())
    assert walk["object"] == f"libdplug.so[ns{first}]" and walk["target"] == f"puts in libc.so.6[ns{first}]", walk
    assert all(h["location"]["object"] in (walk["object"], f"libc.so.6[ns{first}]", "ld-linux-x86-64.so.2")
               for h in walk["hops"] if h.get("location")), walk["hops"]


# -- a copy relocation asked for by name -----------------------------------------------------
COPY_MAIN = r"""
#include <stdio.h>
""" + CHECKPOINT + r"""
int main(void) {
    printf("copy=%p\n", (void *)&stdout);
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_got_of_a_copy_relocated_variable_says_where_it_lives(tmp_path):
    """A non-PIE program using libc's stdout has an R_X86_64_COPY, not a GOT slot: before the
    fix 'got stdout' said only 'no GOT slot matched'.  Now a note names the copy's address and
    size (readelf -r/-s; the program's own &stdout) and libc's GLOB_DAT slot, listed with
    --all-objects, holds that address (LD_DEBUG: 'libc.so.6 [0] to ./copymain [0]: stdout')."""
    exe = compile_c(COPY_MAIN, name="copymain", out_dir=tmp_path, flags=["-no-pie", "-fno-pic", "-O1"])
    copy = [ln.split() for ln in _readelf("-rW", exe).splitlines() if "_COPY" in ln and "stdout" in ln]
    assert len(copy) == 1
    copy_at, rtype = int(copy[0][0], 16), copy[0][2]
    size = next(int(m.group(1)) for ln in _readelf("--dyn-syms", "-W", exe).splitlines()
                if (m := re.search(r":\s+[0-9a-f]+\s+(\d+)\s+OBJECT\s+\S+\s+\S+\s+\d+\s+stdout@", ln)))
    debug = subprocess.run([str(exe)], capture_output=True, text=True,
                           env={"LD_DEBUG": "bindings", "PATH": "/usr/bin:/bin"}).stderr
    assert re.search(r"binding file \S*libc.so.6 \[0\] to \S*copymain \[0\]: normal symbol `stdout'", debug)

    res = run_gdb([*json_wrapped("got --json stdout"), "break checkpoint", "run",
                   *json_wrapped("got --json ^stdout$"), *json_wrapped("got --all-objects --json ^stdout$"),
                   "kill"], program=exe)
    assert_no_traceback(res)
    assert int(re.search(r"copy=(0x[0-9a-f]+)", res.stdout).group(1), 16) == copy_at
    before, live, every = res.json_documents()
    want = f"stdout@GLIBC_2.2.5 in copymain: a copy relocation ({rtype}), not a GOT slot"
    for doc in (before, live):
        assert doc["slots"] == []
        note = next(n for n in doc["notes"] if "copy relocation" in n)
        assert note.startswith(want) and f"at 0x{copy_at:x} ({size} bytes" in note, note
    libc_row = next(r for r in every["slots"] if r["object"] == "libc.so.6" and r["kind"] == "GLOB_DAT")
    assert addr(libc_row["value"]) == copy_at and libc_row["target"] == "stdout in copymain", libc_row


# -- LD_PRELOAD interposition beside interposition between two libraries ---------------------
ILIB1 = r"""
#include <stdio.h>
#include <string.h>
int shared_fn(void) { return 1; }
int lib1_call(const char *s) { puts(s); return (int)strlen(s) + shared_fn(); }
"""
ILIB2 = "int shared_fn(void) { return 2; }\n"
IPRE = r"""
#include <stddef.h>
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
"""
IMAIN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int lib1_call(const char *s);
int shared_fn(void);
""" + CHECKPOINT + r"""
int main(int argc, char **argv) {
    printf("%d %zu %d\n", lib1_call("x"), strlen(argv[0]), shared_fn());
    printf("strlen=%p shared_fn=%p\n", dlsym(RTLD_DEFAULT, "strlen"), dlsym(RTLD_DEFAULT, "shared_fn"));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_a_slot_bound_into_an_ld_preload_object_says_so(tmp_path):
    """strlen interposed by LD_PRELOAD and shared_fn by link order (lib2 before lib1): the
    slot bound into the preloaded object says '(LD_PRELOAD)' (got's target and the audit's
    'interposed' line); the one bound to lib2 does not.  Oracles: LD_DEBUG=bindings, the
    program's own dlsym, readelf -d (libipre.so is no DT_NEEDED of anything)."""
    lib1 = compile_c(ILIB1, name="libi1.so", out_dir=tmp_path, flags=["-shared", "-fPIC", "-Wl,-z,lazy"])
    compile_c(ILIB2, name="libi2.so", out_dir=tmp_path, flags=["-shared", "-fPIC"])
    pre = compile_c(IPRE, name="libipre.so", out_dir=tmp_path, flags=["-shared", "-fPIC", "-fno-builtin"])
    exe = compile_c(IMAIN, name="imain", out_dir=tmp_path,
                    flags=["-O1", "-fno-builtin", "-Wl,-z,lazy", f"-L{tmp_path}", "-li2", "-li1",
                           f"-Wl,-rpath,{tmp_path}", "-ldl"])
    assert "libipre" not in _readelf("-dW", exe) + _readelf("-dW", lib1)
    debug = subprocess.run([str(exe)], capture_output=True, text=True,
                           env={"LD_DEBUG": "bindings", "LD_PRELOAD": str(pre), "PATH": "/usr/bin:/bin"}).stderr
    for who in ("imain", "libi1.so"):
        assert re.search(rf"binding file \S*{who} \[0\] to \S*libipre.so \[0\]: normal symbol `strlen'", debug), who
        assert re.search(rf"binding file \S*{who} \[0\] to \S*libi2.so \[0\]: normal symbol `shared_fn'", debug), who

    res = run_gdb([f"set environment LD_PRELOAD={pre}", "break checkpoint", "run",
                   *json_wrapped("got --all-objects --audit --json ^strlen$|^shared_fn$"),
                   "got --audit ^strlen$", "kill"], program=exe)
    assert_no_traceback(res)
    m = re.search(r"strlen=(0x[0-9a-f]+) shared_fn=(0x[0-9a-f]+)", res.stdout)
    strlen_at, shared_at = int(m.group(1), 16), int(m.group(2), 16)
    rows = {(r["object"], r["symbol"].split("@")[0]): r for r in res.json_documents()[0]["slots"]
            if r["kind"] == "JUMP_SLOT"}
    for who in ("imain", "libi1.so"):
        s, f = rows[(who, "strlen")], rows[(who, "shared_fn")]
        assert addr(s["value"]) == strlen_at and s["target"] == "strlen in libipre.so (LD_PRELOAD)", s
        assert addr(f["value"]) == shared_at and f["target"] == "shared_fn in libi2.so", f
        assert s["audit"]["verdict"] == f["audit"]["verdict"] == "ok"
    assert "binds strlen in libipre.so (LD_PRELOAD) (interposing strlen@GLIBC_2.2.5 in libc.so.6)" in res.stdout

    # without LD_PRELOAD nothing says LD_PRELOAD
    res = run_gdb(["break checkpoint", "run", "got --all-objects --audit ^strlen$|^shared_fn$", "kill"], program=exe)
    assert_no_traceback(res)
    assert "LD_PRELOAD" not in res.stdout and re.search(r"strlen\S* in libc\.so\.6", res.stdout)
