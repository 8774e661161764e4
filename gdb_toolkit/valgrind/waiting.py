"""Valgrind processes of a session that wait for a debugger nobody will bring (no gdb).

A pre-forking server's worker inherits ``--vgdb-error``: at its first memcheck error
(or at its start, for a ``--trace-children=yes`` exec with ``--vgdb-error=0``) valgrind
stops it and waits for gdb -- for ever; its parent, waiting for the worker, looks hung.
gdb is connected to the parent only, so nothing tells the user.

Asking the worker with a standalone vgdb would *resume* it (valgrind continues when a
vgdb disconnects), so it is read from /proc alone: the process is blocked in ``poll``
on its own ``vgdb-pipe-from-vgdb-to-PID`` FIFO with no timeout, or in ``open`` of one of
its own FIFOs (the pollfd and the path are read from /proc/PID/mem).  Which error: the
tail of its own log file, when valgrind writes one per process (%p).
"""
import os
import re

from gdb_toolkit.common.record import json_keys, record

# syscalls valgrind's gdbserver blocks in while it waits for a debugger, by machine:
# number -> (kind, index of the pollfd / path argument)
_WAITS = {"x86_64": {7: ("poll", 0), 271: ("ppoll", 0), 2: ("open", 0), 257: ("open", 1)},
          "aarch64": {73: ("ppoll", 0), 56: ("open", 1)},
          "i686": {168: ("poll", 0), 309: ("ppoll", 0), 5: ("open", 0), 295: ("open", 1)}}
_INFINITE = (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF)


@record
class WaitingProcess:
    pid: int
    ppid: int
    program: str | None              # the process name (comm), escaped
    stopped_at: str | None           # "error", "startup", "fatal signal", ... (its log); None: unknown
    error: str | None                # that error (or fatal signal) in one line, from its own log
    log_file: str | None


# JSON keys (contract v3): the envelope's `error` is the only `error`, this one is a line of
# text; the process name is `comm` as ktask, ktrace and stack-diagnose say it (vg-start's and
# vg-attach's `program` is the client program)
json_keys(WaitingProcess, {"error": "error_line", "program": "comm"})


def descendants(root: int, proc: str = "/proc") -> dict[int, int]:
    """{pid: parent pid} of every descendant of *root* (not root itself)."""
    parent = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as fh:
                parent[int(name)] = int(fh.read(4096).rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found: dict[int, int] = {}
    frontier = {root}
    while frontier:
        nxt = {p for p, pp in parent.items() if pp in frontier and p not in found and p != root}
        for p in nxt:
            found[p] = parent[p]
        frontier = nxt
    return found


def _read_mem(base: str, address: int, size: int) -> bytes:
    with open(f"{base}/mem", "rb", buffering=0) as fh:
        fh.seek(address)
        return fh.read(size)


def waits_for_debugger(pid: int, proc: str = "/proc", machine: str | None = None) -> bool:
    """True when valgrind *pid* is blocked in its gdbserver's wait for a debugger: in
    poll() on its own from-vgdb FIFO with no timeout, or in open() of one of its own FIFOs
    (a forked child of a process gdb was connected to waits there).  The pollfd / path is
    read from /proc/PID/mem, nothing is asked of the process (a vgdb would resume it)."""
    table = _WAITS.get(machine or os.uname().machine)
    if not table:
        return False
    base = f"{proc}/{pid}"
    mine = (f"-from-vgdb-to-{pid}-", f"-to-vgdb-from-{pid}-")
    try:
        with open(f"{base}/syscall", "rb") as fh:
            fields = fh.read(512).split()
        kind, arg = table.get(int(fields[0]), (None, 0))
        if kind is None:
            return False
        args = [int(x, 16) for x in fields[1:7]]
        if kind == "open":
            path = _read_mem(base, args[arg], 4096).split(b"\0", 1)[0]
            return any(m.encode() in path for m in mine)
        timeout = args[2]
        if args[1] != 1 or (timeout != 0 if kind == "ppoll" else timeout not in _INFINITE):
            return False
        fd = int.from_bytes(_read_mem(base, args[arg], 4), "little", signed=True)
        return fd >= 0 and mine[0] in os.readlink(f"{base}/fd/{fd}")
    except (OSError, ValueError, IndexError):
        return False


_ACTION_RE = re.compile(r"\((?:action (?:on|at) )([a-z ]+)\) vgdb me")


def error_from_log(text: str) -> tuple[str | None, str | None]:
    """(where the process stopped: "error", "startup", "fatal signal", "exit", ... or None
    when the log does not say; for an error or a fatal signal, that report in one line)
    from the tail of a valgrind log.  valgrind writes "(action on error) vgdb me ..." when
    it starts waiting -- but not when the process was forked while gdb was connected to its
    parent (it then waits without a word)."""
    from gdb_toolkit.valgrind.error_reports import parse_errors

    marks = list(_ACTION_RE.finditer(text))
    if not marks:
        return None, None
    last = marks[-1]
    where = last.group(1)
    if where not in ("error", "fatal signal"):
        return where, None
    lines = text[:last.start()].splitlines()
    if lines and not lines[-1].rstrip().endswith("=="):
        lines[-1] = re.sub(r"^(==\d+==).*", r"\1", lines[-1])   # the mark's own line prefix
    # the report: the lines after the last blank ("==PID== ") line before the mark's
    while lines and not re.sub(r"^==\d+==", "", lines[-1]).strip():
        lines.pop()
    start = len(lines)
    while start > 0 and re.sub(r"^==\d+==", "", lines[start - 1]).strip():
        start -= 1
    errs = parse_errors("\n".join(lines[start:])).errors
    return where, (errs[0].one_line() if errs else None)


def read_log_tail(path: str, limit: int = 65536) -> str:
    """The last *limit* bytes of a regular file (a FIFO or device is not read)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ""
        os.lseek(fd, max(0, st.st_size - limit), os.SEEK_SET)
        return os.read(fd, limit).decode("utf-8", "surrogateescape")
    finally:
        os.close(fd)


def waiting_processes(root: int, log_pattern: str | None, proc: str = "/proc",
                      machine: str | None = None) -> list[WaitingProcess]:
    """The descendants of valgrind *root* that wait for a debugger, with their error when
    their log is one file per process (*log_pattern* holds %p)."""
    from gdb_toolkit.valgrind.vgdb_processes import display_name

    out = []
    for pid, ppid in sorted(descendants(root, proc).items()):
        if not waits_for_debugger(pid, proc, machine):
            continue
        try:
            with open(f"{proc}/{pid}/comm", "rb") as fh:
                comm = display_name(fh.read(64).strip())
        except OSError:
            comm = None
        log = log_pattern.replace("%p", str(pid)) if log_pattern and "%p" in log_pattern else None
        stopped_at, error = error_from_log(read_log_tail(log)) if log else (None, None)
        out.append(WaitingProcess(pid, ppid, comm, stopped_at, error, log))
    return out


def describe(w: WaitingProcess) -> str:
    """One sentence for the terminal."""
    if w.stopped_at in ("error", "fatal signal"):
        what = f"stopped on a {'memcheck error' if w.stopped_at == 'error' else 'fatal signal'}"
        what += f" ({w.error})" if w.error else ""
        fix = "or raise --vgdb-error so workers do not stop at errors"
    elif w.stopped_at is None:
        what = ("is stopped in valgrind's gdbserver (at its start or at an error: --vgdb-error "
                "applies to forked and exec'd children too)")
        fix = "or raise --vgdb-error"
    elif w.stopped_at == "startup":
        what = "stopped at its start (--vgdb-error=0 stops every forked or exec'd child too)"
        fix = "or start with -- --vgdb-error=1 (children then stop only at errors)"
    else:
        what, fix = f"stopped at {w.stopped_at}", "or quit gdb to kill it"
    return (f"valgrind child {w.pid} (parent {w.ppid}) {what} and waits for a debugger; a parent "
            f"waiting for it looks hung: 'vg-attach {w.pid}' in another gdb, {fix}")
