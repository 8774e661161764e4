"""Loader for gdb: ``source /path/to/checkout/gdb_toolkit/gdbinit.py``.

Puts the checkout on sys.path, adds a virtual environment built for gdb's own
Python if one is configured, then imports the package (which registers the
commands).  Safe to source twice and from any working directory.
"""
import os as _os
import sys as _sys

_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _root not in _sys.path:
    _sys.path.insert(0, _root)

from gdb_toolkit.loader import bootstrap as _bootstrap  # noqa: E402

_bootstrap(_root)
