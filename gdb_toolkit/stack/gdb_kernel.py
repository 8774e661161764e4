"""``stack-diagnose --kernel``: the kernel's own view of the refused growth (bcc, kprobes)."""
from gdb_toolkit.common.errors import ToolkitError


def kprobes_available() -> tuple[bool, str]:
    """(usable, why not) -- kprobes through tracefs or the perf kprobe PMU, as root."""
    import os

    if os.geteuid() != 0:
        return False, "--kernel needs root (bcc loads BPF programs)"
    tracefs = [d for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
               if os.path.exists(os.path.join(d, "kprobe_events"))]
    if not tracefs and not os.path.exists("/sys/bus/event_source/devices/kprobe"):
        import platform

        return False, (f"kernel {platform.release()} offers no kprobes (no kprobe_events in "
                       "tracefs and no perf kprobe PMU)")
    return True, ""


def require_kernel_tracing() -> None:
    ok, why = kprobes_available()
    if not ok:
        raise ToolkitError(f"stack-diagnose --kernel: {why}",
                           "run it as root on a kernel with CONFIG_KPROBES=y (see 'toolkit "
                           "doctor'), or drop --kernel for the user-space diagnosis")
    raise ToolkitError("stack-diagnose --kernel: the bcc tracing worker (gdb_toolkit.ktrace) is "
                       "not available in this build", "drop --kernel for the user-space diagnosis")


def kernel_view(d):  # pragma: no cover - replaced once the ktrace API exists
    return None
