"""argparse that reports bad input as a UsageError instead of exiting gdb."""
import argparse

from gdb_toolkit.common.errors import UsageError


class HelpRequested(Exception):
    """``-h``/``--help`` was given: carry the help text to the caller."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


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


class ArgParser(argparse.ArgumentParser):
    """An ArgumentParser that never calls sys.exit.

    Every command parser gets ``--json`` unless ``json=False``.
    """

    def __init__(self, prog: str, description: str = "", json: bool = True, **kw):
        kw.setdefault("formatter_class", _Formatter)
        super().__init__(prog=prog, description=description, add_help=False,
                         allow_abbrev=False, exit_on_error=False, **kw)
        self.add_argument("-h", "--help", action=_HelpAction, help="show this help")
        if json:
            self.add_argument("--json", action="store_true",
                              help="print one JSON document instead of a table")

    def one_line_usage(self) -> str:
        """The usage line unwrapped: an error is the message plus this one line."""
        formatter = argparse.HelpFormatter(self.prog, width=1 << 16)
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        return formatter.format_help()

    def options_help(self, width: int | None = None) -> str:
        """The arguments and options sections of --help (usage and prose come
        from the command's metadata, common.meta)."""
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

    def parse(self, argv: list[str]) -> argparse.Namespace:
        try:
            return self.parse_args(argv)
        except argparse.ArgumentError as exc:
            self.error(str(exc))

    def option_strings(self) -> list[str]:
        """All long options, for tab completion."""
        return sorted(o for a in self._actions for o in a.option_strings if o.startswith("--"))


def parse_int(text: str) -> int:
    """An integer in any base Python accepts (0x.., 0o.., decimal), with k/M/G suffixes."""
    t = text.strip().replace("_", "")
    mult = 1
    if t and t[-1] in "kKmMgG":
        mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[t[-1].lower()]
        t = t[:-1]
    try:
        return int(t, 0) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def split_expression_words(text: str) -> list[str]:
    """Split a command line whose words may be gdb expressions.

    Words are separated by blanks outside quotes and brackets.  A word that is one quoted
    string as a whole loses its quotes (``'a b'`` -> ``a b``, as gdb's own splitting does);
    quotes inside a word stay, so ``$ksym("vfs_write")+5`` reaches gdb's evaluator intact
    (gdb.string_to_argv would make it ``$ksym(vfs_write)+5``).  Unbalanced quotes or
    brackets end at the end of the line (gdb reports the expression error itself)."""
    words, cur, depth, quote, i = [], [], 0, None, 0
    have = False
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            cur.append(c)
            have = True
        elif c == "\\" and i + 1 < len(text):       # gdb's escaped blank: /tmp/my\ core
            cur.append(text[i + 1])
            have = True
            i += 1
        elif c in "([{":
            depth += 1
            cur.append(c)
            have = True
        elif c in ")]}":
            depth = max(0, depth - 1)
            cur.append(c)
        elif c.isspace() and depth == 0:
            if have:
                words.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(c)
            have = True
        i += 1
    if have:
        words.append("".join(cur))
    return [_unquote_whole(w) for w in words]


def _unquote_whole(word: str) -> str:
    """``"a b"`` / ``'a b'`` -> ``a b`` (backslash escapes removed) when the quotes enclose
    the whole word; any other word is returned as it is."""
    if len(word) >= 2 and word[0] in "\"'" and word[-1] == word[0]:
        body, out, i = word[1:-1], [], 0
        while i < len(body):
            if body[i] == word[0]:
                return word                 # a closing quote inside: not one quoted string
            if body[i] == "\\" and i + 1 < len(body):
                i += 1
            out.append(body[i])
            i += 1
        return "".join(out)
    return word
