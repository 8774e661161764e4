"""The PLT domain's multi-file docs transcripts (docs/plt.md): programs built with their
libraries at generation time, from examples/plt."""
import subprocess
from pathlib import Path

from tests.support.gdbrun import REPO

EX = REPO / "examples" / "plt"
#: the ifunc implementation glibc picks depends on the CPU; library addresses on the kernel
LIBADDR = [(r"__\w+?_(evex|avx|sse|erms)\w*", "__IMPL"), (r"0x7ffff7[0-9a-f]{6}", "0xLIBADDR")]


def _gcc(*args, cwd):
    subprocess.run(["gcc", *map(str, args)], check=True, cwd=cwd)


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


def recipes(Recipe) -> dict:
    return {
        "plt-audit-canonical": Recipe(["break checkpoint", "run", "got --object libcanon --audit"],
                                      builder=_canonical, width=132, loose=True, mask=LIBADDR),
        "plt-audit-redirected": Recipe(["break checkpoint", "run", "got --audit"], builder=_audited,
                                       width=132, loose=True, mask=LIBADDR),
    }
