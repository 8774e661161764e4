"""The seed's ktrace workflows (trace a kernel function for the inferior, land $ktask, read task
fields through kcore) in the arm64 guest: the same tests as the x86_64 guest's
(test_ktrace_guest.py), collected here under the guest_arm64 marker so they run on Debian's
arm64 kernel (KASLR, 48-bit VA, arm64 task layout) with the root's arm64 bcc.
"""
import pytest

from tests.integration import test_ktrace_guest as x86
from tests.integration.test_ktrace_guest import (  # noqa: F401 -- collected here for arm64
    test_mmap_workflow_names_the_get_unmapped_area_callback,
    test_no_leftovers_after_worker_sigkill_ctrl_c_and_gdb_sigkill)

pytestmark = pytest.mark.guest_arm64


def test_stack_overflow_workflow_size_retval_and_rlimit():
    """'ktask PID' walks init_task, a data symbol Debian's arm64 kallsyms lacks (no
    CONFIG_KALLSYMS_ALL): the kernel session finds it from the code that uses it."""
    x86.test_stack_overflow_workflow_size_retval_and_rlimit()


def test_seed_do_mmap_then_ktypes_read_the_arm64_task_through_kcore():
    """The seed's do_mmap workflow on arm64, then gdb's own expressions on the traced task: ktypes
    gives gdb the BTF layout, gdb reads /proc/kcore as a core file.  Oracles: the program's
    printed pid, bpftool's raw BTF (sizeof task_struct), the comm the program runs as."""
    import re
    import subprocess

    from tests.integration.test_ktrace_guest import _docs
    from tests.support.gdbrun import json_wrapped, run_gdb
    from tests.support.ktrace_oracles import example

    prog = example("mmap_file")
    res = run_gdb(["break after_mmap", "start /etc/passwd > /dev/null",
                   *json_wrapped("ktrace do_mmap --args len --run --json"),
                   "detach", *json_wrapped("ktypes --json"), "core-file /proc/kcore",
                   "echo @@TASK\\n", "p ((struct task_struct *)$ktask)->pid",
                   "p ((struct task_struct *)$ktask)->comm", "p sizeof(struct task_struct)"],
                  program=prog, timeout=x86.TIMEOUT)
    trace, types = _docs(res)
    assert trace["traced_function"] == "do_mmap" and trace["attach_method"] == "kprobe"
    mine = [e for e in trace["events"] if e["pid"] == trace["pid"]]
    assert mine and mine[-1]["args"]["len"] == 1 << 22
    after = res.stdout.split("@@TASK", 1)[1]
    vals = re.findall(r"^\$\d+ = (.*)$", after, re.M)
    raw = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    size = int(re.search(r"STRUCT 'task_struct' size=(\d+)", raw).group(1))
    assert vals[0] == str(trace["pid"]) and vals[1].startswith('"mmap_file\\000') and vals[2] == str(size), \
        (vals, trace["pid"], size)
    x86._leftovers_clean("do_mmap")
