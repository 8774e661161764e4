"""gdb commands: ktrace (bcc worker), ktask (task_struct via kcore + BTF), ktypes (BTF -> gdb types)."""
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


def _set_vars(events) -> dict:
    shown = {"kevents": len(events)}
    gdb.set_convenience_variable("kevents", len(events))
    if events:
        last = events[-1]
        typed = set_task_var(last.task)
        shown["ktask"] = f"({'struct task_struct *' if typed else 'void *'}) 0x{last.task:x}"
        if last.retval is not None:
            gdb.set_convenience_variable("kretval", int(last.retval))
            shown["kretval"] = last.retval
    return shown


def _report(session, spec, state, stop_reason=""):
    from gdb_toolkit.ktrace.report import KtraceReport

    a = session.armed
    return KtraceReport(spec.function, a.attach_method, a.traced_function, a.note, state, spec.pid,
                        session.collected, (session.end or {}).get("reason", ""), a.skipped, a.notes,
                        a.unavailable, a.programs, round(getattr(session, "armed_s", 0.0), 3),
                        stop_reason=stop_reason)


def _stop_active(announce=False):
    session = _state.get("session")
    if session is None:
        return None
    _state["session"] = None
    session.stop()
    report = _report(session, session.spec, "done")
    report.convenience = _set_vars(report.events)
    return report


def _on_stop(event):
    session = _state.get("session")
    if session is None:
        return
    session.settle(0.2, 1.0)
    events = session.collected
    new = events[_state["shown"]:]
    _state["shown"] = len(events)
    if new:
        shown = _set_vars(events)
        for e in new:
            gdb.write(f"[ktrace] {e.comm} pid {e.pid} task 0x{e.task:x} args {e.args}"
                      + (f" retval {e.retval}" if e.retval is not None else "") + "\n")
        gdb.write("[ktrace] " + ", ".join(f"${k} = {v}" for k, v in shown.items()) + "\n")
    if not session.running:
        gdb.write(f"[ktrace] tracing ended ({(session.end or {}).get('reason', 'stopped')})\n")
        _state["session"] = None


def _on_exit(event):
    if _state.get("session") is not None:
        report = _stop_active()
        if report is not None:
            gdb.write(f"[ktrace] inferior exited: tracing stopped, {len(report.events)} event(s)\n")


def _hook():
    if not _state["hooked"]:
        gdb.events.stop.connect(_on_stop)
        gdb.events.exited.connect(_on_exit)
        _state["hooked"] = True


class Ktrace(ToolkitCommand):
    """Trace a kernel function or tracepoint with bcc; results land in $ktask, $kretval, $kevents.

Usage: ktrace FUNC|tracepoint:CAT:NAME [--pid PID] [--all] [--ret] [--args SPEC] [--stack]
              [--count N] [--timeout S] [--run] [--capture FIELD]... [--method M]
              [--no-fallback] [--json]
       ktrace --stop

The bcc program runs in a separate /usr/bin/python3 worker (never inside gdb)
that streams JSON lines back.  The attach method is chosen automatically:
kprobe/kretprobe, else kfunc/kretfunc (fentry), else a known fallback (the
nearest traceable caller of an inlined function, or a tracepoint on the same
path); what was traced and why is reported.  --pid defaults to the inferior.
--args takes NAME or NAME=EXPR (parameter names from BTF, argN, field paths
such as vma->vm_end, tracepoint fields).  --capture reads task_struct fields
at event time (for machines without /proc/kcore).
With a live inferior: --run arms, continues, and reports when it stops;
without --run the probe stays armed while you continue (ktrace --stop ends
it).  With no inferior, ktrace waits for --count/--timeout or Ctrl-C.

Example:
  (gdb) ktrace thp_get_unmapped_area --run
  (gdb) ktrace acct_stack_growth --ret --args size --run
  (gdb) ktrace tracepoint:syscalls:sys_enter_mmap --args len --count 1 --all"""

    name = "ktrace"

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
        if _state.get("session") is not None:
            _stop_active()
            gdb.write("[ktrace] stopped the previous trace\n")
        spec = TraceSpec(args.target, pid=pid, ret=args.ret, args=list(args.args), stack=args.stack,
                         count=args.count, timeout=args.timeout,
                         fallbacks=[] if args.no_fallback else None, capture=list(args.capture),
                         method=args.method)
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
            _state.update(session=session, shown=0)
            _hook()
            return _report(session, spec, "armed")
        # blocking: wait for count/timeout or Ctrl-C
        if not args.json:
            limits = [f"{args.count} event(s)" if args.count else "", f"{args.timeout:g} s" if args.timeout else ""]
            gdb.write(f"[ktrace] armed ({session.armed.attach_method} on {session.armed.traced_function}); "
                      f"waiting for {' or '.join(l for l in limits if l) or 'Ctrl-C'}\n")
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
        report.convenience = _set_vars(report.events)
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

        gdb.events.stop.connect(on_stop)
        gdb.events.exited.connect(on_exit)
        try:
            try:
                gdb.execute("continue", to_string=quiet)
            except gdb.error as exc:
                stop.setdefault("why", str(exc))
            session.settle()
        finally:
            gdb.events.stop.disconnect(on_stop)
            gdb.events.exited.disconnect(on_exit)
            session.stop()
        report = _report(session, spec, "done", stop.get("why", "stopped"))
        if session.error and not report.events and session.end is None:
            raise session.error
        report.convenience = _set_vars(report.events)
        return report

    def render(self, report, ctx):
        from gdb_toolkit.ktrace.report import render

        return render(report, ctx.width)


class Ktask(ToolkitCommand):
    """Find a task_struct (by pid or address) through /proc/kcore with BTF offsets, check it, set $ktask.

Usage: ktask PID|ADDR [FIELD-PATH...] [--json]

With a PID, walks init_task.tasks through /proc/kcore using offsets from the
kernel's BTF; with an address ($ktask, 0xffff...), reads it directly.  Either
way the task's pid and comm are read back and compared with /proc/PID/comm.
FIELD-PATHs are task_struct members: comm, mm->mmap_base,
signal->rlim[3].rlim_cur, mm->get_unmapped_area (pointers are symbolized).
Where /proc/kcore is unavailable use capture mode: ktrace FUNC --capture FIELD.

Example:
  (gdb) ktask $ktask signal->rlim[3].rlim_cur mm->get_unmapped_area
  (gdb) ktask 1234 comm mm->mmap_base"""

    name = "ktask"
    value_completer = gdb.COMPLETE_EXPRESSION

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "read a task_struct through kcore")
        p.add_argument("task", help="pid or task_struct address (a gdb expression)")
        p.add_argument("fields", nargs="*", help="task_struct field paths")
        return p

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.gdbsupport import facts
        from gdb_toolkit.ktrace.ktask_core import inspect_task

        value = facts.eval_int(args.task) & ((1 << 64) - 1)
        report = inspect_task(value, args.fields)
        report.typed = set_task_var(report.task)
        if not report.verified:
            gdb.write(f"warning: task 0x{report.task:x} does not check out: kernel comm "
                      f"{report.comm!r} vs /proc/{report.pid}/comm {report.proc_comm!r}\n")
        if report.task == 0:
            raise ToolkitError("no task", None)
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.render import key_values, table

        check = ("matches /proc/%d/comm" % report.pid) if report.verified else "MISMATCH"
        text = key_values([("task", f"0x{report.task:x} ({report.found_by})"),
                           ("pid/tgid", f"{report.pid}/{report.tgid}"),
                           ("comm", f"{report.comm!r} ({check})"),
                           ("$ktask", "struct task_struct *" if report.typed else
                            "void * (run ktypes for a typed pointer)")])
        if report.fields:
            rows = [[f.path, f.type_name if len(f.type_name) <= 40 else f.type_name[:37] + "...",
                     f.text if not f.error else f"error: {f.error}"] for f in report.fields]
            text += table(["field", "type", "value"], rows, width=ctx.width)
        return text


class Ktypes(ToolkitCommand):
    """Load the running kernel's types into gdb from BTF (no debug vmlinux needed).

Usage: ktypes [--force] [--btf PATH] [--json]

Renders /sys/kernel/btf/vmlinux as C declarations (bpftool), compiles them
with gcc -g into an object cached by the kernel's build id, and loads it with
add-symbol-file.  Then, with /proc/kcore as the target (core-file /proc/kcore),
expressions like ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur work.
If gdb already has kernel debug info (a vmlinux), that is used instead.

Example:
  (gdb) ktypes
  (gdb) core-file /proc/kcore
  (gdb) p ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur"""

    name = "ktypes"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "kernel types from BTF")
        p.add_argument("--force", action="store_true", help="rebuild the cached object")
        p.add_argument("--btf", default="/sys/kernel/btf/vmlinux", help="BTF file")
        return p

    def run(self, args):
        from gdb_toolkit.ktrace.ktypes_build import KtypesResult, build

        loaded = [o.filename for o in gdb.objfiles() if o.filename and o.filename.endswith("ktypes.o")]
        if _task_type() is not None and not loaded and not args.force:
            return KtypesResult("", "", True, "vmlinux debug info", "", 0.0, True)
        res = build(args.btf, force=args.force)
        if res.object_path not in loaded:
            confirm = gdb.parameter("confirm")
            gdb.execute("set confirm off", to_string=True)
            try:
                gdb.execute(f"add-symbol-file {res.object_path} 0", to_string=True)
            finally:
                gdb.execute(f"set confirm {'on' if confirm else 'off'}", to_string=True)
        res.loaded = _task_type() is not None
        cur = gdb.convenience_variable("ktask")
        if cur is not None and res.loaded:
            set_task_var(int(cur))
        return res

    def render(self, report, ctx):
        from gdb_toolkit.common.render import key_values

        if report.source != "btf":
            return "ktypes: gdb already has kernel types from vmlinux debug info; using them\n"
        return key_values([("ktypes", f"{report.object_path} ({'cached' if report.cached else 'built'} "
                                      f"in {report.seconds:.1f} s)"),
                           ("kernel build id", report.build_id),
                           ("from", report.btf_path),
                           ("struct task_struct", "known to gdb" if report.loaded else "NOT loaded")])


def register():
    return [Ktrace(), Ktask(), Ktypes()]
