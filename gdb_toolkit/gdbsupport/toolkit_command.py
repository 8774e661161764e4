"""``toolkit commands``: the map of what is loaded (the ``toolkit`` prefix itself is
gdbsupport/registry.py's).

``toolkit commands`` is the worked example of the framework (see
docs/architecture.md, "Adopting the framework"): metadata declared once, a
report of plain data, a schema in gdb_toolkit/schemas/, roles for columns.
"""

from gdb_toolkit.gdbsupport.command import ToolkitCommand


class ToolkitCommands(ToolkitCommand):
    name = "toolkit commands"
    summary = "List every command and convenience function"
    usage = "toolkit commands [--json]"
    description = """\
Every gdb_toolkit command by category with its one-line summary, then the
convenience functions and variables ($ksym, $kprobe, $ktask, ...).  Each
command is also "toolkit NAME" ("tk NAME"); a short NAME that another
extension defined first is kept as theirs and said here."""
    examples = ("toolkit commands", "toolkit commands --json")
    category = "toolkit"
    json_hex_addresses = True

    def run(self, args):
        from gdb_toolkit.common.meta import CATEGORIES
        from gdb_toolkit.gdbsupport import registry

        lost = registry.taken_over()
        aliases = {a: t for a, t in registry.short_names().items() if a not in lost}
        commands, functions = [], []
        for entry in registry.entries():        # the table: no domain module is imported
            if entry.kind == "command":
                row = {k: v for k, v in entry.listing.items() if k != "schema"}
                row["aliases"] = [a for a, target in aliases.items() if target == entry.gdb_name]
                row["schema"] = entry.listing["schema"]
                commands.append(row)
            else:
                usage = entry.listing["usage"]
                given = registry.function_name(entry)      # tk_ksym when $ksym was taken
                if given != entry.name and usage.startswith("$" + entry.name):
                    usage = "$" + given + usage[len(entry.name) + 1:]
                functions.append({"name": "$" + usage.lstrip("$").split("(")[0], "kind": "function",
                                  "usage": usage, "summary": entry.listing["summary"]})
        for name, summary in registry.convenience_variables().items():
            functions.append({"name": name, "kind": "variable", "usage": name, "summary": summary})
        order = list(CATEGORIES)
        commands.sort(key=lambda c: (order.index(c["category"]) if c["category"] in order
                                     else len(order), c["name"]))
        notes = []
        kept = registry.kept_note()        # names kept as another's, a replaced prefix
        if kept:
            notes.append(kept.split(": ", 1)[1])
        if lost:
            notes.append(registry.taken_over_note(lost))
        return {"commands": commands, "functions": functions, "notes": notes}

    def render(self, report, ctx):
        from gdb_toolkit.common.meta import CATEGORIES
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import one_line, wrap

        cols = [Col("command", "symbol"), Col("summary")]
        out = []
        groups: dict[str, list] = {}
        for c in report["commands"]:
            groups.setdefault(c["category"], []).append(c)
        for cat, cmds in groups.items():
            title = CATEGORIES.get(cat, cat)
            rows = [["  " + (c["aliases"][0] if c["aliases"] else c["gdb_name"]), c["summary"]]
                    for c in cmds]
            out.append(render_table(cols, rows, ctx.width, title=ctx.styler("title", title + ":"),
                                    styler=ctx.styler, header=False))
        if report["functions"]:
            rows = [["  " + f["usage"], f["summary"]] for f in report["functions"]]
            out.append(render_table(cols, rows, ctx.width, styler=ctx.styler, header=False,
                                    title=ctx.styler("title", "Convenience functions and variables:")))
        # "tk" is named only while it is ours (a note names it when kept or redefined)
        tk_gone = any(" tk " in f" {n.split(' (')[0].replace(',', ' ')} " for n in report["notes"])
        tail = ('Every command is also "toolkit NAME"; "help toolkit NAME" shows its usage.'
                if tk_gone else
                'Every command is also "toolkit NAME" (or "tk NAME"); "help NAME" shows its usage.')
        text = "\n".join(out) + "\n" + wrap(tail, ctx.width)
        for n in report["notes"]:
            text += wrap(f"note: {one_line(n)}", ctx.width, "", "  ")
        return text


COMMANDS = (ToolkitCommands,)


def help_document(name: str) -> str:
    """``NAME --help --json`` (any command): one document, toolkit commands' for NAME alone
    (docs/json.md): its usage lines, examples and schema as a script reads them, valid against
    toolkit-commands.schema.json; no functions, no notes about other names."""
    command = ToolkitCommands()
    listing = command.run(None)
    only = {"commands": [c for c in listing["commands"] if c["name"] == name], "functions": [], "notes": []}
    return command.json_document(only)
