"""Registration of every command: the ``toolkit`` prefix, then each domain,
then the short names.

A domain is a sub-package of gdb_toolkit with a ``gdb_commands.py`` defining
``register()``; it is found by listing the package directory, so adding a
domain needs no edit here.  Domain modules must keep module-level imports
light (gdb, gdbsupport, common) and import their cores inside ``run``.  A
domain may also declare ``CONVENIENCE_VARIABLES = {"$name": "what it holds"}``
for the convenience variables its commands set (listed by toolkit commands).

Names: every command is registered as ``toolkit NAME``; ``NAME`` itself is a
gdb alias made afterwards -- unless a command or alias of that name already
exists (pwndbg's and GEF's ``got``...), which is then kept and said once.
``tk`` is an alias of ``toolkit`` when free.  See docs/architecture.md.
"""
import importlib
import os

_registered = False
_commands: list = []
_short_names: dict[str, str] = {}      # alias made -> the toolkit command it names
_kept: list[str] = []                   # short names another extension already had
_variables: dict[str, str] = {}
PREFIX_ALIAS = "tk"


def domain_modules() -> list[str]:
    pkg_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = []
    for entry in sorted(os.listdir(pkg_dir)):
        if os.path.isfile(os.path.join(pkg_dir, entry, "gdb_commands.py")):
            names.append(f"gdb_toolkit.{entry}.gdb_commands")
    return names


def register_all() -> None:
    global _registered
    if _registered:
        return
    from gdb_toolkit.gdbsupport import toolkit_command

    _commands.extend(toolkit_command.register())
    for modname in domain_modules():
        module = importlib.import_module(modname)
        _commands.extend(module.register() or [])
        _variables.update(getattr(module, "CONVENIENCE_VARIABLES", {}) or {})
    _registered = True
    _add_short_names()


def _is_plain_name(name: str) -> bool:
    # every character alphanumeric or '-' (one C-level test: ~50 names checked at load)
    return bool(name) and name[0].isalpha() and name.replace("-", "").isalnum()


def _alias(short: str, target: str) -> bool:
    """``alias SHORT = TARGET``; False when gdb refuses (the name exists already)."""
    import gdb

    # both names are the toolkit's own identifiers (checked), never user text
    if not (_is_plain_name(short) and all(_is_plain_name(w) for w in target.split())):
        raise ValueError(f"not a plain command name: {short!r} / {target!r}")
    try:
        gdb.execute(f"alias {short} = {target}", to_string=True)
    except gdb.error:
        return False
    return True


def _add_short_names() -> None:
    import gdb

    from gdb_toolkit.gdbsupport.command import ToolkitCommand, gdb_name, short_name

    for cmd in _commands:
        if not isinstance(cmd, ToolkitCommand):
            continue
        short = short_name(cmd.name)
        if short is None:
            continue
        if _alias(short, gdb_name(cmd.name)):
            _short_names[short] = gdb_name(cmd.name)
        else:
            _kept.append(short)
    if not _alias(PREFIX_ALIAS, "toolkit"):
        _kept.append(PREFIX_ALIAS)
    if _kept:
        gdb.write(kept_note() + "\n", gdb.STDERR)


def kept_note() -> str:
    """The one message about names another extension had first ('' if none)."""
    if not _kept:
        return ""
    names = ", ".join(_kept)
    return (f"gdb_toolkit: kept the existing {names} (defined before gdb_toolkit loaded); "
            f"the toolkit's are 'toolkit NAME'" + (f" and '{PREFIX_ALIAS} NAME'"
                                                    if PREFIX_ALIAS not in _kept else ""))


def registered_commands() -> list:
    """Instances of every registered toolkit command and convenience function."""
    return list(_commands)


def short_names() -> dict[str, str]:
    """Short alias -> toolkit command, for the aliases that were made."""
    return dict(_short_names)


def kept_names() -> list[str]:
    return list(_kept)


def convenience_variables() -> dict[str, str]:
    return dict(_variables)
