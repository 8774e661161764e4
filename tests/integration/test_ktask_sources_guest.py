"""Issue 17 ★ for ktask and ktypes: the same task read from a vmcore of the guest and from the
halted guest behind QEMU's gdbstub must equal what the running kernel (/proc/kcore) says, with
no debug vmlinux: symbols from the kernel's own kallsyms tables, types from its own BTF.

The subject is a process of ours with a stack rlimit nobody else has; the live answers are
checked against /proc (comm, limits) first, so each other source is compared with a truth.
"""
import os
import subprocess

import pytest

from tests.support.gdbrun import assert_no_traceback, json_wrapped, run_gdb

pytestmark = pytest.mark.guest

RLIMIT = 12345 * 4096
COMM = "gtk_ktask_tgt"
FIELDS = "comm tgid signal->rlim[3].rlim_cur {pointer} real_parent->pid"


def _pointer_field() -> str:
    """A pointer the dump's kallsyms names: mm->get_unmapped_area (a function) up to 6.9; 6.10
    removed it from struct mm_struct, so on Debian's 6.12 sched_class (&fair_sched_class, a
    data symbol).  Oracle: the kernel's BTF as bpftool dumps it."""
    import re
    raw = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format",
                          "raw"], capture_output=True, text=True, check=True).stdout
    mm = re.search(r"STRUCT 'mm_struct' size=\d+ vlen=\d+\n((?:\t.*\n)+)", raw).group(1)
    return "mm->get_unmapped_area" if "'get_unmapped_area' type_id=" in mm else "sched_class"


def _commands(pid: int) -> list[str]:
    fields = FIELDS.format(pointer=_pointer_field())
    return [*json_wrapped(f"ktask {pid} {fields} --json"),
            *json_wrapped("ktask $ktask comm --json"),
            *json_wrapped("ktypes --json"),
            "print sizeof(struct task_struct)",
            "print sizeof(((struct task_struct *)0)->signal->rlim)"]


def _sizes(stdout: str) -> list[int]:
    import re
    return [int(x) for x in re.findall(r"^\$\d+ = (\d+)$", stdout, re.M)]


@pytest.fixture(scope="module")
def subject():
    """A sleeping process named COMM with RLIMIT as its stack soft limit, and the live answers."""
    subprocess.run(["modprobe", "qemu_fw_cfg"], check=True, capture_output=True)   # vmcoreinfo
    code = ("import ctypes, resource, time\n"
            f"resource.setrlimit(resource.RLIMIT_STACK, ({RLIMIT}, resource.RLIM_INFINITY))\n"
            f"ctypes.CDLL(None).prctl(15, b'{COMM}', 0, 0, 0)\n"
            "print('ready', flush=True)\ntime.sleep(3600)\n")
    proc = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with open(f"/proc/{proc.pid}/comm") as f:
            assert f.read().strip() == COMM
        res = run_gdb(_commands(proc.pid), timeout=1800)
        assert_no_traceback(res)
        by_pid, by_addr, types = res.json_documents()
        assert by_pid["verified"] and by_pid["comm"] == COMM and by_pid["pid"] == proc.pid
        fields = {f["member_path"]: f for f in by_pid["fields"]}
        assert fields["signal->rlim[3].rlim_cur"]["integer"] == RLIMIT        # what we set
        assert fields["real_parent->pid"]["integer"] == os.getpid()
        assert by_addr["task_address"] == by_pid["task_address"]
        assert types["loaded"]
        yield {"pid": proc.pid, "task": by_pid, "fields": fields, "sizes": _sizes(res.stdout)}
    finally:
        proc.kill()
        proc.wait()


def _compare(subject, docs, sizes, kind: str):
    by_pid, by_addr, types = docs
    live = subject["task"]
    assert by_pid["task_address"] == live["task_address"], (kind, by_pid, live)
    assert (by_pid["pid"], by_pid["tgid"], by_pid["comm"]) == (live["pid"], live["tgid"], COMM)
    assert by_pid["found_by"].startswith("task list walk")
    fields = {f["member_path"]: f for f in by_pid["fields"]}
    for path, f in subject["fields"].items():
        assert (fields[path]["value"], fields[path]["integer"]) == (f["value"], f["integer"]), \
            (kind, path, fields[path], f)
        assert fields[path]["target_location"] == f["target_location"], (kind, path)
    assert fields[_pointer_field()]["target_location"]["symbol"]   # named from the dump's kallsyms
    assert not by_pid["verified"] and by_pid["proc_comm"] is None        # no /proc of that kernel
    assert by_addr["task_address"] == live["task_address"] and by_addr["comm"] == COMM
    # ktypes from the BTF the dump/target holds: the same layout as the running kernel's
    assert types["loaded"] and types["build_id"].startswith("btf-"), types
    assert sizes == subject["sizes"], (kind, sizes, subject["sizes"])


def test_ktask_and_ktypes_on_a_vmcore_agree_with_the_live_kernel(subject):
    from tests.guest.host_services import request, xfer_path

    res = request("dump", name="ktask-vmcore", format="elf", timeout=1500)
    assert res["ok"], res
    path = xfer_path("ktask-vmcore")
    try:
        out = run_gdb([f"kcore {path}"] + _commands(subject["pid"]), timeout=1800)
        assert_no_traceback(out)
        docs = out.json_documents()
        assert len(docs) == 3, out.output[-3000:]
        _compare(subject, docs, _sizes(out.stdout), "vmcore")
        assert "dump" in docs[0]["memory_source"] or "vmcore" in docs[0]["memory_source"], docs[0]["memory_source"]
    finally:
        path.unlink(missing_ok=True)


def test_ktask_and_ktypes_on_the_halted_kernel_through_gdbstub(subject):
    """The host's gdb attached to QEMU's gdbstub: ktask and ktypes find the halted kernel by
    themselves; after ktypes plain gdb expressions read the task through gdb's own target."""
    from tests.guest.host_services import request
    from tests.support.gdbrun import GdbResult

    cmds = _commands(subject["pid"]) + [
        "print ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur",
        "print ((struct task_struct *)$ktask)->pid"]
    res = request("gdb", commands=cmds, timeout=1800)
    assert res["ok"], res
    out = GdbResult(res["stdout"], res["stderr"], res["status"])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    docs = out.json_documents()
    assert len(docs) == 3, (out.stdout[-2000:], out.stderr[-3000:])
    sizes = _sizes(out.stdout)
    _compare(subject, docs, sizes[:2], "gdb")
    assert sizes[2:] == [RLIMIT, subject["pid"]], sizes                 # gdb's own reads, typed
    assert "gdb" in docs[0]["memory_source"], docs[0]["memory_source"]
