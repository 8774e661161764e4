"""Base class for every toolkit command.

A subclass gives the name, a docstring (gdb's help text: summary, usage,
example), ``build_parser`` (imported lazily so start-up stays cheap), ``run``
(gather facts, call the pure core, return a report) and ``render`` (report ->
text).  The base class handles ``--json``, ``--help``, tab completion of
options, terminal width, and turns every failure into a one-line
``gdb.GdbError`` -- never a Python traceback (set GDB_TOOLKIT_DEBUG=1 to see
one for internal errors).
"""
import os
import sys
import traceback
import gdb


class RenderContext:
    """How to render: columns available (None = unlimited: batch, pipes) and
    whether gdb styling is on.  A plain class: importing dataclasses at gdb
    start-up would cost milliseconds (it pulls in inspect and ast)."""

    __slots__ = ("width", "styled")

    def __init__(self, width: int | None, styled: bool):
        self.width = width
        self.styled = styled

    @classmethod
    def from_gdb(cls) -> "RenderContext":
        try:
            width = gdb.parameter("width")
        except Exception:
            width = None
        try:
            styled = bool(gdb.parameter("style enabled"))
        except Exception:
            styled = False
        if not width or width <= 0 or width > 100000:
            width = None
        return cls(width, styled)


def bold(text: str, ctx: RenderContext) -> str:
    return f"\x1b[1m{text}\x1b[0m" if ctx.styled else text


class ToolkitCommand(gdb.Command):
    """Subclasses must set ``name`` and a docstring; see module doc."""

    name: str = ""
    command_class = gdb.COMMAND_USER
    prefix = False
    #: what to complete for a word not starting with '-' (a gdb.COMPLETE_* constant)
    value_completer = gdb.COMPLETE_NONE

    def __init__(self):
        super().__init__(self.name, self.command_class, prefix=self.prefix)
        self._parser = None

    # -- to override ---------------------------------------------------------
    def build_parser(self):
        """Return a gdb_toolkit.common.args.ArgParser for this command."""
        from gdb_toolkit.common.args import ArgParser

        return ArgParser(self.name)

    def run(self, args):
        raise NotImplementedError

    def render(self, report, ctx: RenderContext) -> str:
        from gdb_toolkit.common.render import to_json

        return to_json(report) + "\n"

    # -- machinery -----------------------------------------------------------
    @property
    def parser(self):
        if self._parser is None:
            self._parser = self.build_parser()
        return self._parser

    def complete(self, text, word):
        # gdb breaks words at '-', so look at the last whitespace token of text
        last = "" if not text or text[-1].isspace() else text.split()[-1]
        if last.startswith("-"):
            if word is None:  # gdb's first call, made only to learn how to split words
                return []
            cut = len(last) - len(word)
            return [o[cut:] for o in self.parser.option_strings() if o.startswith(last)]
        if type(self).complete_values is ToolkitCommand.complete_values:
            return self.value_completer
        if word is None:  # the word-splitting call: gdb's default break characters
            return []
        return self.complete_values(word)

    def split_argv(self, argument: str) -> list[str]:
        """Words of the command line (gdb's own splitting, which removes quotes).  Commands
        taking gdb expressions override it to keep quotes inside a word (``$ksym("x")+5``)."""
        return gdb.string_to_argv(argument)

    def complete_values(self, word: str):
        """Completions of a non-option *word* (a list, or a gdb.COMPLETE_* constant).
        Override for command-specific values; by default ``value_completer`` is used."""
        return self.value_completer

    def invoke(self, argument, from_tty):
        from gdb_toolkit.common.args import HelpRequested
        from gdb_toolkit.common.errors import ToolkitError

        try:
            args = self.parser.parse(self.split_argv(argument))
            report = self.run(args)
            if report is None:
                return
            if getattr(args, "json", False):
                from gdb_toolkit.common.render import to_json

                gdb.write(to_json(report) + "\n")
            else:
                gdb.write(self.render(report, RenderContext.from_gdb()))
        except HelpRequested as h:
            gdb.write(h.text)
        except ToolkitError as exc:
            raise gdb.GdbError(str(exc)) from None
        except (gdb.GdbError, KeyboardInterrupt):
            raise
        except gdb.MemoryError as exc:
            raise gdb.GdbError(f"{self.name}: cannot read target memory ({exc}). "
                               "Fix: check the process is alive and the address is mapped.") from None
        except Exception as exc:  # an internal bug: say so in one line
            if os.environ.get("GDB_TOOLKIT_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            raise gdb.GdbError(f"{self.name}: internal error: {type(exc).__name__}: {exc}. "
                               "Fix: report it with GDB_TOOLKIT_DEBUG=1 output.") from None


class ToolkitPrefix(gdb.Command):
    """A prefix command (``toolkit``) whose bare invocation lists its subcommands."""

    name = ""

    def __init__(self):
        super().__init__(self.name, gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, True)

    def invoke(self, argument, from_tty):
        if argument.strip():
            raise gdb.GdbError(f"Undefined {self.name} command: \"{argument.strip()}\". "
                               f"Try \"help {self.name}\".")
        gdb.execute(f"help {self.name}")
