"""Registration of every command: the ``toolkit`` prefix, then each domain.

A domain is a sub-package of gdb_toolkit with a ``gdb_commands.py`` defining
``register()``; it is found by listing the package directory, so adding a
domain needs no edit here.  Domain modules must keep module-level imports
light (gdb, gdbsupport, common) and import their cores inside ``run``.
"""
import importlib
import os

_registered = False
_commands: list = []


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
    _registered = True


def registered_commands() -> list:
    """Instances of every registered toolkit command (for listings and tests)."""
    return list(_commands)
