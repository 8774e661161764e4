"""Find and read task_structs through a kernel memory reader with BTF offsets. Pure:
the reader (``read(addr, size) -> bytes``), BTF and symbol lookups come in."""

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.common.names import escape_name

MAX_TASKS = 1 << 20
MAX_PID_NS_LEVEL = 32       # include/linux/pid_namespace.h
KERNEL_MIN = 1 << 47        # anything below is not a kernel address on x86_64/arm64


EXACT = 1 << 53             # JSON numbers above this lose bits in jq and JavaScript


@record
class TaskField:
    """One task_struct member (its keys are the JSON contract's, v4: docs/json.md)."""
    path: str                   # the member path asked (mm->mmap_base): JSON `member_path`
    c_type: str                 # the member's C type (as kprobe-show's struct fields say it)
    value: str | None           # a char array's text; a pointer's or integer's bits as "0x..."
    #                             (the member's size, exact); None: not read, or not a scalar
    text: str                   # rendered: number, 0x.. pointer with symbol, string
    address: int | None = None  # where the member is
    read_error: str = ""        # why it could not be read ("" when it was)
    kind: str = ""              # int | ptr | array | struct | union | enum ... (BTF kind)
    #: where a pointer points, when kallsyms names it (code pointers): symbol, offset and
    #: object (the module, vmlinux for the kernel image), as kx's words say it
    target_location: "Location | None" = None     # common.location (imported when a pointer is named)
    integer: int | None = None  # an integer or enum member as a number (None when a JSON
    #                             number cannot hold it exactly: read `value`)

    @property
    def type_name(self) -> str:           # the name before contract v3
        return self.c_type

    @property
    def symbol(self) -> str | None:       # the target's name alone (JSON `symbol` before v4)
        return self.target_location.symbol if self.target_location is not None else None


# JSON keys (contract v4, docs/json.md): `path` is a file path in every command (got's objects,
# kcore); a struct member's path (mm->mmap_base) is `member_path`, as kprobe-show's fields say it
json_keys(TaskField, {"path": "member_path"})


@record
class TaskReport:
    task_address: int
    pid: int
    tgid: int
    comm: str
    proc_comm: str | None       # /proc/PID/comm, the independent check (None: not a live kernel)
    verified: bool
    found_by: str               # 'address' | 'task list walk, N tasks'
    fields: list[TaskField] = field(default_factory=list)
    typed: bool = False         # $ktask typed as struct task_struct *
    memory_source: str = ""     # which kernel memory: /proc/kcore, a vmcore, gdb's target
    notes: list[str] = field(default_factory=list)
    #: the pid and tgid in gdb's own pid namespace when gdb runs in a child one (a container):
    #: the numbers gdb, ps and /proc there use; pid/tgid above are the kernel's global ones.
    #: None when gdb is in the init namespace, or the task is outside gdb's namespace.
    namespace_pid: int | None = None
    namespace_tgid: int | None = None


class TaskReader:
    def __init__(self, read, btf, symbolize=None):
        self.read = read              # read(addr, size) -> bytes
        self.btf = btf
        self.symbolize = symbolize    # addr -> "name+0xoff" or None
        self._paths = {}

    def path(self, expr: str):
        if expr not in self._paths:
            self._paths[expr] = self.btf.resolve("task_struct", expr)
        return self._paths[expr]

    def u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def scalar(self, task: int, expr: str) -> int:
        mp = self.path(expr)
        addr = mp.address(task, self.u64)
        return mp.extract(self.read(addr, mp.size))

    def comm(self, task: int) -> str:
        mp = self.path("comm")
        raw = self.read(mp.address(task, self.u64), mp.size or 16)
        return escape_name(raw.split(b"\0", 1)[0])      # lossless: \xNN (common.names)

    def walk(self, init_task: int):
        """Yield every thread-group leader on init_task.tasks."""
        off = self.path("tasks").offset
        task, n = init_task, 0
        while True:
            yield task
            n += 1
            if n > MAX_TASKS:
                raise ToolkitError("the task list does not end (inconsistent kcore read?)",
                                   "retry; the list changes while being walked")
            nxt = self.u64(task + off) - off
            if nxt == init_task:
                return
            task = nxt

    def threads(self, leader: int):
        """The other threads of *leader*'s group: task->thread_group (up to 6.6) or
        signal->thread_head / task->thread_node (6.7+)."""
        try:
            off = self.path("thread_group").offset
            node = self.u64(leader + off)
            head = leader + off
        except ToolkitError:
            try:
                off = self.path("thread_node").offset
                head = self.path("signal->thread_head").address(leader, self.u64)
            except ToolkitError:
                return
            node = self.u64(head)
        n = 0
        while node != head and n < MAX_TASKS:
            task = node - off
            if task != leader:
                yield task
            node = self.u64(node)
            n += 1

    def ns_pid(self, task: int, ns_ino: int) -> int | None:
        """*task*'s pid in the pid namespace whose inode is *ns_ino* (what a process in that
        namespace, its ps and its /proc call it): task->thread_pid->numbers[i].nr where
        numbers[i].ns is that namespace; None when the task is outside it."""
        try:
            level = self.scalar(task, "thread_pid->level")
        except ToolkitError as exc:
            raise ToolkitError(f"cannot translate pids between pid namespaces on this kernel "
                               f"({exc.cause})", "run gdb in the init pid namespace (on the host), "
                               "where pids are the kernel's") from None
        if not 0 <= level <= MAX_PID_NS_LEVEL:
            raise ToolkitError(f"task 0x{task:x}: pid namespace level {level} is not 0..{MAX_PID_NS_LEVEL} "
                               "(not a task_struct, or a read changed under us)", "retry")
        for i in range(level + 1):
            if self.scalar(task, f"thread_pid->numbers[{i}].ns->ns.inum") == ns_ino:
                return self.scalar(task, f"thread_pid->numbers[{i}].nr")
        return None

    def find_pid(self, init_task: int, pid: int, ns_ino: int | None = None) -> tuple[int, int]:
        """The task whose pid is *pid*: the kernel's global pid, or with *ns_ino* the pid in
        that pid namespace (never the global one: in a container it is another process's)."""
        def key(task):
            return self.scalar(task, "pid") if ns_ino is None else self.ns_pid(task, ns_ino)

        count = 0
        leaders = []
        for task in self.walk(init_task):
            count += 1
            if key(task) == pid:
                return task, count
            leaders.append(task)
        for leader in leaders:         # a thread id: look inside each thread group
            for task in self.threads(leader):
                count += 1
                if key(task) == pid:
                    return task, count
        raise ToolkitError(f"no task with pid {pid} in the kernel's task lists ({count} tasks walked)",
                           "check the pid (it may have exited)")

    def field(self, task: int, expr: str) -> TaskField:
        try:
            mp = self.path(expr)
        except ToolkitError as exc:
            return TaskField(expr, "?", None, "-", read_error=str(exc))
        try:
            addr = mp.address(task, self.u64)
            if mp.kind == "array" and mp.size and "char" in mp.type_name:
                raw = self.read(addr, mp.size)
                s = escape_name(raw.split(b"\0", 1)[0])     # lossless: \xNN (common.names)
                return TaskField(expr, mp.type_name, s, repr(s), addr, kind=mp.kind)
            if mp.kind in ("struct", "union", "array") or not mp.size or mp.size > 8:
                return TaskField(expr, mp.type_name, None, f"({mp.type_name} at 0x{addr:x})", addr,
                                 kind=mp.kind)
            v = mp.extract(self.read(addr, mp.size))
        except ToolkitError as exc:
            return TaskField(expr, mp.type_name, None, "-", read_error=str(exc), kind=mp.kind)
        if mp.kind == "ptr":
            sym = self.symbolize(v) if (self.symbolize and v) else None
            loc = None
            if sym:
                from gdb_toolkit.common.location import kernel_location_of

                loc = kernel_location_of(v, sym)
            return TaskField(expr, mp.type_name, f"0x{v:x}", f"0x{v:x}" + (f" <{sym}>" if sym else ""),
                             addr, kind=mp.kind, target_location=loc if loc and loc.symbol else None)
        word = f"0x{v & ((1 << (8 * mp.size)) - 1):x}"
        return TaskField(expr, mp.type_name, word, str(v), addr, kind=mp.kind,
                         integer=v if abs(v) < EXACT else None)


def looks_like_address(value: int) -> bool:
    return value >= KERNEL_MIN
