"""``toolkit doctor``: the capability table.

A worked example of the framework: metadata declared once, columns with roles,
each row's fix printed whole under it (never a column to be cut), a JSON
schema in gdb_toolkit/schemas/toolkit-doctor.schema.json.
"""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


class ToolkitDoctor(ToolkitCommand):
    name = "toolkit doctor"
    pause_gc = True         # a first call's ~35 modules stay alive: no collection over them meanwhile
    summary = "What works on this machine, why not, and the fix"
    usage = "toolkit doctor [--quick] [--json]"
    description = """\
Checks gdb and its Python, pyelftools, capstone and tabulate (optional),
ptrace permission, /proc/kcore, kallsyms, BTF, kprobes, valgrind and vgdb,
bcc and whether it can compile a probe (in a separate python3 process;
--quick skips that), kernel headers, and root.  Each check that fails says
why and, under it, the fix."""
    examples = ("toolkit doctor", "toolkit doctor --quick", "toolkit doctor --json")
    category = "toolkit"
    json_hex_addresses = True

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
        from gdb_toolkit.common.table import Col, render_table

        from gdb_toolkit.doctor.checks import OK

        # the fix, and which commands a failing check affects, go whole under the row
        cols = [Col("check", "key"), Col("status", "state"), Col("detail")]
        rows = [[c.name, c.state, c.detail] for c in report.checks]
        below = [[("fix", c.fix), ("affects", c.used_by if c.state != OK else "")]
                 for c in report.checks]
        from gdb_toolkit.common.text import notes_block

        return (render_table(cols, rows, ctx.width, styler=ctx.styler, below=below)
                + notes_block(report.notes, ctx.width, styler=ctx.styler))


COMMANDS = (ToolkitDoctor,)
