"""Readers for /proc/PID files: the memory map, resource limits, status.

Parsers take text so they are testable on captured samples; ``read_*``
wrappers read the live files.
"""
from dataclasses import dataclass, field

from gdb_toolkit.common.errors import ToolkitError


@dataclass
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


def parse_maps(text: str) -> list[Mapping]:
    maps = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, hi = parts[0].split("-")
        maps.append(Mapping(int(lo, 16), int(hi, 16), parts[1], int(parts[2], 16), parts[3],
                            int(parts[4]), parts[5].strip() if len(parts) > 5 else ""))
    return maps


@dataclass
class Limit:
    name: str
    soft: int | None   # None = unlimited
    hard: int | None
    units: str = ""


def _limit_value(text: str) -> int | None:
    return None if text == "unlimited" else int(text)


def parse_limits(text: str) -> dict[str, Limit]:
    """/proc/PID/limits keyed by the kernel's row name ("Max stack size")."""
    out = {}
    lines = text.splitlines()
    for line in lines[1:]:
        # columns are fixed width: name(26) soft(21) hard(21) units
        name = line[:26].strip()
        rest = line[26:].split()
        if not name or len(rest) < 2:
            continue
        out[name] = Limit(name, _limit_value(rest[0]), _limit_value(rest[1]),
                          rest[2] if len(rest) > 2 else "")
    return out


@dataclass
class ProcStatus:
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default=None):
        return self.fields.get(key, default)


def parse_status(text: str) -> ProcStatus:
    fields = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    return ProcStatus(fields)


def _read(pid: int, name: str) -> str:
    path = f"/proc/{pid}/{name}"
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        raise ToolkitError(f"process {pid} does not exist (no {path})",
                           "check the pid, or start the program again") from None
    except PermissionError:
        raise ToolkitError(f"cannot read {path}: permission denied",
                           "run gdb as the process owner or as root") from None


def read_maps(pid: int) -> list[Mapping]:
    return parse_maps(_read(pid, "maps"))


def read_limits(pid: int) -> dict[str, Limit]:
    return parse_limits(_read(pid, "limits"))


def read_status(pid: int) -> ProcStatus:
    return parse_status(_read(pid, "status"))


def find_mapping(maps: list[Mapping], addr: int) -> Mapping | None:
    for m in maps:
        if m.contains(addr):
            return m
    return None
