"""Read kernel memory from /proc/kcore (or any ELF core laid out the same way).

/proc/kcore is an ELF64 core file: one PT_LOAD per region whose ``p_vaddr`` is a
kernel virtual address, and a PT_NOTE holding CORE notes plus VMCOREINFO
(OSRELEASE, KERNELOFFSET, BUILD-ID...).  A vmcore or a synthetic test fixture
with the same layout works too.  Reads are plain ``os.pread`` calls.
"""
import _bisect as bisect   # what bisect.py re-exports (see plt/slots.py)
import os
import _struct as struct   # what struct.py re-exports (see plt/slots.py)
from collections import namedtuple

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import record
from gdb_toolkit.kernel.memory import LIVE, MAX_SNAPSHOT_READ, KernelMemory, Region

PT_LOAD, PT_NOTE = 1, 4
NO_PADDR = (1 << 64) - 1          # fs/proc/kcore.c: p_paddr of a segment with no physical address
EM_X86_64, EM_AARCH64 = 62, 183
MACHINES = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}


class Segment(namedtuple("Segment", "vaddr size offset")):
    """One PT_LOAD: (kernel virtual address, size, file offset)."""
    __slots__ = ()

    @property
    def end(self) -> int:
        return self.vaddr + self.size


@record
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
            return ToolkitError(f"/proc/kcore does not exist: kernel {os.uname().release} was built "
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


MAX_PHNUM = 1 << 20            # program headers a kernel core may claim
MAX_OFFSET = (1 << 63) - 1


def pread(fd: int, n: int, off: int) -> bytes:
    """os.pread that answers b"" (read as "the file ends here") for an offset or length no
    file can have -- a header may claim any 64-bit value -- instead of OverflowError."""
    if off < 0 or n < 0 or off > MAX_OFFSET or n > MAX_OFFSET - off:
        return b""
    return os.pread(fd, n, off)
MAX_NOTES = 16 << 20           # bytes of PT_NOTE read


def open_core_fd(path: str, what: str = "kcore") -> int:
    """Open *path* for pread, refusing anything but a regular file without blocking on it
    (a FIFO given as a core must not hang gdb, /proc/kmsg is a stream) -- the one opener,
    ``safe_open.open_regular`` -- with kcore's own explanations of EPERM."""
    from gdb_toolkit.common.safe_open import open_regular

    rf = open_regular(path, what, os_error=lambda exc: open_error(path, exc),
                      fix="give /proc/kcore or a vmcore file")
    fd, rf.fd = rf.fd, -1           # the caller owns the descriptor
    return fd


def parse_elf_core(fd: int, path: str):
    """(e_machine, [(p_vaddr, p_paddr, p_offset, p_filesz, p_memsz)] of PT_LOADs, notes) of
    an ELF64 little-endian core, every count and size checked."""
    try:
        ehdr = os.pread(fd, 64, 0)
    except OSError as exc:
        raise open_error(path, exc) from None
    if len(ehdr) < 64 or ehdr[:4] != b"\x7fELF":
        raise ToolkitError(f"{path} is not an ELF file", "give /proc/kcore or a vmcore")
    if ehdr[4] != 2 or ehdr[5] != 1:
        raise ToolkitError(f"{path} is not a little-endian ELF64 core",
                           "only 64-bit little-endian kernels (x86_64, arm64) are supported")
    (e_type, e_machine, _v, _entry, e_phoff, e_shoff, _flags, _ehsize, e_phentsize,
     e_phnum) = struct.unpack_from("<HHIQQQIHHH", ehdr, 16)
    if e_type != 4:
        raise ToolkitError(f"{path} is an ELF file but not a core (e_type {e_type})",
                           "give /proc/kcore or a vmcore, not a vmlinux or module")
    if e_phnum == 0xFFFF:  # PN_XNUM: real count in section 0's sh_info
        sh0 = pread(fd, 64, e_shoff)
        if len(sh0) < 48:
            raise ToolkitError(f"{path}: the extended program header count is missing",
                               "the file is damaged")
        e_phnum = struct.unpack_from("<I", sh0, 44)[0]
    if not 56 <= e_phentsize <= 256 or e_phnum > MAX_PHNUM:
        raise ToolkitError(f"{path}: bad program headers (size {e_phentsize}, count {e_phnum})",
                           "the file is damaged or not a kernel core")
    table = pread(fd, e_phentsize * e_phnum, e_phoff)
    if len(table) < e_phentsize * e_phnum:
        raise ToolkitError(f"{path}: program headers are truncated", "the file is damaged")
    loads, notes, note_bytes = [], [], 0
    for i in range(e_phnum):
        p_type, _pf, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _al = struct.unpack_from(
            "<IIQQQQQQ", table, i * e_phentsize)
        if p_type == PT_LOAD and p_memsz:
            loads.append((p_vaddr, p_paddr, p_offset, min(p_filesz, p_memsz), p_memsz))
        elif p_type == PT_NOTE and p_filesz and note_bytes < MAX_NOTES:
            n = min(p_filesz, MAX_NOTES - note_bytes)
            note_bytes += n
            notes.extend(parse_notes(pread(fd, n, p_offset)))
    return e_machine, loads, notes


class Kcore(KernelMemory):
    """A kcore-shaped ELF core (PT_LOAD p_vaddr = kernel virtual address) opened for pread:
    /proc/kcore itself, or a test fixture laid out the same way.  Use as a context manager."""

    kind = LIVE

    def __init__(self, fd: int, path: str, segments: list[Segment], notes: list[Note],
                 machine: int):
        self.fd = fd
        self.path = path
        self.segments = sorted(segments, key=lambda s: s.vaddr)
        self._starts = [s.vaddr for s in self.segments]
        self.notes = notes
        self.machine = machine
        self._vmcoreinfo = None
        self._last = None
        # PT_LOAD p_vaddr -> p_paddr, None for -1: /proc/kcore gives RAM and the kernel text
        # their physical address; vmalloc, the module area and vmemmap get -1, and kcore reads
        # those through vread(), which fills every page nothing maps with zeros
        self.paddrs: dict[int, int | None] = {}

    # -- opening -----------------------------------------------------------
    @classmethod
    def open(cls, path: str = "/proc/kcore") -> "Kcore":
        fd = open_core_fd(path)
        try:
            machine, loads, notes = parse_elf_core(fd, path)
            refuse_process_core(path, loads, notes)
            segments = [Segment(v, f or m, o) for v, _p, o, f, m in loads]
            paddrs = {v: (None if p == NO_PADDR else p) for v, p, _o, _f, _m in loads}
            if not segments:
                raise ToolkitError(f"{path} has no PT_LOAD segments", "the file is not a kernel core")
            kc = cls(fd, path, segments, notes, machine)
            kc.paddrs = paddrs
            return kc
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1
        self._snap = None

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

    def regions(self) -> list[Region]:
        return [Region(s.vaddr, s.size, s.offset) for s in self.segments]

    def segment_of(self, addr: int) -> Segment | None:
        last = self._last
        if last is not None and last.vaddr <= addr < last.end:
            return last
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.segments[i].end:
            self._last = self.segments[i]
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
        if self._snap is not None and size <= MAX_SNAPSHOT_READ:
            return self._snapshot_read(addr, size)
        return self._read_direct(addr, size)

    def _read_direct(self, addr: int, size: int) -> bytes:
        """pread the file pieces of [addr, addr+size): every byte asked for, or ToolkitError
        (also for a page nothing maps, which kcore would give as zeros)."""
        out = []
        cur = addr
        for off, n in self._plan(addr, size):
            chunk = b""
            while len(chunk) < n:
                try:
                    part = pread(self.fd, n - len(chunk), off + len(chunk))
                except OSError as exc:
                    raise ToolkitError(f"cannot read kernel memory at 0x{addr:x}: {exc.strerror}",
                                       "the page may be unmapped or protected") from None
                if not part:
                    raise ToolkitError(f"short read at kernel address 0x{addr + len(chunk):x} "
                                       f"in {self.path}", "the core file is truncated")
                chunk += part
            self._check_zero_pages(cur, chunk, addr, size)
            out.append(chunk)
            cur += n
        return b"".join(out)

    # -- holes: vmalloc / module pages nobody maps ---------------------------------
    def _read_phys(self, paddr: int, n: int) -> bytes:
        """Physical memory through the segment that maps it (RAM, kernel text)."""
        for s in self.segments:
            base = self.paddrs.get(s.vaddr)
            if base is not None and base <= paddr and paddr + n <= base + s.size:
                return self._read_direct(s.vaddr + paddr - base, n)
        raise ToolkitError(f"physical address 0x{paddr:x} is in no {self.path} segment", None)

    def _check_zero_pages(self, cur: int, chunk: bytes, addr: int, size: int) -> None:
        """*chunk*, read at *cur* from one segment: where it lies in a segment with no
        physical address (vmalloc, modules) and a 4 KiB page's part of it is all zeros, that
        page must be mapped in the kernel's page tables (VMCOREINFO's swapper_pg_dir /
        init_top_pgt): kcore's vread() gives zeros for pages nothing maps.  Only for the
        live /proc/kcore; without enough VMCOREINFO the zeros stand."""
        if self.kind != LIVE or not chunk or chunk.count(0) == 0:
            return
        seg = self.segment_of(cur)
        if seg is None or seg.vaddr not in self.paddrs or self.paddrs[seg.vaddr] is not None:
            return
        tr, p, end = None, cur, cur + len(chunk)
        while p < end:
            q = min(end, (p | 0xFFF) + 1)
            part = chunk[p - cur:q - cur]
            if part.count(0) == len(part):
                if tr is None:
                    from gdb_toolkit.kernel import pagetables as PT

                    tr = PT.translator(self.arch, self.vmcoreinfo, self._read_phys)
                    if tr is None:
                        return
                try:
                    tr.translate(p)
                except PT.Unmapped:
                    where = "" if (addr, size) == (p, q - p) else f" (reading 0x{addr:x}+{size:#x})"
                    raise ToolkitError(
                        f"kernel address 0x{p:x} is not mapped{where}: the kernel's page tables "
                        f"have no page there (a freed vmalloc area or an unloaded module's "
                        f"memory; {self.path} reads such holes as zeros)",
                        "check the address (ksym NAME, kcore lists the segments; kprobe-list "
                        "marks probes of unloaded modules [GONE])") from None
                except ToolkitError:
                    return              # the tables themselves unreadable: say nothing more
            p = q


NT_PRPSINFO, NT_AUXV, NT_SIGINFO, NT_FILE = 3, 6, 0x53494749, 0x46494C45


def refuse_process_core(path: str, loads: list, notes: list) -> None:
    """A process core (gcore, systemd-coredump) is an ELF core too: with no VMCOREINFO, only
    user-space PT_LOADs and a process's notes (auxv, mapped files), it is not a kernel."""
    if any(n.name == "VMCOREINFO" for n in notes):
        return
    user_only = loads and all(0 < v < 1 << 47 for v, *_ in loads)
    process_notes = any(n.type in (NT_AUXV, NT_FILE, NT_SIGINFO) and n.name == "CORE" for n in notes)
    if user_only or process_notes:
        prog = None
        for n in notes:
            if n.name == "CORE" and n.type == NT_PRPSINFO and len(n.desc) >= 56:
                prog = n.desc[40:56].split(b"\0", 1)[0].decode("utf-8", "replace")
        raise ToolkitError(f"{path} is a process core" + (f" (of '{prog}')" if prog else "") +
                           ", not a kernel core: it has no VMCOREINFO and holds only user memory",
                           "give /proc/kcore or a kernel dump (kdump vmcore, makedumpfile, QEMU "
                           "dump-guest-memory); debug a process core with plain 'core-file'")


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
