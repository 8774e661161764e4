"""ktask's impure edge: open /proc/kcore, BTF and kallsyms, then the pure TaskReader."""

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.ktrace.task_walk import TaskReader, TaskReport, looks_like_address

CAPTURE_FIX = ("or use capture mode, which needs no kcore: ktrace FUNC --capture FIELD "
               "(the BPF program reads the task's fields at event time)")


def open_kernel(kcore_path: str = "/proc/kcore"):
    from gdb_toolkit.kernel.btf import Btf
    from gdb_toolkit.kernel.kallsyms import Kallsyms
    from gdb_toolkit.kernel.kcore import Kcore

    try:
        kcore = Kcore.open(kcore_path)
    except ToolkitError as exc:
        raise ToolkitError(exc.cause, f"{exc.fix}; {CAPTURE_FIX}" if exc.fix else CAPTURE_FIX) from None
    return kcore, Btf.load(), Kallsyms.load()


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
    for path in (f"/proc/{tgid}/task/{pid}/comm", f"/proc/{pid}/comm"):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            continue
    return None


def inspect_task(value: int, fields: list[str], kcore_path: str = "/proc/kcore") -> TaskReport:
    kcore, btf, ksyms = open_kernel(kcore_path)

    def symbolize(addr):
        try:
            return ksyms.format(addr)
        except Exception:
            return None

    reader = TaskReader(kcore.read, btf, symbolize)
    if looks_like_address(value):
        task, found_by = value, "address"
    else:
        init = ksyms.address("init_task")
        if init is None:
            raise missing_init_task(ksyms)
        task, n = reader.find_pid(init, value)
        found_by = f"task list walk, {n} tasks"
    try:
        pid, tgid, comm = reader.scalar(task, "pid"), reader.scalar(task, "tgid"), reader.comm(task)
    except ToolkitError as exc:
        raise ToolkitError(f"0x{task:x} is not a readable task_struct ({exc.cause})",
                           "give a task address from $ktask or a pid") from None
    proc = _proc_comm(pid, tgid) if pid > 0 else None
    verified = pid > 0 and proc is not None and comm == proc[:15]
    if not looks_like_address(value) and pid != value:
        verified = False
    report = TaskReport(task, pid, tgid, comm, proc, verified, found_by, source=kcore_path)
    report.fields = [reader.field(task, f) for f in fields]
    kcore.close()
    return report
