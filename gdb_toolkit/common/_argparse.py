"""The argparse side of common.args: an ArgumentParser that never exits gdb, built from an
ArgParser's record when argparse has something to do (see common/args.py)."""
import argparse

from gdb_toolkit.common.args import HelpRequested
from gdb_toolkit.common.errors import UsageError


class _HelpAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        raise HelpRequested(parser.format_help())


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter with a width given: without one it asks shutil for the
    terminal size, and importing shutil (bz2, lzma) cost ~2 ms of every command's first
    call (argparse builds a formatter for each add_argument).  --help is re-wrapped to gdb's
    width by the command's metadata page anyway."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position, width or 100)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that never calls sys.exit."""

    def __init__(self, prog: str, description: str = "", **kw):
        kw.setdefault("formatter_class", _Formatter)
        super().__init__(prog=prog, description=description, add_help=False,
                         allow_abbrev=False, exit_on_error=False, **kw)

    def one_line_usage(self) -> str:
        """The usage line unwrapped: an error is the message plus this one line."""
        formatter = argparse.HelpFormatter(self.prog, width=1 << 16)
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        return formatter.format_help()

    def options_help(self, width: int | None = None) -> str:
        """The arguments and options sections of --help."""
        formatter = argparse.HelpFormatter(self.prog, width=max(40, (width or 100) - 2),
                                           max_help_position=28)
        for group in self._action_groups:
            if not group._group_actions:
                continue
            formatter.start_section(group.title)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        return formatter.format_help()

    def error(self, message):  # noqa: D401 - argparse API
        raise UsageError(f"{self.prog}: {message}", self.one_line_usage())

    def exit(self, status=0, message=None):
        raise UsageError(message or f"{self.prog}: bad arguments", self.one_line_usage())

    def _get_values(self, action, arg_strings):
        # argparse strips a "--" from an option's values: "--top=--" (or "-n--") then gives the
        # option [] instead of a number, unconverted, and the command fails later with a
        # TypeError (found by tests/fuzz/targets/args.py).  An option that takes one value and
        # got only "--" is a usage error.
        if (action.option_strings and action.nargs in (None, argparse.OPTIONAL)
                and list(arg_strings) == ["--"]):
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)

    def parse(self, argv: list[str]) -> argparse.Namespace:
        try:
            args, extra = self.parse_known_args(argv)
        except argparse.ArgumentError as exc:
            self.error(str(exc))
        if extra:
            # argparse joins them with blanks: an empty word ('') was invisible, and
            # 'a b' read as two words; show each the way it would be typed
            self.error("unrecognized arguments: " + " ".join(_shown(w) for w in extra))
        return args


def _shown(word: str) -> str:
    """*word* as typed on gdb's command line: quoted when empty or holding a blank/quote."""
    if word and not any(c.isspace() or c in "'\"\\" for c in word):
        return word
    if "'" in word and '"' not in word and "\\" not in word:
        return f'"{word}"'
    return "'" + word.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build(record) -> Parser:
    """The argparse parser of a common.args.ArgParser's recorded arguments, in their order
    and groups."""
    p = Parser(record.prog, record.description, **record._kw)
    groups = {}
    for key in record._groups:
        if key[0] == "group":
            groups[key] = p.add_argument_group(key[2], key[3])
        else:
            groups[key] = p.add_mutually_exclusive_group(required=key[2])
    for spec in record._specs:
        kw = dict(spec.kw)
        if kw.get("action") == "help":
            kw["action"] = _HelpAction
        (groups[spec.group] if spec.group is not None else p).add_argument(*spec.names, **kw)
    return p
