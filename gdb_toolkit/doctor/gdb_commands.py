"""``toolkit doctor``: the capability table."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


class ToolkitDoctor(ToolkitCommand):
    """Show every gdb_toolkit capability, whether it works here, why not, and the fix.

Usage: toolkit doctor [--quick] [--json]

Checks gdb and Python versions, pyelftools/capstone/tabulate/bcc, ptrace
permission, /proc/kcore, kallsyms, BTF, kprobes, valgrind and vgdb, whether
bcc can compile (in a separate python3 process; --quick skips that), kernel
headers, and root.

Example:
  (gdb) toolkit doctor
  (gdb) toolkit doctor --json"""

    name = "toolkit doctor"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "capability table")
        p.add_argument("--quick", action="store_true", help="skip the bcc compile test")
        return p

    def run(self, args):
        from gdb_toolkit.doctor.checks import evaluate
        from gdb_toolkit.doctor.host_facts import gather

        version = gdb.VERSION.split("\n")[0]
        return evaluate(gather(gdb_version=version, compile_bcc=not args.quick))

    def render(self, report, ctx):
        from gdb_toolkit.common.render import table

        rows = [[c.name, c.status, c.detail, c.fix, c.used_by] for c in report.checks]
        return table(["check", "status", "detail", "fix", "used by"], rows, width=ctx.width)


def register():
    return [ToolkitDoctor()]
