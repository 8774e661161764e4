"""Readers for /proc/PID files: the memory map, resource limits, status, smaps' VmFlags and
the auxiliary vector (auxv; also the parser of a core's NT_AUXV and gdb's ``info auxv``).

Parsers take text so they are testable on captured samples; ``read_*``
wrappers read the live files.

Hostile input (issue 11): a mapped file's name and a process's name are chosen by whoever
created them, so the files are read as bytes and decoded with surrogateescape (any byte
survives; ``common.names.escape_name`` prints it), lines are split on ``\n`` only (a name may
hold ``\r``, U+2028 or U+0085, which ``str.splitlines`` would treat as line ends), a mapped
path keeps its trailing spaces, the kernel's ``\012`` for a newline in a path is undone, and a
malformed line is a ToolkitError (the only exception these parsers raise on bad data).
"""
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import decode_name, escape_name, unescape_proc_maps_path
from gdb_toolkit.common.record import field, record

#: /proc files are small; a larger one is not what it claims to be
MAX_PROC_FILE = 64 << 20


@record
class Mapping:
    start: int
    end: int
    perms: str
    offset: int
    dev: str
    inode: int
    path: str = ""

    @property
    def size(self) -> int:
        return self.end - self.start

    def contains(self, addr: int) -> bool:
        return self.start <= addr < self.end

    @property
    def label(self) -> str:
        return self.path or "[anon]"


def _lines(text: str) -> list[str]:
    """Lines of a /proc file: split on \\n only (see the module docstring)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _bad(what: str, lineno: int, line: str) -> ToolkitError:
    return ToolkitError(f"malformed {what} line {lineno}: {escape_name(line[:120])}",
                        "the file is not what the kernel writes; give the real /proc file")


_HEX_DIGITS = "0123456789abcdefABCDEF"


def _hex(text: str, what: str, lineno: int, line: str) -> int:
    # (strip leaves something exactly when a character is not a hex digit: one C-level pass)
    if not text or len(text) > 16 or text.strip(_HEX_DIGITS):
        raise _bad(what, lineno, line)
    return int(text, 16)


def parse_maps(text: str) -> list[Mapping]:
    """/proc/PID/maps (or a captured copy) -> mappings; ToolkitError on a malformed line."""
    maps = []
    for lineno, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        parts = line.split(None, 5)
        if len(parts) < 5:
            raise _bad("/proc/PID/maps", lineno, line)
        lo, sep, hi = parts[0].partition("-")
        if not sep:
            raise _bad("/proc/PID/maps", lineno, line)
        start = _hex(lo, "/proc/PID/maps", lineno, line)
        end = _hex(hi, "/proc/PID/maps", lineno, line)
        if end < start or len(parts[1]) != 4 or not parts[4].isdigit() or len(parts[4]) > 20:
            raise _bad("/proc/PID/maps", lineno, line)
        path = unescape_proc_maps_path(parts[5]) if len(parts) > 5 else ""
        maps.append(Mapping(start, end, parts[1], _hex(parts[2], "/proc/PID/maps", lineno, line),
                            parts[3], int(parts[4]), path))
    return maps


@record
class Limit:
    name: str
    soft: int | None   # None = unlimited
    hard: int | None
    units: str = ""


def _limit_value(text: str, lineno: int, line: str) -> int | None:
    if text == "unlimited":
        return None
    if not text.isdigit() or len(text) > 20:
        raise _bad("/proc/PID/limits", lineno, line)
    return int(text)


def parse_limits(text: str) -> dict[str, Limit]:
    """/proc/PID/limits keyed by the kernel's row name ("Max stack size")."""
    out = {}
    lines = _lines(text)
    for lineno, line in enumerate(lines[1:], 2):
        # columns are fixed width: name(26) soft(21) hard(21) units
        name = line[:26].strip()
        rest = line[26:].split()
        if not name or len(rest) < 2:
            continue
        out[name] = Limit(name, _limit_value(rest[0], lineno, line), _limit_value(rest[1], lineno, line),
                          rest[2] if len(rest) > 2 else "")
    return out


@record
class ProcStatus:
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default=None):
        return self.fields.get(key, default)


def parse_status(text: str) -> ProcStatus:
    fields = {}
    for line in _lines(text):
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    return ProcStatus(fields)


def _read(pid: int, name: str) -> str:
    """A /proc file as text that keeps every byte (surrogateescape)."""
    path = f"/proc/{int(pid)}/{name}"
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PROC_FILE + 1)
    except FileNotFoundError:
        raise ToolkitError(f"process {pid} does not exist (no {path})",
                           "check the pid, or start the program again") from None
    except PermissionError:
        raise ToolkitError(f"cannot read {path}: permission denied",
                           "run gdb as the process owner or as root") from None
    except OSError as exc:
        raise ToolkitError(f"cannot read {path}: {exc.strerror or exc}",
                           "check the process is still alive") from None
    if len(data) > MAX_PROC_FILE:
        raise ToolkitError(f"{path} is larger than {MAX_PROC_FILE >> 20} MiB", "report it")
    return decode_name(data)


def read_maps(pid: int) -> list[Mapping]:
    return parse_maps(_read(pid, "maps"))


def read_limits(pid: int) -> dict[str, Limit]:
    return parse_limits(_read(pid, "limits"))


def own_stack_limit() -> tuple[int | None, int | None]:
    """This process's RLIMIT_STACK (soft, hard; None = unlimited), as
    ``resource.getrlimit(resource.RLIMIT_STACK)`` gives it (RLIM_INFINITY as None), read from
    /proc/self/limits: no import of ``resource`` (~0.3 ms of stack-diagnose's first call);
    ``resource`` itself when /proc does not answer."""
    import os

    try:
        lim = read_limits(os.getpid()).get("Max stack size")
    except ToolkitError:
        lim = None
    if lim is not None:
        return lim.soft, lim.hard
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    inf = resource.RLIM_INFINITY
    return None if soft == inf else soft, None if hard == inf else hard


def read_status(pid: int) -> ProcStatus:
    return parse_status(_read(pid, "status"))


def parse_smaps_vmflags(text: str) -> list[tuple[int, int, frozenset]]:
    """/proc/PID/smaps -> [(start, end, VmFlags)] (two-letter flags: "gd" is VM_GROWSDOWN).
    A mapping's header is the maps line (its first word ``start-end``); the fields under it are
    ``Key: value`` lines, so a path ending in "kB" or holding ':' is still a header.  A header
    whose range does not parse, or a mapping without VmFlags, is left out."""
    out, span = [], None
    for line in _lines(text):
        word = line.split(" ", 1)[0]
        if word.endswith(":"):
            if word == "VmFlags:" and span is not None:
                out.append((span[0], span[1], frozenset(line.split()[1:])))
                span = None
            continue
        lo, dash, hi = word.partition("-")
        span = None
        if dash and 0 < len(lo) <= 16 and 0 < len(hi) <= 16 and not (lo + hi).strip(_HEX_DIGITS):
            span = (int(lo, 16), int(hi, 16))
    return out


def read_smaps_vmflags(pid: int) -> list[tuple[int, int, frozenset]]:
    return parse_smaps_vmflags(_read(pid, "smaps"))


#: (the list, its length, the starts) of the last list find_mapping searched by bisection
_starts_of: list = [None]


def find_mapping(maps: list[Mapping], addr: int) -> Mapping | None:
    """The first mapping holding *addr*.  A list sorted by start without overlaps (every
    /proc/PID/maps) is searched by bisection, its starts taken once per list: a server's
    stack-diagnose --all-threads asks ~4 times per thread of the same 1,300 mappings (0.9 s of
    3 s for 500 threads, one by one).  Any other list is searched in order."""
    if len(maps) > 16:
        cached = _starts_of[0]
        if cached is None or cached[0] is not maps or cached[1] != len(maps):
            ordered = all(a.end <= b.start for a, b in zip(maps, maps[1:]))
            cached = _starts_of[0] = (maps, len(maps), [m.start for m in maps] if ordered else None)
        if cached[2] is not None:
            from _bisect import bisect_right

            i = bisect_right(cached[2], addr) - 1
            return maps[i] if i >= 0 and maps[i].contains(addr) else None
    for m in maps:
        if m.contains(addr):
            return m
    return None


# -- the ELF auxiliary vector (/proc/PID/auxv, a core's NT_AUXV, gdb's ``info auxv``) --------
# for load bias, page size and the initial stack, under the same AT_* names as gdb

#: the Linux AT_* types, named as gdb names them (elf.h / linux/auxvec.h)
AT_NAMES = {0: "AT_NULL", 1: "AT_IGNORE", 2: "AT_EXECFD", 3: "AT_PHDR", 4: "AT_PHENT", 5: "AT_PHNUM",
            6: "AT_PAGESZ", 7: "AT_BASE", 8: "AT_FLAGS", 9: "AT_ENTRY", 10: "AT_NOTELF", 11: "AT_UID",
            12: "AT_EUID", 13: "AT_GID", 14: "AT_EGID", 15: "AT_PLATFORM", 16: "AT_HWCAP", 17: "AT_CLKTCK",
            23: "AT_SECURE", 24: "AT_BASE_PLATFORM", 25: "AT_RANDOM", 26: "AT_HWCAP2", 31: "AT_EXECFN",
            32: "AT_SYSINFO", 33: "AT_SYSINFO_EHDR", 51: "AT_MINSIGSTKSZ"}
#: the most bytes of an auxiliary vector read (a real one is ~400)
MAX_AUXV = 1 << 16


def parse_auxv(text: str) -> dict[str, int]:
    """gdb's ``info auxv`` text -> {"AT_PHDR": value, ...}."""
    out = {}
    for line in text.split("\n"):
        # AT_EXECFN / AT_PLATFORM end with the quoted string: the value is the word before it
        parts = line.split('"', 1)[0].split()
        if len(parts) >= 3 and parts[1].startswith("AT_"):
            try:
                out[parts[1]] = int(parts[-1], 0)
            except ValueError:
                pass
    return out


def read_auxv(pid: int) -> bytes:
    """/proc/PID/auxv's bytes (at most MAX_AUXV; the file gdb's native target reads for
    ``info auxv``), b"" when it cannot be read (the process is gone, or not ours)."""
    try:
        with open(f"/proc/{int(pid)}/auxv", "rb") as f:
            return f.read(MAX_AUXV)
    except OSError:
        return b""


def auxv_entries(data: bytes, wordsize: int) -> dict[int, int]:
    """The kernel's auxv bytes ((type, value) word pairs, little-endian as on every target the
    toolkit reads: x86_64, i386, aarch64) -> {type: value}, up to and with AT_NULL; the first
    entry of a type wins, as getauxval(3) answers.  At most MAX_AUXV bytes are looked at; a torn
    last pair is ignored.  (/proc/PID/auxv, a core's NT_AUXV and gdb's live reads all use it.)"""
    if wordsize not in (4, 8):
        raise ValueError(f"word size {wordsize}")
    step = 2 * wordsize
    # the host's order is the target's: the toolkit runs on x86_64 and aarch64 only
    words = memoryview(data[: min(len(data), MAX_AUXV) // step * step]).cast("Q" if wordsize == 8 else "I")
    out: dict[int, int] = {}
    for i in range(0, len(words), 2):
        out.setdefault(words[i], words[i + 1])
        if words[i] == 0:
            break
    return out


def parse_auxv_bytes(data: bytes, wordsize: int) -> dict[str, int]:
    """The kernel's auxv bytes -> {"AT_PHDR": value, ...} (auxv_entries under gdb's names);
    types without an AT_NAMES name are left out."""
    return {AT_NAMES[t]: v for t, v in auxv_entries(data, wordsize).items() if t in AT_NAMES}
