"""Parsers for the kernel's own kprobe text files (pure; the readers are at the bottom).

- debugfs ``kprobes/list``: ``ADDR  k|r  sym+0xOFF  [module] [GONE][DISABLED][OPTIMIZED][FTRACE]``
  (kernel/kprobes.c report_probe; probes without a symbol print ``%pS`` instead);
- tracefs ``kprobe_events``: ``p:GROUP/EVENT TARGET ARGS`` / ``rN:GROUP/EVENT TARGET``;
- tracefs ``kprobe_profile``: ``EVENT  HITS  MISSES``.
"""
import os
import re
from gdb_toolkit.common.record import field, record

FLAG_NAMES = ("GONE", "DISABLED", "OPTIMIZED", "FTRACE")
# struct kprobe.flags bits (include/linux/kprobes.h)
KPROBE_FLAG_GONE, KPROBE_FLAG_DISABLED, KPROBE_FLAG_OPTIMIZED, KPROBE_FLAG_FTRACE = 1, 2, 4, 8
FLAG_BITS = {"GONE": 1, "DISABLED": 2, "OPTIMIZED": 4, "FTRACE": 8}

DEBUGFS_LIST = "/sys/kernel/debug/kprobes/list"
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


KPROBE_FLAG_ON_FUNC_ENTRY = 16     # 6.x: the probe sits at the function entry (not listed)


def flags_from_bits(bits: int) -> list[str]:
    """The kprobes/list flag names set in struct kprobe.flags."""
    return [n for n in FLAG_NAMES if bits & FLAG_BITS[n]]


def describe_flags(bits: int) -> str:
    """All bits by name, e.g. "FTRACE|ON_FUNC_ENTRY" (for struct dumps)."""
    names = flags_from_bits(bits) + (["ON_FUNC_ENTRY"] if bits & KPROBE_FLAG_ON_FUNC_ENTRY else [])
    rest = bits & ~0x1F
    return "|".join(names + ([f"0x{rest:x}"] if rest else [])) or "0"


@record
class ListedProbe:
    """One line of kprobes/list."""
    address: int
    kind: str                 # "k" kprobe, "r" kretprobe
    symbol: str | None
    offset: int
    module: str | None
    flags: list[str] = field(default_factory=list)
    line: str = ""

    @property
    def where(self) -> str:
        if self.symbol is None:
            return f"0x{self.address:x}"
        return f"{self.symbol}+0x{self.offset:x}" + (f" [{self.module}]" if self.module else "")


# The parsers compile their expressions when called (re's cache keeps them): the doctor and the
# kernel commands import this module for its constants, most without parsing a list.
_LIST_RE = r"^([0-9a-fA-F]+)\s+([kr])\s+(\S+)\s*(.*)$"
_SYM_RE = r"^(.+?)\+0x([0-9a-fA-F]+)(?:/0x[0-9a-fA-F]+)?(?:\s*\[(\S+)\])?$"


def parse_kprobes_list(text: str) -> list[ListedProbe]:
    list_re, sym_re = re.compile(_LIST_RE), re.compile(_SYM_RE)
    out = []
    for line in text.splitlines():
        line = line.rstrip()
        m = list_re.match(line)
        if not m:
            continue
        addr, kind, symoff, rest = int(m.group(1), 16), m.group(2), m.group(3), m.group(4)
        flags = re.findall(r"\[(GONE|DISABLED|OPTIMIZED|FTRACE)\]", rest)
        rest_wo = re.sub(r"\[(GONE|DISABLED|OPTIMIZED|FTRACE)\]", " ", rest).split()
        module = rest_wo[0].strip("[]") if rest_wo else None
        sm = sym_re.match(symoff)
        if sm:
            symbol, offset = sm.group(1), int(sm.group(2), 16)
            module = module or sm.group(3)
        elif symoff.startswith("0x"):
            symbol, offset = None, 0
        else:
            symbol, offset = symoff, 0
        out.append(ListedProbe(addr, kind, symbol, offset, module, flags, line))
    return out


@record
class TraceEvent:
    """One dynamic kprobe event from kprobe_events."""
    probe_type: str           # "p" or "r"
    group: str
    event: str
    target: str               # "do_sys_open+0x4", "mod:sym", "0xffff..."
    symbol: str | None
    offset: int
    module: str | None
    address: int | None
    maxactive: int | None = None
    args: str = ""
    name: str = ""            # group/event

    def __post_init__(self):
        self.name = f"{self.group}/{self.event}"


_EV_RE = r"^([pr])(\d*):(\S+?)/(\S+)\s+(\S+)\s*(.*)$"


def parse_kprobe_events(text: str) -> list[TraceEvent]:
    ev_re = re.compile(_EV_RE)
    out = []
    for line in text.splitlines():
        m = ev_re.match(line.strip())
        if not m:
            continue
        ptype, maxact, group, event, target, args = m.groups()
        symbol, offset, module, address = None, 0, None, None
        if re.fullmatch(r"0x[0-9a-fA-F]+", target):
            address = int(target, 16)
        else:
            t = target
            if ":" in t:
                module, t = t.split(":", 1)
            sym, _, off = t.partition("+")
            symbol = sym
            try:
                offset = int(off, 0) if off else 0
            except ValueError:
                continue                        # not a line the kernel writes: skip it
        out.append(TraceEvent(ptype, group, event, target, symbol, offset, module, address,
                              int(maxact) if maxact else None, args.strip()))
    return out


def parse_kprobe_profile(text: str) -> dict[str, tuple[int, int]]:
    """event name -> (hits, misses)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1].isdigit() and parts[-2].isdigit():
            out[" ".join(parts[:-2])] = (int(parts[-2]), int(parts[-1]))
    return out


def parse_enabled_functions(text: str) -> dict[str, dict]:
    """tracefs enabled_functions: ``func (refs) flags [tramp: 0xADDR (handler)] [->call]``."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s+\((\d+)\)\s*(.*)$", line)
        if not m:
            continue
        rest = m.group(3)
        tramp = re.search(r"tramp:\s*0x([0-9a-fA-F]+)(?:\s*\(([^)]*)\))?", rest)
        flags = rest.split("\t")[0].split() if rest else []
        out[m.group(1)] = {
            "ref_count": int(m.group(2)),   # enabled_functions' (refs): a count
            "flags": [f for f in flags if f and not f.startswith(("tramp", "->"))],
            "trampoline_address": int(tramp.group(1), 16) if tramp else None,
            "handler": tramp.group(2) if tramp and tramp.group(2) else None,
            "text": " ".join(line.split()),
        }
    return out


# -- readers ------------------------------------------------------------------------------

def tracefs_dir() -> str | None:
    for d in TRACEFS_DIRS:
        if os.path.exists(os.path.join(d, "kprobe_events")):
            return d
    return None


def read_text(path: str, limit: int = 64 << 20) -> str | None:
    """A kernel text file (debugfs/tracefs), None when it cannot be read; refuses anything
    but a regular file (a FIFO must not block gdb)."""
    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.common.names import decode_name
    from gdb_toolkit.common.safe_open import read_regular

    try:
        return decode_name(read_regular(path, "kernel file", limit))
    except (ToolkitError, OSError):
        return None


def read_tracefs(name: str) -> str | None:
    d = tracefs_dir()
    return read_text(os.path.join(d, name)) if d else None
