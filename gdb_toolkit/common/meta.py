"""Command metadata, declared once per command, and everything generated from
it: gdb's ``help`` text, ``--help``, ``toolkit commands`` and the headers of
docs/commands/*.md.  Pure (no gdb): the docs test and the unit tests use it.

A command declares (class attributes of its ToolkitCommand subclass)::

    name = "got"                        # the short name; gdb's is "toolkit got"
    summary = "GOT slots and their state now"     # one line, fits `apropos` at 80
    usage = "got [REGEX] [--all-objects] [--json]"  # one line per form
    description = '''...'''             # paragraphs, lines under 80 columns
    examples = ("got", "got --json")    # gdb command lines, without "(gdb) "
    category = "plt"                    # default: the domain package
    repeat = False                      # Enter repeats it? (default: no)

A command that declares no ``summary`` is read from its docstring (first line
summary, "Usage:" block, text, "Example:" block): the format every command had
before metadata, so unconverted commands keep their help.
"""

#: category -> title, in the order `toolkit commands` lists them
CATEGORIES = {
    "toolkit": "Toolkit",
    "plt": "PLT/GOT",
    "stack": "Stack",
    "kernel": "Kernel memory and symbols (kcore, kallsyms, BTF)",
    "ktrace": "Kernel tracing (BPF)",
    "valgrind": "Valgrind memcheck (vgdb)",
}
#: domains whose commands live in another category
CATEGORY_OF_DOMAIN = {"doctor": "toolkit", "gdbsupport": "toolkit"}

PREFIX = "toolkit"
#: gdb wraps a help line at the terminal width: `apropos`/`help toolkit` lines stay below it
HELP_WIDTH = 80


class CommandMeta:
    """What a command is, for humans: name, summary, usage, description, examples."""

    __slots__ = ("name", "summary", "usage", "description", "examples", "category", "repeat")

    def __init__(self, name: str, summary: str, usage: str = "", description: str = "",
                 examples=(), category: str = "toolkit", repeat: bool = False):
        self.name = name
        self.summary = summary.strip()
        self.usage = _dedent(usage).strip("\n")
        self.description = _dedent(description).strip("\n")
        self.examples = tuple(examples)
        self.category = category
        self.repeat = repeat

    # -- names ------------------------------------------------------------------------------
    @property
    def gdb_name(self) -> str:
        """The name registered with gdb: every command lives under the ``toolkit`` prefix."""
        return self.name if self.name.split()[0] == PREFIX else f"{PREFIX} {self.name}"

    @property
    def short_name(self) -> str | None:
        """The top-level alias (``got``), or None for the toolkit's own subcommands."""
        return None if self.name.split()[0] == PREFIX else self.name

    def help_line(self) -> str:
        """The line gdb prints in ``apropos`` and ``help toolkit``."""
        names = self.gdb_name + (f", {self.short_name}" if self.short_name else "")
        return f"{names} -- {self.summary}"

    def summary_budget(self) -> int:
        """Characters the summary may use so that :meth:`help_line` never wraps at 80."""
        return HELP_WIDTH - 1 - (len(self.help_line()) - len(self.summary))

    # -- generated texts ----------------------------------------------------------------------
    def usage_lines(self) -> list[str]:
        lines = [ln.strip() for ln in self.usage.splitlines() if ln.strip()]
        return lines or [self.name]

    def help_text(self) -> str:
        """gdb's ``help NAME``: summary, usage, description, examples, other name.  gdb prints
        it as it is, whatever its width: every line is wrapped to fit 80 columns here."""
        from gdb_toolkit.common.text import wrap

        width = HELP_WIDTH - 1
        usage = self.usage_lines()
        out = [self.summary, ""]
        out += ["".join(wrap(u, width, "Usage: " if i == 0 else "       ", "         ")
                        for i, u in enumerate(usage)).rstrip("\n")]
        if self.description:
            out += ["", self._description(width).rstrip("\n")]
        if self.examples:
            out += ["", "Examples:" if len(self.examples) > 1 else "Example:"]
            out += [f"  (gdb) {e}" for e in self.examples]
        if self.short_name:
            out += ["", wrap(f'Also "{self.gdb_name}" (the name that stays when another extension '
                             f'has a "{self.short_name}").', width).rstrip("\n")]
        return "\n".join(out)

    def _description(self, width: int | None) -> str:
        """The description wrapped to *width*: paragraphs reflowed, option lists kept lists."""
        from gdb_toolkit.common.text import wrap

        narrow = (width or 80) // 3     # a hanging indent wider than that leaves no room
        return "".join(wrap(text, width, lead, hang if len(hang) <= narrow else hang[:narrow // 2 or 1])
                       if text.strip() else "\n" for text, lead, hang in _paragraphs(self.description))

    def help_page(self, options: str, width: int | None) -> str:
        """``NAME --help``: the help text with the options listed, wrapped to *width*."""
        from gdb_toolkit.common.text import wrap

        usage = self.usage_lines()
        out = wrap(f"{self.name} -- {self.summary}", width)
        out += "".join(wrap(u, width, "Usage: " if i == 0 else "       ", "         ")
                       for i, u in enumerate(usage))
        if self.description:
            out += "\n" + self._description(width)
        if options.strip():
            out += "\n" + options.rstrip("\n") + "\n"
        if self.examples:
            out += "\nExamples:\n" if len(self.examples) > 1 else "\nExample:\n"
            # an example wider than the terminal wraps between its words, continued under
            # the command (the terminal folded it anywhere: ktrace's 62-column example at 60)
            out += "".join(wrap(f"(gdb) {e}", width, "  ", "          ") for e in self.examples)
        return out

    def docs_header(self, level: int = 1) -> str:
        """The top of docs/commands/NAME.md (regenerated and checked by
        scripts/docs_transcripts.py and tests/integration/test_docs_transcripts.py)."""
        usage = self.usage_lines()
        out = [f"{'#' * level} {self.name}", "", self.summary + ("" if self.summary.endswith(".") else "."), "",
               "```", *usage, "```"]
        if self.short_name:
            out += ["", f"Also `{self.gdb_name}` (kept when another extension defines "
                        f"`{self.short_name}`)."]
        if self.examples:
            out += ["", "Examples:", "", "```", *[f"(gdb) {e}" for e in self.examples], "```"]
        return "\n".join(out) + "\n"

    def as_dict(self) -> dict:
        return {"name": self.name, "gdb_name": self.gdb_name, "summary": self.summary,
                "usage_lines": self.usage_lines(), "category": self.category,
                "examples": list(self.examples), "repeats": self.repeat}

    # -- reading a command class ------------------------------------------------------------
    @classmethod
    def of(cls, command_cls) -> "CommandMeta":
        """The metadata of a ToolkitCommand subclass: its declared attributes, or
        (not converted yet) its docstring."""
        name = command_cls.name
        category = getattr(command_cls, "category", None) or _category_from_module(command_cls)
        repeat = bool(getattr(command_cls, "repeat", False))
        if getattr(command_cls, "summary", None):
            return cls(name, command_cls.summary, getattr(command_cls, "usage", "") or "",
                       getattr(command_cls, "description", "") or "",
                       getattr(command_cls, "examples", ()) or (), category, repeat)
        return cls.from_docstring(name, command_cls.__doc__ or "", category, repeat)

    @classmethod
    def from_docstring(cls, name: str, doc: str, category: str = "toolkit",
                       repeat: bool = False) -> "CommandMeta":
        lines = _dedent_doc(doc).splitlines()
        summary = lines[0].strip() if lines else name
        usage, desc, examples = [], [], []
        mode = "desc"
        for ln in lines[1:]:
            s = ln.strip()
            if s.startswith("Usage:"):
                mode = "usage"
                usage.append(s[len("Usage:"):].strip())
                continue
            if s in ("Example:", "Examples:"):
                mode = "examples"
                continue
            if mode == "usage":
                if s:
                    usage.append(s)
                    continue
                mode = "desc"
            if mode == "examples":
                if s.startswith("(gdb)"):
                    examples.append(s[len("(gdb)"):].strip())
                elif s and examples:
                    examples[-1] += "\n" + s  # an output line shown after the command
                continue
            desc.append(ln.rstrip())
        # joined continuation usage lines ("ktrace FUNC ..." + "[--count N] ...") stay separate
        return cls(name, summary, "\n".join(usage), "\n".join(desc).strip("\n"),
                   [e.split("\n")[0] for e in examples], category, repeat)


def _category_from_module(command_cls) -> str:
    parts = getattr(command_cls, "__module__", "").split(".")
    domain = parts[1] if len(parts) > 2 and parts[0] == "gdb_toolkit" else "toolkit"
    return CATEGORY_OF_DOMAIN.get(domain, domain)


def _dedent(text: str) -> str:
    lines = (text or "").splitlines()
    if not any(ln[:1] in (" ", "\t") for ln in lines):
        return "\n".join(lines)        # nothing indented (every declared text): a load-time shortcut
    indents = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(ln[cut:] if ln.strip() else "" for ln in lines)


def _dedent_doc(doc: str) -> str:
    """A docstring without the indentation of its second and later lines."""
    lines = (doc or "").strip("\n").splitlines()
    if not lines:
        return ""
    return "\n".join([lines[0].strip()] + _dedent("\n".join(lines[1:])).splitlines())


def _starts_item(cur: list[str], hang: str) -> bool:
    """Whether a line starting with an option opens a definition-list item: at the start of a
    paragraph, inside a list, or after a line ending with ':'.  Anywhere else it is prose
    that happens to begin with an option ("--vgdb-prefix=P after "--" are honoured.  Its
    stdout..."): as an item, its sentence hung 13 columns in under itself, mid-paragraph."""
    return not cur or bool(hang) or cur[-1].endswith(":")


def _paragraphs(text: str) -> list[tuple[str, str, str]]:
    """The description as ``(text, indent, subsequent indent)`` paragraphs to wrap.

    Plain lines join into one paragraph.  A definition-list item -- a line starting with
    an option (``--diff     what changed...``) or indented, with the more-indented lines
    after it -- is a paragraph of its own that wraps under its text, as written
    (``--audit    what ... / (search order ...)``): joined with the plain paragraph before
    it, the option list reads as run-on prose.  A line of running prose that starts with
    an option is prose (:func:`_starts_item`)."""
    out: list[tuple[str, str, str]] = []
    cur: list[str] = []
    lead = hang = ""

    def flush():
        nonlocal cur
        if cur:
            out.append((" ".join(cur), lead, hang))
            cur = []

    for ln in text.splitlines():
        stripped = ln.strip()
        indent = len(ln) - len(ln.lstrip(" "))
        if not stripped:
            flush()
            out.append(("", "", ""))
            lead = hang = ""
        elif cur and hang and indent >= len(hang) > 0:
            cur.append(stripped)                    # the item's continuation line
        elif indent or (ln.startswith("-") and _starts_item(cur, hang)):
            flush()
            gap = stripped.find("  ")              # "--diff     what...": text starts after the gap
            body = stripped[gap:].lstrip(" ") if gap > 0 else ""
            if body:        # the term and its gap lead the first line, the text hangs under itself
                lead = " " * indent + stripped[:len(stripped) - len(body)]
                hang = " " * len(lead)
                cur = [body]
            else:
                lead = " " * indent
                hang = lead + "  "
                cur = [stripped]
        else:
            if hang:
                flush()
                lead = hang = ""
            cur.append(stripped)
    flush()
    return out


def function_meta(fn_cls) -> dict:
    """A convenience function's listing from its docstring's first line,
    ``$name(ARGS) -- what it returns``."""
    first = _dedent_doc(fn_cls.__doc__ or "").splitlines()[:1]
    usage, _, summary = (first[0] if first else "").partition(" -- ")
    return {"usage": usage.strip(), "summary": summary.strip().rstrip(".")}
