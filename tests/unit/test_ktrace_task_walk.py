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
