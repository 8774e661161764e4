"""Which pid namespace the caller's pids belong to (no gdb).

A pid gdb (or any caller) holds -- its inferior's, one typed with --pid -- is a number in the
caller's own pid namespace.  The kernel's global numbers (bpf_get_current_pid_tgid,
task_struct->pid and ->tgid) are the init namespace's.  In a container they differ, and the
global pid equal to the caller's number is some other process.  So when the caller is not in
the init namespace, ktrace filters and reports pids through bpf_get_ns_current_pid_tgid with
the namespace's (dev, inode), and ktask translates through task->thread_pid->numbers[].
"""
import os

from gdb_toolkit.common.record import record

#: the init pid namespace's inode number (include/linux/proc_ns.h PROC_PID_INIT_INO, fixed
#: since Linux 3.8)
PROC_PID_INIT_INO = 0xEFFFFFFC


@record(frozen=True, slots=True)
class PidNamespace:
    """The caller's pid namespace: ``dev`` in the kernel's dev_t encoding (what
    bpf_get_ns_current_pid_tgid compares), ``ino`` its nsfs inode (pid_namespace.ns.inum)."""
    dev: int
    ino: int

    def to_wire(self) -> dict:
        return {"dev": self.dev, "ino": self.ino}


def kernel_dev(st_dev: int) -> int:
    """stat's st_dev (glibc's encoding) as the kernel's dev_t: major << 20 | minor."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


def _stat_ns(path: str):
    try:
        return os.stat(path)
    except OSError:
        return None


def caller_namespace(ns_path: str = "/proc/self/ns/pid") -> PidNamespace | None:
    """The caller's pid namespace, or None in the init namespace (pids are global there) or
    when the namespace cannot be read (no /proc: nothing to translate with)."""
    st = _stat_ns(ns_path)
    if st is None or st.st_ino == PROC_PID_INIT_INO:
        return None
    return PidNamespace(kernel_dev(st.st_dev), st.st_ino)


def proc_is_callers(proc: str = "/proc") -> bool:
    """Whether /proc numbers processes as the caller does (a container's own /proc), not as
    another namespace does (``unshare --pid --fork`` without --mount-proc keeps the parent's)."""
    try:
        return int(os.readlink(os.path.join(proc, "self"))) == os.getpid()
    except (OSError, ValueError):
        return False


def process_namespace(pid: int, proc: str = "/proc") -> PidNamespace | None:
    """The pid namespace process *pid* (caller's numbering) lives in, when /proc can tell."""
    if not proc_is_callers(proc):
        return None
    st = _stat_ns(os.path.join(proc, str(int(pid)), "ns", "pid"))
    return PidNamespace(kernel_dev(st.st_dev), st.st_ino) if st is not None else None


def check_target(pid: int, caller: PidNamespace | None):
    """Raise when *pid*'s process cannot be matched from the caller's namespace: it lives in
    a pid namespace nested below it (bpf_get_ns_current_pid_tgid answers only for tasks whose
    own namespace is the one given)."""
    if caller is None:
        return
    target = process_namespace(pid)
    if target is None or target == caller:
        return
    from gdb_toolkit.common.errors import ToolkitError

    raise ToolkitError(f"process {pid} is in a pid namespace nested below gdb's "
                       f"(pid:[{target.ino}] vs gdb's pid:[{caller.ino}]): ktrace matches pids "
                       "in gdb's own namespace only, and would trace nothing",
                       "run gdb in that process's own pid namespace (nsenter --target HOSTPID --pid "
                       "--mount gdb ...), or on the host (the init pid namespace), where every pid "
                       "is the kernel's")
