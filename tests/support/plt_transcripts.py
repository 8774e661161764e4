"""The PLT domain's docs transcripts (docs/plt.md, docs/commands/{got,plt,plt-walk}.md):
programs built with their libraries at generation time, from examples/plt and the programs
the PLT tests compile (their sources are imported from those tests, one copy each).

Library addresses, glibc's ifunc choices (CPU-dependent) and the columns they widen vary
between machines: masked (LIBADDR) and compared word by word (loose)."""
import subprocess
from pathlib import Path

from tests.support.gdbrun import REPO

EX = REPO / "examples" / "plt"
#: the ifunc implementation glibc picks depends on the CPU; library addresses on the kernel
LIBADDR = [(r"__\w+?_(evex|avx|sse|erms)\w*", "__IMPL"), (r"0x7ffff7[0-9a-f]{6}", "0xLIBADDR"),
           (r"0x00007ffff7[0-9a-f]{6}", "0xLIBADDR"),
           # i386: libraries mapped under 0xf7ff....
           (r"0xf7[0-9a-f]{6}\b", "0xLIBADDR32"),
           # glibc's own code: offsets into its functions and source lines move between builds
           (r"(_dl_fixup|_dl_runtime_resolve_\w+)\+\d+", r"\1+N"), (r"\.(c|h):\d+", r".\1:N"),
           (r"(ld-linux[\w.-]*\.so\.\d:\.text)\+0x[0-9a-f]+", r"\1+OFF"),
           # source lines inside glibc: shown when its debug info is installed (libc6-dbg)
           (r"(in (libc\.so\.6|ld-linux[\w.-]*)) at [\w./-]+:\d+", r"\1"),
           (r"(\+N) at [\w./-]+\.[ch]:N(?= \(ld-linux)", r"\1"),
           (r"-{3,}", "---")]                  # table rules: as wide as those names


def _gcc(*args, cwd, compiler="gcc"):
    subprocess.run([compiler, *map(str, args)], check=True, cwd=cwd)


def _src(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _canonical(tmp: Path) -> Path:
    _gcc("-shared", "-fPIC", "-o", tmp / "libcanon.so", EX / "canon_lib.c", cwd=tmp)
    _gcc("-no-pie", "-fno-pic", "-Wl,-z,lazy", "-o", tmp / "canon_main", EX / "canon_main.c",
         f"-L{tmp}", "-lcanon", f"-Wl,-rpath,{tmp}", cwd=tmp)
    return tmp / "canon_main"


def _audited(tmp: Path) -> Path:
    _gcc("-shared", "-fPIC", "-o", tmp / "libauditor.so", EX / "symbind_auditor.c", cwd=tmp)
    _gcc("-Wl,-z,lazy", f"-Wl,--audit={tmp / 'libauditor.so'}", "-o", tmp / "hello_audited",
         EX / "hello_calls.c", cwd=tmp)
    return tmp / "hello_audited"


def _demo(tmp: Path) -> Path:
    """plt_demo linked against libpltlib.so, and plugin.so (what `./plt_demo plugin.so` dlopens)."""
    _gcc("-shared", "-fPIC", "-Wl,-z,lazy", "-o", tmp / "libpltlib.so", EX / "pltlib.c", cwd=tmp)
    _gcc("-shared", "-fPIC", "-Wl,-z,lazy", "-o", tmp / "plugin.so", EX / "plugin.c", cwd=tmp)
    _gcc("-Wl,-z,lazy", "-o", tmp / "plt_demo", EX / "plt_demo.c", f"-L{tmp}", "-lpltlib",
         f"-Wl,-rpath,{tmp}", cwd=tmp)
    return tmp / "plt_demo"


def _hello(name: str, *flags, compiler="gcc"):
    def make(tmp: Path) -> Path:
        _gcc(*flags, "-o", tmp / name, EX / "hello_calls.c", cwd=tmp,
             compiler=compiler)
        return tmp / name
    return make


def _dlmopen(tmp: Path) -> Path:
    from tests.integration.test_plt_scope import DLMOPEN
    _demo(tmp)
    _gcc("-Wl,-z,lazy", "-o", tmp / "dlmopen_demo", _src(tmp, "dlmopen_demo.c", DLMOPEN), cwd=tmp)
    return tmp / "dlmopen_demo"


def _tls(tmp: Path) -> Path:
    from tests.integration.test_plt_scope import TLS_DEF, TLS_GD, TLS_MAIN, TLS_USE
    _gcc("-shared", "-fPIC", "-o", tmp / "libtlsdef.so", _src(tmp, "tlsdef.c", TLS_DEF), cwd=tmp)
    _gcc("-shared", "-fPIC", "-mtls-dialect=gnu2", "-o", tmp / "libtlsuse.so", _src(tmp, "tlsuse.c", TLS_USE),
         f"-L{tmp}", "-ltlsdef", cwd=tmp)
    _gcc("-shared", "-fPIC", "-o", tmp / "libtlsgd.so", _src(tmp, "tlsgd.c", TLS_GD), f"-L{tmp}", "-ltlsdef",
         cwd=tmp)
    _gcc("-o", tmp / "tls_main", _src(tmp, "tls_main.c", TLS_MAIN), f"-L{tmp}", "-ltlsuse", "-ltlsgd",
         "-ltlsdef", f"-Wl,-rpath,{tmp}", cwd=tmp)
    return tmp / "tls_main"


def _tdyn(tmp: Path) -> Path:
    from tests.integration.test_plt_review import TD_LIB, TD_MAIN
    _gcc("-shared", "-fPIC", "-mtls-dialect=gnu2", "-o", tmp / "libtd.so", _src(tmp, "td.c", TD_LIB), cwd=tmp)
    _gcc("-o", tmp / "tdyn_main", _src(tmp, "tdyn_main.c", TD_MAIN), cwd=tmp)
    return tmp / "tdyn_main"


def _replaced(tmp: Path) -> Path:
    from tests.integration.test_plt_review import XLIB_V1, XLIB_V2, XMAIN
    (tmp / "lib").mkdir()
    (tmp / "new").mkdir()
    _gcc("-shared", "-fPIC", "-Wl,-z,lazy", "-o", tmp / "lib" / "libx.so", _src(tmp, "x1.c", XLIB_V1), cwd=tmp)
    _gcc("-shared", "-fPIC", "-o", tmp / "new" / "libx.so", _src(tmp, "x2.c", XLIB_V2), cwd=tmp)
    _gcc("-Wl,-z,lazy", "-o", tmp / "xmain", _src(tmp, "xmain.c", XMAIN), f"-L{tmp / 'lib'}", "-lx",
         f"-Wl,-rpath,{tmp / 'lib'}", cwd=tmp)
    return tmp / "xmain"


def _vdso(tmp: Path) -> Path:
    from tests.integration.test_plt_review import VDSO_MAIN
    _gcc("-Wl,-z,lazy", "-o", tmp / "vdso_calls", _src(tmp, "vdso_calls.c", VDSO_MAIN), cwd=tmp)
    return tmp / "vdso_calls"


def _preload(tmp: Path) -> Path:
    from tests.integration.test_plt_scope import PRELOAD
    _gcc("-shared", "-fPIC", "-o", tmp / "libpre.so", _src(tmp, "pre.c", PRELOAD), cwd=tmp)
    return _hello("hello_calls", "-Wl,-z,lazy")(tmp)


def _versioned(tmp: Path) -> Path:
    from tests.integration.test_plt_runtime import VERSIONED_LIB, VERSIONED_MAIN
    _src(tmp, "v.map", "VER_1 { global: foo; local: *; };\nVER_2 { global: foo; } VER_1;\n")
    _gcc("-shared", "-fPIC", f"-Wl,--version-script={tmp / 'v.map'}", "-o", tmp / "libver.so",
         _src(tmp, "libver.c", VERSIONED_LIB), cwd=tmp)
    _gcc("-Wl,-z,lazy", "-o", tmp / "vermain", _src(tmp, "vermain.c", VERSIONED_MAIN), f"-L{tmp}", "-lver",
         f"-Wl,-rpath,{tmp}", cwd=tmp)
    return tmp / "vermain"


def _quiet(*commands: str) -> str:
    """Hidden set-up commands whose output (the program's too: run > /dev/null) is not shown."""
    from tests.support.transcripts import _vg_quiet
    return _vg_quiet(*commands)


def _at_checkpoint(args: str = "") -> list[str]:
    """Stopped at checkpoint(), the program's output and gdb's breakpoint lines hidden (`run
    ARGS > FILE` replaces the arguments --args gave: they are given here)."""
    return [_quiet("break checkpoint", f"run {args} > /dev/null".replace("  ", " "))]


AT_CHECKPOINT = _at_checkpoint()


def recipes(Recipe) -> dict:
    def r(commands, builder, width=250, **kw):
        return Recipe(commands, builder=builder, width=width, loose=True, mask=LIBADDR + kw.pop("mask", []),
                      **kw)
    i686 = _hello("hello32", "-Wl,-z,lazy", compiler="i686-linux-gnu-gcc")
    return {
        "plt-audit-canonical": Recipe(["break checkpoint", "run", "got --object libcanon --audit"],
                                      builder=_canonical, width=132, loose=True, mask=LIBADDR),
        "plt-audit-redirected": Recipe(["break checkpoint", "run", "got --audit"], builder=_audited,
                                       width=132, loose=True, mask=LIBADDR),
        # docs/commands/got.md
        "got-plugin-now": r(["got --object plugin.so"], _demo, setup=_at_checkpoint("{tmp}/plugin.so")),
        "got-file": r(["got"], _demo),
        "got-halfway": r(["break checkpoint", "run", "got"], _demo),
        "got-all-filtered": r(["got 'mem|get|put' --all-objects"], _demo, setup=AT_CHECKPOINT),
        "got-json": r(["got atoi --json"], _hello("hello_calls", "-Wl,-z,lazy"), setup=AT_CHECKPOINT),
        "got-dlmopen": r(["break checkpoint", "run", "got '^printf$' --all-objects"], _dlmopen,
                         args=["{tmp}/libpltlib.so"]),
        "got-tlsdesc-dynamic": r(["break checkpoint", "run", "got --object libtd"], _tdyn, args=["{tmp}/libtd.so"]),
        "got-tls": r(["break checkpoint", "run", "got --all-objects tls_"], _tls),
        "got-i386": r(["got"], i686, setup=AT_CHECKPOINT),
        "got-replaced": r(["shell mv {tmp}/new/libx.so {tmp}/lib/libx.so", "got --object libx"], _replaced,
                          setup=AT_CHECKPOINT, mask=[(r"map_files/[0-9a-f]+-[0-9a-f]+", "map_files/LO-HI")]),
        "got-vdso": r(["got '^(time|gettimeofday)' --audit"], _vdso, setup=AT_CHECKPOINT),
        "got-preview": r(["got --preview"], _hello("hello_calls", "-Wl,-z,lazy"), setup=AT_CHECKPOINT),
        "got-preload": r(["got puts --audit"], _preload,
                         setup=["set environment LD_PRELOAD={tmp}/libpre.so", *AT_CHECKPOINT]),
        "got-diff": r(["got --diff"], _demo,
                      setup=[_quiet("break checkpoint", "run > /dev/null", "got", "tbreak exit", "continue")]),
        # docs/commands/plt.md
        "plt-file": r(["plt"], _demo),
        "plt-live-filtered": r(["plt get"], _demo, setup=AT_CHECKPOINT),
        "plt-ibt": r(["plt"], _hello("hello_ibt", "-Wl,-z,lazy", "-fcf-protection", "-Wl,-z,ibtplt")),
        "plt-static": r(["plt strl"], _hello("hello_static", "-static")),
        # docs/commands/plt-walk.md
        "plt-walk-file": r(["plt-walk atoi"], _hello("hello_calls", "-Wl,-z,lazy"), width=200),
        "plt-walk-live": r(["break checkpoint", "run", "plt-walk getpid --live", "bt 2", "continue"], _demo,
                           width=200,
                           mask=[(r"l=0x[0-9a-f]+", "l=LINKMAP"), (r"pid=\d+", "pid=N")]),
        "plt-walk-noplt": r(["plt-walk puts"], _hello("hello_noplt", "-fno-plt"), width=200, setup=AT_CHECKPOINT),
        "plt-walk-versions": r(["plt-walk foo"], _versioned, width=200),
        "plt-walk-bound": r(["plt-walk toupper", "plt-walk toupper --live"], _demo, width=200,
                            setup=_at_checkpoint("{tmp}/plugin.so")),
        "plt-walk-i386": r(["plt-walk atoi --live"], i686, width=200, setup=AT_CHECKPOINT),
        "plt-walk-errors": r(["plt-walk nosuch", "plt-walk puts --live", "plt-walk ''"], _demo, width=200),
        "plt-walk-errors-live": r(["plt-walk puts --live"], _demo, width=200, setup=AT_CHECKPOINT),
        "plt-walk-errors-static": r(["plt-walk puts"], _hello("hello_static", "-static"), width=200),
    }
