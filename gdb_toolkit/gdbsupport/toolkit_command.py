"""The ``toolkit`` prefix and ``toolkit commands``: the map of what is loaded."""

from gdb_toolkit.gdbsupport.command import ToolkitCommand, ToolkitPrefix


class Toolkit(ToolkitPrefix):
    """gdb_toolkit: PLT/GOT walkthroughs, kprobes via /proc/kcore, stack-growth
diagnosis, valgrind vgdb helpers and bcc tracing, as gdb commands.

Start with "toolkit doctor" to see what works on this machine, and
"toolkit commands" for every command with a one-line summary.

Example:
  (gdb) toolkit doctor
  (gdb) toolkit commands"""

    name = "toolkit"


class ToolkitCommands(ToolkitCommand):
    """List every gdb_toolkit command with its one-line summary.

Usage: toolkit commands [--json]

Example:
  (gdb) toolkit commands"""

    name = "toolkit commands"

    def run(self, args):
        from gdb_toolkit.gdbsupport.registry import registered_commands

        rows = []
        for cmd in registered_commands():
            if not isinstance(cmd, ToolkitCommand):
                continue
            summary = (type(cmd).__doc__ or "").strip().splitlines()[0]
            rows.append({"command": cmd.name, "summary": summary})
        return sorted(rows, key=lambda r: r["command"])

    def render(self, report, ctx):
        from gdb_toolkit.common.render import table

        return table(["command", "summary"], [[r["command"], r["summary"]] for r in report],
                     width=ctx.width)


def register():
    return [Toolkit(), ToolkitCommands()]
