"""ktask's pure core on a fake kernel memory image: the task-list walk, pid lookup, field reads
through pointers, symbolized function pointers, and a bad address."""
import struct

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel.btf import MemberPath
from gdb_toolkit.ktrace.task_walk import TaskReader, looks_like_address

INIT, T1, T2 = 0xFFFF888000003000, 0xFFFF888000001000, 0xFFFF888000002000
SIG, MM = 0xFFFF888000009000, 0xFFFF88800000A000
FN = 0xFFFFFFFF81001000
LAYOUT = {   # path -> (hops, kind, size, signed, type)
    "tasks": ([0x10], "struct", 16, False, "struct list_head"),
    "pid": ([0x20], "int", 4, True, "pid_t"),
    "tgid": ([0x24], "int", 4, True, "pid_t"),
    "comm": ([0x30], "array", 16, False, "char [16]"),
    "signal->rlim[3].rlim_cur": ([0x40, 0x60], "int", 8, False, "long unsigned int"),
    "mm->get_unmapped_area": ([0x48, 0x8], "ptr", 8, False, "long unsigned int (*)(...)"),
    "thread_group": ([0x50], "struct", 16, False, "struct list_head"),
    "signal->rlim[0].rlim_cur": ([0x40, 0x30], "int", 8, False, "long unsigned int"),
    "exit_code": ([0x58], "int", 4, True, "int"),
}
THREAD = 0xFFFF888000004000          # a second thread of T2 (pid 4243, tgid 4242)


class FakeBtf:
    def resolve(self, root, path):
        if path not in LAYOUT:
            raise ToolkitError(f"struct task_struct has no member {path!r}", None)
        hops, kind, size, signed, tname = LAYOUT[path]
        return MemberPath(root, path, [], hops, 0, tname, kind, size, signed)


def memory():
    mem = {}

    def put(addr, data):
        for i, b in enumerate(data):
            mem[addr + i] = b

    ring = [INIT, T1, T2]
    for i, (task, pid, comm) in enumerate([(INIT, 0, b"swapper/0"), (T1, 1, b"init"), (T2, 4242, b"teststack")]):
        put(task + 0x10, struct.pack("<Q", ring[(i + 1) % 3] + 0x10))
        put(task + 0x20, struct.pack("<ii", pid, pid))
        put(task + 0x30, comm.ljust(16, b"\0"))
        put(task + 0x40, struct.pack("<Q", SIG))
        put(task + 0x48, struct.pack("<Q", MM))
    for task in ring:                  # single-threaded groups: thread_group points to itself
        put(task + 0x50, struct.pack("<Q", task + 0x50))
    put(T2 + 0x50, struct.pack("<Q", THREAD + 0x50))
    put(THREAD + 0x50, struct.pack("<Q", T2 + 0x50))
    put(THREAD + 0x20, struct.pack("<ii", 4243, 4242))
    put(THREAD + 0x30, b"worker".ljust(16, b"\0"))
    put(SIG + 0x60, struct.pack("<Q", 8 << 20))
    put(SIG + 0x30, struct.pack("<Q", (1 << 64) - 1))      # RLIM_INFINITY
    put(T2 + 0x58, struct.pack("<i", -1))
    put(MM + 0x8, struct.pack("<Q", FN))

    def read(addr, size):
        try:
            return bytes(mem[addr + i] for i in range(size))
        except KeyError:
            raise ToolkitError(f"0x{addr:x} is not in kcore", None) from None
    return read


def reader():
    return TaskReader(memory(), FakeBtf(), lambda a: "arch_get_unmapped_area_topdown+0x0" if a == FN else None)


def test_walk_visits_every_task_once():
    assert list(reader().walk(INIT)) == [INIT, T1, T2]


def test_find_pid_and_read_fields():
    r = reader()
    task, n = r.find_pid(INIT, 4242)
    assert task == T2 and n == 3 and r.comm(task) == "teststack"
    rlim = r.field(task, "signal->rlim[3].rlim_cur")
    assert rlim.integer == 8 << 20 and rlim.value == "0x800000" and rlim.address == SIG + 0x60
    assert rlim.c_type == "long unsigned int" and rlim.text == str(8 << 20)
    cb = r.field(task, "mm->get_unmapped_area")
    assert cb.value == f"0x{FN:x}" and "arch_get_unmapped_area_topdown" in cb.text
    assert cb.symbol == "arch_get_unmapped_area_topdown" and cb.kind == "ptr" and cb.integer is None
    assert (cb.target_location.symbol, cb.target_location.offset, cb.target_location.object) == \
        ("arch_get_unmapped_area_topdown", 0, "vmlinux")
    comm = r.field(task, "comm")
    assert comm.value == "teststack" and comm.integer is None
    assert r.field(task, "bogus").read_error


def test_field_json_has_one_type_per_key():
    """Contract v3 (docs/json.md): `value` is always a string ("0x..." bits, exact, of the
    member's size), the number is `integer`, null when a double cannot hold it exactly."""
    from gdb_toolkit.common.render import to_jsonable

    r = reader()
    task, _ = r.find_pid(INIT, 4242)
    inf = to_jsonable(r.field(task, "signal->rlim[0].rlim_cur"), True)
    assert (inf["value"], inf["integer"]) == ("0xffffffffffffffff", None)
    neg = to_jsonable(r.field(task, "exit_code"), True)
    assert (neg["value"], neg["integer"], neg["text"]) == ("0xffffffff", -1, "-1")
    bad = to_jsonable(r.field(task, "bogus"), True)
    assert bad["value"] is None and bad["read_error"] and "error" not in bad and "type_name" not in bad
    # v4: the member path is `member_path` (`path` is a file path in every command)
    assert bad["member_path"] == "bogus" and "path" not in bad and "symbol" not in bad


def test_pointer_target_is_a_location_with_offset_and_module():
    """Contract v4: a code pointer's target is `target_location` as kx's words say it (v3's
    `symbol` kept only the name: the offset and the module were lost)."""
    from gdb_toolkit.common.render import to_jsonable

    r = TaskReader(memory(), FakeBtf(), lambda a: "my_get_area+0x10 [mymod]" if a == FN else None)
    task, _ = r.find_pid(INIT, 4242)
    cb = r.field(task, "mm->get_unmapped_area")
    assert cb.text == f"0x{FN:x} <my_get_area+0x10 [mymod]>"          # the terminal's words, unchanged
    doc = to_jsonable(cb, True)
    assert doc["target_location"] == {"address": f"0x{FN:x}", "symbol": "my_get_area", "offset": 0x10,
                                      "file": None, "line": None, "object": "mymod"}
    assert doc["member_path"] == "mm->get_unmapped_area" and "symbol" not in doc
    plain = TaskReader(memory(), FakeBtf(), None).field(task, "mm->get_unmapped_area")
    assert plain.target_location is None and to_jsonable(plain, True)["target_location"] is None


def test_missing_pid_and_unreadable_address():
    r = reader()
    with pytest.raises(ToolkitError) as exc:
        r.find_pid(INIT, 99999)
    assert "no task with pid 99999" in str(exc.value) and "4 tasks" in str(exc.value)
    with pytest.raises(ToolkitError):
        r.scalar(0xFFFF888000777000, "pid")


def test_thread_id_found_in_its_group():
    r = reader()
    task, n = r.find_pid(INIT, 4243)
    assert task == THREAD and r.comm(task) == "worker" and r.scalar(task, "tgid") == 4242


def test_address_or_pid():
    assert looks_like_address(T1) and not looks_like_address(4242)


def test_missing_init_task_says_why():
    """arm64 Debian has no CONFIG_KALLSYMS_ALL: the message said 'run as root (kptr_restrict)'
    to root.  Each cause has its own words, and the way around it (the task's address)."""
    from gdb_toolkit.kernel.kallsyms import Kallsyms
    from gdb_toolkit.ktrace.ktask_core import missing_init_task

    text_only = missing_init_task(Kallsyms.parse("ffffffc008010000 T _text\nffffffc008200100 T do_mmap\n"))
    hidden = missing_init_task(Kallsyms.parse("0000000000000000 T _text\n0000000000000000 D jiffies\n"))
    other = missing_init_task(Kallsyms.parse("ffffffff81000000 T _text\nffffffff82000100 D jiffies\n"))
    assert "CONFIG_KALLSYMS_ALL" in text_only.cause and "kptr_restrict" not in str(text_only)
    assert "kptr_restrict" in hidden.cause
    assert "KALLSYMS_ALL" not in other.cause
    assert all("$ktask" in e.fix for e in (text_only, hidden, other))


def test_comm_that_is_not_utf8_is_kept_lossless():
    """A comm holding a byte that is not UTF-8 (and a backslash) reads as every name in the
    toolkit does (common.names: `\\xNN`, `\\\\`), not U+FFFD: ktask's comm, its `comm` field's
    value, and /proc's comm it is checked against (read as bytes, not as strict UTF-8)."""
    read = memory()

    def patched(addr, size):
        if T2 + 0x30 <= addr < T2 + 0x40:
            data = b"ev\\il\xff".ljust(16, b"\0")
            return data[addr - (T2 + 0x30):addr - (T2 + 0x30) + size]
        return read(addr, size)

    r = TaskReader(patched, FakeBtf(), lambda a: None)
    assert r.comm(T2) == "ev\\\\il\\xff"
    assert r.field(T2, "comm").value == "ev\\\\il\\xff"


def test_proc_comm_that_is_not_utf8(tmp_path, monkeypatch):
    from gdb_toolkit.ktrace import ktask_core

    real_open = open

    def fake_open(path, mode="r", *a, **kw):
        if str(path) == "/proc/4242/task/4242/comm":
            return real_open(tmp_path / "comm", mode, *a, **kw)
        return real_open(path, mode, *a, **kw)

    (tmp_path / "comm").write_bytes(b"ev\\il\xff\n")
    monkeypatch.setattr("builtins.open", fake_open)
    assert ktask_core._proc_comm(4242, 4242) == "ev\\\\il\\xff"


# pid namespaces: task->thread_pid (a struct pid) at 0x60, pid->level at +4, pid->numbers[i]
# (struct upid {int nr; struct pid_namespace *ns;}, 16 bytes) from +0x40, ns->ns.inum at +0x90
PID_T2, PID_THREAD, PID_INIT, PID_T1 = (0xFFFF888000005000, 0xFFFF888000005400, 0xFFFF888000005800,
                                        0xFFFF888000005C00)
NS0, NS1 = 0xFFFF888000006000, 0xFFFF888000006400
NS0_INO, NS1_INO = 0xEFFFFFFC, 4026532179
NS_LAYOUT = {"thread_pid->level": ([0x60, 0x4], "int", 4, False, "unsigned int"),
             "group_leader": ([0x68], "ptr", 8, False, "struct task_struct *")}
for _i in range(3):
    NS_LAYOUT[f"thread_pid->numbers[{_i}].nr"] = ([0x60, 0x40 + 16 * _i], "int", 4, True, "int")
    NS_LAYOUT[f"thread_pid->numbers[{_i}].ns->ns.inum"] = ([0x60, 0x48 + 16 * _i, 0x90], "int", 4, False,
                                                          "unsigned int")


class NsBtf(FakeBtf):
    def resolve(self, root, path):
        if path in NS_LAYOUT:
            hops, kind, size, signed, tname = NS_LAYOUT[path]
            return MemberPath(root, path, [], hops, 0, tname, kind, size, signed)
        return super().resolve(root, path)


def ns_reader():
    """init and T1 (global pid 1) in the init namespace; T2 (global 4242) and its THREAD
    (4243) in a child namespace where they are pids 1 and 2: the container's pid 1 is not the
    kernel's pid 1."""
    base = memory()
    extra = {}

    def put(addr, data):
        for i, b in enumerate(data):
            extra[addr + i] = b

    put(NS0 + 0x90, struct.pack("<I", NS0_INO))
    put(NS1 + 0x90, struct.pack("<I", NS1_INO))
    for task, pidp, leader, nums in [(INIT, PID_INIT, INIT, [(0, NS0)]), (T1, PID_T1, T1, [(1, NS0)]),
                                     (T2, PID_T2, T2, [(4242, NS0), (1, NS1)]),
                                     (THREAD, PID_THREAD, T2, [(4243, NS0), (2, NS1)])]:
        put(task + 0x60, struct.pack("<Q", pidp))
        put(task + 0x68, struct.pack("<Q", leader))
        put(pidp + 0x4, struct.pack("<I", len(nums) - 1))
        for i, (nr, ns) in enumerate(nums):
            put(pidp + 0x40 + 16 * i, struct.pack("<iIQ", nr, 0, ns))

    def read(addr, size):
        if all(addr + i in extra for i in range(size)):
            return bytes(extra[addr + i] for i in range(size))
        return base(addr, size)
    return TaskReader(read, NsBtf(), None)


def test_pid_in_a_child_namespace_is_translated_never_taken_as_global():
    r = ns_reader()
    assert r.find_pid(INIT, 1)[0] == T1                        # the kernel's pid 1 (init namespace)
    assert r.find_pid(INIT, 1, NS1_INO)[0] == T2               # the container's pid 1
    assert r.find_pid(INIT, 2, NS1_INO)[0] == THREAD           # a thread, found in its group
    assert (r.ns_pid(T2, NS1_INO), r.ns_pid(THREAD, NS1_INO), r.ns_pid(T1, NS1_INO)) == (1, 2, None)
    assert r.ns_pid(T2, NS0_INO) == 4242
    with pytest.raises(ToolkitError) as exc:
        r.find_pid(INIT, 4242, NS1_INO)                        # a global pid is not the container's
    assert "no task with pid 4242" in exc.value.cause
    # a kernel without task->thread_pid (before 4.19): refused, said why
    with pytest.raises(ToolkitError) as exc:
        reader().ns_pid(T2, NS1_INO)
    assert "cannot translate pids" in exc.value.cause and exc.value.fix


def test_ktask_in_a_child_namespace_checks_proc_under_the_namespace_pid(monkeypatch):
    """ktask 1 in a container: the container's pid 1 (T2), checked against /proc/1/comm there."""
    from gdb_toolkit.ktrace import ktask_core

    class Session:
        is_live = True
        source_description = "/proc/kcore"
        btf = NsBtf()
        symbolize = None
        symbols = None

        def __init__(self):
            self.memory = type("M", (), {"read": staticmethod(ns_reader().read)})()

        def address_of(self, name):
            return INIT if name == "init_task" else None

    seen = []
    monkeypatch.setattr(ktask_core, "_proc_comm", lambda pid, tgid: seen.append((pid, tgid)) or "teststack")
    rep = ktask_core.inspect_task(1, ["comm"], Session(), NS1_INO)
    assert rep.task_address == T2 and (rep.pid, rep.tgid) == (4242, 4242)
    assert (rep.namespace_pid, rep.namespace_tgid) == (1, 1) and rep.verified and seen == [(1, 1)]
    thread = ktask_core.inspect_task(THREAD, [], Session(), NS1_INO)
    assert (thread.namespace_pid, thread.namespace_tgid) == (2, 1)
    outside = ktask_core.inspect_task(T1, [], Session(), NS1_INO)
    assert outside.namespace_pid is None and not outside.verified and "outside gdb's pid namespace" in outside.notes[0]
