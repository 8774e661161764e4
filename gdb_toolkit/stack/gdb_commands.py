"""``stack-diagnose``: why the stack could not grow, who asked for it, and what fixes it."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


class StackDiagnose(ToolkitCommand):
    """Explain a stack overflow: which limit refused the growth, who asked for it, and the fix.

Usage: stack-diagnose [--thread N | --all-threads] [--kernel] [--json]

After a SIGSEGV/SIGBUS stop (live process or core file) it reads the fault
address and si_code ($_siginfo), sp/pc, the thread's stack mapping and the
mappings below it, RLIMIT_STACK (/proc/PID/limits), the kernel's stack guard
gap, and a bounded walk of the innermost frames with each frame's size, then
gives one verdict -- growth refused by RLIMIT_STACK, the guard gap of the
mapping below, a thread stack overflowing into its guard page, deep recursion
or one huge frame (with the instruction that moved sp), a stack-clash probing
loop, or not a stack fault at all -- and the fix (ulimit -s, setrlimit,
pthread_attr_setstacksize, or moving the buffer to the heap).  At any other
stop it is a stack-health report.  --kernel re-runs the program under a bcc
probe on the kernel's stack-growth functions (needs root, bcc and kprobes).

Example:
  (gdb) run 1920 1080
  Program received signal SIGSEGV, Segmentation fault.
  (gdb) stack-diagnose
  (gdb) stack-diagnose --all-threads --json"""

    name = "stack-diagnose"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "stack-growth diagnosis")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--thread", type=int, metavar="N", help="diagnose gdb thread N")
        g.add_argument("--all-threads", action="store_true", help="one report per thread")
        p.add_argument("--kernel", action="store_true",
                       help="also re-run under a bcc probe on acct_stack_growth (root, kprobes)")
        return p

    def complete(self, text, word):
        """Thread numbers after --thread; options otherwise."""
        toks = text.split()
        after = (toks[-1:] == ["--thread"] and text.endswith(" ")) or (
            len(toks) >= 2 and toks[-2] == "--thread" and not text.endswith(" "))
        if after:
            if word is None:
                return []
            nums = sorted(t.num for t in gdb.selected_inferior().threads())
            return [str(n) for n in nums if str(n).startswith(word)]
        return super().complete(text, word)

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.gdbsupport import facts as gfacts
        from gdb_toolkit.stack.diagnose import diagnose
        from gdb_toolkit.stack.gdb_facts import gather

        kind = gfacts.target_kind()
        if kind not in ("live", "core"):
            what = {"exec": "the program is loaded but not running",
                    "remote": "the target is remote (no /proc of its own here)"}.get(
                kind, "there is no process")
            raise ToolkitError(f"stack-diagnose needs a stopped process or a core file, but {what}",
                               "run the program until it faults (run), attach PID, "
                               "or load a core: gdb PROGRAM CORE")
        if args.kernel:
            from gdb_toolkit.stack.gdb_kernel import require_kernel_tracing

            require_kernel_tracing()
        inf = gdb.selected_inferior()
        original = gdb.selected_thread()
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
                t.switch()
                out.append(diagnose(gather(kind)))
        finally:
            if original.is_valid():
                original.switch()
        if args.kernel:
            from gdb_toolkit.stack.gdb_kernel import kernel_view

            for d in out:
                if d.signal and d.signal["signo"] in (7, 11):
                    d.kernel = kernel_view(d, kind)
        from gdb_toolkit.stack.model import AllThreads

        return out[0] if len(out) == 1 and not args.all_threads else AllThreads(out)

    def render(self, report, ctx):
        from gdb_toolkit.stack.model import AllThreads
        from gdb_toolkit.stack.text import render_diagnosis

        if isinstance(report, AllThreads):
            return "\n".join(render_diagnosis(d, ctx.width) for d in report.diagnoses)
        return render_diagnosis(report, ctx.width)


def register():
    return [StackDiagnose()]
