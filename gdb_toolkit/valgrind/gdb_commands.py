"""vg-* commands: memcheck through vgdb from inside gdb, with structured results."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand

#: leak kinds coloured as states (memcheck's errors red, "possibly" yellow, reachable plain)
LEAK_KINDS = {"definite": "bad", "indirect": "bad", "possible": "warn", "reachable": None,
              "suppressed": None}


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _d(v: int | None) -> str:
    return "" if v is None else f" ({v:+,})"


def _expr_int(text: str) -> int:
    from gdb_toolkit.gdbsupport.facts import eval_int

    return eval_int(text)


def _expr_addr(text: str) -> int:
    """An address expression; a function name (``main``) is its address, as in ``x main``."""
    from gdb_toolkit.gdbsupport.facts import eval_address

    try:
        value = gdb.parse_and_eval(text)
        if value.type.strip_typedefs().code == gdb.TYPE_CODE_FUNC:
            return eval_address(f"&({text})")
    except gdb.error:
        pass
    return eval_address(text)


class _AddrLenCommand(ToolkitCommand):
    """Base of the commands taking ``ADDR [LEN]`` gdb expressions (connected to valgrind)."""

    value_completer = gdb.COMPLETE_EXPRESSION
    purpose = ""
    default_len: str | None = "1"     # None: LEN is required
    max_len = 1 << 30

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, self.purpose)
        p.add_argument("addr", help="address (gdb expression)")
        if self.default_len is None:
            p.add_argument("len", help="length (gdb expression)")
        else:
            p.add_argument("len", nargs="?", default=self.default_len,
                           help=f"length (gdb expression, default {self.default_len})")
        return p

    def address_range(self, args) -> tuple[int, int]:
        """Check the connection, evaluate ADDR and LEN, validate LEN."""
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs

        gs.require_connection(self.name)
        addr, length = _expr_addr(args.addr), _expr_int(args.len)
        if not 0 < length <= self.max_len:
            raise ToolkitError(f"{self.name}: bad length {length}", f"give 1 to {self.max_len} bytes")
        if addr + length > 1 << 64:     # 16 bytes at 0xffffffffffffffff were "checked"
            raise ToolkitError(f"{self.name}: {length} bytes at 0x{addr:x} run past the end of the "
                               "64-bit address space", f"give a length up to {(1 << 64) - addr} there, "
                               "or a lower address")
        return addr, length


class VgStart(ToolkitCommand):
    summary = "Start a program under memcheck and connect"
    pause_gc = True         # a first call's ~35 modules stay alive: no collection over them meanwhile
    usage = """\
vg-start [--main] [--stdin FILE] [--stdout FILE] [--tty DEV] [--log FILE] [--timeout SEC] [--json] PROGRAM [ARGS...] [-- VALGRIND-OPTIONS]"""
    description = """\
Runs valgrind --tool=memcheck --vgdb=yes --vgdb-error=0 [VALGRIND-OPTIONS]
PROGRAM ARGS.  Options before PROGRAM are vg-start's ("--" ends them, for a
PROGRAM named "-x"); every word after PROGRAM is its argument, "-p 8080" and
"--json" too, up to "--", after which come valgrind's options (--json there is
vg-start's: valgrind has none).  It waits for its vgdb FIFO, loads PROGRAM's
symbols and connects with "target remote | vgdb --pid=N".  The program stops
at its first instruction (--main: at main).  --vgdb=full, --vgdb-error=N and
--vgdb-prefix=P after "--" are honoured.  Its stdout/stderr go to gdb's terminal
(or --stdout FILE / --tty DEV); its stdin is /dev/null (or --stdin FILE / --tty).
valgrind's own messages go to --log FILE (default: a private directory removed
when gdb quits).  Memcheck errors stop the program; vg-start then says which.
When gdb quits, the valgrind it started is killed, --trace-children ones too."""
    examples = ('vg-start --main ./memleakloop', 'vg-start ./server 8080 -- --leak-check=full --track-origins=yes')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-start"
    value_completer = gdb.COMPLETE_FILENAME

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "start PROGRAM under valgrind and connect")
        p.add_argument("--main", action="store_true", help="run to main after connecting")
        p.add_argument("--stdin", default="/dev/null", metavar="FILE", help="program's stdin (default /dev/null)")
        p.add_argument("--stdout", metavar="FILE", help="program's stdout+stderr file (default: gdb's terminal)")
        p.add_argument("--tty", metavar="TTY", help="terminal device for the program's stdin/stdout/stderr")
        p.add_argument("--log", metavar="FILE", help="valgrind's log file (default: private, removed when gdb quits)")
        p.add_argument("--timeout", type=_positive_seconds, default=30.0, help="seconds to wait for vgdb")
        p.add_argument("program", help="program to run")
        p.add_argument("args", nargs="*", default=[], help="program arguments")
        return p

    def invoke(self, argument, from_tty):
        # PROGRAM's own ARGS and "-- VALGRIND-OPTIONS" are split off before argparse sees them
        from gdb_toolkit.valgrind.launch import split_start_args

        argv = gdb.string_to_argv(argument)
        ours, program, self._prog_args, vg_opts = split_start_args(
            argv, {"--stdin", "--stdout", "--tty", "--log", "--timeout"})
        # --json/--help after "--" are ours (valgrind has neither)
        ours += [o for o in vg_opts if o in ("--json", "--help", "-h")]
        self._vg_opts = [o for o in vg_opts if o not in ("--json", "--help", "-h")]
        if program is not None:         # "--" (argparse's, slower) only for a PROGRAM named "-x"
            ours += ["--", program] if program.startswith("-") else [program]
        return super().invoke(" ".join(_quote(a) for a in ours), from_tty)

    def run(self, args):
        import os
        import time

        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.common.helper_process import which
        from gdb_toolkit.common.private_dirs import make_private_dir, remove_tree
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.launch import (StartReport, log_destination, log_pattern, open_program_stream,
                                                 option_value, resolve_program, start_valgrind,
                                                 valgrind_argv, wait_for_fifo)
        from gdb_toolkit.valgrind.vgdb_processes import fifo_dir

        valgrind = which("valgrind")
        if not valgrind:
            raise ToolkitError("valgrind is not installed", "apt-get install valgrind")
        if gdb.selected_inferior().pid:
            raise ToolkitError("gdb is already debugging a process",
                               "detach, disconnect or kill it first (or use another inferior)")
        program = resolve_program(args.program)
        args.args = list(getattr(self, "_prog_args", args.args))
        vg_opts = list(getattr(self, "_vg_opts", []))
        prefix = option_value(vg_opts, "--vgdb-prefix")
        if args.log:
            _check_log_path(args.log)
        argv = valgrind_argv(valgrind, program, args.args, vg_opts, "%LOG%")
        stdin_path = args.tty or args.stdin
        stdin = open_program_stream(stdin_path, write=False)
        if args.tty and not stdin.isatty():
            # a regular file given as --tty had the program's output appended to it
            stdin.close()
            raise ToolkitError(f"--tty {args.tty} is not a terminal",
                               "give a terminal device ('tty' in another window prints its "
                               "name), or --stdin FILE / --stdout FILE for files")
        try:
            stdout = open_program_stream(args.tty or args.stdout, write=True) \
                if (args.tty or args.stdout) else None
        except BaseException:
            stdin.close()
            raise
        private = make_private_dir("gdb_toolkit-vg-")
        log_template = args.log or os.path.join(private, "valgrind-%p.log")
        argv = [a.replace("%LOG%", log_template) if a.startswith("--log-file=%LOG%") else a for a in argv]
        t0, started_ns = time.monotonic(), time.time_ns()
        try:
            proc = start_valgrind(argv, stdin.fileno(), None if stdout is None else stdout.fileno())
        except OSError as exc:
            remove_tree(private)
            raise ToolkitError(f"cannot start valgrind: {exc.strerror}", "check the valgrind install") from None
        finally:
            stdin.close()
            if stdout is not None:
                stdout.close()
        log_file, log_words = log_destination(vg_opts, log_template, proc.pid)
        s = gs.session(proc.pid)
        s.popen, s.private_dir, s.program, s.log_file, s.vgdb_prefix = proc, private, program, log_file, prefix
        s.log_pattern = log_pattern(vg_opts, log_template)
        notes = []
        try:
            wait_for_fifo(proc, fifo_dir(prefix), args.timeout, log_file, prefix,
                          keep_log=bool(args.log) or not log_file or not log_file.startswith(private),
                          started_ns=started_ns)
            gs.connect(proc.pid, program, os.path.join(private, "vgdb-stderr.log"), vgdb_prefix=prefix)
            if args.main:
                note = _run_to_main(program, s)
                if note:
                    notes.append(note)
        except BaseException:
            if gs.connection_pid() == proc.pid:
                try:
                    gdb.execute("kill", to_string=True)
                except gdb.error:
                    pass
            # a valgrind that vg-start gave up on is no session: later commands say "not
            # connected", not "the program exited (status 0)"
            gs.cleanup_session(s)
            gs.SESSIONS.pop(proc.pid, None)
            raise
        seconds = time.monotonic() - t0
        where = gs.where_stopped()
        return StartReport(proc.pid, program, list(args.args), argv, log_file, log_words, stdin_path,
                           args.tty or args.stdout or "gdb's terminal (inherited)",
                           where, bool(args.main), round(seconds, 3), notes)

    def render(self, report, ctx):
        from gdb_toolkit.common.text import key_values, one_line, wrap

        out = key_values([
            ("valgrind pid", f"{report.pid} (gdb's inferior pid over vgdb is a placeholder)"),
            ("program", command_line([report.program, *report.arguments])),
            ("stopped at", report.stopped_at),
            ("program stdin", one_line(report.program_stdin)),        # paths: a newline in
            ("program stdout", one_line(report.program_stdout)),      # one is not a new line
            ("valgrind log", one_line(report.log) + ("" if report.log_file is None or "/gdb_toolkit-vg-" not in
                                            report.log_file else " (removed when gdb quits; --log keeps one)")),
            ("command", command_line(report.valgrind_command)),    # one a shell can run again
            ("connected in", f"{report.seconds:.2f} s"),
        ], ctx.width, ctx.styler)
        out += _notes(report.notes, ctx)
        return out + wrap("next: 'continue', Ctrl-C, then 'vg-leaks' / 'vg-errors'", ctx.width, "", "      ")


def _few(pids, shown: int = 5) -> str:
    """'1, 2, 3' -- or the first *shown* and how many more (one error line, not 150 pids)."""
    pids = list(pids)
    head = ", ".join(map(str, pids[:shown]))
    return head if len(pids) <= shown else f"{head} and {len(pids) - shown} more"


def _check_log_path(path: str) -> None:
    """--log: valgrind opens it itself; refuse what would block or mislead it."""
    from gdb_toolkit.common.safe_open import check_output_path

    # valgrind opens it (following links, truncating): a planted link in /tmp, a FIFO, a
    # directory or a sysctl are refused here
    if "%p" not in path:
        check_output_path(path, "--log file")
        return
    import os

    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.common.names import escape_name
    from gdb_toolkit.common.safe_open import shared_directory

    # with %p only valgrind knows the name: in /tmp, links planted at vg-1000.log, vg-1001.log...
    # cannot be checked, and valgrind (root) would truncate their targets
    d = shared_directory(os.path.dirname(path) or ".")
    if d is not None:
        raise ToolkitError(f"--log {escape_name(path)}: %p in {escape_name(d)}, a directory anyone may "
                           "write: the file valgrind opens cannot be checked for a planted link first",
                           "give a fixed name there, or a directory only you can write")


def _run_to_main(program: str, s) -> str | None:
    """vg-start --main: continue to a temporary breakpoint on main, removed whatever happens.

    Returns None at main, else why the program stopped elsewhere (the stop
    hook's text is captured with the 'continue' output, so it is reported here).
    """
    import re

    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.gdbsupport.safe_gdb import execute_to_string
    from gdb_toolkit.valgrind import gdb_session as gs

    try:
        gdb.execute("info address main", to_string=True)
    except gdb.error:
        raise ToolkitError(f"--main: {program} has no symbol 'main' (stripped?)",
                           "run vg-start without --main, then 'break' on an address") from None
    before = s.errors_seen
    number = None
    try:
        with gs.quiet_stops():
            # execute_to_string: gdb names the source file ("file m\xe9.c"), any bytes
            out = execute_to_string("tbreak main")
            m = re.search(r"reakpoint (\d+)", out)
            number = int(m.group(1)) if m else None
            execute_to_string("continue")
    finally:
        for bp in gdb.breakpoints():
            if bp.number == number:
                bp.delete()
    if not gdb.selected_inferior().pid:
        raise ToolkitError(f"--main: {program} exited before reaching main",
                           "check the valgrind log; run vg-start without --main")
    try:
        if gdb.selected_frame().name() == "main":
            return None
    except gdb.error:
        pass
    if s.errors_seen > before:
        return (f"stopped on memcheck error #{s.errors_seen} before main: "
                f"{s.last_error_stop or 'see vg-errors'}; 'break main' and 'continue' to get there "
                f"({gs.ERROR_STOP_SIGTRAP})")
    return "stopped before main (not at the temporary breakpoint)"


def _positive_seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    # at most a year: 'vg-watch 1e300' slept until an internal error (OverflowError: timestamp
    # too large to convert to C _PyTime_t)
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        import argparse     # only for its error (argparse reports it): ~3 ms of vg-watch's first call

        raise argparse.ArgumentTypeError(f"not a positive number of seconds up to a year "
                                         f"({MAX_SECONDS}): {text!r}")
    return value


MAX_SECONDS = 365 * 24 * 3600


def _quote(a: str) -> str:
    if a and all(c.isalnum() or c in "-_./=:,+%@" for c in a):
        return a
    return "'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'"



class VgAttach(ToolkitCommand):
    summary = "Connect to a running valgrind, or list them"
    usage = """\
vg-attach [PID] [--vgdb-prefix PREFIX] [--reconnect] [--json]"""
    description = """\
Live valgrind gdbservers are found from their vgdb FIFOs
($TMPDIR/vgdb-pipe-from-vgdb-to-PID-*, or --vgdb-prefix's); FIFOs left by
killed processes are ignored.  With one live process it is chosen; with
several, the list is printed and you choose with vg-attach PID.  PROGRAM's
symbols are loaded from the process's command line when gdb has no file.
--reconnect drops the current connection and makes a new one to the same
valgrind: the way out when the connection is out of step (valgrind lets the
program run between the two connections).  A process started with another
TMPDIR is found from its own environment; one waiting at an error keeps its
stop; a PID that is not attachable is told why (not valgrind, --vgdb=no, gone)."""
    examples = ('vg-attach', 'vg-attach 12345')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-attach"

    def complete_values(self, word):
        """The pids of the valgrind processes running now."""
        from gdb_toolkit.valgrind.vgdb_processes import list_processes

        return [str(p.pid) for p in list_processes()]

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "connect to a running valgrind")
        p.add_argument("pid", nargs="?", type=parse_int, help="valgrind process id")
        p.add_argument("--vgdb-prefix", metavar="PREFIX", help="valgrind's --vgdb-prefix, if it was given one")
        p.add_argument("--reconnect", action="store_true",
                       help="disconnect and connect again to the same valgrind")
        return p

    def run(self, args):
        import os

        from gdb_toolkit.common.args import check_int_option
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.vgdb_processes import (AttachReport, choose, list_processes,
                                                         not_attachable, tool_note)

        # 1..PID_MAX_LIMIT (2^22): 0, -5 or 2^64 is no process id (not "no such process")
        check_int_option("PID", args.pid, 1, 1 << 22, "not a process id")
        if args.reconnect:
            return self._reconnect(args)
        if gdb.selected_inferior().pid:
            raise ToolkitError("gdb is already debugging a process", "detach or disconnect first")
        every = list_processes(include_dead=True, prefix=args.vgdb_prefix)
        live = [p for p in every if p.alive]
        stale = [p.pid for p in every if not p.alive]
        chosen = choose(live, args.pid)
        notes = []
        if chosen is None and args.pid is not None:
            chosen, note = _elsewhere(args)
            if note:
                notes.append(note)
        if chosen is not None and chosen.tool and chosen.tool != "memcheck":
            notes.append(tool_note(chosen.pid, chosen.tool))
        if chosen is None:
            if args.pid is not None and args.pid not in stale and (why := not_attachable(args.pid)):
                raise ToolkitError(f"no live valgrind gdbserver with pid {args.pid}: {why[0]}", why[1])
            if args.pid is not None:
                raise ToolkitError(f"no live valgrind gdbserver with pid {args.pid}"
                                   + (" (only a stale FIFO of a dead process)" if args.pid in stale else ""),
                                   "run vg-attach with no PID to list them; start valgrind with --vgdb=yes")
            if not live:
                raise ToolkitError("no running valgrind process with a vgdb FIFO"
                                   + (f" (ignored stale FIFOs of dead pids {_few(stale)})"
                                      if stale else ""),
                                   "start one with vg-start PROGRAM, or run valgrind --vgdb=yes PROGRAM")
            return AttachReport(False, None, None, live, stale,
                                notes=["several valgrind processes: choose one with vg-attach PID"])
        from gdb_toolkit.common.private_dirs import make_private_dir
        from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename

        program = progspace_filename()
        real = chosen.program_path
        if not program and real:
            program = real
        if program and real and os.path.realpath(program) != os.path.realpath(real):
            notes.append(f"gdb's file {program} is not the program valgrind runs ({chosen.program}): "
                         f"symbols may be wrong; 'file {chosen.program}' loads the right ones")
        s = gs.session(chosen.pid)
        if args.vgdb_prefix:
            s.vgdb_prefix = args.vgdb_prefix
        if s.log_pattern is None:
            from gdb_toolkit.valgrind.launch import log_pattern

            s.log_pattern = log_pattern(chosen.valgrind_options, None)
        if s.private_dir is None:
            s.private_dir = make_private_dir("gdb_toolkit-vg-")
        try:
            gs.connect(chosen.pid, program, os.path.join(s.private_dir, "vgdb-stderr.log"), probe=True,
                       vgdb_prefix=args.vgdb_prefix)
        except BaseException:
            gs.cleanup_session(s, kill=False)
            raise
        return AttachReport(True, chosen.pid, program, live, stale, gs.where_stopped(), notes)

    def _reconnect(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.vgdb_processes import AttachReport

        pid = args.pid or gs.connection_pid()
        if pid is None or pid < 0:
            raise ToolkitError("vg-attach --reconnect: no valgrind connection to renew",
                               "give the PID: vg-attach --reconnect PID")
        s = gs.session(pid)
        if gs.connection_pid() is not None:
            try:
                gdb.execute("disconnect", to_string=True)
            except gdb.error:
                pass
        gs.connect_again(s, args.vgdb_prefix or s.vgdb_prefix)
        return AttachReport(True, pid, s.program, [], [], gs.where_stopped(),
                            ["reconnected: valgrind let the program run between the two connections"])

    def render(self, report, ctx):
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import key_values

        if report.connected:
            # the program's path is one token (a file role: never broken at a space it holds)
            text = key_values([("connected to valgrind pid", report.pid), ("program", report.program, "file"),
                               ("stopped at", report.stopped_at)], ctx.width, ctx.styler)
            text += _notes(report.notes, ctx)
        else:
            rows = [[p.pid, p.tool or "?", command_line([p.program or "?", *p.arguments]),
                     command_line(p.valgrind_options)] for p in report.processes]
            from gdb_toolkit.common.text import wrap

            text = "".join(wrap(n, ctx.width, "", "    ") for n in report.notes)
            text += render_table([Col("pid", "number"), Col("tool", "key"), Col("program"),
                                  Col("valgrind options")], rows, ctx.width, styler=ctx.styler)
        if report.stale_fifos:
            from gdb_toolkit.common.text import wrap

            n = len(report.stale_fifos)     # a long-lived /tmp holds hundreds: a count and a few
            text += wrap(f"ignored {n} stale vgdb FIFO{'s' if n != 1 else ''} of dead pids: "
                         f"{_few(report.stale_fifos, 8)}" + (" (--json lists them all)" if n > 8 else ""),
                         ctx.width, "", "    ")
        return text


def _elsewhere(args):
    """vg-attach PID whose FIFO is not where gdb looked: valgrind PID's own --vgdb-prefix or
    TMPDIR (vgdb looks in gdb's); (the process, a note) when it is there, else (None, None).
    args.vgdb_prefix is set to the prefix found."""
    from gdb_toolkit.valgrind.vgdb_processes import choose, fifo_dir, list_processes, own_prefix

    prefix = own_prefix(args.pid)
    if not prefix or fifo_dir(prefix) == fifo_dir(args.vgdb_prefix):
        return None, None
    chosen = choose([p for p in list_processes(prefix=prefix) if p.alive], args.pid)
    if chosen is None:
        return None, None
    args.vgdb_prefix = prefix
    return chosen, (f"valgrind {args.pid}'s vgdb FIFOs are under {fifo_dir(prefix)} (its TMPDIR or "
                    f"--vgdb-prefix), not {fifo_dir(None)}: connected with --vgdb-prefix {prefix}")


def command_line(words: list[str]) -> str:
    """A program and its arguments as one line a reader can split again: a word with a
    character a shell would read (a blank, a quote, $, *, ;...) is shell-quoted as shlex.quote
    does ("/srv/my app/server" 8080 is not four words)."""
    return " ".join(w if w and _SHELL_SAFE.issuperset(w) else "'" + w.replace("'", "'\\''") + "'"
                    for w in words)


#: characters a shell word needs no quotes for (shlex.quote's set, without importing shlex)
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-")


def _totals_lines(report, ctx=None) -> str:
    from gdb_toolkit.common.text import wrap

    parts = []
    for k, t in report.totals.items():
        grow = ""
        if report.totals_delta is not None and report.totals_delta.get(k):
            grow = f" ({report.totals_delta[k]:+,} since last vg-leaks)"
        parts.append(f"  {k:<10} {t.bytes:>12,} bytes in {t.blocks:,} blocks{grow}")
    if report.suppressed is not None:
        parts.append(f"  {'suppressed':<10} {report.suppressed.bytes:>12,} bytes in "
                     f"{report.suppressed.blocks:,} blocks (in no kind above)")
    width = ctx.width if ctx is not None else None
    return f"totals ({report.totals_source}):\n" + "".join(wrap(p, width, "", " " * 13) for p in parts)


class VgLeaks(ToolkitCommand):
    summary = "Leak check by allocation site, and its growth"
    usage = """\
vg-leaks [full|summary] [--kinds K1,K2] [--delta increased|changed] [--min-bytes N] [--top N] [--depth N] [--group-by N] [--json]
vg-leaks --history [--kinds K] [--top N] [--export FILE] [--plot FILE] [--json]"""
    description = """\
Runs "monitor leak_check" on the connected valgrind, parses every loss record
(bytes direct+indirect with deltas, blocks, kind, record number, allocation
stack) and the LEAK SUMMARY, and prints the records largest first with their
allocation site: the first frame in the program's own code (decided by the
object file the code lives in: the allocator, libc, libstdc++ and other
system libraries are skipped).  --depth N shows N-1 callers too; --group-by N
sums the records by the frame N levels up from the site.  Kinds: definite,
indirect, possible, reachable (default all).  --delta shows only records that
grew (increased) or changed since the previous leak search.
Every complete search is kept as a snapshot of the session: --history shows
each site's series, growth per snapshot and per second, and a sparkline;
--export writes it as CSV (.csv) or JSON lines; --plot draws the top growing
sites (.svg or .png).  Ctrl-C during a long search takes effect when valgrind
has sent the whole reply (the connection stays in step)."""
    examples = ('vg-leaks', 'vg-leaks --kinds definite --top 5 --depth 3', 'vg-leaks --delta increased', 'vg-leaks --history --plot leaks.svg')
    category = "valgrind"
    json_hex_addresses = True
    pause_gc = True         # 10 000 loss records: ~100 000 objects that all stay alive

    name = "vg-leaks"

    def list_option_values(self, option):
        if option != "--kinds":
            return ()
        from gdb_toolkit.valgrind.leak_view import KINDS

        return tuple(KINDS)

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "leak check with parsed loss records")
        p.add_argument("mode", nargs="?", choices=["full", "summary"], default="full")
        p.add_argument("--kinds", help="definite,indirect,possible,reachable (default all)")
        p.add_argument("--delta", choices=["increased", "changed"], help="only what grew/changed")
        p.add_argument("--min-bytes", type=parse_int, help="hide records smaller than N bytes")
        p.add_argument("--top", type=parse_int, help="show only the N largest records (or sites)")
        p.add_argument("--depth", type=parse_int, default=1, help="frames shown from the allocation site")
        p.add_argument("--group-by", type=parse_int, help="sum records by the frame N levels up")
        p.add_argument("--history", action="store_true", help="growth of each site across snapshots")
        p.add_argument("--export", metavar="FILE", help="with --history: write CSV (.csv) or JSON lines")
        p.add_argument("--plot", metavar="FILE", help="with --history: plot the top growing sites (.svg/.png)")
        return p

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.leak_records import KINDS, parse_leak_check
        from gdb_toolkit.valgrind.leak_view import (build_report, explain_empty_output,
                                                    monitor_leak_command, parse_kinds)

        try:
            kinds = parse_kinds(args.kinds)
        except ValueError as exc:
            raise ToolkitError(f"vg-leaks: {exc}", "e.g. --kinds definite,indirect") from None
        from gdb_toolkit.common.args import U64_MAX, check_int_option

        check_int_option("--min-bytes", args.min_bytes, 0, U64_MAX, "a record's size in bytes")
        for opt in ("top", "depth", "group_by"):
            check_int_option(f"--{opt.replace('_', '-')}", getattr(args, opt), 1, 1000000)
        if (args.export or args.plot) and not args.history:
            raise ToolkitError("vg-leaks: --export and --plot go with --history",
                               "vg-leaks --history --plot leaks.svg")
        if args.history:
            s = gs.history_session(self.name)
            rep = history_report(s, kinds if args.kinds else None, args.top, args.export, args.plot)
            if gs.connection_pid() != s.pid:
                how = (f"exited (status {s.exit_code})" if s.exit_code is not None
                       else "is gone or no longer connected")
                rep.notes.insert(0, f"valgrind {s.pid} {how}: its history up to its last leak check")
            return rep
        pid = gs.require_connection(self.name)
        s = gs.session(pid)
        all_kinds = set(kinds) == set(KINDS)
        use_limited = (args.mode == "full" and args.top is not None and args.delta is None
                       and args.min_bytes is None and args.group_by is None)
        cmd = monitor_leak_command(args.mode, kinds, args.delta, args.top if use_limited else None)
        text = gs.monitor(cmd, self.name, allow_empty=True, pid=pid)
        why = explain_empty_output(text, cmd)
        if why:
            raise ToolkitError(f"vg-leaks: {why}",
                               "run 'monitor v.set gdb_output' (after log_output), or restart valgrind "
                               "without -q; 'vg-leaks full' still lists records under -q")
        complete = args.mode == "full" and all_kinds and args.delta is None and not use_limited
        stacks = bool(args.json) or args.depth > 1 or args.group_by is not None
        parsed = parse_leak_check(text, full_stacks=stacks, code_map=gs.code_map(pid))
        if not parsed.records and parsed.summary is None and (args.mode == "summary" or parsed.notes):
            raise ToolkitError(f"vg-leaks: valgrind did not run a leak check: "
                               f"{' '.join(parsed.notes)[:200] or 'no records, no summary'}",
                               "the vg-* commands need valgrind's memcheck tool (--tool=memcheck)")
        extra = None
        if use_limited:
            extra = parse_leak_check(gs.monitor(monitor_leak_command("summary", list(KINDS), None),
                                                self.name, allow_empty=True, pid=pid))
        report = build_report(parsed, mode=args.mode, monitor_command=f"monitor {cmd}", kinds=kinds,
                              delta=args.delta, min_bytes=args.min_bytes, top=args.top,
                              complete=complete, previous_totals=s.leak_totals,
                              extra_summary=extra, with_stacks=bool(args.json), depth=args.depth,
                              group_by=args.group_by, known_total=s.records_total)
        if parsed.summary is None and args.mode == "full" and not (extra and extra.summary):
            if complete:
                report.notes.append("valgrind printed no LEAK SUMMARY (it runs with -q?); "
                                    "totals computed from the records shown")
                if not report.totals:
                    from gdb_toolkit.valgrind.leak_view import totals_from_records

                    report.totals = totals_from_records(parsed.records)
                    report.totals_source = "records"
            elif not report.totals:
                # --top/--kinds/--delta listed only some records: totals from them would be wrong
                report.notes.append("valgrind printed no LEAK SUMMARY (it runs with -q?) and only "
                                    "some loss records were listed: no totals (plain 'vg-leaks' "
                                    "computes them from all records)")
        if report.totals and all_kinds:
            s.leak_totals = {k: t.bytes for k, t in report.totals.items()}
        if s.hidden_search and args.delta:
            report.notes.append("a leak search ran since the previous vg-leaks: the record "
                                "deltas are relative to that search")
        s.hidden_search = False
        if args.mode == "full" and parsed.total_records is not None:
            s.records_total = parsed.total_records
        if args.mode == "full":
            s.last_records = parsed.records      # their numbers are valid until the next search
        if complete:
            from gdb_toolkit.valgrind.session_state import sites_of

            snap = s.add_snapshot(sites_of(parsed.records),
                                  {k: t.bytes for k, t in report.totals.items()})
            report.snapshot = snap.seq
        report.pid = pid
        if args.top is None:
            report.text_rows = TEXT_ROWS
        if parsed.records:                      # valgrind counted each printed record as an error
            limit = _error_limit_reached(pid, self.name)
            if limit:
                report.notes.append(limit)
        return report

    def render(self, report, ctx):
        if hasattr(report, "sites"):
            return render_history(report, ctx)
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import wrap

        out = wrap(f"valgrind pid {report.pid}: {report.monitor_command}", ctx.width, "", "    ")
        if report.mode == "full":
            total = "?" if report.records_total is None else f"{report.records_total:,}"
            cap = report.text_rows or 1 << 62
            out += wrap(f"{total} loss records, {report.records_matched:,} matched, "
                        + (f"{min(len(report.groups), cap):,} sites shown" if report.group_by
                           else f"{min(len(report.records), cap):,} shown"), ctx.width, "", "    ")
        if report.group_by:
            rows = [[g.kind, _n(g.bytes), _n(g.blocks), len(g.records),
                     (g.location.symbol or "???") if g.location else "???",
                     g.location.where if g.location else "",
                     ",".join(map(str, g.records[:6])) + ("..." if len(g.records) > 6 else "")]
                    for g in report.groups[:report.text_rows]]
            out += render_table([Col("kind", "state", states=LEAK_KINDS), Col("bytes", "number"), Col("blocks", "number"),
                                 Col("records", "number"), Col(f"frame {report.group_by}", "symbol"),
                                 Col("at", "location"), Col("record numbers")], rows, ctx.width,
                                styler=ctx.styler)
            out += _more_rows(report.groups, len(rows), "sites", ctx)
        elif report.records:
            rows = []
            site_cells: dict[int, tuple] = {}    # id(Frame) -> cells: records share site frames
            for r in report.records[:report.text_rows]:
                loc = r.location
                site = site_cells.get(id(loc))
                if site is None:
                    site = site_cells[id(loc)] = (r.symbol or "???", r.where or "")
                # (_n/_d inlined: 10,000 rows)
                bd, kd = r.bytes_delta, r.blocks_delta
                row = [str(r.record), r.kind,
                       f"{r.bytes:,}" if bd is None else f"{r.bytes:,} ({bd:+,})",
                       (f"{_n(r.direct_bytes)}+{_n(r.indirect_bytes)}" if r.indirect_bytes else ""),
                       f"{r.blocks:,}" if kd is None else f"{r.blocks:,} ({kd:+,})", *site]
                if report.depth > 1:
                    row.append(" < ".join(f.label() for f in r.callers))
                rows.append(row)
            cols = [Col("rec", "number"), Col("kind", "state", states=LEAK_KINDS), Col("bytes", "number"),
                    Col("direct+indirect", "number"), Col("blocks", "number"),
                    Col("allocated in", "symbol"), Col("at", "location")]
            if report.depth > 1:
                cols.append(Col("called from"))
            out += render_table(cols, rows, ctx.width, styler=ctx.styler)
            out += _more_rows(report.records, len(rows), "records", ctx)
            if report.depth == 1:
                out += _one_site_hint(report.records, ctx)
        elif report.mode == "full":
            out += "no loss record matches\n"
        if report.totals:
            out += _totals_lines(report, ctx)
        if report.snapshot:
            out += wrap(f"snapshot {report.snapshot} of this session kept ('vg-leaks --history' shows "
                        "growth)", ctx.width, "", "    ")
        return out + _notes(report.notes, ctx)


def _error_limit_reached(pid: int, name: str) -> str | None:
    """The note that valgrind records no more errors, when it runs under --error-limit=yes (a
    vg-attach'ed one; vg-start passes --error-limit=no) and has shown 1,000 errors -- loss
    records printed by leak searches count: a few checks of a server reach it."""
    from gdb_toolkit.valgrind.error_counts import error_limit_active, error_limit_note, parse_n_errs_found
    from gdb_toolkit.valgrind.vgdb_processes import parse_cmdline, process_info

    options = parse_cmdline(process_info(pid)[2])[0]
    if not error_limit_active(options):
        return None
    from gdb_toolkit.valgrind import gdb_session as gs

    return error_limit_note(parse_n_errs_found(gs.monitor("v.info n_errs_found", name, pid=pid)), options)


#: records (or --group-by sites) the text shows without --top: a server's thousands of loss
#: records were one line each (3,000 records: 3,000 lines); --json has every one
TEXT_ROWS = 50


def _more_rows(rows, shown: int, what: str, ctx) -> str:
    """'... N more records (B bytes in K blocks)' under a table cut at TEXT_ROWS."""
    from gdb_toolkit.common.text import wrap

    rest = rows[shown:]
    if not rest:
        return ""
    return wrap(f"... {len(rest):,} more {what}, smaller ({sum(r.bytes for r in rest):,} bytes in "
                f"{sum(r.blocks for r in rest):,} blocks): '--top N' shows N, --json every one",
                ctx.width, "", "    ")


def _one_site_hint(records, ctx) -> str:
    """Most records allocated at one line (a wrapper: xmalloc, new_node): their callers tell
    them apart, which --group-by 2 / --depth 2 show."""
    from gdb_toolkit.common.text import wrap

    if len(records) < 20:
        return ""
    counts: dict = {}
    for r in records:
        key = (r.symbol, r.where)
        counts[key] = counts.get(key, 0) + 1
    (symbol, where), n = max(counts.items(), key=lambda kv: kv[1])
    if n * 2 < len(records) or not symbol:
        return ""
    return wrap(f"{n:,} of the {len(records):,} records are allocated in {symbol} ({where or '?'}): "
                "'--group-by 2' sums them by the line that called it, '--depth 2' shows it per record",
                ctx.width, "", "    ")


def _notes(notes, ctx) -> str:
    """``note: SENTENCE`` lines as every command prints them (common.text.notes_block)."""
    from gdb_toolkit.common.text import notes_block

    return notes_block(notes, ctx.width)


def history_report(s, kinds, top, export, plot):
    from gdb_toolkit.valgrind.history import build_history, write_export, write_plot

    rep = build_history(s.pid, s.snapshots, kinds, top)
    if export:
        write_export(rep, export)
        rep.export = export
    if plot:
        write_plot(rep, plot)
        rep.plot = plot
    return rep


def render_history(rep, ctx) -> str:
    from gdb_toolkit.common.table import Col, render_table

    span = (rep.last_time - rep.first_time) if rep.snapshots > 1 else 0.0
    from gdb_toolkit.common.text import wrap

    out = wrap(f"valgrind pid {rep.pid}: {rep.snapshots} leak snapshots over {span:.1f} s, "
               f"{len(rep.sites)} allocation sites, largest growth first", ctx.width, "", "    ")
    rows = []
    for r in rep.sites:
        per_s = "-" if r.growth_per_second is None else f"{r.growth_per_second:+,.1f}"
        # the site as vg-leaks shows it: function and file:line in two columns (one composite
        # "memleak5 (memleakloop.c:30)" cell could not wrap, and folded at 40 columns)
        where = f"{r.file}:{r.line}" if r.file else (r.object or "?")
        rows.append([r.kind, _n(r.last_bytes), f"{r.growth_per_snapshot:+,.0f}", per_s,
                     r.sparkline, r.symbol or "???", where])
    if rows:
        out += render_table([Col("kind", "state", states=LEAK_KINDS), Col("bytes now", "number"), Col("B/snapshot", "number"),
                             Col("B/second", "number"), Col("series", "key"),
                             Col("allocated in", "symbol"), Col("at", "location")], rows, ctx.width,
                            styler=ctx.styler)
    for f, what in ((rep.export, "series written to"), (rep.plot, "plot written to")):
        if f:
            out += wrap(f"{what} {f}", ctx.width, "", "    ", keep=(f,))
    return out + _notes(rep.notes, ctx)


class VgWatch(ToolkitCommand):
    summary = "Leak snapshots every N seconds until Ctrl-C"
    usage = """\
vg-watch SECONDS [--count N] [--top N] [--json]"""
    description = """\
Takes a leak snapshot now, lets the program run, and takes one every SECONDS
(a full leak search, kept as a snapshot like vg-leaks), printing one line
each, until Ctrl-C or --count snapshots; then prints the growth table of
'vg-leaks --history'.  While it watches, gdb's connection is released and
each snapshot is asked through a standalone vgdb: the program runs freely
(breakpoints do not stop it, gdb prints no stops); at the end gdb connects
again and the program is stopped wherever it is.  The watch also ends when
the program exits or stops on a memcheck error (it then waits for gdb)."""
    examples = ('vg-watch 10', 'vg-watch 2 --count 5')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-watch"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "leak snapshots every N seconds")
        p.add_argument("seconds", type=_positive_seconds, help="seconds between snapshots")
        p.add_argument("--count", type=parse_int, help="stop after N snapshots")
        p.add_argument("--top", type=parse_int, default=10, help="sites in the final table (default 10)")
        return p

    def run(self, args):
        import time

        from gdb_toolkit.common.args import check_int_option
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.error_reports import parse_n_errs_found
        from gdb_toolkit.valgrind.waiting import waits_for_debugger

        check_int_option("--count", args.count, 1, 1 << 31, "snapshots")
        check_int_option("--top", args.top, 1, 1000000)
        s = gs.current_session(self.name)
        pid = s.pid

        def say(line):
            if not args.json:       # progress lines are prose: wrapped at gdb's width
                from gdb_toolkit.common.text import wrap
                from gdb_toolkit.gdbsupport.command import RenderContext

                gdb.write(wrap(line, RenderContext.from_gdb().width, "", "    "))
                gdb.flush()

        notes = []
        say(_watch_snapshot(s, gs.monitor("leak_check full kinds all any", self.name, pid=pid)))
        taken = 1
        if args.count is not None and taken >= args.count:
            return history_report(s, None, args.top, None, None)
        errors = s.errors_seen
        with gs.quiet_stops():
            gdb.execute("detach", to_string=True)       # valgrind lets the program run on
        say(f"vg-watch: gdb detached from valgrind {pid}; the program runs; a snapshot every "
            f"{args.seconds:g} s until Ctrl-C")
        try:
            while args.count is None or taken < args.count:
                time.sleep(args.seconds)
                if not gs.pid_alive(pid):
                    notes.append(gs.how_it_ended(s))
                    break
                if waits_for_debugger(pid):
                    # stopped at a memcheck error: a standalone vgdb would resume it past the error
                    notes.append("the program stopped on a memcheck error and waits for gdb "
                                 "('vg-errors' says which)")
                    break
                text = _standalone_monitor(pid, s.vgdb_prefix, "leak_check full kinds all any",
                                           "v.info n_errs_found")
                counts = parse_n_errs_found(text)
                taken += 1
                say(_watch_snapshot(s, text))
                if counts is not None and counts.found > errors:
                    if counts.found >= counts.vgdb_error:     # valgrind stops from that error on
                        notes.append(f"memcheck found error #{counts.found}: the program waits for "
                                     "gdb ('vg-errors' says which)")
                        break
                    if errors == s.errors_seen:
                        notes.append(f"memcheck found error #{counts.found}, below --vgdb-error="
                                     f"{counts.vgdb_error}: the program runs on ('vg-errors' says which)")
                    errors = counts.found
        except KeyboardInterrupt:
            notes.append("stopped by Ctrl-C")
        finally:
            if gs.pid_alive(pid):
                try:
                    gs.connect_again(s, s.vgdb_prefix)
                except ToolkitError:
                    notes.append("could not connect gdb again: 'vg-attach' does")
                if gs.connection_pid() == pid:
                    notes.append(f"gdb connected again; the program stopped at {gs.where_stopped()}")
        rep = history_report(s, None, args.top, None, None)
        limit = _error_limit_reached(pid, self.name) if gs.connection_pid() == pid else None
        if limit:
            notes.append(limit)
        rep.notes = notes + rep.notes
        return rep

    def render(self, report, ctx):
        return render_history(report, ctx)


def _standalone_monitor(pid: int, prefix: str | None, *commands: str) -> str:
    """Monitor commands through a standalone vgdb (gdb is not connected): valgrind's text."""
    import subprocess

    from gdb_toolkit.valgrind import gdb_session as gs
    from gdb_toolkit.valgrind.launch import vgdb_env

    argv = [gs.vgdb_binary(), *([f"--vgdb-prefix={prefix}"] if prefix else []), f"--pid={pid}"]
    for i, c in enumerate(commands):
        argv += (["-c"] if i else []) + c.split()
    try:
        proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=600,
                              start_new_session=True, env=vgdb_env())
    except subprocess.TimeoutExpired:
        return ""
    return proc.stdout.decode("utf-8", "surrogateescape")


def _watch_snapshot(s, text: str) -> str:
    """Parse one leak search's text into a snapshot of session *s*; the line vg-watch prints."""
    import time

    from gdb_toolkit.valgrind import gdb_session as gs
    from gdb_toolkit.valgrind.leak_records import parse_leak_check
    from gdb_toolkit.valgrind.leak_view import totals_from_records
    from gdb_toolkit.valgrind.session_state import sites_of

    parsed = parse_leak_check(text, full_stacks=False, code_map=gs.code_map(s.pid))
    totals = totals_from_records(parsed.records)
    s.last_records, s.records_total = parsed.records, parsed.total_records or 0
    prev = s.snapshots[-1] if s.snapshots else None
    snap = s.add_snapshot(sites_of(parsed.records), {k: t.bytes for k, t in totals.items()}, "vg-watch")
    s.leak_totals = dict(snap.totals)
    s.hidden_search = True        # valgrind's "increased" baseline moved: vg-leaks --delta says so
    grow = ""
    if prev is not None:
        d = {k: snap.totals.get(k, 0) - prev.totals.get(k, 0) for k in snap.totals}
        grow = " (" + ", ".join(f"{k} {v:+,}" for k, v in d.items() if v) + ")" if any(d.values()) else \
            " (no change)"
    held = ", ".join(f"{k} {v:,}" for k, v in snap.totals.items() if v) or "no heap blocks in use"
    return (f"vg-watch: snapshot {snap.seq} at {time.strftime('%H:%M:%S', time.localtime(snap.time))}: "
            + held + grow)


class VgWho(_AddrLenCommand):
    summary = "Who points at an address (who_points_at)"
    usage = """\
vg-who ADDR [LEN] [--json]"""
    description = """\
ADDR and LEN are gdb expressions (g_buf, &g_holder, sizeof(buf)).  Each
pointer found is listed with its own address and what holds it: a global
data symbol, a stack frame of a thread, a register, or a heap block with its
allocation stack.  With LEN > 1 interior pointers are shown too."""
    examples = ('vg-who g_buf', 'vg-who g_buf 64')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-who"
    purpose = "who points at an address"

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.memory_reports import parse_who_points_at

        addr, length = self.address_range(args)
        pid = gs.connection_pid()
        cm = gs.code_map(pid)
        report = parse_who_points_at(gs.monitor(f"who_points_at 0x{addr:x} {length}", self.name), cm)
        if report.address is None:
            raise ToolkitError(f"vg-who: valgrind refused: {' '.join(report.notes) or 'no output'}",
                               "give a heap or data address")
        report.target_location = _location(addr, self.name, cm)
        report.pid = pid
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import wrap

        target = report.target_location
        head = f"pointers to 0x{report.address:x}" + (f" (+{report.size} bytes)" if report.size > 1 else "")
        out = wrap(head + (f": {target.holder()}" if target else ""), ctx.width, "", "    ")
        rows = [["-" if p.address is None else f"0x{p.address:x}",
                 "start" if p.interior_offset is None else f"+{p.interior_offset}", p.holder]
                for p in report.pointers]
        if rows:
            out += render_table([Col("pointer at", "address"), Col("points to", "key"), Col("held by")],
                                rows, ctx.width, styler=ctx.styler)
        elif target is not None and target.kind == "heap_block":
            out += "no pointer found: nothing points at this heap block (it is leaked)\n"
        else:
            out += "no pointer found\n"
        return out


def _location(addr: int, what: str, cm):
    """valgrind's own description of *addr* (monitor v.info location), parsed."""
    from gdb_toolkit.valgrind import gdb_session as gs
    from gdb_toolkit.valgrind.locations import parse_location_lines

    lines = gs.monitor(f"v.info location 0x{addr:x}", what, allow_empty=True).splitlines()
    idx = next((i for i, ln in enumerate(lines) if "Address " in ln), None)
    return parse_location_lines(lines, idx, cm)[0] if idx is not None else None


class VgBlock(ToolkitCommand):
    summary = "Blocks of a loss record, or the block at ADDR"
    usage = """\
vg-block RECORD|ADDR [--limit N] [--json]"""
    description = """\
A plain decimal number is a loss record number from the last leak search
(vg-leaks): its blocks, as valgrind's tree (blocks reached through another one
are indented under it).  Anything else is a gdb expression for an address:
valgrind's 'v.info location' says which heap block holds it (start, size,
allocation stack); the loss record of the last search with that allocation
stack is shown with its blocks.  vg-block never runs a leak search itself,
so 'vg-leaks --delta' keeps its baseline.  valgrind lists the first N blocks
(--limit, default 50; 0: all -- a server's record of 100,000 blocks is 2.4 MB
of monitor text and seconds to transfer)."""
    examples = ('vg-block 3', 'vg-block g_psz1[0]', 'vg-block 5 --limit 0')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-block"
    value_completer = gdb.COMPLETE_EXPRESSION

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        from gdb_toolkit.common.args import parse_int

        p = ArgParser(self.name, "blocks of a loss record")
        p.add_argument("target", help="loss record number or address expression")
        p.add_argument("--limit", type=parse_int, default=50, metavar="N",
                       help="blocks valgrind lists (default 50; 0: all)")
        return p

    def run(self, args):
        from gdb_toolkit.common.args import check_int_option
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.leak_records import parse_leak_check
        from gdb_toolkit.valgrind.leak_view import BlockReport, build_report

        check_int_option("--limit", args.limit, 0, 1000000, "0: every block")
        pid = gs.require_connection(self.name)
        s = gs.session(pid)
        cm = gs.code_map(pid)
        notes = []
        addr = block = loc = None
        if args.target.isdigit():
            record = int(args.target)
        else:
            addr = _expr_addr(args.target)
            loc = _location(addr, self.name, cm)
            if loc is None or loc.kind != "heap_block" or loc.relation != "inside":
                raise ToolkitError(f"vg-block: 0x{addr:x} is not inside a heap block in use"
                                   + (f" (valgrind: {loc.description})" if loc else ""),
                                   "give the address of a malloc'd block (vg-who describes any address)")
            block = (addr - (loc.offset or 0), loc.block_size)
            wanted = tuple(f.address for f in loc.stack)
            # cheap test first: the outermost frame's address in the record's stack text
            probe = f"0x{wanted[-1]:X}:" if wanted else ""
            match = next((r for r in s.last_records if probe in r.stack_text
                          and r.stack_addresses() == wanted), None)
            if match is None:
                rep = BlockReport(pid, addr, block[0], block[1], loc.description, loc.stack, None, [], notes)
                notes.append("no loss record of the last leak search has this allocation stack (no "
                             "vg-leaks yet, or the block is newer): 'vg-leaks' lists it")
                return rep
            record = match.number
        # 'limited N': valgrind sends only the first N blocks (memcheck >= 3.15)
        text = gs.monitor(f"block_list {record}" + (f" limited {args.limit}" if args.limit else ""),
                          self.name, pid=pid)
        parsed = parse_leak_check(text, code_map=cm)
        if not parsed.records:
            raise ToolkitError(f"vg-block: no loss record {record}: "
                               f"{' '.join(parsed.notes) or 'no output'}",
                               "run vg-leaks first and use a record number it shows")
        leak = build_report(parsed, mode="full", monitor_command="monitor block_list", kinds=
                            ["definite", "indirect", "possible", "reachable"], delta=None,
                            min_bytes=None, top=None, complete=False)
        row = leak.records[0]
        tops = sum(1 for b in row.block_list if not b.depth)
        cut = bool(args.limit) and tops >= args.limit and row.blocks > tops
        if cut:
            notes.append(f"valgrind listed the first {tops:,} of the record's {row.blocks:,} blocks "
                         f"(--limit {args.limit}; 'vg-block {args.target} --limit 0' lists every one)")
        if block is not None and not any(b.address == block[0] for b in row.block_list):
            notes.append(f"the first {tops:,} blocks of loss record {record} do not include this "
                         f"block: 'vg-block {args.target} --limit 0' lists all {row.blocks:,}" if cut else
                         f"loss record {record} of the last leak search (same allocation stack) does "
                         "not list this block: the block is newer than that search ('vg-leaks' "
                         "lists it)")
        return BlockReport(pid, addr, block[0] if block else None, block[1] if block else None,
                           loc.description if loc else None, loc.stack if loc else row.stack,
                           row, row.block_list, notes)

    def render(self, report, ctx):
        from gdb_toolkit.common.table import Col, render_table

        from gdb_toolkit.common.text import wrap

        out = ""
        if report.address is not None:
            site = report.allocation_site
            out += wrap(f"0x{report.address:x} is in the heap block 0x{report.block_address:x} "
                        f"({_n(report.block_size)} bytes)" + (f", allocated in {site.label()}" if site else ""),
                        ctx.width, "", "    ")
        r = report.leak_record
        if r is not None:
            out += wrap(f"loss record {r.record}: {_n(r.bytes)} bytes in {_n(r.blocks)} blocks, {r.kind}, "
                        f"allocated in {r.symbol or '???'} ({r.where or '?'})", ctx.width, "", "    ")
            # valgrind's tree: a block reached through the one above it is marked (tables strip
            # leading blanks, so the depth is drawn with visible characters)
            rows = [[("··" * (b.depth - 1) + "└ " if b.depth else "") + f"0x{b.address:x}", f"{b.size:,}",
                     " ".join(x for x in (b.note, "<- contains 0x%x" % report.address
                                          if report.address is not None
                                          and b.address <= report.address < b.address + max(b.size, 1)
                                          else "") if x)]
                    for b in report.block_list]
            out += render_table([Col("block", "address"), Col("size", "number"), Col("note")],
                                rows, ctx.width, styler=ctx.styler)
        return out + _notes(report.notes, ctx)


class VgVbits(_AddrLenCommand):
    summary = "Memcheck's validity bits as a table"
    usage = """\
vg-vbits ADDR [LEN] [--json]"""
    description = """\
Runs "monitor get_vbits ADDR LEN" and reads the values through gdb, and shows,
8 bytes per row, the values, the validity bits (00 = defined, ff = undefined,
__ = unaddressable) and a mark per byte: D defined, U undefined, u partly
defined, - unaddressable.  ADDR and LEN are gdb expressions.  Read-only:
nothing in the target is changed."""
    examples = ('vg-vbits g_buf 24', 'vg-vbits &local sizeof(local)')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-vbits"
    purpose = "validity bits"
    default_len = "8"
    max_len = 1 << 24

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.memory_reports import parse_get_vbits

        addr, length = self.address_range(args)
        text = gs.monitor(f"get_vbits 0x{addr:x} {length}", self.name)
        report = parse_get_vbits(text, addr, length)
        if not report.byte_list:
            raise ToolkitError(f"vg-vbits: valgrind printed no validity bits: {text.strip()[:120]}",
                               "check the address")
        _fill_values(report)
        report.pid = gs.connection_pid()
        report.notes = [m for m in report.messages if "unaddressable" not in m]
        if gs.in_syscall():
            report.notes.append(gs.SYSCALL_WARNING)
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.table import Col, render_table

        mark = {"defined": "D", "undefined": "U", "partly defined": "u", "unaddressable": "-"}
        rows = []
        for i in range(0, len(report.byte_list), 8):
            chunk = report.byte_list[i:i + 8]
            rows.append([f"0x{chunk[0].address:x}",
                         " ".join("??" if b.byte_value is None else f"{b.byte_value:02x}" for b in chunk),
                         " ".join("__" if b.vbits is None else f"{b.vbits:02x}" for b in chunk),
                         "".join(mark[b.state] for b in chunk)])
        out = render_table([Col("address", "address"), Col("values", "key"), Col("vbits", "key"),
                            Col("DUu-", "key")], rows, ctx.width, styler=ctx.styler)
        from gdb_toolkit.common.text import wrap

        out += wrap(f"{report.size} bytes: {report.size - report.undefined - report.unaddressable - report.partly_defined}"
                    f" defined, {report.undefined} undefined, {report.partly_defined} partly defined, "
                    f"{report.unaddressable} unaddressable", ctx.width, "", "    ")
        return out + _notes(report.notes, ctx)


def _fill_values(report) -> None:
    """The byte values of the addressable bytes, read through gdb in bounded chunks."""
    inf = gdb.selected_inferior()
    chunk = 65536
    bs = report.byte_list
    for i in range(0, len(bs), chunk):
        part = bs[i:i + chunk]
        if all(b.vbits is None for b in part):
            continue
        try:
            data = bytes(inf.read_memory(part[0].address, len(part)))
        except (gdb.error, gdb.MemoryError):
            data = None
        for k, b in enumerate(part):
            if b.vbits is not None and data is not None:
                b.byte_value = data[k]
            elif b.vbits is not None:
                try:
                    b.byte_value = bytes(inf.read_memory(b.address, 1))[0]
                except (gdb.error, gdb.MemoryError):
                    b.byte_value = None


class VgCheck(_AddrLenCommand):
    summary = "Are these bytes addressable or defined?"
    usage = """\
vg-check ADDR LEN [addressable|defined] [--json]"""
    description = """\
Says whether the range passes, the first bad byte, and what ADDR is (heap
block with its allocation stack, global, stack frame).  ADDR and LEN are gdb
expressions; a function name is its address (vg-check main 4).  Default
check: addressable (valgrind's default)."""
    examples = ('vg-check g_buf 64 defined', 'vg-check &g_static sizeof(g_static) defined')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-check"
    purpose = "check_memory"
    default_len = None

    def build_parser(self):
        p = super().build_parser()
        p.add_argument("check", nargs="?", choices=["addressable", "defined"], default="addressable")
        return p

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.memory_reports import parse_check_memory

        addr, length = self.address_range(args)
        text = gs.monitor(f"check_memory {args.check} 0x{addr:x} {length}", self.name)
        report = parse_check_memory(text, args.check, addr, length, gs.code_map(gs.connection_pid()))
        report.pid = gs.connection_pid()
        if not text.strip() or (not report.ok and report.first_bad_address is None and not report.location):
            raise ToolkitError(f"vg-check: valgrind gave no verdict: {text.strip()[:120] or 'no output'}",
                               "check the address and length")
        report.notes = list(report.messages)
        if gs.in_syscall():
            report.notes.append(gs.SYSCALL_WARNING)
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.text import key_values

        verdict = f"{report.size} bytes at 0x{report.address:x} are " + \
            ("" if report.ok else "NOT ") + report.check
        pairs = [("result", verdict, "good" if report.ok else "bad")]     # a verdict: its state colour
        if report.first_bad_address is not None:
            pairs.append(("first bad byte", f"0x{report.first_bad_address:x} "
                                            f"(offset {report.first_bad_address - report.address})"))
        if report.location:
            pairs.append(("address is", report.location.holder()))
            if report.location.stack:
                what = "allocated" if report.location.kind in ("heap_block", "freed_block") else "code"
                pairs.append((what, " <- ".join(f.label() for f in report.location.stack)))
        return key_values(pairs, ctx.width, ctx.styler) + _notes(report.notes, ctx)


class VgErrors(ToolkitCommand):
    summary = "The memcheck errors found so far"
    usage = """\
vg-errors [--top N] [--json]"""
    description = """\
Each error with its own stack, where the block was freed and allocated
(use after free, double free) and, under --track-origins=yes, where the
uninitialised value came from -- each kept apart (helgrind/drd: their further
stacks too).  Also names forked or exec'd children of this valgrind that wait
for a debugger (--vgdb-error is inherited), read from /proc without resuming them.
The error contexts valgrind lists (with -s or -v) are shown most frequent
first, the first N (--top, default 20; 0: all; --json has all); it says when
valgrind has stopped recording errors at its --error-limit."""
    examples = ('vg-errors', 'vg-errors --top 0')
    category = "valgrind"
    json_hex_addresses = True

    name = "vg-errors"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "the errors found so far")
        p.add_argument("--top", type=parse_int, default=20, metavar="N",
                       help="error contexts listed, most frequent first (default 20; 0: all)")
        return p

    def run(self, args):
        from gdb_toolkit.common.args import check_int_option
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.error_reports import ErrorsReport, parse_errors, parse_n_errs_found

        check_int_option("--top", args.top, 0, 1000000, "0: all")
        pid = gs.require_connection(self.name)
        cm = gs.code_map(pid)
        counts = parse_n_errs_found(gs.monitor("v.info n_errs_found", self.name, pid=pid))
        listed = parse_errors(gs.monitor("v.info all_errors", self.name, allow_empty=True, pid=pid), cm)
        last = parse_errors(gs.monitor("v.info last_error", self.name, allow_empty=True, pid=pid), cm).errors
        s = gs.session(pid)
        notes = []
        if listed.summary and listed.summary.context_count > len(listed.errors):
            notes.append("valgrind lists each error context only when it runs with -s or -v, e.g. "
                         "'vg-start PROGRAM -- -s'; without, only the last error is shown")
        from gdb_toolkit.valgrind.error_reports import error_limit_note
        from gdb_toolkit.valgrind.vgdb_processes import parse_cmdline, process_info

        limit = error_limit_note(counts, parse_cmdline(process_info(pid)[2])[0])
        if limit:
            notes.append(limit)
        # most frequent first (valgrind lists them least frequent first); ties keep its order
        errors = sorted(listed.errors, key=lambda e: -(e.count or 0))
        return ErrorsReport(pid, counts, listed.summary, errors, last[0] if last else None,
                            s.last_error_stop, gs.waiting_children(s), notes,
                            text_top=args.top or None)

    def render(self, report, ctx):
        from gdb_toolkit.common.text import key_values, wrap

        c = report.counts
        pairs = [("valgrind pid", report.pid),
                 ("errors found", f"{c.found} (shown {c.shown}; stops at error >= {c.vgdb_error})" if c else "?")]
        if report.error_summary:
            s = report.error_summary
            pairs.append(("error summary", f"{s.error_count} errors from {s.context_count} contexts "
                                           f"(suppressed {s.suppressed_count} from {s.suppressed_context_count})"))
        out = key_values(pairs, ctx.width, ctx.styler)
        shown = report.errors[:report.text_top] if report.text_top else report.errors
        if shown:
            out += wrap(f"error contexts, most frequent first ({len(shown)} of {len(report.errors)}):",
                        ctx.width, "", "    ")
        for e in shown:
            times = f"{e.count:,} x " if e.count is not None else ""
            out += wrap(times + e.one_line(), ctx.width, "  ", "    ")
        if len(shown) < len(report.errors):
            rest = report.errors[len(shown):]
            out += wrap(f"... {len(rest)} more contexts ({sum(e.count or 0 for e in rest):,} errors): "
                        "'vg-errors --top 0' lists them all, --json has every one", ctx.width, "  ", "    ")
        out += _notes(report.notes, ctx)
        if report.last_error:
            e = report.last_error
            out += wrap(f"last error: {e.one_line()}", ctx.width, "", "    ")
            out += _frame_lines(e.stack, ctx)
            if e.location is not None:
                out += wrap(e.location.description, ctx.width, "  ", "    ")
                if e.location.free_stack:
                    out += "  freed at:\n" + _frame_lines(e.location.free_stack, ctx)
                if e.location.stack:
                    out += "  allocated at:\n" + _frame_lines(e.location.stack, ctx)
            if e.origin is not None:
                out += wrap(f"{e.origin.what}:", ctx.width, "  ", "    ") + _frame_lines(e.origin.frames, ctx)
            for r in e.related:
                out += wrap(f"{r.what}:", ctx.width, "  ", "    ") + _frame_lines(r.frames, ctx)
        from gdb_toolkit.valgrind.waiting import describe

        for w in report.waiting_children:
            out += wrap(describe(w), ctx.width, "", "    ")
        return out


def _frame_lines(frames, ctx) -> str:
    """One stack frame a line ("at fn (file:line)"), a long one folded at spaces (a C++
    name or an object path stays whole)."""
    from gdb_toolkit.common.text import wrap, wrap_lines

    styler = ctx.styler
    if not getattr(styler, "enabled", False):
        return "".join(wrap(f"{f.kind} {f.label()}", ctx.width, "    ", "        ") for f in frames)
    # styled as gdb's backtrace styles a frame (function, file), after the layout: a name
    # wrapped across lines stays plain rather than styled in pieces
    from gdb_toolkit.common.names import printable_text

    out = []
    for f in frames:
        lines = wrap_lines(f"{f.kind} {f.label()}", ctx.width, "    ", "        ")
        head = f"    {f.kind} "
        sym = printable_text(f.symbol) if f.symbol else None
        if sym and lines[0].startswith(head + sym + " ") or lines[0] == head + (sym or ""):
            lines[0] = head + styler("symbol", sym) + lines[0][len(head) + len(sym):]
        where = f"({printable_text(f.where)})"
        role = "location" if f.file else "file" if f.object else "address"
        for k in range(len(lines) - 1, -1, -1):
            if lines[k].endswith(where):
                lines[k] = lines[k][:-len(where)] + "(" + styler(role, where[1:-1]) + ")"
                break
        out.extend(lines)
    return "\n".join(out) + "\n" if out else ""


COMMANDS = (VgStart, VgAttach, VgLeaks, VgWatch, VgWho, VgBlock, VgVbits, VgCheck, VgErrors)
