"""dlmopen namespaces, TLS slots (TLSDESC, TPOFF, DTPMOD/DTPOFF), the lookup-scope audit
(an overwritten slot is flagged, LD_PRELOAD interposition is not) and the GOT diff.
Oracles: the program's dlinfo/dlsym and thread-pointer arithmetic, LD_DEBUG=bindings,
/proc/PID/maps, gdb's own 'info symbol'."""
import os
import re
import subprocess

import pytest

from tests.support.gdbrun import addr, assert_no_traceback, compile_c, json_wrapped, run_gdb
from tests.support.plt_oracles import build_demo, build_hello, program_said

pytestmark = pytest.mark.gdb

DLMOPEN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main(int argc, char **argv) {
    void *h = dlmopen(LM_ID_NEWLM, argv[1], RTLD_LAZY);
    if (!h) { printf("dlmopen failed: %s\n", dlerror()); return 1; }
    int (*f)(const char *) = (int (*)(const char *))dlsym(h, "lib_hello");
    f("ns");
    Lmid_t lm; struct link_map *map;
    dlinfo(h, RTLD_DI_LMID, &lm); dlinfo(h, RTLD_DI_LINKMAP, &map);
    printf("lmid=%ld l_addr=%p\n", (long)lm, (void *)map->l_addr);
    printf("nsprintf=%p nsstrlen=%p\n", dlsym(h, "printf"), dlsym(h, "strlen"));
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_dlmopen_namespace_is_walked():
    _, lib, _ = build_demo()
    exe = compile_c(DLMOPEN, name="dlmopen_demo", flags=["-Wl,-z,lazy"])
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got '^(printf|strlen)$' --all-objects --json"),
                   "info proc mappings", "kill"], program=exe, args=[lib])
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    m = re.search(r"lmid=(\d+) l_addr=(0x[0-9a-f]+)", res.stdout)
    assert m and int(m.group(1)) > 0, res.stdout
    said = program_said(res.stdout)
    ns_objs = [o for o in doc["objects"] if o["namespace"] > 0]
    lib_ns = next(o for o in ns_objs if o["path"].endswith("libpltlib.so"))
    assert addr(lib_ns["bias"]) == int(m.group(2), 16)                       # dlinfo's l_addr
    assert any(o["path"].endswith("libc.so.6") for o in ns_objs)     # the namespace's own libc
    # /proc/PID/maps: libc mapped twice (two namespaces)
    maps = res.stdout.split("Start Addr")[-1]
    libc_bases = {l.split()[0] for l in maps.splitlines() if l.strip().endswith("libc.so.6") and l.split()[3] == "0x0"}
    assert len(libc_bases) == 2, maps
    rows = {r["symbol"].split("@")[0]: r for r in doc["slots"] if r["object"] == "libpltlib.so[ns1]"}
    assert addr(rows["printf"]["value"]) == said["nsprintf"] and rows["printf"]["state"] == "resolved"
    assert rows["printf"]["target_object"] == "libc.so.6[ns1]"


TLS_DEF = "__thread int tls_var = 5;\n__thread int tls_other = 6;\n"
TLS_USE = "extern __thread int tls_var;\nint get_tls(void) { return tls_var; }\n"
TLS_GD = "extern __thread int tls_other;\nint get_other(void) { return tls_other; }\n"
TLS_MAIN = r"""
#include <stdio.h>
extern __thread int tls_var;
int get_tls(void); int get_other(void);
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main(void) {
    printf("tpoff=%ld sum=%d\n", (long)((char *)&tls_var - (char *)__builtin_thread_pointer()),
           get_tls() + get_other() + tls_var);
    fflush(stdout);
    checkpoint();
    return 0;
}
"""


def test_tls_slots_name_module_variable_and_resolver():
    d = compile_c(TLS_DEF, name="libtlsdef.so", flags=["-shared", "-fPIC"])
    use = compile_c(TLS_USE, name="libtlsuse.so",
                    flags=["-shared", "-fPIC", "-mtls-dialect=gnu2", f"-L{d.parent}", "-ltlsdef"])
    gd = compile_c(TLS_GD, name="libtlsgd.so", flags=["-shared", "-fPIC", f"-L{d.parent}", "-ltlsdef"])
    rpath = ":".join(str(p.parent) for p in (d, use, gd))
    exe = compile_c(TLS_MAIN, name="tls_main",
                    flags=[f"-L{use.parent}", "-ltlsuse", f"-L{gd.parent}", "-ltlsgd", f"-L{d.parent}", "-ltlsdef",
                           f"-Wl,-rpath,{rpath}"])
    rel = subprocess.run(["readelf", "-rW", use], capture_output=True, text=True).stdout
    assert "R_X86_64_TLSDESC" in rel and "tls_var" in rel                  # the oracle: a TLSDESC slot
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --all-objects tls_ --json"),
                   *json_wrapped("got --all-objects tls_ --json"), "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    tpoff = int(re.search(r"tpoff=(-?\d+)", res.stdout).group(1))
    desc = next(r for r in doc["slots"] if r["kind"] == "TLSDESC")
    assert desc["object"] == "libtlsuse.so"
    assert desc["tls"]["variable"] == "tls_var" and desc["tls"]["object"] == "libtlsdef.so"
    assert "_dl_tlsdesc_return" in desc["tls"]["resolver"]          # static TLS: loaded at start-up
    assert desc["tls"]["offset"] == tpoff                            # the CPU's own thread-pointer offset
    assert "TLS value" not in desc["target"] and "_dl_tlsdesc_return" in desc["target"]
    ie = next(r for r in doc["slots"] if r["object"] == "tls_main" and r["kind"] == "TLS_TPOFF")
    assert ie["tls"]["offset"] == tpoff and ie["tls"]["object"] == "libtlsdef.so"
    mods = [r for r in doc["slots"] if r["object"] == "libtlsgd.so" and r["kind"] == "TLS_DTPMOD"]
    assert mods and mods[0]["tls"]["variable"] == "tls_other" and mods[0]["tls"]["object"] == "libtlsdef.so"
    # gdb names the resolver address the same way
    check = run_gdb(["break checkpoint", "run", f"info symbol {desc['value']}", "kill"], program=exe)
    assert "_dl_tlsdesc_return" in check.stdout


HIJACK = r"""
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
extern ElfW(Dyn) _DYNAMIC[];
extern const char __ehdr_start;
int my_puts(const char *s) { return printf("hijacked: %s\n", s); }
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
static void **slot_of(const char *name) {
    char *base = (char *)&__ehdr_start;
    ElfW(Rela) *rel = 0; size_t relsz = 0; ElfW(Sym) *sym = 0; const char *str = 0;
    /* ld.so adjusts these in place on x86_64; elsewhere they stay link-time addresses */
#define P(x) ((x) >= (ElfW(Addr))base ? (char *)(x) : base + (x))
    for (ElfW(Dyn) *d = _DYNAMIC; d->d_tag; d++) {
        if (d->d_tag == DT_JMPREL) rel = (ElfW(Rela) *)P(d->d_un.d_ptr);
        if (d->d_tag == DT_PLTRELSZ) relsz = d->d_un.d_val;
        if (d->d_tag == DT_SYMTAB) sym = (ElfW(Sym) *)P(d->d_un.d_ptr);
        if (d->d_tag == DT_STRTAB) str = P(d->d_un.d_ptr);
    }
    for (size_t i = 0; i < relsz / sizeof *rel; i++)
        if (!strcmp(str + sym[ELF64_R_SYM(rel[i].r_info)].st_name, name))
            return (void **)(base + rel[i].r_offset);
    return 0;
}
int main(int argc, char **argv) {
    puts("first");                                   /* binds puts -> libc */
    void **slot = slot_of("puts");
    *slot = (void *)my_puts;                         /* the program overwrites its own GOT */
    printf("hijacked slot=%p value=%p\n", (void *)slot, (void *)my_puts);
    puts("second");
    fflush(stdout);
    checkpoint();
    return atoi(argc > 1 ? argv[1] : "0");
}
"""


def _ld_debug_bindings(exe, env=None, args=()) -> str:
    e = dict(os.environ, LD_DEBUG="bindings", **(env or {}))
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=e).stderr


def test_audit_flags_an_overwritten_slot():
    exe = compile_c(HIJACK, name="hijack", flags=["-Wl,-z,lazy"])
    bindings = _ld_debug_bindings(exe)
    assert re.search(r"binding file .*hijack .* to .*libc\.so\.6.*: normal symbol `puts'", bindings), bindings
    res = run_gdb(["break checkpoint", "run", *json_wrapped("got --audit --json"), "got --audit", "kill"],
                  program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    m = re.search(r"hijacked slot=(0x[0-9a-f]+) value=(0x[0-9a-f]+)", res.stdout)
    rows = {r["symbol"].split("@")[0]: r for r in doc["slots"]}
    puts = rows["puts"]
    assert addr(puts["address"]) == int(m.group(1), 16) and addr(puts["value"]) == int(m.group(2), 16)
    assert puts["audit"]["verdict"] == "overwritten"
    assert puts["audit"]["expected"].startswith("puts@GLIBC_2.2.5 in libc.so.6")   # LD_DEBUG's answer
    assert rows["printf"]["audit"]["verdict"] == "ok"
    assert rows["atoi"]["audit"]["verdict"] == "lazy"
    assert sum(r["audit"]["verdict"] == "overwritten" for r in doc["slots"]) == 1
    assert "OVERWRITTEN: puts@GLIBC_2.2.5" in res.stdout


PRELOAD = r"""
#include <unistd.h>
#include <string.h>
int puts(const char *s) { write(1, "pre:", 4); write(1, s, strlen(s)); write(1, "\n", 1); return 1; }
"""


def test_audit_accepts_ld_preload_interposition():
    pre = compile_c(PRELOAD, name="libpre.so", flags=["-shared", "-fPIC"])
    exe = build_hello(["-Wl,-z,lazy"], name="hello_pie-lazy")
    bindings = _ld_debug_bindings(exe, {"LD_PRELOAD": str(pre)})
    assert re.search(r"to .*libpre\.so.*: normal symbol `puts'", bindings), bindings
    res = run_gdb([f"set environment LD_PRELOAD={pre}", "break checkpoint", "run",
                   *json_wrapped("got --audit --json"), "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    puts = next(r for r in doc["slots"] if r["symbol"].startswith("puts"))
    assert puts["target_object"] == "libpre.so"
    assert puts["audit"]["verdict"] == "ok" and "libpre.so" in puts["audit"]["expected"]
    assert any("libc.so.6" in x for x in puts["audit"]["interposes"])
    assert not [r for r in doc["slots"] if r["audit"]["verdict"] == "overwritten"]


def test_got_diff_between_two_stops_and_core_vs_live(tmp_path):
    exe, _, _ = build_demo()
    core = tmp_path / "core"
    saved = tmp_path / "core-got.json"
    res = run_gdb(["break checkpoint", "run", "got", "break printf", "continue",
                   *json_wrapped("got --diff --json"), "got --diff", f"gcore {core}", "kill"], program=exe)
    assert_no_traceback(res)
    doc = res.json_documents()[0]
    said = program_said(res.stdout)
    changes = {c["symbol"].split("@")[0]: c for c in doc["diff"]["changes"]}
    assert set(changes) == {"getpid"}, changes
    assert changes["getpid"]["before"].startswith("unresolved") and changes["getpid"]["after"].startswith("resolved")
    assert addr(changes["getpid"]["value_after"]) == said["getpid"]
    assert "GOT diff:" in res.stdout
    # a report saved from an older core, compared with a live process at its first stop
    early = tmp_path / "early"
    run_gdb(["break checkpoint", "run", f"gcore {early}", "kill"], program=exe)
    r1 = run_gdb([f"pipe got --json | cat > {saved}"], program=exe, core=core)
    assert_no_traceback(r1)
    r2 = run_gdb([*json_wrapped(f"got --diff {saved} --json")], program=exe, core=early)
    assert_no_traceback(r2)
    d2 = r2.json_documents()[0]["diff"]
    ch = {c["symbol"].split("@")[0]: c for c in d2["changes"]}
    assert set(ch) == {"getpid"} and ch["getpid"]["before"].startswith("resolved")


def _as_version_3(doc: dict) -> dict:
    """A version-4 'got --json' document as version 3 wrote it (docs/json.md, "Versions": a
    TLS slot's `tls.object` was `tls.module`)."""
    import copy

    old = copy.deepcopy(doc)
    old["schema_version"] = 3
    for s in old["result"]["slots"]:
        if s.get("tls"):
            s["tls"]["module"] = s["tls"].pop("object")
    return old


def _as_version_2(doc: dict) -> dict:
    """...as version 2 wrote it (an object's `relro_range` was `relro`, its `slot_count` was
    `slots`)."""
    old = _as_version_3(doc)
    old["schema_version"] = 2
    for o in old["result"]["objects"]:
        o["relro"], o["slots"] = o.pop("relro_range"), o.pop("slot_count")
    return old


def _as_version_1(doc: dict) -> dict:
    """...and as version 1 wrote it: words of memory as numbers."""
    old = _as_version_2(doc)
    old["schema_version"] = 1
    for o in old["result"]["objects"]:
        o["bias"] = int(o["bias"], 16)
        o["relro"] = [int(a, 16) for a in o["relro"]] if o["relro"] else None
    for s in old["result"]["slots"]:
        s["value"], s["file_value"] = int(s["value"], 16), int(s["file_value"], 16)
    return old


def test_got_diff_reads_reports_saved_under_versions_1_to_6(tmp_path):
    """'got --diff FILE' reads a report saved by an older toolkit: the same stop compared with
    its own report saved under schema versions 1 to 6 has no change (a key it misread
    would show every slot changed, vanished or appeared), and an older file is not refused.
    (Versions 5 and 6 renamed no key of got's own report: a version-4 or -5 file differs in its number.)"""
    import copy
    import json

    exe, _, _ = build_demo()
    saved = tmp_path / "v6.json"
    res = run_gdb(["break checkpoint", "run", f"pipe got --json | cat > {saved}", "kill"], program=exe)
    assert_no_traceback(res)
    v6 = json.loads(saved.read_text())
    assert v6["schema_version"] == 6 and v6["result"]["objects"][0]["slot_count"] > 0
    v5 = copy.deepcopy(v6)
    v5["schema_version"] = 5
    v4 = copy.deepcopy(v6)
    v4["schema_version"] = 4
    n = len(v5["result"]["slots"])
    files = {6: saved, 5: tmp_path / "v5.json", 4: tmp_path / "v4.json", 3: tmp_path / "v3.json", 2: tmp_path / "v2.json",
             1: tmp_path / "v1.json"}
    files[5].write_text(json.dumps(v5))
    files[4].write_text(json.dumps(v4))
    files[3].write_text(json.dumps(_as_version_3(v4)))
    files[2].write_text(json.dumps(_as_version_2(v4)))
    files[1].write_text(json.dumps(_as_version_1(v4)))
    cmds = ["break checkpoint", "run"]
    for v in (1, 2, 3, 4, 5, 6):
        cmds += json_wrapped(f"got --diff {files[v]} --json")
    res = run_gdb(cmds + ["kill"], program=exe)
    assert_no_traceback(res)
    diffs = [d["diff"] for d in res.json_documents()]
    assert len(diffs) == 6
    for v, d in zip((1, 2, 3, 4, 5, 6), diffs):
        assert d["changes"] == [] and d["unchanged_count"] == n and d["same_addresses"], (v, d)
