"""Pause Python's cyclic garbage collector while a command builds thousands of objects.

Parsing 10 000 leak records creates ~100 000 container objects that all stay alive
(records, frames, rows); every 700 allocations the collector walks the young ones
again, and once in a while all of them: ~150 collections, 25-30 ms of vg-leaks'
own ~120 ms, that free nothing.  Reference counting still frees everything as
usual; only the search for reference cycles waits until the block ends.
"""
import gc
from contextlib import contextmanager


@contextmanager
def gc_paused():
    """No cyclic collection inside the block (nests; the previous state is restored)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
