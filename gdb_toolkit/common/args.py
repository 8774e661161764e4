"""Command-line parsing for every command: argparse, reporting bad input as a UsageError
instead of exiting gdb -- and imported only when it has something to do.

An ``ArgParser`` records its arguments.  ``parse`` answers the argvs a user types most --
nothing, flags (``--json``, ``--all-objects``), plain words for optional positionals
(``got puts``), options with a separate value (``--kcore PATH``, ``-n 3``), a last ``*``
positional after required ones (vg-start's PROGRAM [ARGS...]) -- from that
record, without importing argparse (with gettext and locale, ~3 ms of a command's first call;
issue 14).  Anything else (``--opt=value``, a value starting with ``-``, an abbreviated
option, ``-h``, ``--``, anything unusual or wrong) is parsed by the argparse parser built from the same
record, so every error text, every default and every corner of argparse's behaviour stays
argparse's.  tests/fuzz/targets/args.py checks that both ways agree.
"""
from gdb_toolkit.common.errors import UsageError


_BAD = object()             # a value the fast path leaves to argparse


class HelpRequested(Exception):
    """``-h``/``--help`` was given: carry the help text to the caller."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class Namespace:
    """Parsed arguments as attributes (what argparse.Namespace is, without argparse).
    Equal to an argparse.Namespace holding the same values."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __eq__(self, other):
        if type(other).__name__ != "Namespace" or not hasattr(other, "__dict__"):
            return NotImplemented
        return vars(self) == vars(other)

    def __contains__(self, key):
        return key in self.__dict__

    def __repr__(self):
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class _Spec:
    """One add_argument call, as recorded."""
    __slots__ = ("names", "kw", "group", "dest", "positional")

    def __init__(self, names, kw, group):
        self.names = names
        self.kw = kw
        self.group = group          # None, ("group", title...) or ("mutex", n)
        self.positional = bool(names) and not names[0].startswith("-")
        if "dest" in kw:
            self.dest = kw["dest"]
        elif self.positional:
            self.dest = names[0]
        else:
            long = next((n for n in names if n.startswith("--")), names[0])
            self.dest = long.lstrip("-").replace("-", "_")


class _Group:
    """add_argument_group / add_mutually_exclusive_group, recorded."""

    def __init__(self, parser, key):
        self._parser = parser
        self._key = key

    def add_argument(self, *names, **kw):
        self._parser._record(names, kw, self._key)


class ArgParser:
    """A command's parser: argparse's API for building it (add_argument, argument groups,
    mutually exclusive groups), ``parse`` that never exits gdb.

    Every command parser gets ``--json`` unless ``json=False``.
    """

    def __init__(self, prog: str, description: str = "", json: bool = True, **kw):
        self.prog = prog
        self.description = description
        self._kw = kw
        self._specs: list[_Spec] = []
        self._groups: list[tuple] = []
        self._argparse = None
        self._record(("-h", "--help"), {"action": "help", "help": "show this help"}, None)
        if json:
            self._record(("--json",), {"action": "store_true",
                                       "help": "print one JSON document instead of a table"}, None)

    # -- building --------------------------------------------------------------------------
    def _record(self, names, kw, group) -> None:
        self._specs.append(_Spec(tuple(names), dict(kw), group))
        self._argparse = None           # rebuilt with the new argument when needed
        self._fast = None
        self._empty_checks = None

    def add_argument(self, *names, **kw) -> None:
        self._record(names, kw, None)

    def add_argument_group(self, title=None, description=None) -> _Group:
        key = ("group", len(self._groups), title, description)
        self._groups.append(key)
        return _Group(self, key)

    def add_mutually_exclusive_group(self, required: bool = False) -> _Group:
        key = ("mutex", len(self._groups), required)
        self._groups.append(key)
        return _Group(self, key)

    # -- parsing ---------------------------------------------------------------------------
    def parse(self, argv: list[str]):
        """The parsed arguments; UsageError for bad input, HelpRequested for -h/--help."""
        argv = list(argv)
        self._refuse_empty_values(argv)
        fast = self._parse_fast(argv)
        parsed = fast if fast is not None else self.argparse_parser().parse(argv)
        self._refuse_empty_paths(parsed)
        return parsed

    #: an optional positional under one of these names is a file: '' is not "not given"
    _PATH_WORDS = ("path", "file", "FILE", "PATH")

    def _refuse_empty_paths(self, parsed) -> None:
        """``kcore ''`` read /proc/kcore, as if no PATH was given: an optional positional that
        names a file, given '', is a usage error (an option's value: _refuse_empty_values)."""
        if self._empty_checks is None:
            self._empty_checks = [s for s in self._specs if s.positional and s.kw.get("nargs") == "?" and (
                s.dest in self._PATH_WORDS or s.kw.get("metavar") in self._PATH_WORDS)]
        for spec in self._empty_checks:
            if getattr(parsed, spec.dest, None) == "":
                name = spec.kw.get("metavar") or spec.dest.upper()
                raise UsageError(f"{self.prog}: {name} was given as '': give a file's path, or leave "
                                 f"{name} out", self.one_line_usage())

    def _refuse_empty_values(self, argv: list[str]) -> None:
        """An option given '' as its value (``--btf ''``, ``--diff ''``, ``--log=``) is a usage
        error: argparse stores the empty string, and a command testing ``if args.btf`` read it as
        "not given" (``ktypes --btf ''`` loaded the running kernel's BTF, ``got --diff ''``
        compared with the previous run instead of a file).  Words after ``--`` are not options."""
        if "" not in argv and not any(t.endswith("=") for t in argv):
            return                      # the usual line: nothing to look at
        for i, token in enumerate(argv):
            if token == "--":
                return
            if not token.startswith("--") and not (len(token) == 2 and token.startswith("-")):
                continue
            name, eq, value = token.partition("=")
            spec = self._option(name)
            if spec is None or spec.kw.get("action", "store") not in ("store", "append"):
                continue
            if (eq and value == "") or (not eq and i + 1 < len(argv) and argv[i + 1] == ""):
                metavar = spec.kw.get("metavar") or spec.dest.upper()
                leave = (f", or {name} alone" if spec.kw.get("nargs") == "?" else
                         "" if spec.kw.get("required") else " (or leave it out)")
                raise UsageError(f"{self.prog}: {name} was given an empty value: give {name} "
                                 f"{metavar}{leave}", self.one_line_usage())

    def _plan(self):
        """What the fast path may handle: {flag: dest} of plain store_true options, the
        positionals in order (required ones, then optional ones), the defaults, the
        mutually exclusive options -- or False when this parser has something only argparse
        does right ('*' positionals, string defaults argparse would convert, a required
        group...)."""
        if self._fast is not None:
            return self._fast
        flags, positionals, defaults, mutex, options = {}, [], {}, {}, {}
        plan = False
        for s in self._specs:
            kw = s.kw
            action = kw.get("action", "store")
            if s.group is not None and s.group[0] == "mutex":
                if s.group[2]:
                    break                       # a required group: argparse
                for n in s.names:
                    mutex[n] = s.group
            if action == "help":
                continue
            if s.positional:
                nargs, default = kw.get("nargs"), kw.get("default")
                if positionals and positionals[-1].kw.get("nargs") == "*":
                    break                       # anything after a '*'
                if nargs == "*":
                    # vg-start's PROGRAM [ARGS...]: a last '*' after required words only
                    if (any(p.kw.get("nargs") is not None for p in positionals) or isinstance(default, str)
                            or kw.get("type") is not None or kw.get("choices") is not None):
                        break
                    positionals.append(s)
                    defaults[s.dest] = default        # None: a new [] per parse (below)
                    continue
                if nargs not in (None, "?") or (nargs is None and positionals and
                                                positionals[-1].kw.get("nargs") == "?"):
                    break                       # '+', N, or a required one after '?'
                if isinstance(default, str) and (kw.get("type") is not None or
                                                 default not in kw.get("choices", (default,))):
                    break                       # argparse converts/checks a string default
                positionals.append(s)
                if nargs == "?":
                    defaults[s.dest] = default
                continue
            if action == "store_true":
                if "const" in kw or kw.get("required"):
                    break
                for n in s.names:
                    flags[n] = s.dest
                defaults.setdefault(s.dest, kw.get("default", False))
            elif action in ("store", "append"):
                if kw.get("required") or (isinstance(kw.get("default"), str) and kw.get("type") is not None):
                    break
                defaults.setdefault(s.dest, kw.get("default"))
                # one value each time (no nargs/const); append only onto argparse's fresh list
                simple = kw.get("nargs") is None and "const" not in kw and (
                    action == "store" or kw.get("default") is None)
                for n in s.names:
                    options[n] = s if simple else None
            else:
                break
        else:
            plan = (flags, positionals, defaults, mutex, options)
        self._fast = plan
        return plan

    def _parse_fast(self, argv: list[str]):
        plan = self._plan()
        if not plan:
            return None
        flags, positionals, defaults, mutex, options = plan
        values = dict(defaults)
        words: list[str] = []
        run_ended = False               # the positional words must be one run (argparse)
        groups_seen: dict = {}
        i = 0
        while i < len(argv):
            token = argv[i]
            i += 1
            if token.startswith("-"):
                dest = flags.get(token)
                spec = options.get(token)
                if dest is None and spec is None:
                    return None         # --opt=value, -h, --, an abbreviation, a typo: argparse
                group = mutex.get(token)
                if group is not None and groups_seen.setdefault(group, token) != token:
                    return None         # two of a mutually exclusive group: argparse says so
                if words:
                    run_ended = True
                if dest is not None:
                    values[dest] = True
                    continue
                if i >= len(argv) or argv[i].startswith("-"):
                    return None         # no value, or one argparse may read as an option
                value = self._convert(spec, argv[i])
                i += 1
                if value is _BAD:
                    return None
                if spec.kw.get("action", "store") == "append":
                    values[spec.dest] = (values[spec.dest] or []) + [value]
                else:
                    values[spec.dest] = value
            else:
                if run_ended:
                    return None
                words.append(token)
        required = sum(1 for spec in positionals if spec.kw.get("nargs") is None)
        rest = positionals[-1] if positionals and positionals[-1].kw.get("nargs") == "*" else None
        if not required <= len(words) <= (len(positionals) if rest is None else len(words)):
            return None                 # missing or extra words: argparse says which
        if rest is not None:
            if len(words) > required:
                values[rest.dest] = words[required:]    # argparse: a new list of the words
                words = words[:required]
            elif values[rest.dest] is None:
                values[rest.dest] = []
        for spec, word in zip(positionals, words):
            word = self._convert(spec, word)
            if word is _BAD:
                return None
            values[spec.dest] = word
        return Namespace(**values)

    @staticmethod
    def _convert(spec, text: str):
        """*text* through the argument's type and choices, or _BAD (argparse then reports
        it in its own words)."""
        kw = spec.kw
        conv = kw.get("type")
        value = text
        if conv is not None:
            try:
                value = conv(text)
            except Exception:
                return _BAD
        if kw.get("choices") is not None and value not in kw["choices"]:
            return _BAD
        return value

    # -- argparse ----------------------------------------------------------------------------
    def argparse_parser(self):
        """The argparse parser of this record (built on first use)."""
        if self._argparse is None:
            from gdb_toolkit.common._argparse import build

            self._argparse = build(self)
        return self._argparse

    def one_line_usage(self) -> str:
        """The usage line unwrapped: an error is the message plus this one line."""
        return self.argparse_parser().one_line_usage()

    def options_help(self, width: int | None = None) -> str:
        """The arguments and options sections of --help (usage and prose come
        from the command's metadata, common.meta)."""
        return self.argparse_parser().options_help(width)

    def format_help(self) -> str:
        return self.argparse_parser().format_help()

    def format_usage(self) -> str:
        """argparse's usage line (commands pass it to UsageError)."""
        return self.argparse_parser().format_usage()

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}", self.one_line_usage())

    def option_strings(self) -> list[str]:
        """All long options, for tab completion."""
        return sorted(n for s in self._specs for n in s.names if n.startswith("--"))

    def value_metavar(self, option: str) -> str | None:
        """The metavar of *option* when it takes a value (``--object`` -> ``PATH``, ``-n`` ->
        ``N``), else None: tab completion after the option completes its value."""
        spec = self._option(option)
        if spec is None or spec.kw.get("action", "store") not in ("store", "append"):
            return None
        return spec.kw.get("metavar") or spec.dest.upper()

    def choices(self, option: str) -> list[str]:
        """The values *option* accepts when it lists them (``--method``), else []."""
        spec = self._option(option)
        return [str(c) for c in spec.kw.get("choices") or ()] if spec else []

    def positional_at(self, words: list[str]):
        """(spec, n): the positional argument the next word on a command line of *words*
        (the words after the command name) fills, and how many words it has already (more
        than 0 only for a '*'/'+' one, which takes every word from there) -- or (None, 0).
        Options and their values are skipped.  For tab completion (``vg-leaks su<Tab>``,
        ``vg-check ADDR LEN de<Tab>``, ``ktask <Tab>``)."""
        index, i = 0, 0
        while i < len(words):
            word = words[i]
            i += 1
            if word.startswith("-") and len(word) > 1:
                if "=" not in word and self.value_metavar(word):
                    i += 1                      # its value
                continue
            index += 1
        for n, spec in enumerate(s for s in self._specs if s.positional):
            if spec.kw.get("nargs") in ("*", "+", "..."):
                return spec, index - n
            if n == index:
                return spec, 0
        return None, 0

    def positional_choices(self, words: list[str]) -> list[str]:
        """The values the next positional word may take when it lists them (vg-leaks'
        full|summary), else []."""
        spec, _ = self.positional_at(words)
        return [str(c) for c in spec.kw.get("choices") or ()] if spec is not None else []

    def positional_takes_pid(self, words: list[str]) -> bool:
        """The next word is the first of a positional whose metavar starts with PID (ktask's
        PID|ADDR): tab completion offers the pids."""
        spec, n = self.positional_at(words)
        return spec is not None and n == 0 and str(spec.kw.get("metavar") or "").startswith("PID")

    def _option(self, option: str):
        return next((s for s in self._specs if option in s.names and not s.positional), None)


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
        import argparse

        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


#: the largest value a byte count or address of a 64-bit target can take
U64_MAX = (1 << 64) - 1


def check_int_option(option: str, value, lo: int, hi: int, meaning: str = "") -> None:
    """One rule for every numeric option: *value* (already parsed, None when not given) must
    lie in ``lo..hi``; otherwise one line naming the option, the value and the range.
    (negative, zero, 2**64+1: each either means something documented or is refused here.)"""
    if value is None or lo <= value <= hi:
        return
    from gdb_toolkit.common.errors import ToolkitError

    span = f"{lo}..{hi}" if hi != U64_MAX else f"{lo}..2^64-1"
    raise ToolkitError(f"{option} {value} is out of range{meaning and ' (' + meaning + ')'}",
                       f"give {option} {span}")


def split_words(text: str, *, expressions: bool = False) -> list[str]:
    """Split a command line into words: the one splitter of the commands that do not take
    gdb's own (gdb.string_to_argv removes every backslash, so ``ev\\xe9il`` -- a name as the
    toolkit prints it, common.names.escape_name -- would arrive as ``evxe9il``).

    Both kinds of command line share the rules of blanks and backslashes: blanks outside
    quotes separate words; outside quotes ``\\ `` is gdb's escaped blank (``/tmp/my\\ core``)
    and a backslash before a quote makes it literal, any other backslash is kept with the
    character after it (``\\\\`` stays two characters: the printed form of one backslash, and a
    regular expression's), so a printed name can be typed back.  Inside quotes a backslash
    and the next character are one unit (``'a\\'b'`` does not end at the second quote).

    They differ in what quotes and brackets do:

    - names (``expressions=False``: got, plt, plt-walk): '...' and "..." group and are
      removed wherever they stand (``a'b c'd`` -> ``ab cd``); inside them ``\\'`` (``\\"``)
      is the quote itself, other backslashes are kept.
    - gdb expressions (``expressions=True``: kdis, kx, ksym...): brackets group too
      (``f(a, b)`` is one word), and quotes inside a word stay, so ``$ksym("vfs_write")+5``
      reaches gdb's evaluator intact; a word that is one quoted string as a whole loses its
      quotes (``'a b'`` -> ``a b``, as gdb's own splitting does).  Unbalanced quotes or
      brackets end at the end of the line (gdb reports the expression error itself)."""
    words, cur, depth, quote, i, n = [], [], 0, None, 0, len(text)
    have = quoted = False          # quoted: the word opens with a real quote (not \\')
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if quote:
                # a backslash and its character are one unit inside quotes; a name's \\'
                # is the quote itself (an expression keeps it for gdb, or _unquote_whole)
                cur.append(nxt if nxt == quote and not expressions else c + nxt)
            else:
                cur.append(nxt if nxt.isspace() or nxt in "'\"" else c + nxt)
                have = True
            i += 2
            continue
        if quote:
            if c == quote:
                quote = None
                if expressions:
                    cur.append(c)
            else:
                cur.append(c)
        elif c in "\"'":
            quoted = quoted or not cur
            quote, have = c, True
            if expressions:
                cur.append(c)
        elif expressions and c in "([{":
            depth += 1
            cur.append(c)
            have = True
        elif expressions and c in ")]}":
            depth = max(0, depth - 1)
            cur.append(c)
            have = True             # a word may start with one (a name ']x'): not dropped
        elif c.isspace() and depth == 0:
            if have:
                words.append(("".join(cur), quoted))
            cur, have, quoted = [], False, False
        else:
            cur.append(c)
            have = True
        i += 1
    if have:
        words.append(("".join(cur), quoted))
    if not expressions:
        return [w for w, _ in words]
    return [_unquote_whole(w) if q else w for w, q in words]


def split_expression_words(text: str) -> list[str]:
    """Words of a command line whose words may be gdb expressions (``split_words``)."""
    return split_words(text, expressions=True)


def split_name_words(text: str) -> list[str]:
    """Words of a command line whose words may be names as the toolkit prints them
    (``split_words``)."""
    return split_words(text)


def _unquote_whole(word: str) -> str:
    """``"a b"`` / ``'a b'`` -> ``a b`` (``\\'`` / ``\\"`` made a quote; other backslashes kept:
    a printed name's ``\\x1b``) when the quotes enclose the whole word; any other word is
    returned as it is."""
    if len(word) >= 2 and word[0] in "\"'" and word[-1] == word[0]:
        body, out, i = word[1:-1], [], 0
        while i < len(body):
            if body[i] == word[0]:
                return word                 # a closing quote inside: not one quoted string
            if body[i] == "\\" and i + 1 < len(body):
                i += 1
                if body[i] != word[0]:          # only \\' (\\") loses its backslash
                    out.append("\\")
            out.append(body[i])
            i += 1
        return "".join(out)
    return word


def name_word(name: str) -> str:
    """A printed name as one word of split_name_words (Tab completion offers it): blanks and
    quotes backslash-escaped (``sp\\ ace``, ``it\\'s``), the rest as printed."""
    if not any(c.isspace() or c in "'\"" for c in name):
        return name
    return "".join("\\" + c if c.isspace() or c in "'\"" else c for c in name)
