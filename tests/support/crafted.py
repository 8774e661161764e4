"""Builders of hostile inputs for the gdb-level tests (issue 11).

- ``ElfPatch``: a copy of a real ELF (compiled at test time) whose section headers, program
  headers or relocations lie: ``.set_section(".plt", size=256 << 20)``,
  ``.set_section(".gnu.version", sh_type=SHT_NOBITS, size=1 << 40)``,
  ``.set_rela(".rela.plt", 0, r_offset=0x10000000000)``, ``.set_phdr(PT_LOAD, 0, filesz=...)``.
  Offsets of headers come from pyelftools on the *original* file; the patch is raw bytes.
- ``make_core``: a real core of a program stopped at ``main`` (gdb's gcore), and
  ``CorePatch.set_note_desc(NT_FILE, offset, bytes)`` / ``set_note_header`` to make its notes lie.
- ``fifo``: a FIFO where a file is expected.
- ``non_utf8_path``: a copy of a file under a name that is not UTF-8 (Latin-1 "é", a newline...).
- ``named_process``: a running process whose comm, argv[0], executable path and a mapped file
  name are the given bytes (not UTF-8, with newline, escape sequences...).
"""
import contextlib
import os
import shutil
import struct
import subprocess
from pathlib import Path

from tests.support.gdbrun import GDB, compile_c

SHT_NOBITS = 8
PT_LOAD = 1
PT_NOTE = 4
NT_PRSTATUS = 1
NT_PRPSINFO = 3
NT_AUXV = 6
NT_FILE = 0x46494C45

# (field -> (offset, struct format)) for ELF64 / ELF32 little-endian headers
SHDR64 = {"sh_name": (0, "<I"), "sh_type": (4, "<I"), "sh_flags": (8, "<Q"), "sh_addr": (16, "<Q"),
          "sh_offset": (24, "<Q"), "size": (32, "<Q"), "sh_link": (40, "<I"), "sh_info": (44, "<I"),
          "sh_addralign": (48, "<Q"), "sh_entsize": (56, "<Q")}
SHDR32 = {"sh_name": (0, "<I"), "sh_type": (4, "<I"), "sh_flags": (8, "<I"), "sh_addr": (12, "<I"),
          "sh_offset": (16, "<I"), "size": (20, "<I"), "sh_link": (24, "<I"), "sh_info": (28, "<I"),
          "sh_addralign": (32, "<I"), "sh_entsize": (36, "<I")}
PHDR64 = {"p_type": (0, "<I"), "p_flags": (4, "<I"), "offset": (8, "<Q"), "vaddr": (16, "<Q"),
          "paddr": (24, "<Q"), "filesz": (32, "<Q"), "memsz": (40, "<Q"), "align": (48, "<Q")}
RELA64 = {"r_offset": (0, "<Q"), "r_info": (8, "<Q"), "r_addend": (16, "<q")}


class ElfPatch:
    """Patch a copy of *src* at *out*; ``save()`` writes it and returns the path."""

    def __init__(self, src, out):
        from elftools.elf.elffile import ELFFile

        self.src = Path(src)
        self.out = Path(out)
        self.data = bytearray(self.src.read_bytes())
        with open(self.src, "rb") as f:
            elf = ELFFile(f)
            self.bits = elf.elfclass
            self.shoff = elf["e_shoff"]
            self.shentsize = elf["e_shentsize"]
            self.phoff = elf["e_phoff"]
            self.phentsize = elf["e_phentsize"]
            self.sections = {s.name: (i, s["sh_offset"], s["sh_size"], s["sh_entsize"])
                             for i, s in enumerate(elf.iter_sections())}
            self.segments = [(seg["p_type"], i) for i, seg in enumerate(elf.iter_segments())]

    def _put(self, base: int, layout: dict, fields: dict) -> None:
        for name, value in fields.items():
            off, fmt = layout[name]
            struct.pack_into(fmt, self.data, base + off, value)

    def has(self, section: str) -> bool:
        return section in self.sections

    def set_section(self, name: str, **fields) -> "ElfPatch":
        """Overwrite fields of section *name*'s header (sh_type, sh_offset, size, sh_addr...)."""
        idx = self.sections[name][0]
        layout = SHDR64 if self.bits == 64 else SHDR32
        self._put(self.shoff + idx * self.shentsize, layout, fields)
        return self

    def set_rela(self, name: str, index: int, **fields) -> "ElfPatch":
        """Overwrite fields of relocation *index* of RELA section *name* (r_offset, r_info...)."""
        _, off, size, entsize = self.sections[name]
        assert self.bits == 64 and entsize == 24 and (index + 1) * 24 <= size
        self._put(off + index * 24, RELA64, fields)
        return self

    def set_phdr(self, p_type: int, nth: int = 0, **fields) -> "ElfPatch":
        """Overwrite fields of the *nth* program header of type *p_type* (offset, filesz...)."""
        idx = [i for t, i in self.segments if (t if isinstance(t, int) else _PT.get(t)) == p_type][nth]
        self._put(self.phoff + idx * self.phentsize, PHDR64, fields)
        return self

    def save(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_bytes(bytes(self.data))
        self.out.chmod(0o755)
        return self.out


_PT = {"PT_NULL": 0, "PT_LOAD": 1, "PT_DYNAMIC": 2, "PT_INTERP": 3, "PT_NOTE": 4, "PT_SHLIB": 5,
       "PT_PHDR": 6, "PT_TLS": 7}


def make_core(program, out, args=(), break_at: str = "main") -> Path:
    """A core of *program* stopped at *break_at*, written by gdb's gcore."""
    out = Path(out)
    proc = subprocess.run([GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
                           "-ex", f"break {break_at}", "-ex", "run", "-ex", f"gcore {out}", "-ex", "kill",
                           "--args", str(program), *map(str, args)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if not out.exists():
        raise RuntimeError(f"gcore failed: {proc.stdout}\n{proc.stderr}")
    return out


class CorePatch:
    """Patch the notes of a core file copy: find each note (type, header offset, desc offset)."""

    def __init__(self, src, out):
        from elftools.elf.elffile import ELFFile

        self.out = Path(out)
        self.data = bytearray(Path(src).read_bytes())
        self.notes = []            # (n_type, header_offset, desc_offset, descsz)
        with open(src, "rb") as f:
            elf = ELFFile(f)
            self.phoff = elf["e_phoff"]
            self.phentsize = elf["e_phentsize"]
            for i, seg in enumerate(elf.iter_segments()):
                if seg["p_type"] != "PT_NOTE":
                    continue
                self.note_phdr = i
                pos, end = seg["p_offset"], seg["p_offset"] + seg["p_filesz"]
                while pos + 12 <= end:
                    namesz, descsz, ntype = struct.unpack_from("<III", self.data, pos)
                    doff = pos + 12 + ((namesz + 3) & ~3)
                    self.notes.append((ntype, pos, doff, descsz))
                    pos = doff + ((descsz + 3) & ~3)

    def note(self, ntype: int, nth: int = 0):
        return [n for n in self.notes if n[0] == ntype][nth]

    def set_note_desc(self, ntype: int, offset: int, raw: bytes, nth: int = 0) -> "CorePatch":
        _, _, doff, descsz = self.note(ntype, nth)
        assert offset + len(raw) <= descsz
        self.data[doff + offset:doff + offset + len(raw)] = raw
        return self

    def set_note_header(self, ntype: int, namesz=None, descsz=None, new_type=None, nth: int = 0):
        _, hoff, _, _ = self.note(ntype, nth)
        for i, v in enumerate((namesz, descsz, new_type)):
            if v is not None:
                struct.pack_into("<I", self.data, hoff + 4 * i, v)
        return self

    def set_note_phdr(self, **fields) -> "CorePatch":
        base = self.phoff + self.note_phdr * self.phentsize
        for name, value in fields.items():
            off, fmt = PHDR64[name]
            struct.pack_into(fmt, self.data, base + off, value)
        return self

    def save(self) -> Path:
        self.out.write_bytes(bytes(self.data))
        return self.out


def fifo(path) -> Path:
    path = Path(path)
    os.mkfifo(path)
    return path


def non_utf8_path(src, directory, name: bytes = b"lat\xe9in") -> bytes:
    """Copy *src* to *directory*/*name* (bytes); returns the new path as bytes."""
    dst = os.path.join(os.fsencode(directory), name)
    shutil.copy(os.fsencode(src), dst)
    os.chmod(dst, 0o755)
    return dst


NAMED_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    /* argv[1]: comm; argv[2]: a file to map */
    prctl(PR_SET_NAME, argv[1], 0, 0, 0);
    int fd = open(argv[2], O_RDONLY);
    void *m = fd >= 0 ? mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0) : 0;
    printf("ready %p\n", m);
    fflush(stdout);
    for (;;) pause();
}
"""


@contextlib.contextmanager
def named_process(directory, name: bytes = b"ev\xe9il\x1b[2J\nx", comm: bytes = b"n\xe9\x1bx"):
    """A live process whose executable path, argv[0], comm and a mapped file's name are hostile
    bytes; yields (Popen, exe_path_bytes, mapped_path_bytes)."""
    base = compile_c(NAMED_PROGRAM, name="named", flags=["-g"])
    d = os.fsencode(directory)
    exe = os.path.join(d, name)
    shutil.copy(os.fsencode(base), exe)
    os.chmod(exe, 0o755)
    mapped = os.path.join(d, name + b".data")
    with open(mapped, "wb") as f:
        f.write(b"\0" * 4096)
    import signal
    proc = subprocess.Popen([exe, comm, mapped], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith(b"ready"):
            raise RuntimeError(f"named process did not start: {line!r}")
        yield proc, exe, mapped
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
