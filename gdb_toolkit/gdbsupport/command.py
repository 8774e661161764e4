"""Base class for every toolkit command.

A subclass declares its metadata once (``name``, ``summary``, ``usage``,
``description``, ``examples``, ``category``, ``repeat``; see common/meta.py)
and implements ``build_parser`` (imported lazily so start-up stays cheap),
``run`` (gather facts, call the pure core, return a report) and ``render``
(report -> text fitted to ``ctx.width``, styled with ``ctx.styler``).

A ToolkitCommand is a plain object, not a ``gdb.Command``: gdb holds a small
``registry.RegisteredCommand`` per command, made at load from the generated
command table (gdbsupport/command_table.py) with the help text already in it,
and this class's module is imported on the command's first use.  That proxy
registers ``toolkit NAME`` (the registry adds the short alias ``NAME`` unless
another extension already has it) and applies ``dont_repeat`` (Enter does not
repeat a command unless ``repeat = True``).  The base class does the rest, the
same way for every command:

* gdb's ``help`` is generated from the metadata; ``--help`` adds the options;
* ``--json`` prints one envelope (common/envelope.py): the result, or on any
  failure the error as JSON on stdout -- and the gdb error is still raised;
* tab completion of options, terminal width and gdb's styles;
* every failure becomes a one-line ``gdb.GdbError`` -- never a Python
  traceback (set GDB_TOOLKIT_DEBUG=1 to see one for internal errors).
"""
import os
import sys
import traceback

import gdb


class RenderContext:
    """How to render: columns available (None = unlimited: batch, pipes), whether
    gdb styles output, and the styler (``ctx.styler(role, text)``; common.style).
    A plain class: importing dataclasses at gdb start-up would cost milliseconds."""

    __slots__ = ("width", "styled", "styler")

    def __init__(self, width: int | None, styled: bool, styler=None):
        from gdb_toolkit.common.style import PLAIN

        self.width = width
        self.styled = styled
        self.styler = styler if styler is not None else PLAIN

    @classmethod
    def from_gdb(cls) -> "RenderContext":
        from gdb_toolkit.gdbsupport.style import current_styler

        try:
            width = gdb.parameter("width")
        except Exception:
            width = None
        if not width or width <= 0 or width > 100000:
            width = None
        styler = current_styler()
        return cls(width, styler.enabled, styler)


def bold(text: str, ctx: RenderContext) -> str:
    return ctx.styler("title", text)


def write_text(text: str, styler=None) -> None:
    """Write a command's text output: through common.names.terminal_text, the last line of
    defence behind the renderers, so no control character or escape sequence but *styler*'s
    own reaches the terminal (a name holding ESC, CR or an OSC title that a renderer did not
    escape is shown as \\x1b...), and a name that is not UTF-8 (surrogateescape) is shown as
    \\xNN instead of gdb.write raising UnicodeEncodeError (an internal error)."""
    from gdb_toolkit.common.names import terminal_text

    gdb.write(terminal_text(text, styler.sequences() if styler is not None else ()))


class ToolkitCommand:
    """Subclasses set ``name`` and their metadata; see the module doc.  gdb calls
    ``invoke``/``complete`` through the command's registry.RegisteredCommand."""

    name: str = ""
    # -- metadata (common/meta.py); a command without ``summary`` is read from its docstring
    summary: str = ""
    usage: str = ""
    description: str = ""
    examples: tuple = ()
    category: str | None = None
    repeat: bool = False
    #: JSON: addresses under "address"/"*_address" keys as "0x..." strings (docs/json.md);
    #: set True when the command's schema in gdb_toolkit/schemas/ says so
    json_hex_addresses: bool = False
    #: run() and render() build thousands of objects that all stay alive (vg-leaks' 10 000
    #: loss records): no cyclic garbage collection meanwhile (common/gc_pause.py)
    pause_gc: bool = False

    command_class = gdb.COMMAND_SUPPORT
    prefix = False
    #: what to complete for a word not starting with '-' (a gdb.COMPLETE_* constant)
    value_completer = gdb.COMPLETE_NONE

    def __init__(self):
        self._parser = None

    @classmethod
    def help_text(cls) -> str:
        """What gdb's ``help NAME`` prints: generated from the metadata, or the docstring of
        a command that declares no ``summary``."""
        return cls.meta().help_text() if cls.summary else (cls.__doc__ or "")

    @classmethod
    def meta(cls):
        """This command's CommandMeta (declared attributes, or parsed from the docstring)."""
        cached = cls.__dict__.get("_meta_cache")
        if cached is None:
            from gdb_toolkit.common.meta import CommandMeta

            cached = CommandMeta.of(cls)
            cls._meta_cache = cached
        return cached

    @classmethod
    def schema_name(cls) -> str:
        """The JSON Schema file of this command's result (gdb_toolkit/schemas/)."""
        return cls.name.replace(" ", "-") + ".schema.json"

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
        """Tab completion: an option's value (complete_option), an option name, or a value
        (complete_values / value_completer).  gdb breaks words at '-', ':', '.', '/', so the
        whole last whitespace token is completed and gdb gets back the part after its word."""
        tokens = text.split()
        last = "" if not text or text[-1].isspace() else tokens[-1]
        before = (tokens[-2] if len(tokens) > 1 else "") if last else (tokens[-1] if tokens else "")
        metavar = self.parser.value_metavar(before) if before.startswith("-") else None
        if metavar:                     # --object lib<Tab>, --log /tmp/<Tab>
            # not on the word-splitting call: after an option there is always a word before,
            # so even a file name is listed by us, with gdb's default break characters
            got = self.complete_option(before, metavar, last) if word is not None else []
        elif last.startswith("-"):
            got = self.parser.option_strings()
        elif (choices := self._positional_completions(tokens[:-1] if last else tokens, last)) is not None:
            got = choices if word is not None else []
        elif type(self).complete_values is ToolkitCommand.complete_values:
            got = self.value_completer
        else:
            got = self.complete_values(last) if word is not None else []
        if got == gdb.COMPLETE_FILENAME and text.strip() != last:
            # gdb's filename completer completes the whole argument text, not the last word
            from gdb_toolkit.common.completion import file_names

            got = file_names(last) if word is not None else []
        if isinstance(got, int):
            return got
        if word is None:                # the word-splitting call: gdb's default break characters
            return []
        cut = len(last) - len(word)
        return [c[cut:] for c in got if c.startswith(last)]

    def _positional_completions(self, words: list[str], last: str) -> list[str] | None:
        """What the parser itself says the next positional word is: its choices (vg-leaks
        full|summary, vg-check's addressable|defined) or, for a PID positional (ktask's
        PID|ADDR), the pids of the processes when *last* is empty or digits; None: ask
        complete_values / value_completer."""
        parser = self.parser
        try:
            choices = parser.positional_choices(words)
            if choices:
                return choices
            if parser.positional_takes_pid(words) and (not last or last.isdigit()):
                from gdb_toolkit.common.completion import process_ids

                return process_ids(last)
        except AttributeError:          # a parser that is not a common.args.ArgParser
            pass
        return None

    def split_argv(self, argument: str) -> list[str]:
        """Words of the command line (gdb's own splitting, which removes quotes).  Commands
        taking gdb expressions override it to keep quotes inside a word (``$ksym("x")+5``)."""
        return gdb.string_to_argv(argument)

    def complete_values(self, word: str):
        """Completions of a non-option *word* (a list, or a gdb.COMPLETE_* constant).  *word*
        is the whole last token of the line (``std::f``, ``ext4:ext4_f``), not gdb's word cut
        at its break characters; return whole tokens.  Override for command-specific values;
        by default ``value_completer`` is used."""
        return self.value_completer

    def complete_option(self, option: str, metavar: str, word: str):
        """Completions of *option*'s value (a list of whole tokens or a gdb.COMPLETE_*
        constant): its choices when it lists them, the pids for a PID, file names for a
        PATH, FILE, TTY or PREFIX, nothing for a number.  Override where the value is something else (got's
        --object: a loaded object)."""
        choices = self.parser.choices(option)
        if choices:
            return choices
        listed = self.list_option_values(option)
        if listed:                      # --kinds definite,ind<Tab>: the last item of the list
            head, comma, _ = word.rpartition(",")
            given = set(head.split(",")) if comma else set()
            return [head + comma + v for v in listed if v not in given]
        if metavar == "PID":            # ktrace --pid <Tab>
            from gdb_toolkit.common.completion import process_ids

            return process_ids(word)
        return gdb.COMPLETE_FILENAME if metavar in ("PATH", "FILE", "TTY", "PREFIX") else []

    def list_option_values(self, option: str) -> tuple:
        """The values of an option taking a comma-separated list (vg-leaks --kinds), for tab
        completion of its last item; () for any other option."""
        return ()

    def help_page(self, width: int | None = None) -> str:
        """``NAME --help``: the metadata's help with the parser's options."""
        try:
            options = self.parser.options_help(width)
        except AttributeError:          # a parser that is not a common.args.ArgParser
            options = ""
        return self.meta().help_page(options, width)

    def json_document(self, report) -> str:
        """The ``--json`` output: *report* in the versioned envelope."""
        from gdb_toolkit.common import envelope
        from gdb_toolkit.common.render import dumps, to_jsonable

        return dumps(envelope.ok(self.name, to_jsonable(report, self.json_hex_addresses))) + "\n"

    def render_text(self, report, ctx: RenderContext | None = None) -> str:
        """render() with gdb's width and styles."""
        return self.render(report, ctx if ctx is not None else RenderContext.from_gdb())

    def invoke(self, argument, from_tty):
        from gdb_toolkit.common.args import HelpRequested
        from gdb_toolkit.common.errors import ToolkitError, UsageError
        # errors reach the terminal as ONE line without escape sequences (issue 11): a hostile
        # file or process name inside a message is escaped (common.names.printable_text)
        from gdb_toolkit.common.names import printable_text

        # --json asked for on the line counts even when the words cannot be split or parsed
        # (an unbalanced quote or bracket swallows the rest): the error is then JSON too
        want_json = asks_json(argument.split())
        try:
            argv = self.split_argv(argument)
            want_json = want_json or asks_json(argv)
            if self.pause_gc:           # from the parse on: a first call imports the parser too
                from gdb_toolkit.common.gc_pause import gc_paused

                with gc_paused():
                    self._run_and_write(self.parser.parse(argv), want_json)
            else:
                self._run_and_write(self.parser.parse(argv), want_json)
        except HelpRequested:
            if want_json:               # one document under --json, help included (docs/json.md)
                from gdb_toolkit.gdbsupport.toolkit_command import help_document

                gdb.write(help_document(self.name))
                return
            # prose reads best at 80 columns when gdb's width is unlimited (batch, pipes)
            gdb.write(self.help_page(RenderContext.from_gdb().width or 80))
        except UsageError as exc:
            # `.error.fix` is a string in every error a command prints (the toolkit prefix's usage
            # errors had one, a command's was null): the usage line is the fix's reference
            self._json_error(want_json, "usage", exc.cause,
                             f"give the arguments as the usage line says ('{self.name} --help' "
                             "explains each)", exc.usage)
            raise gdb.GdbError(_fit_error(printable_text(exc.cause), printable_text(exc.usage))) from None
        except ToolkitError as exc:
            self._json_error(want_json, "failed", exc.cause, exc.fix)
            raise gdb.GdbError(_fit_error(printable_text(str(exc)))) from None
        except gdb.GdbError as exc:
            self._json_error(want_json, "gdb", str(exc))
            raise gdb.GdbError(_fit_error(printable_text(str(exc)))) from None
        except KeyboardInterrupt:
            self._json_error(want_json, "interrupted", "interrupted (Ctrl-C)")
            raise
        except gdb.MemoryError as exc:
            cause = f"{self.name}: cannot read target memory ({exc})"
            fix = "check the process is alive and the address is mapped"
            self._json_error(want_json, "memory", cause, fix)
            raise gdb.GdbError(_fit_error(printable_text(f"{cause}. Fix: {fix}."))) from None
        except gdb.error as exc:        # a gdb call failed in a way the command did not expect
            cause = f"{self.name}: gdb said: {exc}"
            self._json_error(want_json, "gdb", cause)
            raise gdb.GdbError(_fit_error(printable_text(cause))) from None
        except Exception as exc:  # an internal bug: say so in one line
            if os.environ.get("GDB_TOOLKIT_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            cause = f"{self.name}: internal error: {type(exc).__name__}: {exc}"
            fix = "report it with GDB_TOOLKIT_DEBUG=1 output"
            self._json_error(want_json, "internal", cause, fix)
            raise gdb.GdbError(_fit_error(printable_text(f"{cause}. Fix: {fix}."))) from None

    def _run_and_write(self, args, want_json: bool) -> None:
        report = self.run(args)
        if want_json:
            gdb.write(self.json_document(report))
        elif report is not None:
            ctx = RenderContext.from_gdb()
            write_text(self.render_text(report, ctx), ctx.styler)

    def _json_error(self, want_json: bool, kind: str, cause: str, fix: str | None = None,
                    usage: str | None = None) -> None:
        """Under --json, the error as the one JSON document on stdout."""
        if want_json:
            write_json_error(self.name, kind, cause, fix, usage)


def asks_json(words) -> bool:
    """--json is on the line: the word itself, or given a value (``--json=1``, which the parser
    refuses: the usage error is then the JSON document the script asked for)."""
    return any(w == "--json" or w.startswith("--json=") for w in words)


def _fit_error(message: str, usage: str | None = None) -> str:
    """The error gdb prints: on a terminal of limited width (interactive gdb) wrapped between
    words, continuation lines indented, so a name or an address is never cut by the terminal;
    one line where the width is unlimited (batch, pipes: what scripts read).  *message* is
    printable already (printable_text): a newline in it comes only from here.  *usage*, a
    usage error's second line, wraps under its command name keeping each [option group]."""
    try:
        width = gdb.parameter("width")
    except Exception:
        width = None
    if not width or width <= 0 or width > 100000:
        return message if usage is None else f"{message}\n{usage}"
    from gdb_toolkit.common.text import wrap_lines

    lines = wrap_lines(message, width, "", "  ") if len(message) > width else [message]
    if usage is not None:
        head = usage.split(" ", 2)
        lead = " " * (len(head[0]) + len(head[1]) + 2) if len(head) == 3 and \
            len(head[0]) + len(head[1]) + 2 <= width // 2 else "  "
        lines += wrap_lines(usage, width, "", lead, keep=_bracket_groups(usage)) \
            if len(usage) > width else [usage]
    return "\n".join(lines)


def _bracket_groups(text: str) -> list[str]:
    """The top-level ``[...]`` and ``{...}`` groups of a usage line (kept whole when wrapped)."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "[{":
            if depth == 0:
                start = i
            depth += 1
        elif c in "]}" and depth:
            depth -= 1
            if depth == 0:
                out.append(text[start:i + 1])
    return [g for g in out if " " in g]


def write_json_error(command: str, kind: str, cause: str, fix: str | None = None,
                     usage: str | None = None) -> None:
    """The error envelope of *command* on stdout (docs/json.md); the caller still raises the
    gdb error.  A parser's usage error keeps its cause as the message (the usage line is its
    own key); any other error's message is the one-line error, cause and fix."""
    from gdb_toolkit.common import envelope
    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.common.render import dumps

    message = cause if kind == "usage" and usage is not None else str(ToolkitError(cause, fix))
    try:
        gdb.write(dumps(envelope.error(command, kind, message, cause, fix, usage)) + "\n")
    except Exception:       # never mask the real error
        pass
