"""Independent views of what is attached to the kernel (bpftool, tracefs) for ktrace tests."""
import json
import os
import subprocess
import time

from tests.support.gdbrun import REPO, compile_c

EXAMPLES = REPO / "examples" / "ktrace"


def our_programs(names=("gtk_kt",)) -> list[str]:
    """Names of loaded BPF programs that are ours (bpftool prog show)."""
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True).stdout
    progs = json.loads(out or "[]")
    return [p.get("name", "") for p in progs if any(p.get("name", "").startswith(n) for n in names)]


def kprobe_events() -> str:
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        path = os.path.join(d, "kprobe_events")
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
    return ""


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:   # a zombie child of ours counts as gone
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def wait_no_programs(names=("gtk_kt",), timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    left = our_programs(names)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = our_programs(names)
    return left


def example(name: str):
    # no stack-clash probing: the VLA's first write must fault far below the stack, as in the seed
    return compile_c(EXAMPLES / f"{name}.c", flags=["-g", "-O0", "-fno-stack-clash-protection"])
