"""ktask's impure edge: a kernel's memory, symbols and BTF (kernel.session.KernelSession: the
running kernel through /proc/kcore, a vmcore, or gdb's halted target), then the pure
TaskReader."""

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.ktrace.task_walk import TaskReader, TaskReport, looks_like_address

CAPTURE_FIX = ("or use capture mode, which needs no kcore: ktrace FUNC --capture FIELD "
               "(the BPF program reads the task's fields at event time)")


def _memory(session):
    """The session's memory, opened now: a live kernel without /proc/kcore offers capture mode."""
    try:
        return session.memory
    except ToolkitError as exc:
        if not session.is_live:
            raise
        raise ToolkitError(exc.cause, f"{exc.fix}; {CAPTURE_FIX}" if exc.fix else CAPTURE_FIX) from None


def missing_init_task(ksyms) -> ToolkitError:
    """Why init_task cannot be found, said right: hidden addresses (kptr_restrict, not root) or
    a kernel whose kallsyms lists no data symbols (no CONFIG_KALLSYMS_ALL: Debian's arm64)."""
    fix_addr = ("or give ktask the task's address instead: ktrace FUNC --pid PID sets $ktask, "
                "then ktask $ktask")
    if getattr(ksyms, "restricted", False):
        return ToolkitError("init_task's address is hidden in /proc/kallsyms (kptr_restrict)",
                            f"run gdb as root, or sysctl kernel.kptr_restrict=0; {fix_addr}")
    if not any(s.type in "dDbB" for s in ksyms.symbols):
        return ToolkitError("init_task is not in /proc/kallsyms: this kernel lists only text symbols "
                            "(built without CONFIG_KALLSYMS_ALL)", f"walking the task list needs it; {fix_addr}")
    return ToolkitError("init_task is not in /proc/kallsyms", f"check the kernel's symbols; {fix_addr}")


def _proc_comm(pid: int, tgid: int) -> str | None:
    """The thread's name as /proc shows it (threads: /proc/TGID/task/TID/comm)."""
    from gdb_toolkit.common.names import escape_name

    for path in (f"/proc/{tgid}/task/{pid}/comm", f"/proc/{pid}/comm"):
        try:
            with open(path, "rb") as f:         # any bytes: escaped as the task's comm is
                return escape_name(f.read().rstrip(b"\n"))
        except OSError:
            continue
    return None


def inspect_task(value: int, fields: list[str], session, ns_ino: int | None = None) -> TaskReport:
    """The task at address *value*, or with pid *value* (walking init_task's lists), read from
    *session*'s kernel; *fields* are task_struct member paths.  *ns_ino*: the inode of gdb's
    pid namespace when it is a child one (a container; running kernel only): *value* as a pid
    and /proc count in it, not in the kernel's global numbering."""
    memory = _memory(session)
    reader = TaskReader(memory.read, session.btf, session.symbolize)
    if looks_like_address(value):
        task, found_by = value, "address"
    else:
        init = session.address_of("init_task")
        if init is None:
            if session.is_live:
                raise missing_init_task(session.symbols)
            raise ToolkitError(f"init_task is not among the symbols of {memory.description}",
                               "give --kallsyms FILE (saved on that boot) or --system-map FILE; or the "
                               "task's address")
        task, n = reader.find_pid(init, value, ns_ino)
        found_by = f"task list walk, {n} tasks" + (", pid in gdb's pid namespace" if ns_ino else "")
    try:
        pid, tgid, comm = reader.scalar(task, "pid"), reader.scalar(task, "tgid"), reader.comm(task)
    except ToolkitError as exc:
        raise ToolkitError(f"0x{task:x} is not a readable task_struct ({exc.cause})",
                           "give a task address from $ktask or a pid") from None
    notes = []
    ns_pid = ns_tgid = None
    seen_pid, seen_tgid = pid, tgid            # the numbers gdb's /proc uses
    if ns_ino is not None and session.is_live:
        ns_pid = reader.ns_pid(task, ns_ino)
        ns_tgid = reader.ns_pid(reader.scalar(task, "group_leader"), ns_ino) if ns_pid else None
        seen_pid, seen_tgid = ns_pid or 0, ns_tgid or 0
        if ns_pid is None:
            notes.append(f"the task is outside gdb's pid namespace (pid:[{ns_ino}]): /proc here "
                         "cannot show it; pid/tgid are the kernel's global numbers")
    if session.is_live:
        proc = _proc_comm(seen_pid, seen_tgid) if seen_pid > 0 else None
        verified = seen_pid > 0 and proc is not None and comm == proc[:15]
    else:
        proc, verified = None, False
        notes.append(f"{session.source_description}: no /proc of that kernel to check the task "
                     "against; pid and comm are as its memory holds them")
    if not looks_like_address(value) and seen_pid != value:
        verified = False
    report = TaskReport(task, pid, tgid, comm, proc, verified, found_by,
                        memory_source=session.source_description, notes=notes,
                        namespace_pid=ns_pid, namespace_tgid=ns_tgid)
    report.fields = [reader.field(task, f) for f in fields]
    return report
