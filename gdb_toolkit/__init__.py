"""gdb_toolkit: deep-debugging walkthroughs as gdb commands.

Inside gdb, importing this package registers every command (idempotently).
Outside gdb (pytest, plain Python) it is an ordinary library: the domain
cores never import ``gdb``.
"""

__version__ = "0.1.0"


def register() -> None:
    """Register all gdb commands; safe to call more than once."""
    import gc

    # loading builds ~10,000 objects that all stay (modules, classes, commands): the cyclic
    # collector's passes over them meanwhile free nothing (as common/gc_pause.py)
    was = gc.isenabled()
    gc.disable()
    try:
        from gdb_toolkit.gdbsupport.registry import register_all

        register_all()
    finally:
        if was:
            gc.enable()


try:  # pragma: no cover - depends on running inside gdb
    import gdb as _gdb  # noqa: F401
except ImportError:
    _gdb = None

if _gdb is not None and hasattr(_gdb, "Command"):  # really inside gdb
    register()
