"""Issue 11 items 5, 6 and 8 (acceptance): got, plt, plt-walk and stack-diagnose on crafted
binaries and cores inside real gdb.  For every case: gdb still alive afterwards, no traceback or
internal error, the error on one line, peak RSS < 500 MB, under 30 s.

The crafted files come from tests/support/crafted.py (a real program compiled here, then its
headers made to lie).  Cases that fail today and whose fix belongs to a domain owner are marked
``pending`` (xfail, not strict) and unmarked when the owner's branch is merged."""
import os
import shutil
import struct

import pytest

from tests.support.crafted import (NT_AUXV, NT_FILE, NT_PRPSINFO, NT_PRSTATUS, SHT_NOBITS, CorePatch, ElfPatch,
                                   make_core, non_utf8_path)
from tests.support.gdbrun import compile_c
from tests.support.hostile import assert_survived, run_hostile

pytestmark = pytest.mark.gdb

SRC = r"""#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int main(int c, char **v) { char b[64]; puts("hi"); strncpy(b, v[0], 63); b[63] = 0;
                            printf("%s\n", b); return atoi("0"); }
"""
PENDING = {
    "stack": "core-file notes parser (issue 11 item 3/8 area, branch i12-stack)",
}

ELF_VARIANTS = {
    # name: (patch, owner when a command fails today)
    "plt-size-256MiB": (lambda p: p.set_section(".plt", size=256 << 20), None),
    "text-size-8MiB": (lambda p: p.set_section(".text", size=8 << 20), None),
    "rela-at-1TiB": (lambda p: p.set_rela(".rela.plt", 0, r_offset=0x10000000000), None),
    "rela-at-2GiB": (lambda p: p.set_rela(".rela.plt", 0, r_offset=0x80000000), None),
    "gnu-version-nobits-2^40": (lambda p: p.set_section(".gnu.version", sh_type=SHT_NOBITS,
                                                         size=1 << 40), None),
    "rela-plt-size-2^40": (lambda p: p.set_section(".rela.plt", size=1 << 40), None),
    # huge counts and sizes in the other tables the reader walks (phase 3 adversarial pass)
    "dynsym-size-2^40": (lambda p: p.set_section(".dynsym", size=1 << 40), None),
    "dynsym-link-to-itself": (lambda p: p.set_section(".dynsym", sh_link=p.sections[".dynsym"][0]), None),
    "symtab-size-2^40": (lambda p: p.set_section(".symtab", size=1 << 40), None),
    "strtab-offset-2^40": (lambda p: p.set_section(".strtab", sh_offset=1 << 40), None),
    "dynamic-size-2^40": (lambda p: p.set_section(".dynamic", size=1 << 40), None),
    "rela-plt-entsize-0": (lambda p: p.set_section(".rela.plt", sh_entsize=0), None),
    "gnu-version-r-size-2^32": (lambda p: p.set_section(".gnu.version_r", size=1 << 32), None),
    "pt-dynamic-filesz-2^40": (lambda p: p.set_phdr(2, filesz=1 << 40), None),
    # (variants that gdb/BFD itself refuses to load -- .dynstr beyond EOF, .dynsym entsize 0,
    #  a bogus sh_link -- do not reach the toolkit and are not listed)
}
COMMANDS = ["got", "plt", "plt-walk puts"]


@pytest.fixture(scope="module")
def program():
    return compile_c(SRC, name="crafted_base", flags=["-g", "-no-pie"])


@pytest.fixture(scope="module")
def crafted(tmp_path_factory, program):
    d = tmp_path_factory.mktemp("crafted")
    out = {}
    for name, (patch, _) in ELF_VARIANTS.items():
        p = ElfPatch(program, d / name)
        patch(p)
        out[name] = p.save()
    return out


def _cases():
    for name, (_, owner) in ELF_VARIANTS.items():
        for cmd in COMMANDS:
            for live in (False, True):
                # today's failures, measured: the 1 TiB relocation aborts gdb only on a live
                # process; the huge NOBITS/.rela.plt sizes raise MemoryError everywhere
                pending = owner if (owner and (live or name != "rela-at-1TiB")) else None
                if name == "rela-at-1TiB" and cmd == "plt-walk puts":
                    pending = None
                marks = [pytest.mark.xfail(reason=PENDING[pending], strict=False)] if pending else []
                yield pytest.param(name, cmd, live, marks=marks,
                                   id=f"{name}-{cmd.split()[0]}-{'live' if live else 'file'}")


@pytest.mark.parametrize("variant,command,live", list(_cases()))
def test_crafted_elf(variant, command, live, crafted):
    run = run_hostile((["start"] if live else []) + [command], program=crafted[variant], timeout=60)
    assert_survived(run, max_rss_mb=500, max_seconds=30)


# -- cores ------------------------------------------------------------------------------------

CORE_VARIANTS = {
    "nt-file-count-2^60": (lambda c: c.set_note_desc(NT_FILE, 0, struct.pack("<Q", 1 << 60)), None),
    "nt-file-page-size-0": (lambda c: c.set_note_desc(NT_FILE, 8, struct.pack("<Q", 0)), None),
    "nt-auxv-descsz-2^31": (lambda c: c.set_note_header(NT_AUXV, descsz=0x7FFFFFFF), None),
    "nt-prstatus-descsz-8": (lambda c: c.set_note_header(NT_PRSTATUS, descsz=8), None),
    "pt-note-filesz-2^40": (lambda c: c.set_note_phdr(filesz=1 << 40), None),
    "prpsinfo-hostile-name": (lambda c: c.set_note_desc(NT_PRPSINFO, 40, b"ev\xe9'l\x1b[2J\n\0"), None),
    "nt-file-hostile-names": (lambda c: _mangle_nt_file_names(c), None),
}


def _mangle_nt_file_names(c: CorePatch) -> None:
    """Overwrite bytes inside every NT_FILE name (same length) with a Latin-1 byte, a newline,
    an escape and a quote: the names then match no file, as in a core from another machine."""
    _, _, doff, descsz = c.note(NT_FILE)
    count = struct.unpack_from("<Q", c.data, doff)[0]
    pos = doff + 16 + 24 * count
    end = doff + descsz
    while pos < end:
        nul = c.data.index(0, pos, end)
        if nul - pos > 8:
            c.data[nul - 4:nul] = b"\xe9\n\x1b'"
        pos = nul + 1


@pytest.fixture(scope="module")
def cores(tmp_path_factory, program):
    d = tmp_path_factory.mktemp("cores")
    base = make_core(program, d / "core")
    out = {}
    for name, (patch, _) in CORE_VARIANTS.items():
        c = CorePatch(base, d / name)
        patch(c)
        out[name] = c.save()
    return out


@pytest.mark.parametrize("variant,command", [
    pytest.param(v, c, id=f"{v}-{c}",
                 marks=[pytest.mark.xfail(reason=PENDING[o], strict=False)]
                 if (o and c == "stack-diagnose") else [])
    for v, (_, o) in CORE_VARIANTS.items() for c in ("stack-diagnose", "got", "plt")])
def test_crafted_core(variant, command, cores, program):
    run = run_hostile([command], program=program, core=cores[variant], timeout=60)
    assert_survived(run, max_rss_mb=500, max_seconds=30)


@pytest.fixture(scope="module")
def latin1_program(tmp_path_factory, program):
    d = tmp_path_factory.mktemp("latin1")
    exe = non_utf8_path(program, d).decode("utf-8", "surrogateescape")
    return exe, make_core(exe, d / "core")


@pytest.mark.parametrize("command,on_core", [
    pytest.param(c, core, id=f"{c}-{'core' if core else 'live'}",
                 marks=[])
    for c in ("got", "plt", "stack-diagnose") for core in (True, False)
    if not (c == "stack-diagnose" and not core)])
def test_program_with_non_utf8_path(command, on_core, latin1_program):
    """Item 8 through a path: the program lives under a Latin-1 name; got/plt work live and on
    its core, stack-diagnose on the core (whose NT_FILE note carries the raw name)."""
    exe, core = latin1_program
    run = run_hostile(([] if on_core else ["start"]) + [command], program=exe,
                      core=core if on_core else None, timeout=60)
    assert_survived(run, max_rss_mb=500, max_seconds=30)


# -- a crafted shared library the program loads (item 5: "also through a .so") ----------------

LIB = ("#include <stdio.h>\n#include <string.h>\nint gtk_lib_call(void) { puts(\"lib\"); "
       "return (int)strlen(\"abc\") + 39; }\n")        # libc calls: .rela.plt, .gnu.version
USES_LIB = r"""#include <stdio.h>
int gtk_lib_call(void);
int main(void) { printf("%d\n", gtk_lib_call()); return 0; }
"""
# The dynamic linker reads program headers and the dynamic section only: lying *section*
# headers leave the program running normally, and only a section-based reader sees the lie.
LIB_VARIANTS = {
    "so-gnu-version-nobits-2^40": lambda p: p.set_section(".gnu.version", sh_type=SHT_NOBITS, size=1 << 40),
    "so-rela-plt-size-2^40": lambda p: p.set_section(".rela.plt", size=1 << 40),
    "so-plt-size-256MiB": lambda p: p.set_section(".plt", size=256 << 20),
    "so-dynsym-offset-2^40": lambda p: p.set_section(".dynsym", sh_offset=1 << 40),
}


@pytest.fixture(scope="module")
def lib_programs(tmp_path_factory):
    d = tmp_path_factory.mktemp("crafted_so")
    lib = compile_c(LIB, name="libgtkcrafted.so", flags=["-shared", "-fPIC", "-g"])
    out = {}
    for name, patch in LIB_VARIANTS.items():
        sub = d / name
        sub.mkdir()
        shutil.copy(lib, sub / "libgtkcrafted.so")          # link against the honest library...
        prog = compile_c(USES_LIB, name="uses_lib", flags=["-g", f"-L{sub}", "-lgtkcrafted",
                                                          f"-Wl,-rpath,{sub}"],
                         out_dir=sub)
        p = ElfPatch(lib, sub / "libgtkcrafted.so")         # ...then the lying one is loaded
        patch(p)
        p.save()
        out[name] = prog
    return out


@pytest.mark.parametrize("variant", list(LIB_VARIANTS))
@pytest.mark.parametrize("command", ["got", "plt", "plt-walk gtk_lib_call"])
def test_crafted_shared_library(variant, command, lib_programs):
    run = run_hostile(["break main", "run", command], program=lib_programs[variant], timeout=60)
    assert "Breakpoint 1, main" in run.result.output, run.describe()      # the program runs
    assert_survived(run, max_rss_mb=500, max_seconds=30)


@pytest.mark.parametrize("command", ["got", "plt", "stack-diagnose"])
def test_json_with_a_non_utf8_program_path(command, latin1_program):
    """--json stays one valid UTF-8 document and names the program by escape_name (docs/json.md)."""
    import json

    from gdb_toolkit.common.names import escape_name

    exe, core = latin1_program
    run = run_hostile([f"{command} --json"], program=exe, core=core, timeout=60)
    assert_survived(run, max_seconds=30)
    raw = run.result.stdout.split("GTK-LAST-COMMAND\n", 1)[-1].split("GTK-ALIVE", 1)[0]
    raw.encode("utf-8")                                    # valid UTF-8, no lone surrogates
    doc = json.loads(raw)
    assert doc["ok"] is True, doc
    strings = []

    def walk(v):
        if isinstance(v, str):
            strings.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    if command != "stack-diagnose":          # (its report of a core without a fault names no file)
        shown = escape_name(os.path.basename(exe))
        assert any(shown in v for v in strings), (shown, raw[:3000])
