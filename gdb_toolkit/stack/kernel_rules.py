"""The kernel's rules for growing a stack, as plain arithmetic.  Pure.

mm/mmap.c: expand_downwards() refuses when the accessible mapping below is closer
than ``stack_guard_gap`` (default 256 pages; ``stack_guard_gap=`` on the kernel command
line), then acct_stack_growth() refuses when ``vm_end - address > RLIMIT_STACK`` (soft).
Either returns -ENOMEM, and the fault becomes SIGSEGV (SEGV_MAPERR).  Thread stacks made
by glibc never grow: they are fixed mmaps with a PROT_NONE guard below.
"""
import re

DEFAULT_GAP_PAGES = 256
CALLEE_MARGIN = 64 << 10          # room left for the functions the culprit still calls
MIB = 1 << 20


def guard_gap_from_cmdline(cmdline: str | None, page_size: int) -> tuple[int, str]:
    """(gap in bytes, where that came from) -- /proc/cmdline's stack_guard_gap= pages, or
    the kernel default."""
    if cmdline:
        m = re.search(r"(?:^|\s)stack_guard_gap=(\d+)", cmdline)
        if m:
            pages = int(m.group(1))
            return pages * page_size, f"/proc/cmdline stack_guard_gap={pages} pages"
    where = "/proc/cmdline has no stack_guard_gap=" if cmdline is not None else "no /proc/cmdline"
    return DEFAULT_GAP_PAGES * page_size, f"kernel default 256 pages ({where})"


def page_down(addr: int, page: int) -> int:
    return addr & ~(page - 1)


def round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def ulimit_kib_for(needed: int) -> int:
    """``ulimit -s`` value (KiB) for a stack of *needed* bytes, rounded up to a whole MiB."""
    return round_up(needed, MIB) // 1024


def thread_stacksize_for(needed: int) -> int:
    """pthread_attr_setstacksize() size for *needed* bytes, rounded up to 64 KiB."""
    return round_up(needed, 64 << 10)


def is_accessible(perms: str) -> bool:
    """vma_is_accessible(): any of read/write/exec."""
    return any(c in perms[:3] for c in "rwx")
