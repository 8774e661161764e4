"""The kernel's rules for growing a stack, as plain arithmetic.  Pure.

mm/mmap.c: expand_downwards() refuses when the accessible mapping below is closer
than ``stack_guard_gap`` (default 256 pages; ``stack_guard_gap=`` on the kernel command
line), then acct_stack_growth() refuses when ``vm_end - address > RLIMIT_STACK`` (soft).
Either returns -ENOMEM, and the fault becomes SIGSEGV (SEGV_MAPERR).  Thread stacks made
by glibc never grow: they are fixed mmaps with a PROT_NONE guard below.

And where the kernel puts the libraries relative to the stack, and what ``ulimit -s``
changes (one module with the rules above: a first stack-diagnose imports both anyway).

At exec the kernel fixes ``mmap_base``, the top of the area where ld.so, the libraries and
every ``mmap(NULL, ...)`` go (top-down below it)::

    gap = RLIMIT_STACK(at exec) + stack_guard_gap + stack randomisation (ASLR only)
    gap = clamp(gap, 128 MiB, 5/6 of the address space)
    mmap_base = TASK_SIZE - gap - mmap randomisation (ASLR only)

(x86_64 arch/x86/mm/mmap.c, generic mm/util.c for arm64; an unlimited RLIMIT_STACK selects
the legacy bottom-up layout instead).  So the room below the stack is decided by the limit
the program was *started* with: ``ulimit -s N`` in the shell moves the libraries N + gap below
the stack top, whereas the program raising its own limit at run time moves nothing.  Under
gdb (``disable-randomization on``) the distance is exactly max(128 MiB, limit + gap); in a
normal run, with address randomisation, it is at least limit + gap and usually gigabytes more.
"""
import re

from gdb_toolkit.common.procfs import Mapping
from gdb_toolkit.common.record import record

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


# -- the layout the limit at exec decides (mm/util.c, arch/x86/mm/mmap.c) ------------------
MIN_GAP = 128 * MIB
# the stack randomisation the kernel pads mmap_base with (STACK_RND_MASK << PAGE_SHIFT)
STACK_RND = {"x86_64": 0x3FFFFF << 12, "aarch64": 0x3FFFF << 12, "i386": 0x7FF << 12}
# i386: a 32-bit program on an x86_64 kernel (IA32_PAGE_OFFSET)
TASK_SIZE = {"x86_64": (1 << 47) - 4096, "aarch64": 1 << 48, "i386": 0xFFFFE000}


@record
class Layout:
    aslr: bool | None               # address randomisation in the diagnosed process
    aslr_source: str
    exec_rlimit: int | None         # RLIMIT_STACK at exec (None: unknown / unlimited)
    exec_rlimit_source: str
    legacy: bool = False            # bottom-up layout (RLIMIT_STACK unlimited at exec)


def mmap_gap(rlimit: int | None, guard_gap: int, arch: str, aslr: bool) -> int | None:
    """Stack top - mmap_base the kernel leaves for an exec-time *rlimit* (before mmap
    randomisation); None for the legacy layout (unlimited)."""
    if rlimit is None:
        return None
    pad = guard_gap + (STACK_RND.get(arch, 0) if aslr else 0)
    gap = rlimit + pad
    task = TASK_SIZE.get(arch, 1 << 47)
    return max(MIN_GAP, min(gap, task // 6 * 5))


def room_with_limit(rlimit: int, guard_gap: int, arch: str) -> int:
    """The stack a run started with ``ulimit -s rlimit`` may grow to before the guard gap
    above the libraries stops it (the worst case: no randomisation)."""
    return mmap_gap(rlimit, guard_gap, arch, False) - guard_gap


def moves_with_limit(m: Mapping, stack_top: int, exec_rlimit: int | None, guard_gap: int,
                     aslr: bool | None, page: int = 4096) -> bool:
    """Was *m* placed by the kernel's top-down allocator below mmap_base (so a bigger
    RLIMIT_STACK at exec moves it down), rather than at an address the program chose?

    mmap_base lies at least exec_rlimit + guard_gap below the stack top whatever the
    randomisation (and at least 128 MiB without it); a mapping closer to the stack was put
    there on purpose (MAP_FIXED or a hint).  The legacy layout (unlimited limit) puts nothing
    near the stack."""
    if exec_rlimit is None:
        return False
    bound = exec_rlimit + guard_gap
    if aslr is False:
        bound = max(bound, MIN_GAP)
    return m.end <= stack_top - bound + page


def aslr_sentence(layout: Layout, obstacle: Mapping | None, stack_top: int, guard_gap: int,
                  arch: str) -> str | None:
    """Say which layout applies: gdb's (no randomisation) or a normal run's."""
    if layout.aslr is None or obstacle is None:
        return None
    dist = stack_top - obstacle.end
    if layout.aslr is False:
        lim = layout.exec_rlimit
        gap = mmap_gap(lim, guard_gap, arch, False)
        return (f"Address randomisation is off here ({layout.aslr_source}), so {obstacle.label} "
                f"sits exactly {_mib(dist)} below the stack top"
                + (f" (max(128 MiB, RLIMIT_STACK at exec + guard gap) = {_mib(gap)})" if gap else "")
                + "; in a normal run (randomisation on) the libraries start at least "
                "RLIMIT_STACK + the guard gap below the stack, typically gigabytes away, so "
                "there the same growth meets RLIMIT_STACK first.")
    return (f"Address randomisation is on ({layout.aslr_source}): {obstacle.label} is "
            f"{_mib(dist)} below the stack top in this run; another run places it elsewhere, "
            "but never closer than RLIMIT_STACK at exec + the guard gap.")


def _mib(n: int) -> str:
    from gdb_toolkit.common.render import human_size

    return human_size(n)
