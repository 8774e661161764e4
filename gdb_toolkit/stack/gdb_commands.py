"""``stack-diagnose``: why the stack could not grow, who asked for it, and what fixes it."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


class StackDiagnose(ToolkitCommand):
    name = "stack-diagnose"
    summary = "Why the stack overflowed, and the fix"
    usage = "stack-diagnose [--thread N | --all-threads] [--rlimit KIB] [--kernel] [--json]"
    description = """\
After a SIGSEGV/SIGBUS (live process or core file) -- or after the program's
own handler ran for it (it aborted, Rust's overflow handler, gdb -p inside the
handler: the original fault is read from the kernel's signal frame) -- it
reads the fault address, sp/pc, the thread's stack mapping and what lies below
it, RLIMIT_STACK and RLIMIT_AS, the guard gap, the address-space layout the
limit at exec decided, and a bounded walk of the innermost frames, and gives
one verdict: growth refused by RLIMIT_STACK or RLIMIT_AS, by the guard gap of
a mapping below, by a PROT_NONE mapping in the way, a frame jumping over the
gap, a thread or alternate signal stack overflowing (into another thread's
stack), a corrupt stack pointer, or not a stack fault at all.  It says who
asked (the huge frame and the instruction that moved sp, a recursion and its
live depth, a probing loop) and a fix that works when re-run (ulimit -s,
pthread_attr_setstacksize, the sigaltstack size, or the heap).  At any other
stop it is a stack-health report; a Go program gets the Go runtime's view.

--rlimit KIB   the RLIMIT_STACK the program ran with (a core does not record
               it): KiB as for ulimit -s, or 8M / 1G / unlimited.
--kernel       re-runs the program -- the same argv, working directory and
               environment minus loader and interpreter variables (LD_PRELOAD,
               LD_LIBRARY_PATH, GCONV_PATH, ...) -- as the process's owner
               (root drops to the owner's uid, gid and groups first; a program
               someone else could have replaced is not run as root) under a bcc
               probe on the kernel's stack-growth check, and shows what the
               kernel saw.  Needs root, bcc and kprobes."""
    examples = ("run 1920 1080", "stack-diagnose", "stack-diagnose --all-threads --json",
                "stack-diagnose --rlimit 4096")
    category = "stack"
    json_hex_addresses = True
    #: a first call imports ~40 modules and builds the frames, maps and diagnosis that all
    #: stay alive: the cyclic collector's passes over them (~2 ms, one of generation 1)
    #: free nothing
    pause_gc = True


    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "stack-growth diagnosis")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--thread", type=int, metavar="N", help="diagnose gdb thread N")
        g.add_argument("--all-threads", action="store_true",
                       help="every thread: healthy ones grouped by their frames in one table, "
                            "a whole report for the others")
        p.add_argument("--rlimit", type=parse_rlimit, metavar="KIB",
                       help="RLIMIT_STACK the program ran with (KiB, or 8M/1G/unlimited)")
        p.add_argument("--kernel", action="store_true",
                       help="also re-run it as its owner under a bcc probe on the kernel's "
                            "stack-growth check (root, kprobes)")
        return p

    def complete_option(self, option, metavar, word):
        """Thread numbers after --thread."""
        if option == "--thread":
            return [str(n) for n in sorted(t.num for t in gdb.selected_inferior().threads())]
        return super().complete_option(option, metavar, word)

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.gdbsupport import facts as gfacts
        from gdb_toolkit.stack.diagnose import diagnose
        from gdb_toolkit.stack.gdb_facts import gather, stack_arch, summarise_threads

        kind = gfacts.target_kind()
        if kind not in ("live", "core"):
            what = {"exec": "the program is loaded but not running",
                    "remote": "the target is remote (no memory map or limits of its own here)"}.get(
                kind, "there is no process")
            fix = ("run the program until it faults (run), attach PID, or load a core: gdb "
                   "PROGRAM CORE" if kind != "remote" else
                   "diagnose its core instead (qemu-user writes qemu_PROG_*.core with ulimit -c "
                   "unlimited: gdb-multiarch PROGRAM CORE), or run gdb next to the process")
            if kind == "remote":
                what, fix = _under_valgrind(what, fix)
            raise ToolkitError(f"stack-diagnose needs a stopped process or a core file, but {what}",
                               fix)
        if args.kernel:
            from gdb_toolkit.stack.gdb_kernel import require_kernel_tracing

            require_kernel_tracing()
        inf = gdb.selected_inferior()
        original = gdb.selected_thread()
        try:
            frame = gdb.selected_frame()
        except gdb.error:
            frame = None
        if original is None:
            raise ToolkitError("no thread is selected", "select one with: thread N")
        if args.thread is not None:
            wanted = [t for t in inf.threads() if t.num == args.thread]
            if not wanted:
                nums = ", ".join(str(t.num) for t in sorted(inf.threads(), key=lambda t: t.num))
                raise ToolkitError(f"there is no thread {args.thread}", f"pick one of: {nums}")
            targets = wanted
        elif args.all_threads:
            targets = sorted(inf.threads(), key=lambda t: t.num)
        else:
            targets = [original]
        out = []
        try:
            for t in targets:
                if t.is_running():
                    raise ToolkitError(f"thread {t.num} is running", "interrupt it first")
            arch = stack_arch()
            summaries = summarise_threads(arch, inf)
            shared = {}                 # the process's facts, read once for all its threads
            for t in targets:
                t.switch()
                out.append(diagnose(gather(kind, args.rlimit, summaries, shared)))
        finally:
            if original.is_valid():
                original.switch()                   # leave gdb's selection as it was
                if frame is not None and frame.is_valid():
                    frame.select()
        if args.kernel:
            from gdb_toolkit.stack.gdb_kernel import kernel_view

            for d in out:
                if d.signal and d.signal["signo"] in (7, 11):
                    d.kernel = kernel_view(d, kind)
        from gdb_toolkit.stack.model import AllThreads

        return out[0] if len(out) == 1 and not args.all_threads else AllThreads(out)

    def render(self, report, ctx):
        from gdb_toolkit.stack.model import AllThreads
        from gdb_toolkit.stack.text import render_all, render_diagnosis

        if isinstance(report, AllThreads):
            return render_all(report.diagnoses, ctx.width, ctx.styler)
        return render_diagnosis(report, ctx.width, ctx.styler)


def parse_rlimit(text: str):
    """--rlimit: KiB as ulimit -s takes it, or with a K/M/G suffix, or 'unlimited'."""
    t = text.strip().lower()
    if t in ("unlimited", "infinity"):
        return "unlimited"
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if t and t[-1] in scale:
            value = int(t[:-1]) * scale[t[-1]]
        else:
            value = int(t) * 1024
    except ValueError:
        import argparse     # for its errors only: ~3 ms of a first 'stack-diagnose --rlimit 8M'

        raise argparse.ArgumentTypeError(f"{text!r} is not a size (KiB, or 8M, 1G, unlimited)")
    if not 0 < value < 1 << 62:
        import argparse

        raise argparse.ArgumentTypeError(f"{text!r} is not a usable stack limit")
    return value


COMMANDS = (StackDiagnose,)


def _under_valgrind(what: str, fix: str) -> tuple[str, str]:
    """The remote target is valgrind's gdbserver: the stack is valgrind's to size and check."""
    from gdb_toolkit.valgrind.gdb_session import connection_pid

    pid = connection_pid()
    if pid is None:
        return what, fix
    return (("the target is valgrind's gdbserver (vgdb" + (f", valgrind pid {pid}" if pid > 0 else "")
             + "): the program runs on valgrind's own CPU and stack, which valgrind sizes "
             "and checks itself"),
            "read valgrind's own report of the overflow ('Stack overflow in thread #N: can't "
            "grow stack to ADDR' in its log); the main thread's stack under valgrind is "
            "--main-stacksize=BYTES (default: RLIMIT_STACK), a thread's the one it was "
            "created with; or run the program under gdb without valgrind and stack-diagnose "
            "the fault there")
