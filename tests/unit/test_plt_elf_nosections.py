"""The ELF reader on objects without a section header table (sstrip): relocations, symbol
names and versions found through the dynamic segment, as ld.so finds them, against readelf
on the unmodified file.  x86_64 with a GNU hash and with a SysV hash only, i386 (REL)."""
import re
import shutil
import struct
import subprocess

import pytest

from gdb_toolkit.plt import elf_model
from tests.support.plt_oracles import HAVE_I386, I686

LIB = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int nfn(const char *s) { puts(s); return (int)strlen(s); }
int never_called(void) { return atoi("3"); }
__thread int tls_var = 3;
int get_tls(void) { return tls_var; }
"""


def _strip_section_headers(src, dst, bits):
    data = bytearray(open(src, "rb").read())
    if bits == 64:
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        struct.pack_into("<Q", data, 0x28, 0)
        struct.pack_into("<HHH", data, 0x3A, 0, 0, 0)
    else:
        shoff = struct.unpack_from("<I", data, 0x20)[0]
        struct.pack_into("<I", data, 0x20, 0)
        struct.pack_into("<HHH", data, 0x2E, 0, 0, 0)
    del data[shoff:]
    open(dst, "wb").write(data)


def _readelf_slots(path) -> dict[int, tuple[str, str]]:
    out = {}
    text = subprocess.run(["readelf", "-rW", path], capture_output=True, text=True, check=True).stdout
    for ln in text.splitlines():
        f = ln.split()
        if len(f) >= 5 and re.fullmatch(r"[0-9a-f]{8,16}", f[0]) and \
                re.search(r"_(GLOB_DAT|JUMP_SLOT|JMP_SLOT|DTPMOD64|TLS_DTPMOD32)$", f[2]):
            out[int(f[0], 16)] = (f[2], f[4])
    return out


CASES = [("x86_64-gnu", "gcc", [], 64), ("x86_64-sysv", "gcc", ["-Wl,--hash-style=sysv"], 64)]
if HAVE_I386:
    CASES.append(("i386", I686, [], 32))


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc to build the libraries")
@pytest.mark.parametrize("name,cc,flags,bits", CASES, ids=[c[0] for c in CASES])
def test_slots_without_section_headers_match_readelf_of_the_original(tmp_path, name, cc, flags, bits):
    src = tmp_path / "lib.c"
    src.write_text(LIB)
    orig = tmp_path / "libx.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", orig, src, *flags], check=True)
    stripped = tmp_path / "libx-nosh.so"
    _strip_section_headers(orig, stripped, bits)
    assert "There are no sections" in subprocess.run(["readelf", "-SW", stripped], capture_output=True,
                                                      text=True).stdout
    want = _readelf_slots(orig)
    assert len(want) >= 7
    elf_model.clear_cache()
    m = elf_model.load_model(str(stripped))
    got = {s.address: (s.rtype, s.display) for s in m.slots}
    assert {a: d for a, (_, d) in got.items() if a in want} == {a: d for a, (_, d) in want.items()}
    assert {a: t.replace("JUMP_SLOT", "JMP_SLOT") for a, (t, _) in got.items() if a in want} == \
        {a: t.replace("JUMP_SLOT", "JMP_SLOT") for a, (t, _) in want.items()}
    assert set(want) <= set(got)
    # build-id through PT_NOTE, exports through .dynsym (readelf -n / --dyn-syms)
    note = subprocess.run(["readelf", "-n", orig], capture_output=True, text=True).stdout
    assert m.build_id == re.search(r"Build ID: (\w+)", note).group(1)
    assert {"nfn", "never_called", "get_tls"} <= set(m.exports)


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc to build the libraries")
def test_gnu_hash_count_is_read_in_pieces_and_a_cut_off_file_still_opens(tmp_path, monkeypatch):
    """The dynamic symbol count of a file without section headers comes from the GNU hash
    chains: read in pieces (not the whole segment behind the table, which may hold .text),
    and equal to readelf --dyn-syms of the original.  A copy cut off at its end still opens
    (table bytes past the end of the file are never read: _sections_from_dynamic clamps to it)."""
    from gdb_toolkit.plt import elf_file

    src = tmp_path / "lib.c"
    src.write_text(LIB)
    orig = tmp_path / "libx.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", orig, src], check=True)
    stripped = tmp_path / "libx-nosh.so"
    _strip_section_headers(orig, stripped, 64)
    dynsyms = subprocess.run(["readelf", "-W", "--dyn-syms", orig], capture_output=True, text=True,
                             check=True).stdout
    want = int(re.search(r"Symbol table '\.dynsym' contains (\d+) entries", dynsyms).group(1))
    reads = []
    real_read = elf_file.ElfFile._read

    def counting(self, offset, size, what="data"):
        reads.append((what, size))
        return real_read(self, offset, size, what)

    monkeypatch.setattr(elf_file.ElfFile, "_read", counting)
    monkeypatch.setattr(elf_file, "GNU_HASH_PIECE", 8)           # several pieces even here
    elf = elf_file.ElfFile.open(str(stripped))
    dynsym = next(s for s in elf.sections if s.name == ".dynsym")
    elf.close()
    assert dynsym.size // 24 == want
    chain_reads = [size for what, size in reads if what == "the GNU hash chains"]
    assert chain_reads and max(chain_reads) <= 8
    monkeypatch.undo()
    data = open(stripped, "rb").read()
    cut = tmp_path / "libx-cut.so"
    cut.write_bytes(data[: len(data) - 64])
    elf = elf_file.ElfFile.open(str(cut))               # no BadElf: what is there is read
    assert any(s.name == ".dynsym" for s in elf.sections)
    elf.close()
