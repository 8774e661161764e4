"""LINUX_VERSION_CODE from a release string.  No imports beyond re: the worker and gdb both use it."""
import re


def kernel_version_code(release: str) -> int:
    """'6.1.0-57-amd64' -> 0x060100 (the sublevel capped at 255, as the kernel does)."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release or "")
    if not m:
        return 0
    a, b, c = (int(x or 0) for x in m.groups())
    return (a << 16) + (b << 8) + min(c, 255)
