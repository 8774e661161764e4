"""What to trace when the requested function cannot be: known inlined functions'
traceable callers, and tracepoints on the same kernel path.  Pure data + lookup."""
import re

from gdb_toolkit.common.record import field, record


@record
class Fallback:
    function: str                 # a kernel function, or 'tracepoint:CAT:NAME'
    why: str                      # said to the user when this one is traced
    arg_map: dict[str, str] = field(default_factory=dict)   # requested arg -> expression here
    ret_note: str = ""            # how the return value relates to the requested function's


# acct_stack_growth(vma, size, grow) is static and inlined into expand_downwards/expand_upwards on
# many distribution kernels (Debian 6.1: not in kallsyms).  expand_downwards(vma, address) computes
# size = vma->vm_end - address and returns acct_stack_growth's error unchanged.
KNOWN_FALLBACKS: dict[str, list[Fallback]] = {
    "acct_stack_growth": [
        Fallback("expand_downwards", "acct_stack_growth is inlined into its caller expand_downwards "
                 "on this kernel; expand_downwards(vma, address) calls it with "
                 "size = vma->vm_end - address and returns its error",
                 {"size": "vma->vm_end - address", "grow": "vma->vm_start - address"},
                 "expand_downwards returns acct_stack_growth's error code"),
        Fallback("expand_stack", "acct_stack_growth and expand_downwards are not traceable; "
                 "expand_stack(vma, address) is the nearest traceable caller",
                 {"size": "vma->vm_end - address"},
                 "expand_stack returns expand_downwards' error code"),
        Fallback("tracepoint:exceptions:page_fault_user",
                 "no function on the stack-growth path is traceable; the user page-fault "
                 "tracepoint fires on the same path (address = faulting address)",
                 {}, "a tracepoint has no return value"),
    ],
    "thp_get_unmapped_area": [
        Fallback("tracepoint:syscalls:sys_enter_mmap",
                 "thp_get_unmapped_area is reached from mmap(2) through mm->get_unmapped_area; "
                 "the mmap syscall tracepoint is on the same path",
                 {"addr": "addr", "len": "len", "flags": "flags"},
                 "the return value is mmap(2)'s (the mapped address)"),
    ],
}

_SYSCALL_RE = re.compile(r"^(?:__x64_sys_|__arm64_sys_|__ia32_sys_|__se_sys_|__do_sys_|ksys_|sys_)(\w+)$")


def syscall_of(function: str) -> str | None:
    m = _SYSCALL_RE.match(function)
    return m.group(1) if m else None


def fallbacks_for(function: str) -> list[Fallback]:
    """Known fallbacks for *function*, ending with its syscall tracepoint if it is a syscall."""
    out = list(KNOWN_FALLBACKS.get(function, []))
    sc = syscall_of(function)
    if sc:
        out.append(Fallback(f"tracepoint:syscalls:sys_enter_{sc}",
                            f"{function} is the {sc}(2) syscall; its tracepoint is on the same path",
                            {}, f"the return value comes from syscalls:sys_exit_{sc}"))
    return out


def fallback_from_text(text: str) -> Fallback:
    """A user fallback 'FUNC' or 'FUNC:why' (for TraceSpec(fallbacks=[...]) as strings)."""
    if text.startswith("tracepoint:"):
        return Fallback(text, "given as a fallback")
    name, _, why = text.partition(":")
    return Fallback(name, why or "given as a fallback")
