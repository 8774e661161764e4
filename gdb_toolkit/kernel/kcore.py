"""Read kernel memory from /proc/kcore (or any ELF core laid out the same way).

/proc/kcore is an ELF64 core file: one PT_LOAD per region whose ``p_vaddr`` is a
kernel virtual address, and a PT_NOTE holding CORE notes plus VMCOREINFO
(OSRELEASE, KERNELOFFSET, BUILD-ID...).  A vmcore or a synthetic test fixture
with the same layout works too.  Reads are plain ``os.pread`` calls.
"""
import bisect
import os
import struct
from dataclasses import dataclass
from typing import NamedTuple

from gdb_toolkit.common.errors import ToolkitError

PT_LOAD, PT_NOTE = 1, 4
EM_X86_64, EM_AARCH64 = 62, 183
MACHINES = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}


class Segment(NamedTuple):
    """One PT_LOAD: (kernel virtual address, size, file offset)."""
    vaddr: int
    size: int
    offset: int

    @property
    def end(self) -> int:
        return self.vaddr + self.size


@dataclass
class Note:
    name: str
    type: int
    desc: bytes


def _lockdown() -> str | None:
    try:
        with open("/sys/kernel/security/lockdown") as f:
            text = f.read()
    except OSError:
        return None
    for word in text.split():
        if word.startswith("["):
            return word.strip("[]")
    return None


def open_error(path: str, exc: OSError) -> ToolkitError:
    """Turn an OSError opening a kcore into a cause and fix."""
    import errno

    if isinstance(exc, FileNotFoundError):
        if os.path.abspath(path) == "/proc/kcore":
            import platform
            return ToolkitError(f"/proc/kcore does not exist: kernel {platform.release()} was built "
                                "without CONFIG_PROC_KCORE",
                                "boot a kernel with CONFIG_PROC_KCORE=y (Debian's linux-image-amd64 "
                                "has it), or give a vmcore path")
        return ToolkitError(f"{path} does not exist", "give the path of /proc/kcore or a vmcore")
    if exc.errno in (errno.EPERM, errno.EACCES):
        mode = _lockdown()
        if mode == "confidentiality" and path.startswith("/proc/"):
            return ToolkitError(f"cannot open {path}: kernel lockdown is '{mode}', which forbids "
                                "reading kernel memory",
                                "boot with lockdown=none (or turn Secure Boot lockdown off)")
        if os.geteuid() != 0:
            return ToolkitError(f"cannot open {path}: permission denied (euid {os.geteuid()}, "
                                "reading kernel memory needs root with CAP_SYS_RAWIO)",
                                "run gdb as root (sudo gdb ...)")
        return ToolkitError(f"cannot open {path}: {exc.strerror} (root, but CAP_SYS_RAWIO is "
                            "missing or a security module denies it"
                            + (f"; lockdown is '{mode}'" if mode else "") + ")",
                            "run with CAP_SYS_RAWIO (not in a restricted container), "
                            "check dmesg for the denial")
    return ToolkitError(f"cannot open {path}: {exc.strerror or exc}", "check the path")


class Kcore:
    """A kcore-shaped ELF core opened for pread; use as a context manager."""

    def __init__(self, fd: int, path: str, segments: list[Segment], notes: list[Note],
                 machine: int):
        self.fd = fd
        self.path = path
        self.segments = sorted(segments, key=lambda s: s.vaddr)
        self._starts = [s.vaddr for s in self.segments]
        self.notes = notes
        self.machine = machine
        self._vmcoreinfo = None

    # -- opening -----------------------------------------------------------
    @classmethod
    def open(cls, path: str = "/proc/kcore") -> "Kcore":
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise open_error(path, exc) from None
        try:
            return cls._parse(fd, path)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def _parse(cls, fd: int, path: str) -> "Kcore":
        try:
            ehdr = os.pread(fd, 64, 0)
        except OSError as exc:
            raise open_error(path, exc) from None
        if len(ehdr) < 64 or ehdr[:4] != b"\x7fELF":
            raise ToolkitError(f"{path} is not an ELF file", "give /proc/kcore or a vmcore")
        if ehdr[4] != 2 or ehdr[5] != 1:
            raise ToolkitError(f"{path} is not a little-endian ELF64 core",
                               "only 64-bit little-endian kernels (x86_64, arm64) are supported")
        (e_type, e_machine, _v, _entry, e_phoff, _shoff, _flags, _ehsize, e_phentsize,
         e_phnum) = struct.unpack_from("<HHIQQQIHHH", ehdr, 16)
        if e_type != 4:
            raise ToolkitError(f"{path} is an ELF file but not a core (e_type {e_type})",
                               "give /proc/kcore or a vmcore, not a vmlinux or module")
        if e_phnum == 0xFFFF:  # PN_XNUM: real count in section 0's sh_info
            e_shoff = struct.unpack_from("<Q", ehdr, 40)[0]
            sh0 = os.pread(fd, 64, e_shoff)
            e_phnum = struct.unpack_from("<I", sh0, 44)[0]
        if e_phentsize < 56:
            raise ToolkitError(f"{path}: bad program header size {e_phentsize}", None)
        table = os.pread(fd, e_phentsize * e_phnum, e_phoff)
        if len(table) < e_phentsize * e_phnum:
            raise ToolkitError(f"{path}: program headers are truncated", "the file is damaged")
        segments, notes = [], []
        for i in range(e_phnum):
            p_type, _pf, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _al = struct.unpack_from(
                "<IIQQQQQQ", table, i * e_phentsize)
            if p_type == PT_LOAD and p_memsz:
                segments.append(Segment(p_vaddr, min(p_filesz, p_memsz) or p_memsz, p_offset))
            elif p_type == PT_NOTE and p_filesz:
                notes.extend(parse_notes(os.pread(fd, min(p_filesz, 1 << 20), p_offset)))
        if not segments:
            raise ToolkitError(f"{path} has no PT_LOAD segments", "the file is not a kernel core")
        return cls(fd, path, segments, notes, e_machine)

    def close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- facts ---------------------------------------------------------------
    @property
    def arch(self) -> str:
        return MACHINES.get(self.machine, f"machine {self.machine}")

    @property
    def vmcoreinfo(self) -> dict[str, str]:
        if self._vmcoreinfo is None:
            info: dict[str, str] = {}
            for n in self.notes:
                if n.name == "VMCOREINFO":
                    info.update(parse_vmcoreinfo(n.desc.decode("utf-8", "replace")))
            self._vmcoreinfo = info
        return self._vmcoreinfo

    @property
    def kaslr_offset(self) -> int | None:
        v = self.vmcoreinfo.get("KERNELOFFSET")
        return int(v, 16) if v else None

    @property
    def release(self) -> str | None:
        return self.vmcoreinfo.get("OSRELEASE")

    def segment_of(self, addr: int) -> Segment | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.segments[i].end:
            return self.segments[i]
        # segments may overlap (vmcore/kcore quirks): fall back to a scan
        for s in self.segments:
            if s.vaddr <= addr < s.end:
                return s
        return None

    def contains(self, addr: int, size: int = 1) -> bool:
        try:
            self._plan(addr, size)
            return True
        except ToolkitError:
            return False

    # -- reading ---------------------------------------------------------------
    def _plan(self, addr: int, size: int) -> list[tuple[int, int]]:
        """(file offset, length) pieces covering [addr, addr+size)."""
        pieces = []
        cur, left = addr, size
        while left > 0:
            seg = self.segment_of(cur)
            if seg is None:
                where = "" if cur == addr else f" (reading 0x{addr:x}+{size:#x} runs past a segment)"
                raise ToolkitError(f"kernel address 0x{cur:x} is in no {self.path} segment{where}",
                                   "check the address (ksym NAME, kcore lists the segments)")
            n = min(left, seg.end - cur)
            pieces.append((seg.offset + (cur - seg.vaddr), n))
            cur += n
            left -= n
        return pieces

    def read(self, addr: int, size: int) -> bytes:
        if self.fd is None or self.fd < 0:
            raise ToolkitError(f"{self.path} is closed", None)
        if size <= 0:
            return b""
        addr &= (1 << 64) - 1
        out = []
        for off, n in self._plan(addr, size):
            chunk = b""
            while len(chunk) < n:
                try:
                    part = os.pread(self.fd, n - len(chunk), off + len(chunk))
                except OSError as exc:
                    raise ToolkitError(f"cannot read kernel memory at 0x{addr:x}: {exc.strerror}",
                                       "the page may be unmapped or protected") from None
                if not part:
                    raise ToolkitError(f"short read at kernel address 0x{addr + len(chunk):x} "
                                       f"in {self.path}", "the core file is truncated")
                chunk += part
            out.append(chunk)
        return b"".join(out)

    def read_u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def read_u32(self, addr: int) -> int:
        return struct.unpack("<I", self.read(addr, 4))[0]

    def read_cstring(self, addr: int, limit: int = 256) -> str:
        data = b""
        while len(data) < limit:
            step = min(64, limit - len(data), 4096 - ((addr + len(data)) & 0xFFF))
            part = self.read(addr + len(data), step)
            i = part.find(b"\0")
            if i >= 0:
                return (data + part[:i]).decode("utf-8", "replace")
            data += part
        return data.decode("utf-8", "replace")


def parse_notes(buf: bytes) -> list[Note]:
    notes, off = [], 0
    while off + 12 <= len(buf):
        namesz, descsz, ntype = struct.unpack_from("<III", buf, off)
        off += 12
        name = buf[off:off + namesz].rstrip(b"\0").decode("ascii", "replace")
        off += (namesz + 3) & ~3
        desc = bytes(buf[off:off + descsz])
        off += (descsz + 3) & ~3
        if namesz == 0 and descsz == 0 and ntype == 0:
            break
        notes.append(Note(name, ntype, desc))
    return notes


def parse_vmcoreinfo(text: str) -> dict[str, str]:
    info = {}
    for line in text.split("\n"):
        line = line.strip("\0").strip()
        if "=" in line:
            k, _, v = line.partition("=")
            info[k] = v
    return info
