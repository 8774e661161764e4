"""What a process core file records, read with bounded reads and no third-party parser.  Pure.

A core is an ELF file (ET_CORE): PT_LOAD segments are the memory mappings, PT_NOTE segments
hold per-thread NT_PRSTATUS (pid, current signal ``pr_cursig``, registers), the dumping
thread's NT_SIGINFO (signal, si_code, fault address), NT_PRPSINFO (uid, gid, program name,
the first 80 bytes of the command line), NT_AUXV and NT_FILE (which file each mapping
shows).  The kernel writes all of them; gdb's ``gcore`` too; qemu-user writes no NT_SIGINFO
and no NT_FILE.  A crafted core may claim anything: every count, size and offset is
checked against the file and against fixed caps before it is used, and anything
malformed raises ``CoreFormatError`` (one line) -- nothing else.
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.procfs import Mapping, auxv_entries
from gdb_toolkit.common.record import field, record

ET_CORE = 4
PT_LOAD, PT_NOTE = 1, 4
PN_XNUM = 0xFFFF
NT_PRSTATUS, NT_PRPSINFO, NT_AUXV = 1, 3, 6
NT_SIGINFO, NT_FILE = 0x53494749, 0x46494C45
MACHINES = {62: "x86_64", 183: "aarch64"}

MAX_SEGMENTS = 1 << 20          # program headers read at most (a kernel core has one per VMA)
MAX_NOTE_BYTES = 64 << 20       # all PT_NOTE contents together
MAX_NOTES = 1 << 18
MAX_FILE_ENTRIES = 1 << 20      # NT_FILE entries
PF_X, PF_W, PF_R = 1, 2, 4

# struct elf_prstatus: pr_info (12) pr_cursig (2+2) pr_sigpend pr_sighold (16) pr_pid ...
# (16) four timevals (64), then pr_reg
PRSTATUS_REG_OFFSET = 112
# registers in pr_reg, by architecture: (name, index of the 8-byte slot)
_X86_REGS = ["r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
             "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
             "gs_base", "ds", "es", "fs", "gs"]
_A64_REGS = [f"x{i}" for i in range(31)] + ["sp", "pc", "pstate"]
PR_REGS = {"x86_64": _X86_REGS, "aarch64": _A64_REGS}


class CoreFormatError(ToolkitError):
    """The file is not a core this toolkit can read, or it is malformed."""

    def __init__(self, cause: str, fix: str = "check the core file (readelf -n CORE); "
                 "it may be truncated or not a process core"):
        super().__init__(cause, fix)


@record
class CoreSignal:
    signo: int
    code: int
    addr: int | None                 # si_addr for SIGSEGV/SIGBUS/SIGILL/SIGFPE


@record
class CoreThread:
    pid: int                         # the thread's LWP id
    cursig: int                      # pr_cursig: the signal it was handling, 0 if none
    registers: dict[str, int] = field(default_factory=dict)
    siginfo: CoreSignal | None = None    # its NT_SIGINFO (the kernel writes the dumping one's)


@record
class CorePsinfo:
    uid: int
    gid: int
    pid: int
    fname: str                       # pr_fname: the program's name (16 bytes)
    psargs: str                      # pr_psargs: the command line, space-joined, 80 bytes


@record
class CoreInfo:
    arch: str
    mappings: list[Mapping]
    threads: list[CoreThread]
    psinfo: CorePsinfo | None
    auxv: dict[int, int]
    has_nt_file: bool
    has_siginfo: bool
    auxv_raw: bytes = field(default=b"", metadata={"json_skip": True})
    absent: list = field(default_factory=list)
                                     # (start, end, why): memory the core maps but whose bytes
                                     # it does not hold -- "not dumped" (p_filesz < p_memsz: the
                                     # dumper's coredump_filter left it out, as for file text) or
                                     # "cut off" (the file ends first: the kernel stops writing
                                     # at RLIMIT_CORE; a full disk)

    @property
    def writer(self) -> str:
        """Who most likely wrote the core: the kernel and gdb always record NT_SIGINFO and
        NT_FILE; qemu-user records neither."""
        if not self.has_siginfo and not self.has_nt_file:
            return "a user-space dumper without NT_SIGINFO/NT_FILE (qemu-user writes such cores)"
        return "the kernel or gdb"


def _name(raw: bytes) -> str:
    from gdb_toolkit.common.names import decode_name

    return decode_name(raw.split(b"\0", 1)[0])


def _perms(flags: int) -> str:
    return (("r" if flags & PF_R else "-") + ("w" if flags & PF_W else "-")
            + ("x" if flags & PF_X else "-") + "p")


class BytesCore:
    """A core held in memory (tests, the fuzz target), read like ``safe_open.RegularFile``."""

    def __init__(self, data: bytes):
        self.data, self.size = bytes(data), len(data)

    def read_range(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CoreFormatError(f"range 0x{max(offset, 0):x}+0x{max(length, 0):x} lies outside "
                                  f"the {self.size}-byte core")
        return self.data[offset:offset + length]


class _Reader:
    """Bounded reads, each naming what it reads."""

    def __init__(self, src):
        self.src, self.size = src, src.size

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CoreFormatError(f"the core's {what} (offset {offset}, {length} bytes) lies "
                                  f"outside the file ({self.size} bytes)")
        return self.src.read_range(offset, length)


def parse_core(src) -> CoreInfo:
    """Parse a core from *src* (``.size`` and ``.read_range(offset, length)``: an open
    ``safe_open.RegularFile`` or a ``BytesCore``)."""
    r = _Reader(src)
    ident = r.read(0, 64, "ELF header")
    if ident[:4] != b"\x7fELF":
        raise CoreFormatError("not an ELF file (no \\x7fELF magic)", "give a core file: gdb PROGRAM CORE")
    if ident[4] != 2 or ident[5] != 1:
        raise CoreFormatError("not a 64-bit little-endian core (only x86_64 and aarch64 cores are "
                              "supported)", "analyse this core with gdb directly")
    (e_type, e_machine, _ver, _entry, e_phoff, e_shoff, _flags, _ehsize, e_phentsize, e_phnum,
     _shentsize, _shnum, _shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", ident, 16)
    if e_type != ET_CORE:
        raise CoreFormatError(f"not a core file (ELF type {e_type}, a core is {ET_CORE})",
                              "give a core file: gdb PROGRAM CORE")
    arch = MACHINES.get(e_machine)
    if arch is None:
        raise CoreFormatError(f"a core of machine {e_machine}, not x86_64 or aarch64",
                              "analyse this core with gdb directly")
    if e_phentsize != 56:
        raise CoreFormatError(f"program header size {e_phentsize}, expected 56")
    if e_phnum == PN_XNUM:                      # more than 65534: the count is in section 0
        sh0 = r.read(e_shoff, 64, "section header 0")
        e_phnum = struct.unpack_from("<I", sh0, 44)[0]
    if e_phnum > MAX_SEGMENTS:
        raise CoreFormatError(f"the core claims {e_phnum} segments (more than {MAX_SEGMENTS})")
    table = r.read(e_phoff, 56 * e_phnum, "program header table")
    loads: list[Mapping] = []
    notes_left = MAX_NOTE_BYTES
    threads: list[CoreThread] = []
    psinfo, auxv, files, auxv_raw = None, {}, [], b""
    has_file = has_siginfo = False
    count = 0
    absent: list[tuple[int, int, str]] = []
    for i in range(e_phnum):
        p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz, _al = struct.unpack_from(
            "<IIQQQQQQ", table, 56 * i)
        if p_type == PT_LOAD and p_memsz:
            if p_vaddr + p_memsz > 1 << 64:
                raise CoreFormatError(f"segment {i} wraps around the address space")
            loads.append(Mapping(p_vaddr, p_vaddr + p_memsz, _perms(p_flags), 0, "00:00", 0, ""))
            held = min(p_filesz, p_memsz)
            in_file = min(held, max(r.size - p_offset, 0))
            if in_file < held:
                absent.append((p_vaddr + in_file, p_vaddr + held, "cut off"))
            if held < p_memsz:
                absent.append((p_vaddr + held, p_vaddr + p_memsz, "not dumped"))
        elif p_type == PT_NOTE and p_filesz:
            if p_filesz > notes_left:
                raise CoreFormatError(f"the core's notes exceed {MAX_NOTE_BYTES >> 20} MiB")
            notes_left -= p_filesz
            data = r.read(p_offset, p_filesz, f"note segment {i}")
            for ntype, name, desc in _notes(data):
                count += 1
                if count > MAX_NOTES:
                    raise CoreFormatError(f"the core has more than {MAX_NOTES} notes")
                if name not in (b"CORE", b"LINUX"):
                    continue
                if ntype == NT_PRSTATUS and name == b"CORE":
                    threads.append(_prstatus(desc, arch))
                elif ntype == NT_SIGINFO:
                    has_siginfo = True
                    sig = _siginfo(desc)
                    if threads and threads[-1].siginfo is None:
                        threads[-1].siginfo = sig
                elif ntype == NT_PRPSINFO and name == b"CORE" and psinfo is None:
                    psinfo = _prpsinfo(desc)
                elif ntype == NT_AUXV and not auxv:
                    auxv = auxv_entries(desc, 8)
                    # the pairs through AT_NULL (a type word of zero), as the kernel wrote them
                    end = next((o + 16 for o in range(0, len(desc) - 15, 16) if not any(desc[o:o + 8])),
                               len(desc) // 16 * 16)
                    auxv_raw = bytes(desc[:end])
                elif ntype == NT_FILE and not files:
                    has_file = True
                    files = _nt_file(desc)
    return CoreInfo(arch, _name_loads(loads, files), threads, psinfo, auxv, has_file, has_siginfo,
                    auxv_raw, sorted(absent))


def _notes(data: bytes):
    """(type, name, desc) of each note; 4-byte alignment as Linux cores use."""
    off, n = 0, len(data)
    while off + 12 <= n:
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        off += 12
        name_end = off + namesz
        desc_off = off + ((namesz + 3) & ~3)
        desc_end = desc_off + descsz
        if name_end > n or desc_end > n:
            raise CoreFormatError(f"a note (type {ntype:#x}) runs past the end of its segment")
        yield ntype, data[off:name_end].rstrip(b"\0"), data[desc_off:desc_end]
        off = desc_off + ((descsz + 3) & ~3)


def _need(desc: bytes, n: int, what: str) -> None:
    if len(desc) < n:
        raise CoreFormatError(f"{what} note is {len(desc)} bytes, shorter than {n}")


def _prstatus(desc: bytes, arch: str) -> CoreThread:
    _need(desc, PRSTATUS_REG_OFFSET, "NT_PRSTATUS")
    cursig = struct.unpack_from("<h", desc, 12)[0]
    pid = struct.unpack_from("<i", desc, 32)[0]
    regs = {}
    names = PR_REGS[arch]
    avail = (len(desc) - PRSTATUS_REG_OFFSET) // 8
    for i, name in enumerate(names[:avail]):
        regs[name] = struct.unpack_from("<Q", desc, PRSTATUS_REG_OFFSET + 8 * i)[0]
    return CoreThread(pid, cursig, regs)


def _siginfo(desc: bytes) -> CoreSignal:
    _need(desc, 24, "NT_SIGINFO")
    signo, _errno, code = struct.unpack_from("<iii", desc, 0)
    addr = struct.unpack_from("<Q", desc, 16)[0] if signo in (4, 7, 8, 11) else None
    return CoreSignal(signo, code, addr)


def _prpsinfo(desc: bytes) -> CorePsinfo:
    _need(desc, 136, "NT_PRPSINFO")
    uid, gid, pid = struct.unpack_from("<IIi", desc, 16)
    return CorePsinfo(uid, gid, pid, _name(desc[40:56]), _name(desc[56:136]))


def _nt_file(desc: bytes) -> list[tuple[int, int, int, str]]:
    _need(desc, 16, "NT_FILE")
    count, page = struct.unpack_from("<QQ", desc, 0)
    if count > MAX_FILE_ENTRIES or 16 + 24 * count > len(desc):
        raise CoreFormatError(f"NT_FILE claims {count} entries, more than its {len(desc)} bytes hold")
    if page == 0 or page & (page - 1) or page > 1 << 30:
        raise CoreFormatError(f"NT_FILE page size {page} is not a power of two")
    names = desc[16 + 24 * count:].split(b"\0")
    out = []
    for i in range(count):
        start, end, pgoff = struct.unpack_from("<QQQ", desc, 16 + 24 * i)
        if end < start or pgoff * page >= 1 << 64:
            raise CoreFormatError(f"NT_FILE entry {i} has end 0x{end:x} below start 0x{start:x}"
                                  if end < start else f"NT_FILE entry {i} has offset {pgoff} pages")
        if end == start:
            continue                             # nothing mapped: not a mapping
        name = _name(names[i]) if i < len(names) else ""
        out.append((start, end, pgoff * page, name))
    return out


def _name_loads(loads: list[Mapping], files) -> list[Mapping]:
    """Name each PT_LOAD from NT_FILE; add the file parts gdb's gcore left out."""
    import _bisect as bisect   # what bisect.py re-exports (see plt/slots.py)

    files = sorted(files)
    starts = [f[0] for f in files]
    for m in loads:
        i = bisect.bisect_right(starts, m.start) - 1
        if i >= 0 and files[i][0] <= m.start < files[i][1]:
            m.path, m.offset = files[i][3], files[i][2] + (m.start - files[i][0])
    loads.sort(key=lambda m: m.start)
    lstarts = [m.start for m in loads]
    out = list(loads)
    for lo, hi, off, name in files:
        j = bisect.bisect_left(lstarts, lo)
        if not any(0 <= k < len(loads) and loads[k].start < hi and lo < loads[k].end
                   for k in (j - 1, j)):
            out.append(Mapping(lo, hi, "r--p", off, "00:00", 0, name))
    return sorted(out, key=lambda m: m.start)


def read_core(path: str) -> CoreInfo:
    """Open *path* (a regular file only: a FIFO never blocks us) and parse it."""
    from gdb_toolkit.common.safe_open import open_regular

    with open_regular(path, "core file") as src:
        return parse_core(src)
