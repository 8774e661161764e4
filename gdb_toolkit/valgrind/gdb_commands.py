"""vg-* commands: memcheck through vgdb from inside gdb, with structured results."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _d(v: int | None) -> str:
    return "" if v is None else f" ({v:+,})"


def _expr_int(text: str) -> int:
    from gdb_toolkit.gdbsupport.facts import eval_int

    return eval_int(text)


def _expr_addr(text: str) -> int:
    from gdb_toolkit.gdbsupport.facts import eval_address

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
        return addr, length


class VgStart(ToolkitCommand):
    """Start PROGRAM under valgrind memcheck with vgdb and connect gdb to it.

Usage: vg-start [--main] [--stdin FILE] [--stdout FILE] [--tty DEV] [--log FILE]
                [--timeout SEC] [--json] PROGRAM [ARGS...] [-- VALGRIND-OPTIONS]

Runs valgrind --tool=memcheck --vgdb=yes --vgdb-error=0 [VALGRIND-OPTIONS]
PROGRAM ARGS (every word after PROGRAM is its argument, "-p 8080" too; only
a final --json is vg-start's), waits for its vgdb FIFO, loads PROGRAM's
symbols and connects with "target remote | vgdb --pid=N".  The program stops
at its first instruction (--main: at main).  Its stdout/stderr go to gdb's terminal (or
--stdout FILE / --tty DEV); its stdin is /dev/null (or --stdin FILE / --tty).
valgrind's own messages go to --log FILE (default $TMPDIR/vg-toolkit-PID.log).
gdb's inferior pid over vgdb is a placeholder; the report gives the real
valgrind pid.  Memcheck errors stop the program; vg-start then says which.

Example:
  (gdb) vg-start --main ./memleakloop
  (gdb) vg-start ./server 8080 -- --leak-check=full --track-origins=yes"""

    name = "vg-start"
    value_completer = gdb.COMPLETE_FILENAME

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "start PROGRAM under valgrind and connect")
        p.add_argument("--main", action="store_true", help="run to main after connecting")
        p.add_argument("--stdin", default="/dev/null", help="program's stdin (default /dev/null)")
        p.add_argument("--stdout", help="program's stdout+stderr file (default: gdb's terminal)")
        p.add_argument("--tty", help="terminal device for the program's stdin/stdout/stderr")
        p.add_argument("--log", help="valgrind's log file (default $TMPDIR/vg-toolkit-PID.log)")
        p.add_argument("--timeout", type=_positive_seconds, default=30.0, help="seconds to wait for vgdb")
        p.add_argument("program", help="program to run")
        p.add_argument("args", nargs="*", default=[], help="program arguments")
        return p

    def invoke(self, argument, from_tty):
        # split off "-- VALGRIND-OPTIONS" and PROGRAM's own ARGS before argparse sees them
        from gdb_toolkit.valgrind.launch import split_program_args, split_user_args

        argv = gdb.string_to_argv(argument)
        ours, vg_opts = split_user_args(argv)
        ours, self._prog_args = split_program_args(
            ours, {"--stdin", "--stdout", "--tty", "--log", "--timeout"})
        # --json/--help after "--" are ours (valgrind has neither)
        ours += [o for o in vg_opts if o in ("--json", "--help", "-h")]
        self._vg_opts = [o for o in vg_opts if o not in ("--json", "--help", "-h")]
        return super().invoke(" ".join(_quote(a) for a in ours), from_tty)

    def run(self, args):
        import os
        import shutil
        import subprocess
        import tempfile
        import time

        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.launch import (StartReport, resolve_program, set_parent_death_signal,
                                                 valgrind_argv, wait_for_fifo)
        from gdb_toolkit.valgrind.vgdb_processes import fifo_dir

        valgrind = shutil.which("valgrind")
        if not valgrind:
            raise ToolkitError("valgrind is not installed", "apt-get install valgrind")
        if gdb.selected_inferior().pid:
            raise ToolkitError("gdb is already debugging a process",
                               "detach, disconnect or kill it first (or use another inferior)")
        program = resolve_program(args.program)
        args.args = list(getattr(self, "_prog_args", args.args))
        tmp = tempfile.gettempdir()
        log_template = args.log or os.path.join(tmp, "vg-toolkit-%p.log")
        argv = valgrind_argv(valgrind, program, args.args, getattr(self, "_vg_opts", []), log_template)
        stdin_path = args.tty or args.stdin
        try:
            stdin = open(stdin_path, "rb")
            stdout = open(args.tty or args.stdout, "ab") if (args.tty or args.stdout) else None
        except OSError as exc:
            raise ToolkitError(f"cannot open {exc.filename}: {exc.strerror}", "give another file") from None
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stdout,
                                    start_new_session=True, close_fds=True,
                                    preexec_fn=set_parent_death_signal)
        finally:
            stdin.close()
            if stdout is not None:
                stdout.close()
        log_file = log_template.replace("%p", str(proc.pid))
        s = gs.session(proc.pid)
        s.update(popen=proc, log_file=log_file, program=program)
        try:
            wait_for_fifo(proc, fifo_dir(), args.timeout, log_file)
            gs.connect(proc.pid, program, os.path.join(tmp, f"vg-toolkit-vgdb-{proc.pid}.err"))
            if args.main:
                note = _run_to_main(program, s)
        except BaseException:
            if gs.connection_pid() == proc.pid:
                try:
                    gdb.execute("kill", to_string=True)
                except gdb.error:
                    pass
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            from gdb_toolkit.valgrind.vgdb_processes import remove_stale_fifos

            remove_stale_fifos(proc.pid)
            # a valgrind that vg-start gave up on is no session: later commands say "not
            # connected", not "the program exited (status 0)"
            dropped = gs.SESSIONS.pop(proc.pid, {})
            if dropped.get("vgdb_log"):
                try:
                    os.unlink(dropped["vgdb_log"])
                except OSError:
                    pass
            raise
        seconds = time.monotonic() - t0
        where = gs.where_stopped()
        return StartReport(proc.pid, program, list(args.args), argv, log_file, stdin_path,
                           args.tty or args.stdout or "gdb's terminal (inherited)",
                           s.get("vgdb_log", ""), where, bool(args.main), round(seconds, 3),
                           note if args.main else None)

    def render(self, report, ctx):
        from gdb_toolkit.common.render import key_values

        return key_values([
            ("valgrind pid", f"{report.valgrind_pid} (gdb's inferior pid over vgdb is a placeholder)"),
            ("program", " ".join([report.program, *report.arguments])),
            ("stopped at", report.stopped_at),
            ("note", report.note),
            ("program stdin", report.program_stdin),
            ("program stdout", report.program_stdout),
            ("valgrind log", report.log_file),
            ("command", " ".join(report.valgrind_command)),
            ("connected in", f"{report.seconds:.2f} s"),
        ]) + "next: 'continue', Ctrl-C, then 'vg-leaks' / 'vg-errors'\n"


def _run_to_main(program: str, s: dict) -> str | None:
    """vg-start --main: continue to a temporary breakpoint on main, removed whatever happens.

    Returns None at main, else why the program stopped elsewhere (the stop
    hook's text is captured with the 'continue' output, so it is reported here).
    """
    import re

    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.valgrind import gdb_session as gs

    try:
        gdb.execute("info address main", to_string=True)
    except gdb.error:
        raise ToolkitError(f"--main: {program} has no symbol 'main' (stripped?)",
                           "run vg-start without --main, then 'break' on an address") from None
    before = s.get("errors_seen", 0)
    number = None
    try:
        with gs.quiet_stops():
            out = gdb.execute("tbreak main", to_string=True)
            m = re.search(r"reakpoint (\d+)", out)
            number = int(m.group(1)) if m else None
            gdb.execute("continue", to_string=True)
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
    if s.get("errors_seen", 0) > before:
        return (f"stopped on memcheck error #{s['errors_seen']} before main: "
                f"{s.get('last_error_stop') or 'see vg-errors'}; 'break main' and 'continue' to get there")
    return "stopped before main (not at the temporary breakpoint)"


def _positive_seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _quote(a: str) -> str:
    if a and all(c.isalnum() or c in "-_./=:,+%@" for c in a):
        return a
    return "'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'"



class VgAttach(ToolkitCommand):
    """Connect gdb to a running valgrind process (vgdb); with no PID, list them.

Usage: vg-attach [PID] [--json]

Live valgrind gdbservers are found from their vgdb FIFOs
($TMPDIR/vgdb-pipe-from-vgdb-to-PID-*); FIFOs left by killed processes are
ignored.  With one live process it is chosen; with several, the list is
printed and you choose with vg-attach PID.  PROGRAM's symbols are loaded
from the process's command line when gdb has no file.

Example:
  (gdb) vg-attach
  (gdb) vg-attach 12345"""

    name = "vg-attach"

    def complete(self, text, word):
        if word is None or (text.split() and text.split()[-1].startswith("-")):
            return super().complete(text, word)
        from gdb_toolkit.valgrind.vgdb_processes import list_processes

        return [str(p.pid) for p in list_processes() if str(p.pid).startswith(word or "")]

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "connect to a running valgrind")
        p.add_argument("pid", nargs="?", type=parse_int, help="valgrind process id")
        return p

    def run(self, args):
        import os
        import tempfile

        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.vgdb_processes import AttachReport, choose, list_processes

        if gdb.selected_inferior().pid:
            raise ToolkitError("gdb is already debugging a process", "detach or disconnect first")
        every = list_processes(include_dead=True)
        live = [p for p in every if p.alive]
        stale = [p.pid for p in every if not p.alive]
        chosen = choose(live, args.pid)
        if chosen is None:
            if args.pid is not None:
                raise ToolkitError(f"no live valgrind gdbserver with pid {args.pid}"
                                   + (" (only a stale FIFO of a dead process)" if args.pid in stale else ""),
                                   "run vg-attach with no PID to list them; start valgrind with --vgdb=yes")
            if not live:
                raise ToolkitError("no running valgrind process with a vgdb FIFO"
                                   + (f" (ignored stale FIFOs of dead pids {', '.join(map(str, stale))})"
                                      if stale else ""),
                                   "start one with vg-start PROGRAM, or run valgrind --vgdb=yes PROGRAM")
            return AttachReport(False, None, None, live, stale,
                                message="several valgrind processes: choose one with vg-attach PID")
        program = gdb.current_progspace().filename
        if not program and chosen.program and os.path.exists(chosen.program):
            program = chosen.program
        message = None
        if program and chosen.program and os.path.exists(chosen.program) and \
                os.path.realpath(program) != os.path.realpath(chosen.program):
            message = (f"gdb's file {program} is not the program valgrind runs ({chosen.program}): "
                       f"symbols may be wrong; 'file {chosen.program}' loads the right ones")
        gs.connect(chosen.pid, program,
                   os.path.join(tempfile.gettempdir(), f"vg-toolkit-vgdb-{chosen.pid}.err"),
                   probe=True)
        return AttachReport(True, chosen.pid, program, live, stale, gs.where_stopped(), message)

    def render(self, report, ctx):
        from gdb_toolkit.common.render import key_values, table

        if report.connected:
            text = key_values([("connected to valgrind pid", report.pid), ("program", report.program),
                               ("stopped at", report.stopped_at)])
            if report.message:
                text += f"warning: {report.message}\n"
        else:
            rows = [[p.pid, p.tool or "?", " ".join([p.program or "?", *p.arguments]),
                     " ".join(p.valgrind_options)] for p in report.processes]
            text = table(["pid", "tool", "program", "valgrind options"], rows, width=ctx.width,
                         title=report.message)
        if report.stale_fifos:
            text += f"ignored stale vgdb FIFOs of dead pids: {', '.join(map(str, report.stale_fifos))}\n"
        return text


class VgLeaks(ToolkitCommand):
    """Run memcheck's leak check now and show the loss records as a sorted table.

Usage: vg-leaks [full|summary] [--kinds K1,K2] [--delta increased|changed]
                [--min-bytes N] [--top N] [--json]

Runs "monitor leak_check" on the connected valgrind, parses every loss record
(bytes direct+indirect with deltas, blocks, kind, record number, allocation
stack) and the LEAK SUMMARY, and prints the records largest first with the
allocating frame that belongs to the program (malloc/valgrind/libc frames
skipped).  Kinds: definite, indirect, possible, reachable (default all).
--delta shows only records that grew (increased) or changed since the
previous leak search.  Totals are computed from the records when they are
complete (valgrind 3.19 prints a wrong summary with "limited N").

Example:
  (gdb) vg-leaks
  (gdb) vg-leaks --kinds definite --top 5
  (gdb) vg-leaks --delta increased"""

    name = "vg-leaks"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "leak check with parsed loss records")
        p.add_argument("mode", nargs="?", choices=["full", "summary"], default="full")
        p.add_argument("--kinds", help="definite,indirect,possible,reachable (default all)")
        p.add_argument("--delta", choices=["increased", "changed"], help="only what grew/changed")
        p.add_argument("--min-bytes", type=parse_int, help="hide records smaller than N bytes")
        p.add_argument("--top", type=parse_int, help="show only the N largest records")
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
        if args.top is not None and args.top <= 0:
            raise ToolkitError("vg-leaks: --top must be positive", "e.g. --top 10")
        pid = gs.require_connection(self.name)
        all_kinds = set(kinds) == set(KINDS)
        use_limited = (args.mode == "full" and args.top is not None and args.delta is None
                       and args.min_bytes is None)
        cmd = monitor_leak_command(args.mode, kinds, args.delta, args.top if use_limited else None)
        text = gs.monitor(cmd, self.name, allow_empty=True)
        why = explain_empty_output(text, cmd)
        if why:
            raise ToolkitError(f"vg-leaks: {why}",
                               "run 'monitor v.set gdb_output' (after log_output), or restart valgrind "
                               "without -q; 'vg-leaks full' still lists records under -q")
        parsed = parse_leak_check(text, full_stacks=bool(args.json))
        if not parsed.records and parsed.summary is None and (args.mode == "summary" or parsed.notes):
            raise ToolkitError(f"vg-leaks: valgrind did not run a leak check: "
                               f"{' '.join(parsed.notes)[:200] or 'no records, no summary'}",
                               "the vg-* commands need valgrind's memcheck tool (--tool=memcheck)")
        extra = None
        if use_limited:
            extra = parse_leak_check(gs.monitor(monitor_leak_command("summary", list(KINDS), None),
                                                self.name, allow_empty=True))
        s = gs.session(pid if pid > 0 else (parsed.pid or pid))
        complete = args.mode == "full" and all_kinds and args.delta is None and not use_limited
        report = build_report(parsed, mode=args.mode, monitor_command=f"monitor {cmd}", kinds=kinds,
                              delta=args.delta, min_bytes=args.min_bytes, top=args.top,
                              complete=complete, previous_totals=s.get("leak_totals"),
                              extra_summary=extra, with_stacks=bool(args.json))
        if parsed.summary is None and args.mode == "full" and not (extra and extra.summary):
            if complete:
                report.warnings.append("valgrind printed no LEAK SUMMARY (it runs with -q?); "
                                       "totals computed from the records shown")
                if not report.totals:
                    from gdb_toolkit.valgrind.leak_view import totals_from_records

                    report.totals = totals_from_records(parsed.records)
                    report.totals_source = "records"
            elif not report.totals:
                # --top/--kinds/--delta listed only some records: totals from them would be wrong
                report.warnings.append("valgrind printed no LEAK SUMMARY (it runs with -q?) and only "
                                       "some loss records were listed: no totals (plain 'vg-leaks' "
                                       "computes them from all records)")
        if report.totals and all_kinds:
            s["leak_totals"] = {k: t.bytes for k, t in report.totals.items()}
        if s.pop("hidden_search", False) and args.delta:
            report.warnings.append("vg-block ran a leak search since the previous vg-leaks: the record "
                                   "deltas are relative to that search")
        if args.mode == "full" and parsed.total_records:
            s["records_total"] = parsed.total_records
        return report

    def render(self, report, ctx):
        from gdb_toolkit.valgrind.text_table import table

        head = f"valgrind pid {report.pid}: {report.monitor_command}\n"
        if report.mode == "full":
            head += (f"{report.records_total or 0} loss records, {report.records_matched} matched, "
                     f"{len(report.records)} shown\n")
        out = head
        if report.records:
            rows = [[r.record, r.kind, _n(r.bytes) + _d(r.bytes_delta),
                     (f"{_n(r.direct_bytes)}+{_n(r.indirect_bytes)}" if r.indirect_bytes else ""),
                     _n(r.blocks) + _d(r.blocks_delta), r.function or "???", r.location or ""]
                    for r in report.records]
            out += table(["rec", "kind", "bytes", "direct+indirect", "blocks", "allocated in", "at"],
                         rows, width=ctx.width)
        elif report.mode == "full":
            out += "no loss record matches\n"
        if report.totals:
            parts = []
            for k, t in report.totals.items():
                grow = ""
                if report.totals_delta is not None and report.totals_delta.get(k):
                    grow = f" ({report.totals_delta[k]:+,} since last vg-leaks)"
                parts.append(f"  {k:<10} {t.bytes:>12,} bytes in {t.blocks:,} blocks{grow}")
            out += f"totals ({report.totals_source}):\n" + "\n".join(parts) + "\n"
        for w in report.warnings:
            out += f"warning: {w}\n"
        return out


class VgWho(_AddrLenCommand):
    """Show who points at ADDR (memcheck who_points_at), parsed.

Usage: vg-who ADDR [LEN] [--json]

ADDR and LEN are gdb expressions (g_buf, &g_holder, sizeof(buf)).  Each
pointer found is listed with its own address and what holds it: a global
data symbol, a stack frame of a thread, a register, or a heap block with its
allocation stack.  With LEN > 1 interior pointers are shown too.

Example:
  (gdb) vg-who g_buf
  (gdb) vg-who g_buf 64"""

    name = "vg-who"
    purpose = "who points at an address"

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.locations import parse_location_lines
        from gdb_toolkit.valgrind.memory_reports import parse_who_points_at

        addr, length = self.address_range(args)
        report = parse_who_points_at(gs.monitor(f"who_points_at 0x{addr:x} {length}", self.name))
        if report.address is None:
            raise ToolkitError(f"vg-who: valgrind refused: {' '.join(report.messages) or 'no output'}",
                               "give a heap or data address")
        loc_lines = gs.monitor(f"v.info location 0x{addr:x}", self.name).splitlines()
        idx = next((i for i, ln in enumerate(loc_lines) if "Address " in ln), None)
        report.target = parse_location_lines(loc_lines, idx)[0] if idx is not None else None
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.render import table

        target = getattr(report, "target", None)
        out = f"pointers to 0x{report.address:x}" + (f" (+{report.length} bytes)" if report.length > 1 else "")
        out += f": {target.holder()}\n" if target else "\n"
        rows = [["-" if p.at is None else f"0x{p.at:x}",
                 "start" if p.interior_offset is None else f"+{p.interior_offset}", p.holder]
                for p in report.pointers]
        out += table(["pointer at", "points to", "held by"], rows, width=ctx.width) if rows \
            else "no pointer found (a heap block with no pointer to it is leaked)\n"
        return out


class VgBlock(ToolkitCommand):
    """List the heap blocks of a loss record (block_list), or find the record of ADDR.

Usage: vg-block RECORD|ADDR [--json]

A plain decimal number is a loss record number from the last leak search
(vg-leaks); anything else is a gdb expression for an address inside a heap
block, whose loss record is found with a fresh leak search.

Example:
  (gdb) vg-block 3
  (gdb) vg-block g_psz1[0]"""

    name = "vg-block"
    value_completer = gdb.COMPLETE_EXPRESSION

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "blocks of a loss record")
        p.add_argument("target", help="loss record number or address expression")
        return p

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.leak_records import parse_leak_check
        from gdb_toolkit.valgrind.leak_view import build_report

        pid = gs.require_connection(self.name)
        sess = gs.session(pid)
        warnings = []
        if args.target.isdigit():
            record, addr = int(args.target), None
            text = gs.monitor(f"block_list {record}", self.name)
            parsed = parse_leak_check(text)
            if not parsed.records:
                raise ToolkitError(f"vg-block: no loss record {record}: "
                                   f"{' '.join(parsed.notes) or 'no output'}",
                                   "run vg-leaks first and use a record number it shows")
        else:
            addr = _expr_addr(args.target)

            def blocks_holding(n):
                got = parse_leak_check(gs.monitor(f"block_list 1..{n}", self.name, allow_empty=True))
                return got, [r for r in got.records
                             if any(b.address <= addr < b.address + max(b.size, 1) for b in r.block_list)]

            # first the records of the last leak search: a new search would move valgrind's
            # baseline, and the next 'vg-leaks --delta' would no longer show what grew
            def still_that_block(rec) -> bool:
                """The block the last search listed is the one at ADDR now (not freed and reused)."""
                from gdb_toolkit.valgrind.locations import parse_location_lines

                lines = gs.monitor(f"v.info location 0x{addr:x}", self.name, allow_empty=True).splitlines()
                idx = next((i for i, ln in enumerate(lines) if "Address " in ln), None)
                loc = parse_location_lines(lines, idx)[0] if idx is not None else None
                if loc is None or loc.kind != "heap_block" or loc.relation != "inside":
                    return False
                blk = next(b for b in rec.block_list if b.address <= addr < b.address + max(b.size, 1))
                now, then = loc.allocated_at, rec.program_frame
                return (addr - (loc.offset or 0), loc.block_size) == (blk.address, blk.size) and \
                    (now.label() if now else None) == (then.label() if then else None)

            hit = []
            if sess.get("records_total"):
                parsed, hit = blocks_holding(sess["records_total"])
                if hit and not still_that_block(hit[0]):
                    hit = []
            if not hit:
                first = parse_leak_check(gs.monitor("leak_check full kinds all any limited 1", self.name,
                                                    allow_empty=True))
                if not first.total_records:
                    raise ToolkitError("vg-block: no heap blocks in use", "allocate something first")
                sess["records_total"] = first.total_records
                sess["hidden_search"] = True
                warnings.append("ran a new leak search to find the block: the next 'vg-leaks --delta' "
                                "compares with this search, not with the last vg-leaks")
                parsed, hit = blocks_holding(first.total_records)
            if not hit:
                raise ToolkitError(f"vg-block: 0x{addr:x} is not inside a heap block in use",
                                   "give the address of a malloc'd block (vg-who describes any address)")
            parsed.records = hit
        report = build_report(parsed, mode="full", monitor_command="monitor block_list", kinds=
                              ["definite", "indirect", "possible", "reachable"], delta=None,
                              min_bytes=None, top=None, complete=False)
        report.totals = {}
        report.totals_source = "none"
        report.address = addr
        report.warnings = warnings
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.render import table

        out = ""
        for r in report.records:
            out += (f"loss record {r.record}: {_n(r.bytes)} bytes in {_n(r.blocks)} blocks, {r.kind}, "
                    f"allocated in {r.function or '???'} ({r.location or '?'})\n")
            blocks = r.block_list
            rows = [[f"0x{b.address:x}", f"{b.size:,}",
                     " ".join(x for x in (b.note, "<- contains 0x%x" % report.address
                                          if report.address is not None
                                          and b.address <= report.address < b.address + max(b.size, 1)
                                          else "") if x)]
                    for b in blocks]
            out += table(["block", "size", "note"], rows, width=ctx.width)
        for w in report.warnings:
            out += f"warning: {w}\n"
        return out


class VgVbits(_AddrLenCommand):
    """Show memcheck's validity bits for LEN bytes at ADDR as a table.

Usage: vg-vbits ADDR [LEN] [--json]

Runs "monitor xb ADDR LEN" and shows, 8 bytes per row, the values, the
validity bits (00 = defined, ff = undefined) and a mark per byte:
D defined, U undefined, u partly defined, - unaddressable.  ADDR and LEN are
gdb expressions.  Read-only: nothing in the target is changed.

Example:
  (gdb) vg-vbits g_buf 24
  (gdb) vg-vbits &local sizeof(local)"""

    name = "vg-vbits"
    purpose = "validity bits"
    default_len = "8"
    max_len = 1 << 20

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.memory_reports import parse_xb

        addr, length = self.address_range(args)
        text = gs.monitor(f"xb 0x{addr:x} {length}", self.name)
        report = parse_xb(text, addr, length)
        if not report.bytes:
            raise ToolkitError(f"vg-vbits: valgrind printed no validity bits: {text.strip()[:120]}",
                               "check the address")
        report.warnings = [gs.SYSCALL_WARNING] if gs.in_syscall() else []
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.render import table

        mark = {"defined": "D", "undefined": "U", "partly defined": "u", "unaddressable": "-"}
        rows = []
        for i in range(0, len(report.bytes), 8):
            chunk = report.bytes[i:i + 8]
            rows.append([f"0x{chunk[0].address:x}",
                         " ".join("??" if b.value is None else f"{b.value:02x}" for b in chunk),
                         " ".join("__" if b.vbits is None else f"{b.vbits:02x}" for b in chunk),
                         "".join(mark[b.state] for b in chunk)])
        out = table(["address", "values", "vbits", "DUu-"], rows, width=ctx.width)
        out += (f"{report.length} bytes: {report.length - report.undefined - report.unaddressable - report.partly_defined}"
                f" defined, {report.undefined} undefined, {report.partly_defined} partly defined, "
                f"{report.unaddressable} unaddressable\n")
        for w in getattr(report, "warnings", []):
            out += f"warning: {w}\n"
        return out


class VgCheck(_AddrLenCommand):
    """Check that LEN bytes at ADDR are addressable or defined (check_memory).

Usage: vg-check ADDR LEN [addressable|defined] [--json]

Says whether the range passes, the first bad byte, and what ADDR is (heap
block with its allocation stack, global, stack frame).  ADDR and LEN are gdb
expressions.  Default check: addressable (valgrind's default).

Example:
  (gdb) vg-check g_buf 64 defined
  (gdb) vg-check &g_static sizeof(g_static) defined"""

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
        report = parse_check_memory(text, args.check, addr, length)
        if not text.strip() or (not report.ok and report.first_bad is None and not report.location):
            raise ToolkitError(f"vg-check: valgrind gave no verdict: {text.strip()[:120] or 'no output'}",
                               "check the address and length")
        report.warnings = [gs.SYSCALL_WARNING] if gs.in_syscall() else []
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.render import key_values

        verdict = f"{report.length} bytes at 0x{report.address:x} are " + \
            ("" if report.ok else "NOT ") + report.check
        pairs = [("result", verdict)]
        if report.first_bad is not None:
            pairs.append(("first bad byte", f"0x{report.first_bad:x} (offset {report.first_bad - report.address})"))
        if report.location:
            pairs.append(("address is", report.location.holder()))
            if report.location.stack:
                pairs.append(("allocated", " <- ".join(f.label() for f in report.location.stack)))
        out = key_values(pairs)
        for w in getattr(report, "warnings", []):
            out += f"warning: {w}\n"
        return out


class VgErrors(ToolkitCommand):
    """Show the memcheck errors found so far (v.info n_errs_found/all_errors/last_error).

Usage: vg-errors [--json]

Example:
  (gdb) vg-errors"""

    name = "vg-errors"

    def run(self, args):


        from gdb_toolkit.valgrind import gdb_session as gs
        from gdb_toolkit.valgrind.error_reports import parse_errors, parse_n_errs_found

        pid = gs.require_connection(self.name)
        counts = parse_n_errs_found(gs.monitor("v.info n_errs_found", self.name))
        listed = parse_errors(gs.monitor("v.info all_errors", self.name, allow_empty=True))
        last = parse_errors(gs.monitor("v.info last_error", self.name, allow_empty=True)).errors
        from gdb_toolkit.valgrind.error_reports import ErrorsReport

        return ErrorsReport(pid, counts, listed.summary, listed.errors, last[0] if last else None,
                            gs.session(pid).get("last_error_stop"))

    def render(self, report, ctx):
        from gdb_toolkit.common.render import key_values

        c = report.counts
        pairs = [("valgrind pid", report.pid),
                 ("errors found", f"{c.found} (shown {c.shown}; stops at error >= {c.vgdb_error})" if c else "?")]
        if report.summary:
            s = report.summary
            pairs.append(("error summary", f"{s.errors} errors from {s.contexts} contexts "
                                           f"(suppressed {s.suppressed} from {s.suppressed_contexts})"))
        out = key_values(pairs)
        for e in report.errors:
            out += f"  {e.one_line()}\n"
        if report.summary and report.summary.contexts > len(report.errors):
            out += ("(valgrind lists each error context only when it runs with -s or -v, e.g. "
                    "'vg-start PROGRAM -- -s'; without, only the last error is shown)\n")
        if report.last_error:
            out += f"last error: {report.last_error.one_line()}\n"
            for f in report.last_error.stack:
                out += f"    {f.kind} {f.label()}\n"
        return out


def register():
    return [VgStart(), VgAttach(), VgLeaks(), VgWho(), VgBlock(), VgVbits(), VgCheck(), VgErrors()]
