"""Readers for /proc/PID files: the memory map, resource limits, status.

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


def find_mapping(maps: list[Mapping], addr: int) -> Mapping | None:
    for m in maps:
        if m.contains(addr):
            return m
    return None
