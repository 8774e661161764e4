"""Registration of every command: the ``toolkit`` prefix, each domain's commands
and convenience functions, then the short names.

Loading must stay cheap (~5 ms in all) while the domains' command modules are
thousands of lines, so gdb is given, per command, a small :class:`RegisteredCommand`
made from the *command table* (gdbsupport/command_table.py: name, help text,
repeat, module and class of every command), and a command's module is imported
on its first use (invoke or completion).  The table is generated from the command
classes by ``scripts/command_table.py`` and carries a fingerprint of the sources
it was made from (every domain's gdb_commands.py and the framework files that
shape the help).  If one changed since -- a command edited, the table not
regenerated -- the table is not trusted: the modules are imported at load and
the same entries built from the classes (slower, never stale), and
tests/integration/test_command_table.py fails until the table is regenerated.

A domain is a sub-package of gdb_toolkit with a ``gdb_commands.py`` declaring
``COMMANDS`` (its ToolkitCommand classes); it may also declare ``FUNCTIONS``
(convenience functions: classes with ``name``, a docstring whose first line is
``$name(ARGS) -- what it returns``, and ``invoke(*args)``) and
``CONVENIENCE_VARIABLES = {"$name": "what it holds"}`` for the variables its
commands set.  A domain is found by listing the package directory, so adding
one needs no edit here (only regenerating the table).  Metadata are literals in
the command classes: the table is made from them and nothing else.

Names: every command is registered as ``toolkit NAME``; ``NAME`` itself is a
gdb alias made afterwards -- unless a command or alias of that name already
exists (pwndbg's and GEF's ``got``...), which is then kept and said once.
``tk`` is an alias of ``toolkit`` when free.  See docs/architecture.md.
"""
import importlib
import os

import gdb

PREFIX = "toolkit"
PREFIX_ALIAS = "tk"
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the module of the toolkit's own commands, listed before the domains
TOOLKIT_MODULE = "gdb_toolkit.gdbsupport.toolkit_command"
#: files besides the domains' gdb_commands.py that shape the table's entries (paths
#: relative to the package): a change to one makes the table stale
FRAMEWORK_SOURCES = ("gdbsupport/registry.py", "gdbsupport/command.py",
                     "gdbsupport/toolkit_command.py", "common/meta.py")

_registered = False
_entries: list = []
_proxies: list = []
_short_names: dict[str, str] = {}      # alias made -> the toolkit command it names
_kept: list[str] = []                   # short names another extension already had
_function_names: dict[str, str] = {}    # convenience function entry -> name given to gdb
_replaced: list[str] = []               # "toolkit" when a command of that name existed
_variables: dict[str, str] = {}
#: where the entries came from at load: "table" or "modules" (a stale or missing table)
source = ""


class Entry:
    """One command or convenience function, as the table records it: what gdb needs at
    load (name, help text, class of command, repeat) and where its code is."""

    __slots__ = ("kind", "name", "module", "class_name", "doc", "repeat", "command_class",
                 "listing")

    def __init__(self, kind: str, name: str, module: str, class_name: str, doc: str,
                 repeat: bool = False, command_class: int = 0, listing: dict | None = None):
        self.kind = kind                    # "command" or "function"
        self.name = name                    # "got", "toolkit doctor"; "ksym" for $ksym
        self.module = module
        self.class_name = class_name
        self.doc = doc                      # gdb's help text
        self.repeat = repeat
        self.command_class = command_class  # a gdb.COMMAND_* constant
        self.listing = listing or {}        # toolkit commands' row (CommandMeta.as_dict ...)

    @property
    def gdb_name(self) -> str:
        return self.name if self.name.split()[0] == PREFIX else f"{PREFIX} {self.name}"

    @property
    def short_name(self) -> str | None:
        return None if self.kind != "command" or self.name.split()[0] == PREFIX else self.name

    def as_tuple(self) -> tuple:
        return (self.kind, self.name, self.module, self.class_name, self.doc, self.repeat,
                self.command_class, self.listing)

    @classmethod
    def of_command(cls, command_cls, module: str) -> "Entry":
        """The entry of a ToolkitCommand class (the table is made of these)."""
        listing = dict(command_cls.meta().as_dict(), schema=command_cls.schema_name())
        return cls("command", command_cls.name, module, command_cls.__name__,
                   command_cls.help_text(), bool(command_cls.repeat),
                   int(command_cls.command_class), listing)

    def load(self):
        """The class behind this entry (imports its module)."""
        return getattr(importlib.import_module(self.module), self.class_name)


# -- what gdb holds -----------------------------------------------------------------------------
def _json_error(argument: str, command: str, kind: str, cause: str, fix: str) -> None:
    """Under --json, an error the command itself never saw still prints its one document
    (the envelope, docs/json.md) before gdb's error."""
    if "--json" in argument.split():
        from gdb_toolkit.gdbsupport.command import write_json_error

        write_json_error(command, kind, cause, fix)


def _load_failure(entry: Entry, exc: Exception, argument: str = "") -> gdb.GdbError:
    if os.environ.get("GDB_TOOLKIT_DEBUG"):
        import traceback

        traceback.print_exc()
    cause = f"{entry.name}: cannot load {entry.module}: {type(exc).__name__}: {exc}"
    fix = "reinstall gdb_toolkit or report it with GDB_TOOLKIT_DEBUG=1 output"
    _json_error(argument, entry.name, "internal", cause, fix)
    return gdb.GdbError(f"{cause}. Fix: {fix}.")


class RegisteredCommand(gdb.Command):
    """``toolkit NAME`` as gdb holds it: help from the table; the ToolkitCommand itself is
    created on first use, and every call is passed to it."""

    def __init__(self, entry: Entry, command=None):
        self.__doc__ = entry.doc            # gdb reads the instance's __doc__ as its help
        super().__init__(entry.gdb_name, entry.command_class)
        self.entry = entry
        self._command = command

    def command(self, argument: str = ""):
        """The ToolkitCommand behind this name (its module imported on the first call)."""
        if self._command is None:
            try:
                self._command = self.entry.load()()
            except Exception as exc:
                raise _load_failure(self.entry, exc, argument) from None
        return self._command

    def invoke(self, argument, from_tty):
        if not self.entry.repeat:
            self.dont_repeat()
        if self._command is None:
            _preload(self.entry, argument)
        self.command(argument).invoke(argument, from_tty)

    def complete(self, text, word):
        try:
            command = self.command()
        except gdb.GdbError:
            return []
        return command.complete(text, word)


def _preload(entry: Entry, argument: str) -> None:
    """Import what this command's first call needs in one pass (common/fast_import.py explains
    why; gdbsupport/first_call_modules.py, generated, says what)."""
    try:
        from gdb_toolkit.common.fast_import import load
        from gdb_toolkit.gdbsupport.first_call_modules import MODULES

        load(MODULES.get(entry.name, ()))
    except Exception as exc:
        raise _load_failure(entry, exc, argument) from None


class RegisteredFunction(gdb.Function):
    """A convenience function (``$ksym``) as gdb holds it, its code loaded on first use.
    gdb gives it *name* (``tk_ksym`` when the user's gdb had a ``$ksym`` already)."""

    def __init__(self, entry: Entry, name: str | None = None):
        doc = entry.doc
        if name and name != entry.name and doc.startswith("$" + entry.name):
            doc = "$" + name + doc[len(entry.name) + 1:]       # help function tk_ksym
        self.__doc__ = doc
        super().__init__(name or entry.name)
        self.entry = entry
        self._function = None

    def invoke(self, *args):
        if self._function is None:
            try:
                self._function = self.entry.load()()
            except Exception as exc:
                raise _load_failure(self.entry, exc) from None
        return self._function.invoke(*args)


class ToolkitPrefix(gdb.Command):
    """gdb_toolkit: PLT/GOT, kprobes, stack, valgrind and bcc commands.

Every gdb_toolkit command is "toolkit NAME" (also "tk NAME"), and NAME alone
unless another extension (pwndbg, GEF...) had that name first.
Start with "toolkit doctor" to see what works on this machine, and
"toolkit commands" for every command and convenience function.

Examples:
  (gdb) toolkit doctor
  (gdb) toolkit commands"""

    def __init__(self):
        super().__init__(PREFIX, gdb.COMMAND_SUPPORT, gdb.COMPLETE_COMMAND, True)

    def invoke(self, argument, from_tty):
        self.dont_repeat()
        words = [w for w in argument.split() if w != "--json"]
        if words:
            from gdb_toolkit.common.names import printable_text

            cause = f"Undefined {PREFIX} command: \"{printable_text(words[0])}\""
            _json_error(argument, PREFIX, "usage", cause, f'"help {PREFIX}" lists them')
            raise gdb.GdbError(f"{cause}.  Try \"help {PREFIX}\".")
        if words != argument.split():      # "toolkit --json": the listing is toolkit commands'
            _json_error(argument, PREFIX, "usage", f"{PREFIX} itself has no --json",
                        f'"{PREFIX} commands --json" lists every command')
            raise gdb.GdbError(f"{PREFIX} itself has no --json.  Try \"{PREFIX} commands --json\".")
        gdb.execute(f"help {PREFIX}")


# -- the entries: from the table, or from the modules --------------------------------------------
def domain_modules() -> list[str]:
    """The toolkit's own commands' module, then every domain's gdb_commands module."""
    names = [TOOLKIT_MODULE]
    for entry in sorted(os.listdir(PACKAGE_DIR)):
        if os.path.isfile(os.path.join(PACKAGE_DIR, entry, "gdb_commands.py")):
            names.append(f"gdb_toolkit.{entry}.gdb_commands")
    return names


def source_files(modules: list[str]) -> list[str]:
    """The files (relative to the package) whose content the table's entries come from."""
    domains = [m.split(".")[1] + "/gdb_commands.py" for m in modules if m != TOOLKIT_MODULE]
    return list(FRAMEWORK_SOURCES) + domains


def fingerprint(relpaths: list[str]) -> tuple:
    """((path, crc32 of its bytes), ...): what the table was made from."""
    import zlib

    out = []
    for rel in relpaths:
        with open(os.path.join(PACKAGE_DIR, rel), "rb") as f:
            out.append((rel, zlib.crc32(f.read())))
    return tuple(out)


def entries_from_modules() -> tuple[list[Entry], dict[str, str]]:
    """Import every command module and describe its commands, functions and variables
    (what scripts/command_table.py writes, and the load's way when the table is stale)."""
    from gdb_toolkit.common.meta import function_meta

    entries, variables = [], {}
    for modname in domain_modules():
        module = importlib.import_module(modname)
        entries += [Entry.of_command(cls, modname) for cls in getattr(module, "COMMANDS", ())]
        for cls in getattr(module, "FUNCTIONS", ()):
            entries.append(Entry("function", cls.name, modname, cls.__name__, cls.__doc__ or "",
                                 listing=function_meta(cls)))
        variables.update(getattr(module, "CONVENIENCE_VARIABLES", {}) or {})
    return entries, variables


def entries_from_table() -> tuple[list[Entry], dict[str, str]] | None:
    """The generated table's entries, or None when it is missing or was made from other
    sources than the ones here."""
    try:
        from gdb_toolkit.gdbsupport import command_table as table
    except Exception:           # missing, or damaged (a merge left it broken): the modules serve
        return None
    try:
        if fingerprint(source_files(domain_modules())) != table.SOURCES:
            return None
    except OSError:
        return None
    return [Entry(*t) for t in table.ENTRIES], dict(table.VARIABLES)


def table_text(entries: list[Entry], variables: dict[str, str]) -> str:
    """The source of gdbsupport/command_table.py for *entries* (scripts/command_table.py)."""
    from pprint import pformat

    lines = ['"""The command table: what gdb is given at load, generated from the command classes',
             'by scripts/command_table.py (gdbsupport/registry.py explains it).  Do not edit:',
             'regenerate it after changing a command\'s metadata or adding one."""',
             "# flake8: noqa", "",
             "SOURCES = " + pformat(fingerprint(source_files(domain_modules())), width=96, sort_dicts=False), "",
             "ENTRIES = ("]
    lines += ["    " + pformat(e.as_tuple(), width=96, sort_dicts=False).replace("\n", "\n    ") + ","
              for e in entries]
    lines += [")", "", "VARIABLES = " + pformat(variables, width=96, sort_dicts=False), ""]
    return "\n".join(lines)


# -- registration ------------------------------------------------------------------------------
def register_all() -> None:
    global _registered, source
    if _registered:
        return
    # the prefix holds every command, so it cannot be left to a user's `define toolkit`
    # (gdb.Command replaces it without a word): replaced, but said (kept_note)
    if _command_exists(PREFIX):
        _replaced.append(PREFIX)
    _proxies.append(ToolkitPrefix())
    found = entries_from_table()
    source = "table" if found is not None else "modules"
    entries, variables = found if found is not None else entries_from_modules()
    for entry in entries:
        _add(entry)
    _variables.update(variables)
    _registered = True
    _add_short_names(entries)


def _add(entry: Entry, command=None) -> None:
    _entries.append(entry)
    if entry.kind == "command":
        _proxies.append(RegisteredCommand(entry, command))
        return
    name = entry.name
    if _convenience_exists(name):
        # gdb.Function would silently replace the user's $ksym (a function of another
        # extension, or a variable set in ~/.gdbinit): keep theirs, ours is $tk_ksym
        _kept.append("$" + name)
        name = f"{PREFIX_ALIAS}_{name}"
    _function_names[entry.name] = name
    _proxies.append(RegisteredFunction(entry, name))


def _command_exists(name: str) -> bool:
    """Whether gdb has a command *name* (a plain identifier of ours, never user text)."""
    try:
        gdb.execute(f"help {name}", to_string=True)
    except gdb.error:
        return False
    return True


def _convenience_exists(name: str) -> bool:
    """Whether ``$name`` is already a convenience function or a variable with a value
    (gdb.convenience_variable is None for a void one, the state of a name never set)."""
    try:
        return gdb.convenience_variable(name) is not None
    except Exception:           # a value gdb cannot convert: something is there
        return True


def function_name(entry: Entry) -> str:
    """The name gdb knows a convenience function entry by (without the ``$``)."""
    return _function_names.get(entry.name, entry.name)


def register_class(cls):
    """Register one ToolkitCommand subclass now, without an alias (tests, a user's own
    commands built on the framework); returns its RegisteredCommand."""
    _add(Entry.of_command(cls, cls.__module__), cls())
    return _proxies[-1]


def _is_plain_name(name: str) -> bool:
    """An ASCII command name of letters, digits, '-', '_' and '.' (what gdb allows in one):
    no space, quote or ';' that could start another command.  One C-level test each."""
    return (bool(name) and name.isascii() and (name[0].isalpha() or name[0] == "_")
            and name.replace("-", "").replace("_", "").replace(".", "").isalnum())


def _alias(short: str, target: str) -> bool:
    """``alias SHORT = TARGET``; False when gdb refuses (the name exists already)."""
    # the toolkit's own identifiers, or a command name gdb itself listed (_keep_abbreviations),
    # checked to be plain words: never user text that could hold a second command
    if not (_is_plain_name(short) and all(_is_plain_name(w) for w in target.split())):
        raise ValueError(f"not a plain command name: {short!r} / {target!r}")
    try:
        gdb.execute(f"alias {short} = {target}", to_string=True)
    except gdb.error:
        return False
    return True


def _commands_starting(letters) -> dict[str, list[str]]:
    """gdb's top-level commands and aliases by first letter (``complete L``: ~30 us each)."""
    out = {}
    for letter in letters:      # our names' first letters: plain identifiers, never user text
        try:
            out[letter] = gdb.execute(f"complete {letter}", to_string=True).split()
        except gdb.error:
            out[letter] = []
    return out


def _keep_abbreviations(before: dict[str, list[str]], added: list[str]) -> None:
    """A one- or two-letter abbreviation that named one gdb command before the short names
    were added keeps naming it: ``k`` was ``kill`` (gdb resolves a unique prefix), and the
    kernel commands' aliases made it 'Ambiguous command "k"'; likewise ``go``
    (goto-bookmark) and ``ft`` (ftrace).  An explicit gdb alias restores it."""
    ours = set(added) | {PREFIX, PREFIX_ALIAS} | {e.short_name for e in _entries if e.short_name}
    for prefix in sorted({name[:n] for name in added for n in (1, 2) if len(name) > n}):
        # what gdb had before the toolkit: not our own names (the prefix is registered already)
        had = {c for c in before.get(prefix[0], ()) if c.startswith(prefix)} - ours
        if len(had) == 1 and prefix not in had:
            target = had.pop()      # a user's `define` may have any name gdb accepts
            if _is_plain_name(target):
                _alias(prefix, target)


def _add_short_names(entries: list[Entry]) -> None:
    shorts = [e.short_name for e in entries if e.short_name] + [PREFIX_ALIAS, PREFIX]
    before = _commands_starting({name[0] for name in shorts})
    for entry in entries:
        short = entry.short_name
        if short is None:
            continue
        if _alias(short, entry.gdb_name):
            _short_names[short] = entry.gdb_name
        else:
            _kept.append(short)
    if not _alias(PREFIX_ALIAS, PREFIX):
        _kept.append(PREFIX_ALIAS)
    _keep_abbreviations(before, list(_short_names) + [PREFIX] +
                        ([PREFIX_ALIAS] if PREFIX_ALIAS not in _kept else []))
    if _kept or _replaced:
        gdb.write(kept_note() + "\n", gdb.STDERR)


def replaced_note() -> str:
    """What the toolkit had to replace at load ('' if nothing): only its prefix can be."""
    if not _replaced:
        return ""
    return (f"replaced the existing '{PREFIX}' command (defined before gdb_toolkit loaded): "
            f"every toolkit command lives under it")


def kept_note() -> str:
    """The one message about names another extension had first, and a replaced prefix
    ('' if none)."""
    if not _kept:
        return f"gdb_toolkit: {replaced_note()}" if _replaced else ""
    names = ", ".join(_kept)
    commands = [k for k in _kept if not k.startswith("$")]
    functions = [k for k in _kept if k.startswith("$")]
    theirs = []
    if commands:
        theirs.append("'toolkit NAME'" + (f" and '{PREFIX_ALIAS} NAME'"
                                          if PREFIX_ALIAS not in _kept else ""))
    theirs += [f"${PREFIX_ALIAS}_{f[1:]}" for f in functions]
    return (f"gdb_toolkit: kept the existing {names} (defined before gdb_toolkit loaded); "
            f"the toolkit's {'is' if len(theirs) == 1 and not commands else 'are'} "
            + ", ".join(theirs) + (f"; {replaced_note()}" if _replaced else ""))


def entries() -> list[Entry]:
    """Every registered command and convenience function, as the table describes them."""
    return list(_entries)


def command_objects() -> list:
    """The ToolkitCommand behind every registered command (imports every domain: tests)."""
    return [p.command() for p in _proxies if isinstance(p, RegisteredCommand)]


def short_names() -> dict[str, str]:
    """Short alias -> toolkit command, for the aliases that were made."""
    return dict(_short_names)


def kept_names() -> list[str]:
    return list(_kept)


def taken_over() -> list[str]:
    """The short names (and ``tk``) made at load that no longer run the toolkit's command:
    something sourced after the toolkit (GEF's and pwndbg's ``got``, a user's ``define``)
    redefined them.  gdb says nothing then; ``toolkit commands`` does.  An alias shows its
    command's help, so ``help NAME`` equals ``help TARGET`` exactly while the alias is ours."""
    made = dict(_short_names)
    if PREFIX_ALIAS not in _kept:
        made[PREFIX_ALIAS] = PREFIX
    out = []
    for short, target in made.items():
        try:        # both names are the toolkit's own identifiers (checked when made)
            if gdb.execute(f"help {short}", to_string=True) == \
                    gdb.execute(f"help {target}", to_string=True):
                continue
        except gdb.error:
            pass
        out.append(short)
    return out


def taken_over_note(names) -> str:
    """The message about short names redefined after the toolkit loaded ('' if none)."""
    if not names:
        return ""
    return (f"{', '.join(names)} {'was' if len(names) == 1 else 'were'} redefined after "
            "gdb_toolkit loaded (another extension or a define): the toolkit's are "
            "'toolkit NAME'" + (f" and '{PREFIX_ALIAS} NAME'" if PREFIX_ALIAS not in names
                                and PREFIX_ALIAS not in _kept else ""))


def convenience_variables() -> dict[str, str]:
    return dict(_variables)
