"""Kernel facts the guest tests and the guest docs transcripts read beside the toolkit:
tracefs writes and /proc/kallsyms (the oracle the toolkit's answers are checked against)."""
import os
import re
from pathlib import Path


def append(path: Path, line: str) -> None:
    """One line appended to a tracefs control file (kprobe_events): tracefs wants O_APPEND,
    never a seek or a truncating open, which would remove every other probe."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def kallsyms(name: str) -> int:
    """The address /proc/kallsyms gives the vmlinux symbol *name*."""
    m = re.search(r"^([0-9a-f]+) \w " + re.escape(name) + "$", Path("/proc/kallsyms").read_text(), re.M)
    if not m:
        raise AssertionError(f"{name} is not in /proc/kallsyms")
    return int(m.group(1), 16)
