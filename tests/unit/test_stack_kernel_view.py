"""Summarising the kernel's stack-growth events (pure)."""
from gdb_toolkit.ktrace.protocol import TraceEvent
from gdb_toolkit.stack.kernel_rerun import summarise


def ev(size, rv, fn="expand_downwards"):
    return TraceEvent(0, 7, 7, "teststack", 1, {"size": size}, rv, [], {}, fn)


def test_refused_growth_next_to_user_space():
    k = summarise([ev(135168, 0), ev(139264, 0), ev(16592896, -12)], "expand_downwards",
                  "kprobe+kretprobe", "inlined", ["./t"], 7, "killed by SIGSEGV", 16592896 - 4096)
    assert k.growth_calls == 3 and k.largest_granted == 139264
    assert [e.errno_name for e in k.refused] == ["-ENOMEM"]
    assert "+4096 B" in k.comparison


def test_nothing_refused_is_said():
    k = summarise([ev(135168, 0)], "acct_stack_growth", "kprobe", "", ["./t"], 7, "exit status 0", None)
    assert not k.refused and "refused no stack growth" in k.comparison
