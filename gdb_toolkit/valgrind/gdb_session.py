"""The gdb side of a valgrind connection: state, monitor capture, error stops.

State lives here per valgrind pid (the real pid, not gdb's placeholder
inferior pid 42000): program, log files, the Popen of a vg-start'ed valgrind,
the previous leak totals (for deltas) and the error count (for error stops).
"""
import os
import re

import gdb

from gdb_toolkit.common.errors import ToolkitError

_PID_RE = re.compile(r"--pid[= ](\d+)")
SESSIONS: dict[int, dict] = {}
_handlers_installed = False

NOT_CONNECTED_FIX = ("start the program under valgrind with 'vg-start PROGRAM [ARGS]' or connect "
                     "to a running one with 'vg-attach [PID]'")


def connection_pid() -> int | None:
    """The valgrind pid of the current vgdb connection, or None."""
    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)
    if conn is None or getattr(conn, "type", None) not in ("remote", "extended-remote"):
        return None
    details = getattr(conn, "details", "") or ""
    if "vgdb" not in details:
        return None
    m = _PID_RE.search(details)
    if m:
        return int(m.group(1))
    for pid in SESSIONS:
        return pid
    return -1   # connected through vgdb without --pid: pid learnt from monitor output


def session(pid: int) -> dict:
    return SESSIONS.setdefault(pid, {"pid": pid})


def require_connection(what: str) -> int:
    pid = connection_pid()
    if pid is None:
        gone = [p for p, s in SESSIONS.items() if s.get("gone")]
        exited = [s for s in SESSIONS.values() if "exit_code" in s]
        if exited:
            raise ToolkitError(f"{what}: the program under valgrind has exited (status "
                               f"{exited[-1]['exit_code']}) and valgrind {exited[-1]['pid']} with it",
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
    return pid


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def mark_gone(pid: int) -> None:
    s = session(pid)
    s["gone"] = True
    popen = s.get("popen")
    if popen is not None and popen.poll() is not None:
        from gdb_toolkit.valgrind.vgdb_processes import remove_stale_fifos

        remove_stale_fifos(pid)     # ours, and SIGKILLed valgrind leaves its FIFOs behind


def monitor(command: str, what: str, allow_empty: bool = False) -> str:
    """Run ``monitor COMMAND`` and return valgrind's output (gdb 13 captures it in to_string).

    Output that is empty (valgrind -q, or 'monitor v.set log_output') is an error
    explaining why, unless *allow_empty*.
    """
    pid = require_connection(what)
    try:
        text = gdb.execute(f"monitor {command}", to_string=True)
        if not allow_empty and not text.strip():
            from gdb_toolkit.valgrind.leak_view import explain_empty_output

            raise ToolkitError(f"{what}: {explain_empty_output(text, command)}",
                               "run 'monitor v.set gdb_output' to send valgrind's output back to gdb")
        return text
    except gdb.error as exc:
        if not pid_alive(pid) or connection_pid() is None:
            mark_gone(pid)
            if connection_pid() is not None:
                try:
                    gdb.execute("disconnect", to_string=True)
                except gdb.error:
                    pass
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


# -- error stops ---------------------------------------------------------------
def _on_stop(event):
    try:
        pid = connection_pid()
        if pid is None or isinstance(event, gdb.BreakpointEvent):
            return
        from gdb_toolkit.valgrind.error_reports import parse_errors, parse_n_errs_found

        counts = parse_n_errs_found(gdb.execute("monitor v.info n_errs_found", to_string=True))
        if counts is None:
            return
        s = session(pid)
        before = s.get("errors_seen", 0)
        s["errors_seen"] = counts.found
        if counts.found <= before:
            return
        errs = parse_errors(gdb.execute("monitor v.info last_error", to_string=True)).errors
        text = errs[0].one_line() if errs else "see 'monitor v.info last_error'"
        s["last_error_stop"] = text
        gdb.write(f"vg: stopped on memcheck error #{counts.found} (not a signal): {text}\n"
                  "vg: 'vg-errors' lists the errors; 'continue' goes on\n")
    except Exception:
        return


def _on_exit(event):
    try:
        for pid, s in SESSIONS.items():
            if s.get("popen") is not None:
                s["popen"].poll()
            if s.get("connected"):
                s["connected"] = False
                if hasattr(event, "exit_code"):     # a normal exit, not a lost connection
                    s["exit_code"] = event.exit_code
                if not pid_alive(pid):
                    s["gone"] = True
    except Exception:
        return


def _on_gdb_exiting(event):
    """gdb quits: kill the valgrind processes vg-start spawned (vg-attach'ed ones are left)."""
    for s in SESSIONS.values():
        if s.get("vgdb_log"):
            try:
                os.unlink(s["vgdb_log"])
            except OSError:
                pass
    for pid, s in SESSIONS.items():
        proc = s.get("popen")
        if proc is not None and proc.poll() is None:
            if connection_pid() == pid:
                try:
                    gdb.execute("kill", to_string=True)
                    proc.wait(timeout=5)
                except Exception:
                    pass
            try:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=5)
            except Exception:
                pass
            from gdb_toolkit.valgrind.vgdb_processes import remove_stale_fifos

            remove_stale_fifos(pid)


def install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    gdb.events.stop.connect(_on_stop)
    gdb.events.exited.connect(_on_exit)
    if hasattr(gdb.events, "gdb_exiting"):
        gdb.events.gdb_exiting.connect(_on_gdb_exiting)
    _handlers_installed = True


def current_error_count() -> int:
    from gdb_toolkit.valgrind.error_reports import parse_n_errs_found

    try:
        counts = parse_n_errs_found(gdb.execute("monitor v.info n_errs_found", to_string=True))
    except gdb.error:
        return 0
    return counts.found if counts else 0


def vgdb_binary() -> str:
    import shutil

    path = os.environ.get("GDB_TOOLKIT_VGDB") or shutil.which("vgdb")
    if not path:
        raise ToolkitError("vgdb not found", "install valgrind (apt-get install valgrind)")
    return path


class quiet_stops:
    """Suppress gdb's own stop printing (the report says where the program stopped)."""

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


def connect(pid: int, program: str | None, errlog: str, probe: bool = False) -> str:
    """``file PROGRAM`` then ``target remote | vgdb --pid=PID``; returns gdb's stop text.

    *probe*: first check with a standalone vgdb that the process answers (vg-attach).
    """
    from gdb_toolkit.valgrind.launch import explain_vgdb_failure, probe_vgdb

    if probe:
        probe_vgdb(vgdb_binary(), pid)

    if program and gdb.current_progspace().filename != program:
        try:
            gdb.execute(f"file {program}", to_string=True)
        except gdb.error as exc:
            raise ToolkitError(f"cannot load symbols of {program}: {exc}",
                               "check the program file") from None
    vgdb = vgdb_binary()
    try:
        open(errlog, "w").close()
    except OSError:
        pass
    try:
        with quiet_stops():
            out = gdb.execute(f"target remote | {vgdb} --pid={pid} 2>>{errlog}", to_string=True)
    except gdb.error:
        try:
            with open(errlog, errors="replace") as fh:
                err = fh.read()
        except OSError:
            err = ""
        try:
            os.unlink(errlog)       # only a successful connection keeps it (removed when gdb quits)
        except OSError:
            pass
        if connection_pid() is not None:
            try:
                gdb.execute("disconnect", to_string=True)
            except gdb.error:
                pass
        raise explain_vgdb_failure(err, pid) from None
    install_handlers()
    s = session(pid)
    s.update(connected=True, gone=False, program=program, vgdb_log=errlog)
    s.pop("exit_code", None)
    s["errors_seen"] = current_error_count()
    return out


def where_stopped() -> str:
    """``main (memleakloop.c:35) pc=0x1092e4`` for the selected frame."""
    try:
        frame = gdb.selected_frame()
        sal = frame.find_sal()
        if sal.symtab is not None:
            loc = f"{os.path.basename(sal.symtab.filename)}:{sal.line}"
        else:
            loc = gdb.solib_name(frame.pc()) or "?"
        return f"{frame.name() or '??'} ({loc}) pc=0x{frame.pc():x}"
    except gdb.error:
        return "?"
