"""The gdb side of a valgrind connection: sessions, monitor capture, error stops, clean-up.

State lives in ``session_state.Session`` objects keyed by the valgrind pid of
the connection gdb actually has (learnt from the connection, never remembered
from an earlier one), checked against the process's start time.

Monitor commands are matched to their replies: before a command, a probe
``monitor vgtk-sync-N`` must come back as valgrind's echo of that very word
("command 'vgtk-sync-N' not recognised").  A reply that is anything else is the
late reply of an earlier command (gdb abandons a reply when Ctrl-C interrupts
``monitor``; the rest then arrives as the answer to the next command, for ever).
While a toolkit command reads a reply, SIGINT is held back, so Ctrl-C takes
effect once the reply is complete and the connection stays in step.
"""
import contextlib
import itertools
import os
import re

import _signal      # signal's C half, loaded with Python: the signal module (enums: ~0.7 ms) is not
import gdb

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.valgrind.session_state import Session

_PID_RE = re.compile(r"--pid[= ](\d+)")
SESSIONS: dict[int, Session] = {}
_handlers_installed = False
_nonce = itertools.count(1)

NOT_CONNECTED_FIX = ("start the program under valgrind with 'vg-start PROGRAM [ARGS]' or connect "
                     "to a running one with 'vg-attach [PID]'")
RECONNECT_FIX = ("run 'vg-attach --reconnect' to start a new connection to the same valgrind (valgrind lets "
                 "the program run between the two connections), or 'kill'")


# -- which process is connected -------------------------------------------------
def _vgdb_connection():
    """(connection number, details) of the selected inferior's vgdb connection, or None."""
    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)
    if conn is None or getattr(conn, "type", None) not in ("remote", "extended-remote"):
        return None
    details = getattr(conn, "details", "") or ""
    num = getattr(conn, "num", None)
    ours = any(s.connection_num == num and s.connected for s in SESSIONS.values())
    return (num, details) if ours or "vgdb" in details else None


def connection_pid() -> int | None:
    """The valgrind pid of the current vgdb connection, or None.

    The connection vg-start/vg-attach made, or ``--pid=N`` of one made by hand,
    else the threads valgrind reports (their lwp ids are the real ones; the main
    thread's is the process id)."""
    found = _vgdb_connection()
    if found is None:
        return None
    num, details = found
    for s in SESSIONS.values():
        if s.connection_num == num and s.connected:
            return s.pid
    m = _PID_RE.search(details)
    if m:
        return int(m.group(1))
    try:
        lwps = [t.ptid[1] for t in gdb.selected_inferior().threads() if t.ptid[1] > 0]
    except gdb.error:
        lwps = []
    return min(lwps) if lwps else -1


def proc_start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def session(pid: int) -> Session:
    """The session of valgrind *pid*; a new one when the pid now names another process."""
    s = SESSIONS.get(pid)
    start = proc_start_time(pid) if pid > 0 else None
    if s is None or (start is not None and s.start_time is not None and s.start_time != start):
        if s is not None and s.popen is None:
            cleanup_session(s)
        s = SESSIONS[pid] = Session(pid, start)
    elif s.start_time is None:
        s.start_time = start
    return s


def require_connection(what: str) -> int:
    pid = connection_pid()
    if pid is None:
        exited = [s for s in SESSIONS.values() if s.exit_code is not None]
        gone = [p for p, s in SESSIONS.items() if s.gone]
        if exited:
            raise ToolkitError(f"{what}: the program under valgrind has exited (status "
                               f"{exited[-1].exit_code}) and valgrind {exited[-1].pid} with it",
                               NOT_CONNECTED_FIX)
        if gone:
            raise ToolkitError(f"{what}: the valgrind process {gone[-1]} is gone (it exited or was "
                               "killed) and gdb is no longer connected", NOT_CONNECTED_FIX)
        raise ToolkitError(f"{what} needs a connection to a valgrind gdbserver, but there is none",
                           NOT_CONNECTED_FIX)
    if not gdb.selected_inferior().pid:
        raise ToolkitError(f"{what}: the program under valgrind has exited", NOT_CONNECTED_FIX)
    thread = gdb.selected_thread()
    if thread is not None and thread.is_running():
        raise ToolkitError(f"{what} needs the program stopped", "interrupt it first (Ctrl-C or 'interrupt')")
    s = session(pid)
    s.connected = True
    return pid


def current_session(what: str) -> Session:
    return session(require_connection(what))



def connect_again(s: Session, vgdb_prefix: str | None, seconds: float = 15.0) -> None:
    """Connect gdb to session *s*'s valgrind again (vg-attach --reconnect, the end of
    vg-watch), retrying for *seconds*: valgrind finishes sending an abandoned reply, or
    its standalone vgdb's, before it listens again.  Raises the last ToolkitError."""
    import time

    from gdb_toolkit.common.private_dirs import make_private_dir

    if s.private_dir is None:
        s.private_dir = make_private_dir("gdb_toolkit-vg-")
    deadline = time.monotonic() + seconds
    while True:
        try:
            connect(s.pid, s.program, os.path.join(s.private_dir, "vgdb-stderr.log"),
                    vgdb_prefix=vgdb_prefix)
            return
        except ToolkitError:
            if time.monotonic() > deadline or not pid_alive(s.pid):
                raise
            time.sleep(0.25)

def history_session(what: str) -> Session:
    """The session whose leak history to show: the connected one; with no connection, the
    last one that kept snapshots (a server that exited or was killed keeps its history:
    the growth up to its end is what its user wants to see)."""
    if connection_pid() is not None:
        return current_session(what)
    ended = [s for s in SESSIONS.values() if s.snapshots]
    if not ended:
        require_connection(what)        # raises: says why there is no session
    return max(ended, key=lambda s: s.snapshots[-1].time)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def mark_gone(pid: int) -> None:
    s = session(pid) if pid in SESSIONS else None
    if s is None:
        return
    s.gone = True
    if s.popen is not None and s.popen.poll() is not None:
        from gdb_toolkit.valgrind.vgdb_processes import remove_stale_fifos

        remove_stale_fifos(pid, prefix=s.vgdb_prefix)


def code_map(pid: int):
    """The object file of every code address of valgrind *pid* (its /proc maps)."""
    from gdb_toolkit.valgrind.stacks import CodeMap

    main = None
    s = SESSIONS.get(pid)
    if s is not None and s.program:
        main = os.path.realpath(s.program)
    try:
        with open(f"/proc/{pid}/maps", "rb") as fh:
            text = fh.read(16 << 20).decode("utf-8", "surrogateescape")
    except OSError:
        return None
    cm = CodeMap.from_maps(text, main)
    cm.source_paths = source_paths
    return cm


def source_paths(pc: int) -> dict[str, str]:
    """{base name: full path} of the source files of the code at *pc*: the line's file and
    the file of every function there, inlined ones included (valgrind names a frame's file
    by base name; an inlined std::vector::push_back and main share one address).  A base
    name with two full paths is left out (ambiguous)."""
    paths: dict[str, str | None] = {}

    def add(symtab):
        if symtab is None:
            return
        full = symtab.fullname()
        base = os.path.basename(full)
        paths[base] = full if paths.get(base, full) == full else None

    try:
        add(gdb.find_pc_line(pc).symtab)
        block = gdb.block_for_pc(pc)
        while block is not None:
            if block.function is not None:
                add(block.function.symtab)
            block = block.superblock
    except (gdb.error, RuntimeError):
        pass
    return {b: f for b, f in paths.items() if f}


# -- monitor commands, matched to their replies ----------------------------------
@contextlib.contextmanager
def deferred_sigint():
    """Hold SIGINT back while a reply is read (gdb would abandon it half-read)."""
    try:
        old = _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT})
    except (OSError, ValueError, AttributeError):
        old = None
    try:
        yield
    finally:
        if old is not None:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, old)


def _raw_monitor(command: str) -> str:
    from gdb_toolkit.gdbsupport.safe_gdb import execute_to_string

    with deferred_sigint():
        return execute_to_string(f"monitor {command}")


def check_in_step(pid: int, what: str) -> None:
    """Ask valgrind to echo a fresh word; anything else is a late reply of an earlier command."""
    word = f"vgtk-sync-{os.getpid()}-{next(_nonce)}"
    reply = _raw_monitor(word)
    if f"'{word}'" in reply or not reply.strip():
        return      # in step (or valgrind sends its messages to its log: cannot tell)
    first = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    raise ToolkitError(
        f"{what}: the connection to valgrind {pid} is out of step: gdb read the late reply of an "
        f"earlier monitor command (one interrupted with Ctrl-C?) instead of the answer "
        f"({len(reply):,} characters starting '{first[:80]}'); every later reply, gdb's own "
        "included, would belong to the command before it", RECONNECT_FIX)


def monitor(command: str, what: str, allow_empty: bool = False, pid: int | None = None) -> str:
    """Run ``monitor COMMAND`` and return valgrind's output (gdb 13 captures it in to_string).

    Output that is empty (valgrind -q, or 'monitor v.set log_output') is an error
    explaining why, unless *allow_empty*.
    """
    pid = require_connection(what) if pid is None else pid
    try:
        check_in_step(pid, what)
        text = _raw_monitor(command)
        if not allow_empty and not text.strip():
            from gdb_toolkit.valgrind.leak_view import explain_empty_output

            raise ToolkitError(f"{what}: {explain_empty_output(text, command)}",
                               "run 'monitor v.set gdb_output' to send valgrind's output back to gdb")
        return text
    except gdb.error as exc:
        if not pid_alive(pid) or connection_pid() is None:
            mark_gone(pid)
            if connection_pid() is not None:
                with contextlib.suppress(gdb.error):
                    gdb.execute("disconnect", to_string=True)
            raise ToolkitError(f"{what}: the valgrind process {pid} is gone (it exited or was killed; "
                               f"gdb said: {exc})", NOT_CONNECTED_FIX) from None
        raise ToolkitError(f"{what}: 'monitor {command}' failed: {exc}",
                           "check that the target is a valgrind gdbserver (vg-attach)") from None


def in_syscall() -> bool:
    """True when the stopped thread sits right after a syscall instruction (x86-64/arm64)."""
    try:
        frame = gdb.newest_frame()
        pc = frame.pc()
        arch = frame.architecture().name()
        inf = gdb.selected_inferior()
        if "x86-64" in arch or "i386" in arch:
            return bytes(inf.read_memory(pc - 2, 2)) == b"\x0f\x05"
        if "aarch64" in arch:
            return bytes(inf.read_memory(pc - 4, 4)) == b"\x01\x00\x00\xd4"
    except Exception:
        return False
    return False


SYSCALL_WARNING = ("the program is stopped inside a system call: do not run 'monitor make_memory' "
                   "now (valgrind 3.19 can abort when memory is re-marked while a syscall is pending)")


# -- error stops -------------------------------------------------------------------
def _on_stop(event):
    try:
        pid = connection_pid()
        if pid is None or isinstance(event, gdb.BreakpointEvent):
            return
        from gdb_toolkit.valgrind.error_reports import parse_errors, parse_n_errs_found

        counts = parse_n_errs_found(monitor("v.info n_errs_found", "vg", allow_empty=True, pid=pid))
        if counts is None:
            return
        s = session(pid)
        before = s.errors_seen
        s.errors_seen = counts.found
        if counts.found <= before:
            # Ctrl-C on a server that looks hung (over vgdb a plain StopEvent): a worker may
            # wait at an error for a debugger.  Said once per worker and state.
            from gdb_toolkit.common.text import wrap
            from gdb_toolkit.gdbsupport.command import RenderContext
            from gdb_toolkit.valgrind.waiting import describe

            width = RenderContext.from_gdb().width
            for w in waiting_children(s):
                if (w.pid, w.stopped_at) not in s.waiting_said:
                    s.waiting_said.add((w.pid, w.stopped_at))
                    gdb.write(wrap("vg: " + describe(w), width, "", "    "))
            return
        errs = parse_errors(monitor("v.info last_error", "vg", allow_empty=True, pid=pid),
                            code_map(pid)).errors
        text = errs[0].one_line() if errs else "see 'monitor v.info last_error'"
        s.last_error_stop = text
        from gdb_toolkit.common.text import wrap
        from gdb_toolkit.gdbsupport.command import RenderContext

        width = RenderContext.from_gdb().width
        gdb.write(wrap(f"vg: stopped on memcheck error #{counts.found} (the SIGTRAP above is valgrind's "
                       f"error stop, not a signal): {text}", width, "", "    ")
                  + wrap("vg: 'vg-errors' lists the errors; 'continue' goes on", width, "", "    "))
    except (Exception, KeyboardInterrupt):
        return


def _on_exit(event):
    try:
        for pid, s in SESSIONS.items():
            if s.popen is not None:
                s.popen.poll()
            if s.connected:
                s.connected = False
                s.connection_num = None
                if hasattr(event, "exit_code"):     # a normal exit, not a lost connection
                    s.exit_code = event.exit_code
                if not pid_alive(pid):
                    s.gone = True
    except Exception:
        return


def session_processes(s: Session) -> list[int]:
    """The valgrind vg-start spawned and every process it started (--trace-children=yes
    children wait for a debugger for ever): its session's members and their descendants."""
    if s.popen is None:
        return []
    root = s.popen.pid
    members, parent = set(), {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                f = fh.read().rsplit(b")", 1)[1].split()
            parent[int(name)] = int(f[1])
            if int(f[3]) == root:
                members.add(int(name))
        except (OSError, IndexError, ValueError):
            continue
    grew = True
    found = members | {root}
    while grew:
        grew = False
        for p, pp in parent.items():
            if pp in found and p not in found:
                found.add(p)
                grew = True
    return sorted(p for p in found if p in parent)


def how_it_ended(s: Session) -> str:
    """Why the session's valgrind is no longer there, as far as gdb can know: the exit
    status or the signal of a valgrind vg-start started, else that it ended."""
    rc = s.popen.poll() if s.popen is not None else None
    if rc is None:
        return f"valgrind {s.pid} ended (the program exited, or valgrind was killed)"
    if rc < 0:
        import signal

        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"valgrind {s.pid} was killed by {name}"
    return f"the program exited (status {rc})"


def waiting_children(s: Session) -> list:
    """The session's descendant valgrinds waiting for a debugger (valgrind/waiting.py)."""
    from gdb_toolkit.valgrind.waiting import waiting_processes

    try:
        return waiting_processes(s.pid, s.log_pattern)
    except Exception:       # /proc races (a child exits while read): no answer, no error
        return []


def cleanup_session(s: Session, kill: bool = True) -> None:
    """Kill what vg-start started (children included), remove their FIFOs and our files."""
    from gdb_toolkit.valgrind.vgdb_processes import remove_stale_fifos

    pids = session_processes(s) if kill else []
    if kill and s.popen is not None:
        with contextlib.suppress(OSError):
            os.killpg(s.popen.pid, _signal.SIGKILL)
        for p in pids:
            with contextlib.suppress(OSError):
                os.kill(p, _signal.SIGKILL)
        with contextlib.suppress(Exception):
            s.popen.wait(timeout=5)
        for p in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(p, os.WNOHANG)
        # SIGKILL takes effect asynchronously: a valgrind still running is not "stale" yet
        import time

        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.01)
    for p in {s.pid, *pids}:
        remove_stale_fifos(p, prefix=s.vgdb_prefix)
    if s.private_dir:
        from gdb_toolkit.common.private_dirs import remove_tree

        remove_tree(s.private_dir)
        s.private_dir = None


def _on_gdb_exiting(event):
    """gdb quits: kill what vg-start spawned (children too); vg-attach'ed ones are left."""
    for pid, s in list(SESSIONS.items()):
        try:
            if s.popen is not None and s.popen.poll() is None and connection_pid() == pid:
                with contextlib.suppress(Exception):
                    gdb.execute("kill", to_string=True)
            cleanup_session(s, kill=s.popen is not None)
        except Exception:
            continue


def install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    gdb.events.stop.connect(_on_stop)
    gdb.events.exited.connect(_on_exit)
    if hasattr(gdb.events, "gdb_exiting"):
        gdb.events.gdb_exiting.connect(_on_gdb_exiting)
    _handlers_installed = True


def current_error_count(pid: int) -> int:
    from gdb_toolkit.valgrind.error_counts import parse_n_errs_found     # not error_reports' parsers

    try:
        counts = parse_n_errs_found(_raw_monitor("v.info n_errs_found"))
    except gdb.error:
        return 0
    return counts.found if counts else 0


def vgdb_binary() -> str:
    from gdb_toolkit.common.helper_process import which     # shutil.which without shutil

    path = os.environ.get("GDB_TOOLKIT_VGDB") or which("vgdb")
    if not path:
        raise ToolkitError("vgdb not found", "install valgrind (apt-get install valgrind)")
    return path


class quiet_stops:
    """Suppress gdb's own stop printing (the report says where the program stopped).

    ``suppress-cli-notifications`` silences the stop location.  In an interactive session
    gdb's CLI still prints "Program received signal SIGTRAP" when memcheck stops the program
    on an error (valgrind reports error stops as SIGTRAP); that line goes to the CLI's own
    stream, which neither to_string capture nor ``set logging redirect`` reaches (tried on
    gdb 13), so the reports say what it was instead (see ERROR_STOP_SIGTRAP)."""

    def __enter__(self):
        try:
            self.old = gdb.parameter("suppress-cli-notifications")
            gdb.execute("set suppress-cli-notifications on", to_string=True)
        except gdb.error:
            self.old = None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            gdb.execute(f"set suppress-cli-notifications {'on' if self.old else 'off'}", to_string=True)
        return False


ERROR_STOP_SIGTRAP = ("gdb shows this stop as 'Program received signal SIGTRAP': that is how valgrind "
                      "reports a memcheck error stop, not a signal the program got")


def load_program(program: str) -> None:
    """``file PROGRAM`` without any byte of PROGRAM reaching gdb's command parser."""
    from gdb_toolkit.gdbsupport.safe_gdb import load_executable

    load_executable(program, "program")


def connect(pid: int, program: str | None, errlog: str, probe: bool = False,
            vgdb_prefix: str | None = None) -> str:
    """``file PROGRAM`` then ``target remote | vgdb --pid=PID``; returns gdb's stop text.

    *probe*: first check with a standalone vgdb that the process answers (vg-attach).
    """
    from gdb_toolkit.valgrind.launch import explain_vgdb_failure, probe_vgdb

    if probe:
        from gdb_toolkit.valgrind.waiting import waits_for_debugger

        # a process waiting for a debugger (at an error, at its start) needs no ptrace, and a
        # standalone vgdb would resume it when it disconnects: the error stop would be lost
        if not waits_for_debugger(pid):
            probe_vgdb(vgdb_binary(), pid, vgdb_prefix)
    from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename, target_remote_pipe

    if program and progspace_filename() != program:
        load_program(program)
    argv = [vgdb_binary(), *([f"--vgdb-prefix={vgdb_prefix}"] if vgdb_prefix else []), f"--pid={int(pid)}"]
    fd = os.open(errlog, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.close(fd)
    try:
        with quiet_stops():
            out = target_remote_pipe(argv, stderr_path=errlog)
    except gdb.error:
        try:
            with open(errlog, errors="replace") as fh:
                err = fh.read(65536)
        except OSError:
            err = ""
        if connection_pid() is not None:
            with contextlib.suppress(gdb.error):
                gdb.execute("disconnect", to_string=True)
        raise explain_vgdb_failure(err, pid) from None
    install_handlers()
    s = session(pid)
    for other in SESSIONS.values():
        if other is not s and other.connection_num == getattr(gdb.selected_inferior().connection, "num", None):
            other.connection_num = None
    s.connection_num = getattr(gdb.selected_inferior().connection, "num", None)
    s.connected, s.gone, s.exit_code = True, False, None
    s.program, s.vgdb_log, s.vgdb_prefix = program, errlog, vgdb_prefix
    s.errors_seen = current_error_count(pid)
    return out


def where_stopped() -> str:
    """``main (memleakloop.c:35) pc=0x1092e4`` for the selected frame."""
    from gdb_toolkit.gdbsupport import safe_gdb

    try:
        frame = gdb.selected_frame()
        sal = frame.find_sal()
        if sal.symtab is not None:                 # file names may be any bytes
            loc = f"{os.path.basename(safe_gdb.symtab_filename(sal.symtab) or '?')}:{sal.line}"
        else:
            loc = safe_gdb.solib_name(frame.pc()) or "?"
        return f"{frame.name() or '??'} ({loc}) pc=0x{frame.pc():x}"
    except gdb.error:
        return "?"
