"""Pause Python's cyclic garbage collector while a command builds thousands of objects.

Parsing 10 000 leak records creates ~100 000 container objects that all stay alive
(records, frames, rows); every 700 allocations the collector walks the young ones
again, and once in a while all of them: ~150 collections, 25-30 ms of vg-leaks'
own ~120 ms, that free nothing.  Reference counting still frees everything as
usual; only the search for reference cycles waits until the block ends.

A block that imported modules (a command's first call) leaves behind mostly objects that
live as long as gdb: module functions, classes, constants, caches.  When it ends, the
collector's first pass would walk every one of them as young objects (~0.3 ms after a
first 'got', freeing nothing); instead they are moved to the oldest generation at once
(gc.freeze() then gc.unfreeze(): two list splices), where full collections still examine
them.  Only such blocks do this, so a command run over and over keeps the usual
generational collection of what it leaves behind.
"""
import gc
import sys
from contextlib import contextmanager


#: gc.isenabled() outside each gc_paused() block in progress, innermost last (gc_resumed)
_outside: list[bool] = []


@contextmanager
def gc_paused():
    """No cyclic collection inside the block (nests; the previous state is restored)."""
    was = gc.isenabled()
    modules = len(sys.modules)
    gc.disable()
    _outside.append(was)
    try:
        yield
    finally:
        _outside.pop()
        if was:
            if len(sys.modules) != modules and not gc.get_freeze_count():
                gc.freeze()         # everything tracked -> the permanent generation ...
                gc.unfreeze()       # ... -> back into the oldest one, still collectable
                # (not when something else in this process froze objects: unfreeze would
                # give its objects back to the collector)
            gc.enable()


@contextmanager
def gc_resumed():
    """Inside a gc_paused() block, the collector as it was outside it: for a stretch that lets
    the program run for as long as it takes (plt-walk --live), while other Python code in gdb
    (stop handlers, other extensions) allocates.  Outside any such block: no change."""
    if not _outside or not _outside[0] or gc.isenabled():
        yield
        return
    gc.enable()
    try:
        yield
    finally:
        gc.disable()
