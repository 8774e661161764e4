"""gdb commands: ktrace (BPF worker), ktask (task_struct via kernel memory + BTF), ktypes
(BTF -> gdb types).  Facts from gdb, decisions in the pure modules of this package."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand

#: the convenience variables these commands set (listed by 'toolkit commands')
CONVENIENCE_VARIABLES = {
    "$ktask": "task_struct of the last ktrace event, or the task ktask found",
    "$kretval": "return value of the last ktrace --ret event",
    "$kevents": "number of events the last ktrace collected",
}

# the one background ktrace session (async mode: armed, inferior continued by the user)
_state = {"session": None, "report": None, "shown": 0, "hooked": False}


def _task_type():
    """``struct task_struct *`` if gdb knows the struct (vmlinux debug info or ktypes), else None."""
    try:
        t = gdb.lookup_type("struct task_struct")
        if t.fields():
            return t.pointer()
    except (gdb.error, RuntimeError):
        pass
    return None


def set_task_var(addr: int) -> bool:
    """$ktask = addr, typed ``struct task_struct *`` when gdb knows the type.  With no file
    loaded gdb's architecture is i386 (4-byte pointers and longs): then $ktask is an
    ``unsigned long long`` so the kernel address keeps its top 32 bits."""
    ptr = _task_type()
    value = gdb.Value(addr & ((1 << 64) - 1)).cast(gdb.lookup_type("unsigned long long"))
    if ptr is not None and ptr.sizeof >= 8:
        gdb.set_convenience_variable("ktask", value.cast(ptr))
        return True
    void_p = gdb.lookup_type("void").pointer()
    gdb.set_convenience_variable("ktask", value.cast(void_p) if void_p.sizeof >= 8 else value)
    return False


#: at a stop, at most this many new events are printed one per line (the rest are counted)
STOP_LINES = 20


def _set_vars(events, total: int | None = None) -> dict:
    """$kevents (every event received, kept or not), $ktask and $kretval (the last one)."""
    total = len(events) if total is None else total
    shown = {"kevents": str(total)}
    gdb.set_convenience_variable("kevents", total)
    if events:
        last = events[-1]
        typed = set_task_var(last.task)
        shown["ktask"] = f"({'struct task_struct *' if typed else 'void *'}) 0x{last.task:x}"
        if last.retval is not None:
            gdb.set_convenience_variable("kretval", int(last.retval))
            shown["kretval"] = str(last.retval)
    return shown


def _followed_note(traced: int | None) -> str | None:
    """What to say when gdb now debugs another process than the traced one: it followed a fork
    (follow-fork-mode child) or another inferior is selected.  The trace filters on the pid it
    was armed for, so the process at hand has no events and $ktask is not its task."""
    from gdb_toolkit.gdbsupport import facts

    now = facts.current_pid() if facts.target_kind() == "live" else None
    if not traced or not now or now == traced:
        return None
    return (f"gdb now debugs process {now} (it followed a fork, or another inferior is selected); "
            f"ktrace traced process {traced} only: {now}'s events are not here and $ktask is "
            f"{traced}'s task. Trace it with ktrace ... --pid {now}, or keep gdb on the traced "
            "process (set follow-fork-mode parent)")


def _report(session, spec, state, stop_reason=""):
    from gdb_toolkit.ktrace.report import KtraceReport

    a = session.armed
    kept = session.collected
    received = getattr(session, "received", len(kept))
    notes = list(a.notes)
    followed = _followed_note(spec.pid) if state == "done" and spec.pid else None
    if followed:
        notes.append(followed)
    if received > len(kept):
        notes.append(f"kept the last {len(kept)} of {received} events (gdb's memory bound, "
                     f"GDB_TOOLKIT_KTRACE_KEEP); the {received - len(kept)} before them were "
                     "received and counted, not kept: narrow the trace (--pid, --count) to see them")
    return KtraceReport(spec.function, a.attach_method, a.traced_function, a.note, state, spec.pid,
                        kept, (session.end or {}).get("reason", ""), a.skipped, notes,
                        a.unavailable, a.programs, round(getattr(session, "armed_s", 0.0), 3),
                        stop_reason=stop_reason, loader=a.loader, warm=a.warm,
                        count=received)


def _stop_active(announce=False):
    session = _state.get("session")
    if session is None:
        return None
    _state["session"] = None
    session.stop()
    report = _report(session, session.spec, "done")
    report.convenience = _set_vars(report.events, report.count)
    return report


def _say(line: str) -> None:
    """One line of ktrace's progress (event lines, armed, ended): prose wrapped at gdb's width
    and written through the output guard (gdbsupport.command.write_text): a traced process
    names itself (prctl PR_SET_NAME), so its comm may hold ESC or CR."""
    from gdb_toolkit.common.text import wrap
    from gdb_toolkit.gdbsupport.command import RenderContext, write_text

    write_text(wrap(line, RenderContext.from_gdb().width, "", "    "))


def _on_stop(event):
    session = _state.get("session")
    if session is None:
        return
    session.settle(0.2, 1.0)
    events = session.collected
    received = session.received
    fresh = received - _state["shown"]             # events since the last stop (kept or not)
    _state["shown"] = received
    new = events[-min(fresh, len(events), STOP_LINES):] if fresh > 0 else []
    if new:
        shown = _set_vars(events, received)
        if fresh > len(new):
            _say(f"[ktrace] {fresh} new event(s); the last {len(new)}:")
        for e in new:       # the worker escapes comm (escape_name); the guard catches the rest
            _say(f"[ktrace] {e.comm} pid {e.pid} task 0x{e.task:x} args {e.args}"
                 + (f" retval {e.retval}" if e.retval is not None else ""))
        _say("[ktrace] " + ", ".join(f"${k} = {v}" for k, v in shown.items()))
    followed = _followed_note(session.spec.pid)
    if followed and not _state.get("followed_said"):
        _state["followed_said"] = True
        _say(f"[ktrace] note: {followed}")
    if not session.running:
        _say(f"[ktrace] tracing ended ({(session.end or {}).get('reason', 'stopped')})")
        _state["session"] = None


def _on_exit(event):
    if _state.get("session") is not None:
        report = _stop_active()
        if report is not None:
            _say(f"[ktrace] inferior exited: tracing stopped, {report.count} event(s)")


def _hook():
    if not _state["hooked"]:
        gdb.events.stop.connect(_on_stop)
        gdb.events.exited.connect(_on_exit)
        _state["hooked"] = True


class Ktrace(ToolkitCommand):
    name = "ktrace"
    summary = "Trace a kernel function; the task lands in $ktask"
    usage = """ktrace FUNC|tracepoint:CAT:NAME [--pid PID | --all [--include-gdb]] [--ret]
       [--args SPEC] [--capture FIELD]... [--stack] [--count N] [--timeout S] [--run]
       [--method kprobe|kfunc|tracepoint] [--no-fallback] [--json]
ktrace --stop"""
    description = """\
Attaches a BPF program to a kernel function (kprobe, or fentry) or a
tracepoint and reports each hit: the task, its pid and comm, the values asked
for, the return value.  The last event sets $ktask (its task_struct), $kretval
and $kevents.  The programs are assembled by the toolkit and loaded by a root
worker process that stays warm for the session (bcc compiles only fentry
programs); nothing stays attached after the trace.

The attach method is chosen automatically: kprobe/kretprobe, else fentry,
else a known fallback (the nearest traceable caller of an inlined function,
or a tracepoint on the same path); what was traced and why is reported.
--pid defaults to the inferior.  --all traces every process except gdb and
the worker (they read and write the events' pipe: tracing read paths with
them included feeds back into itself); --include-gdb keeps them.
--args takes NAME or NAME=EXPR (parameter names from BTF, argN, member paths
such as vma->vm_end, tracepoint fields, + and -, integers 16, 0x10, 0o20).
--capture reads task_struct members at event time (no /proc/kcore needed).
With a live inferior: --run arms, continues, and reports when it stops;
without --run the probe stays armed while you continue (ktrace --stop ends
it).  With no inferior, ktrace waits for --count/--timeout or Ctrl-C.
Enter does not repeat ktrace (it would arm again)."""
    examples = ("ktrace thp_get_unmapped_area --run",
                "ktrace acct_stack_growth --ret --args size --run",
                "ktrace tracepoint:syscalls:sys_enter_mmap --args len --count 1 --all",
                "ktrace vfs_read --all --timeout 5 --json")
    category = "ktrace"
    json_hex_addresses = True

    def complete(self, text, word):
        last = "" if not text or text[-1].isspace() else text.split()[-1]
        if last.startswith("-") or len(text.split()) > (1 if last else 0):
            return super().complete(text, word)
        if word is None:
            return []
        from gdb_toolkit.ktrace.names import complete_target

        cut = len(last) - len(word)
        return [c[cut:] for c in complete_target(last)]

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "trace a kernel function with bcc")
        p.add_argument("target", nargs="?", help="kernel function or tracepoint:CAT:NAME")
        p.add_argument("--pid", type=parse_int, help="only this process (default: the inferior)")
        p.add_argument("--all", action="store_true", help="every process (no pid filter)")
        p.add_argument("--include-gdb", action="store_true",
                       help="with --all: also trace gdb and the ktrace worker (left out by default: "
                            "they read and write the events' pipe)")
        p.add_argument("--ret", action="store_true", help="also the return value")
        p.add_argument("--args", action="append", default=[], help="NAME or NAME=EXPR, comma separated")
        p.add_argument("--stack", action="store_true", help="symbolized kernel stack per event")
        p.add_argument("--count", type=parse_int, help="stop after N events")
        p.add_argument("--timeout", type=float, help="stop after S seconds")
        p.add_argument("--run", action="store_true", help="arm, continue the inferior, report when it stops")
        p.add_argument("--capture", action="append", default=[], help="task_struct field read at event time")
        p.add_argument("--method", choices=["kprobe", "kfunc", "tracepoint"], help="force an attach method")
        p.add_argument("--no-fallback", action="store_true", help="trace only the function asked for")
        p.add_argument("--stop", action="store_true", help="stop the armed background trace and report")
        return p

    def run(self, args):
        import os
        import time

        from gdb_toolkit.common.errors import ToolkitError, UsageError
        from gdb_toolkit.gdbsupport import facts
        from gdb_toolkit.ktrace.api import TraceSpec, start
        from gdb_toolkit.ktrace.plan import split_target

        if args.stop:
            report = _stop_active()
            if report is None:
                raise ToolkitError("no ktrace is armed", "start one: ktrace FUNC")
            return report
        if not args.target:
            raise UsageError("ktrace: a kernel function or tracepoint:CAT:NAME is required",
                             self.parser.one_line_usage())
        split_target(args.target)                   # validate before spawning anything
        if args.pid is not None:
            if args.pid <= 0:
                raise ToolkitError(f"--pid {args.pid} is not a process id",
                                   "give a running process's pid (ps -e), or --all for every process")
            if not os.path.exists(f"/proc/{args.pid}"):
                raise ToolkitError(f"no process {args.pid}", "check the pid (ps -e): --pid filters "
                                   "on a running process")
        live = facts.target_kind() == "live"
        if args.run:
            facts.require_live_process("ktrace --run")
        pid = None if args.all else (args.pid or (facts.current_pid() if live else None))
        if args.pid and args.all:
            raise UsageError("ktrace: --pid and --all exclude each other", self.parser.one_line_usage())
        if (live and pid is not None and pid == facts.current_pid() and not args.run
                and (args.count or args.timeout)
                and not any(t.is_running() for t in gdb.selected_inferior().threads())):
            # waiting here keeps the process stopped: none of its threads can hit the probe
            # (an attached server waited out --timeout, or for ever with --count alone)
            raise ToolkitError(f"ktrace would wait for {args.target}'s events while gdb holds process "
                               f"{pid} stopped: none of its threads can reach it",
                               "add --run (ktrace continues it and interrupts it when the trace "
                               "ends), or leave out --count/--timeout to arm in the background, "
                               "then 'continue'")
        if _state.get("session") is not None:
            _stop_active()
            gdb.write("[ktrace] stopped the previous trace\n")
        spec = TraceSpec(args.target, pid=pid, ret=args.ret, args=list(args.args), stack=args.stack,
                         count=args.count, timeout=args.timeout,
                         fallbacks=[] if args.no_fallback else None, capture=list(args.capture),
                         method=args.method, include_self=args.include_gdb, caller_name="gdb")
        t0 = time.monotonic()
        session = start(spec, wait=False)
        try:
            session.wait_armed()
            session.armed_s = time.monotonic() - t0
        except BaseException:
            session.stop()
            raise
        inferior_traced = live and pid == facts.current_pid()
        if args.run:
            return self._run_mode(session, spec, quiet=args.json)
        if inferior_traced and not args.count and not args.timeout:
            _state.update(session=session, shown=0, followed_said=False)
            _hook()
            return _report(session, spec, "armed")
        # blocking: wait for count/timeout or Ctrl-C
        if not args.json:
            limits = [f"{args.count} event(s)" if args.count else "", f"{args.timeout:g} s" if args.timeout else ""]
            _say(f"[ktrace] armed ({session.armed.attach_method} on {session.armed.traced_function}); "
                 f"waiting for {' or '.join(l for l in limits if l) or 'Ctrl-C'}")
            gdb.flush()
        try:
            while not session.wait(0.1):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            session.stop()
        if session.error and not session.collected and session.end is None:
            raise session.error
        report = _report(session, spec, "done")
        report.convenience = _set_vars(report.events, report.count)
        return report

    def _run_mode(self, session, spec, quiet=False):
        stop = {}

        def on_stop(ev):
            if isinstance(ev, gdb.SignalEvent):
                stop["why"] = f"signal {ev.stop_signal}"
            elif isinstance(ev, gdb.BreakpointEvent):
                stop["why"] = "breakpoint " + ", ".join(str(b.number) for b in ev.breakpoints)
            else:
                stop["why"] = "stopped"

        def on_exit(ev):
            code = getattr(ev, "exit_code", None)
            stop["why"] = f"exited with code {code}" if code is not None else "exited"

        # --count/--timeout end the trace, but a server never stops by itself: when the trace
        # ends while 'continue' still runs, the program is interrupted (else --run waited for
        # Ctrl-C however long ago the count was reached)
        import threading

        state = {"continuing": True, "done": False}

        def interrupt():                        # gdb's thread (posted)
            if state["continuing"] and any(t.is_running() for t in gdb.selected_inferior().threads()):
                state["interrupted"] = True
                gdb.execute("interrupt")

        def watch():                            # no gdb call here but post_event
            while not session.wait(0.1):
                if state["done"]:
                    return
            if not state["done"]:
                gdb.post_event(interrupt)

        watcher = threading.Thread(target=watch, name="ktrace-run-watch", daemon=True)
        gdb.events.stop.connect(on_stop)
        gdb.events.exited.connect(on_exit)
        try:
            watcher.start()
            try:
                gdb.execute("continue", to_string=quiet)
            except gdb.error as exc:
                stop.setdefault("why", str(exc))
            state["continuing"] = False
            session.settle()
        finally:
            state["continuing"], state["done"] = False, True
            gdb.events.stop.disconnect(on_stop)
            gdb.events.exited.disconnect(on_exit)
            session.stop()
            watcher.join(1.0)
        if state.get("interrupted"):
            ended = (session.end or {}).get("reason") or "ended"
            stop["why"] = (f"interrupted by ktrace when the trace ended ({ended}; the SIGINT stop "
                           "gdb printed is that interrupt)")
        report = _report(session, spec, "done", stop.get("why", "stopped"))
        if session.error and not report.events and session.end is None:
            raise session.error
        report.convenience = _set_vars(report.events, report.count)
        return report

    def json_document(self, report) -> str:
        return super().json_document(report.for_json())

    def render(self, report, ctx):
        from gdb_toolkit.ktrace.report import render

        return render(report, ctx.width, ctx.styler)


def _seen_pid(report) -> int:
    """The pid /proc shows gdb: its own namespace's number in a container."""
    return report.namespace_pid or report.pid


class Ktask(ToolkitCommand):
    name = "ktask"
    summary = "Read a task_struct by pid or address, set $ktask"
    usage = ("ktask PID|ADDR|--thread [FIELD-PATH...] [--kcore PATH] [--kallsyms PATH | --system-map PATH] "
             "[--btf PATH] [--json]")
    description = """\
Finds a task_struct in kernel memory with no debug vmlinux: offsets come
from the kernel's BTF, memory from the kernel chosen with `kcore` -- the
running one (/proc/kcore), a vmcore (--kcore PATH, or `kcore PATH` first), or
the halted kernel behind gdb's `target remote` (QEMU's gdbstub, kgdb); a dump
or a halted kernel gives its own symbols and BTF.  With a PID it walks
init_task.tasks (then each thread group for a thread id); with an address
($ktask, 0xffff...) it reads it directly; with --thread it finds the task of
gdb's selected thread (its LWP: each thread has its own task_struct).  On
the running kernel the task's
pid and comm are checked against /proc/PID/comm.  FIELD-PATHs are
task_struct members as in C: comm, mm->mmap_base, signal->rlim[3].rlim_cur,
mm->get_unmapped_area (code pointers are named from kallsyms).  Where
/proc/kcore is missing use capture mode: ktrace FUNC --capture FIELD."""
    examples = ("ktask $ktask signal->rlim[3].rlim_cur mm->get_unmapped_area",
                "ktask 1234 comm mm->mmap_base", "ktask --thread comm stack", "ktask 1 comm --json")
    category = "ktrace"
    json_hex_addresses = True
    value_completer = gdb.COMPLETE_EXPRESSION

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "read a task_struct through kernel memory")
        # one list of operands, split in run(): PID|ADDR then fields, or (--thread) fields only;
        # an optional positional before a '*' one would leave the parser's fast path
        p.add_argument("operands", nargs="*", metavar="PID|ADDR",     # PID: <Tab> lists pids
                       help="pid or task_struct address (a gdb expression), then task_struct field paths")
        p.add_argument("--thread", action="store_true",
                       help="the task of gdb's selected thread (its LWP); every operand is a field")
        _kernel_source_options(p)
        return p

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError, UsageError
        from gdb_toolkit.gdbsupport import facts
        from gdb_toolkit.ktrace.ktask_core import inspect_task

        args.task, args.fields = ((None, args.operands) if args.thread or not args.operands
                                  else (args.operands[0], args.operands[1:]))
        if args.thread:
            thread = facts.require_stopped_thread("ktask --thread")
            if facts.target_kind() != "live" or not thread.ptid[1]:
                raise ToolkitError("ktask --thread needs a live process's thread (gdb's LWP)",
                                   "run or attach to the program; for a core, give the task's address")
            value = thread.ptid[1]
        elif args.task is None:
            raise UsageError("ktask: a pid, a task address or --thread is required",
                             self.parser.one_line_usage())
        else:
            value = facts.eval_int(args.task) & ((1 << 64) - 1)
        session = _kernel_session(args, _chosen_kernel(args))
        try:
            ns = None
            if session.is_live:             # gdb in a container: its pids are its namespace's
                from gdb_toolkit.ktrace.pidns import caller_namespace

                ns = caller_namespace()
            report = inspect_task(value, args.fields, session, ns.ino if ns else None)
        finally:
            session.close()
        report.typed = set_task_var(report.task_address)
        if not report.verified and report.proc_comm is not None:
            report.notes.append(f"task 0x{report.task_address:x} does not check out: kernel comm "
                                f"{report.comm!r} vs /proc/{_seen_pid(report)}/comm {report.proc_comm!r}")
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import key_values, wrap

        if report.verified:
            check = f"matches /proc/{_seen_pid(report)}/comm"
        elif report.proc_comm is None:
            check = "no /proc entry to compare"
        else:
            check = "MISMATCH"
        text = key_values([("task", f"0x{report.task_address:x} ({report.found_by})", "address"),
                           ("pid/tgid", f"{report.pid}/{report.tgid}" + (
                               f" (kernel's; in gdb's pid namespace: {report.namespace_pid}/"
                               f"{report.namespace_tgid})" if report.namespace_pid else "")),
                           ("comm", f"{report.comm!r} ({check})"),
                           ("memory", report.memory_source or None),
                           ("$ktask", "struct task_struct *" if report.typed else
                            "void * (run ktypes for a typed pointer)")], ctx.width, ctx.styler)
        for n in report.notes:
            text += wrap(f"note: {n}", ctx.width, "  ", "    ")
        if report.fields:
            rows = [[f.path, f.c_type, f.text if not f.read_error else f"error: {f.read_error}"]
                    for f in report.fields]
            text += render_table([Col("field", "symbol"), Col("type"), Col("value")], rows, ctx.width,
                                 styler=ctx.styler)
        return text


class Ktypes(ToolkitCommand):
    name = "ktypes"
    summary = "Load the kernel's types into gdb from its BTF"
    usage = "ktypes [--force] [--btf PATH | --kcore VMCORE] [--json]"
    description = """\
Gives gdb a kernel's types with no debug vmlinux: the BTF
(/sys/kernel/btf/vmlinux, --btf FILE, or the BTF inside the vmcore or halted
kernel chosen with `kcore`) is rendered as C by bpftool,
compiled with gcc -g into an object holding types only (no symbol, so no
address ever resolves to it), cached by the kernel's build id in
~/.cache/gdb_toolkit/ktypes/ (owner-checked; a private per-session directory
when that is not usable), and added with add-symbol-file.  Then, with
/proc/kcore as the target (core-file /proc/kcore), expressions such as
((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur work.  If gdb has
kernel debug info already (a vmlinux), that is used instead."""
    examples = ("ktypes", "ktypes --btf /sys/kernel/btf/vmlinux --force",
                "p ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur")
    category = "ktrace"
    json_hex_addresses = True

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "kernel types from BTF")
        p.add_argument("--force", action="store_true", help="rebuild the cached object")
        p.add_argument("--btf", metavar="PATH", help="BTF file (default: /sys/kernel/btf/vmlinux, "
                       "or the dump's / halted kernel's own)")
        p.add_argument("--kcore", metavar="PATH", help="take the BTF from this vmcore (default: the "
                       "kernel chosen with `kcore`)")
        return p

    def run(self, args):
        from gdb_toolkit.gdbsupport.safe_gdb import add_symbol_file, objfile_filename
        from gdb_toolkit.ktrace.ktypes_build import LIVE_BTF, KtypesResult, btf_key, build

        loaded = {objfile_filename(o) for o in gdb.objfiles()}
        if _task_type() is not None and not any(f and f.endswith("/ktypes.o") for f in loaded) \
                and not args.force:
            return KtypesResult("", "", True, "vmlinux debug info", "", 0.0, True)
        # the running kernel needs no KernelSession (nor its imports): only a dump or a halted
        # kernel chosen with `kcore` / --kcore does
        source = {} if args.btf else _chosen_kernel(args)
        data = None
        if source:
            with _kernel_session(args, source, btf=None) as session:
                if not session.is_live:     # a dump or a halted kernel: the BTF it holds itself
                    data = session.btf_bytes()
                    kernel = session.source_description
                    if not data:
                        from gdb_toolkit.common.errors import ToolkitError
                        raise ToolkitError(f"no BTF found in {kernel}", "give --btf FILE "
                                           "(/sys/kernel/btf/vmlinux saved from that kernel)")
        if data is not None:
            res = build(btf_data=data, key=btf_key(data), where=f"the BTF in {kernel}",
                        force=args.force)
        else:
            res = build(args.btf or LIVE_BTF, force=args.force)
        if res.object_path not in loaded:
            add_symbol_file(res.object_path, 0, "kernel types object")
        res.loaded = _task_type() is not None
        cur = gdb.convenience_variable("ktask")
        if cur is not None and res.loaded:
            set_task_var(int(cur))
        return res

    def json_document(self, report) -> str:
        return super().json_document(report.for_json())

    def render(self, report, ctx):
        from gdb_toolkit.common.text import key_values, wrap

        if report.source != "btf":
            return "ktypes: gdb already has kernel types from vmlinux debug info; using them\n"
        text = key_values([("ktypes", f"{report.object_path} ({'cached' if report.cached else 'built'} "
                                      f"in {report.seconds:.1f} s)", "file"),
                           ("kernel build id", report.build_id),
                           ("from", report.btf_path, "file"),
                           ("struct task_struct", "known to gdb" if report.loaded else "NOT loaded")],
                          ctx.width, ctx.styler)
        for n in report.notes:
            text += wrap(f"note: {n}", ctx.width, "  ", "    ")
        return text


def _kernel_source_options(p):
    g = p.add_argument_group("kernel")
    g.add_argument("--kcore", metavar="PATH", help="kernel memory: /proc/kcore or a vmcore "
                   "(default: the kernel chosen with `kcore`: live, a dump, or gdb's halted target)")
    g.add_argument("--kallsyms", metavar="PATH", help="symbols saved on the dumped kernel's boot")
    g.add_argument("--system-map", metavar="PATH", help="symbols from a System.map (slid by KASLR)")
    g.add_argument("--btf", metavar="PATH", help="BTF (default: /sys/kernel/btf/vmlinux, or the dump's)")


def _chosen_kernel(args) -> dict:
    """KernelSession's source arguments: --kcore, else the kernel `kcore` chose ({}: the running
    kernel).  Files the user named must be regular files (kern's check_given_files: a FIFO
    never blocks gdb)."""
    from gdb_toolkit.kernel.gdb_commands import check_given_files, kernel_session_args

    check_given_files(args)
    if getattr(args, "kcore", None):
        return {"kcore": args.kcore}
    return kernel_session_args()


def _kernel_session(args, source: dict, **over):
    """A KernelSession on *source* (from _chosen_kernel) with the symbol/BTF files given."""
    from gdb_toolkit.kernel.session import KernelSession

    opts = {"kallsyms": getattr(args, "kallsyms", None), "btf": getattr(args, "btf", None),
            "system_map": getattr(args, "system_map", None)}
    opts.update(over)
    return KernelSession(**opts, **source)


COMMANDS = (Ktrace, Ktask, Ktypes)
