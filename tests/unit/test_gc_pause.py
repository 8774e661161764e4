"""common.gc_pause: no cyclic collection inside the block, the collector's state restored,
and a block that imported modules leaves its survivors in the oldest generation -- still
collected by a full collection (checked with a reference cycle made inside the block).
gc_resumed() inside a block: the collector as it was outside the block."""
import gc
import sys
import types
import weakref

from gdb_toolkit.common.gc_pause import gc_paused, gc_resumed


class Node:
    pass


def _cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_no_collection_inside_and_state_restored():
    seen = []
    cb = lambda phase, info: seen.append(phase)
    gc.callbacks.append(cb)
    try:
        assert gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
            keep = [[i] for i in range(5000)]          # > threshold: would collect if enabled
            assert not seen
        assert gc.isenabled() and keep
        gc.disable()
        with gc_paused():
            pass
        assert not gc.isenabled()                       # a disabled collector stays disabled
    finally:
        gc.enable()
        gc.callbacks.remove(cb)


def test_a_block_that_imports_promotes_survivors_which_stay_collectable():
    name = "gdb_toolkit_test_gc_pause_module"
    with gc_paused():
        sys.modules[name] = types.ModuleType(name)     # as an import does
        dead = _cycle()
        keep = [[i] for i in range(2000)]
    try:
        assert gc.get_count()[0] < 700 and gc.get_freeze_count() == 0
        assert dead() is not None                       # not scanned young: it waits ...
        gc.collect()
        assert dead() is None and keep                  # ... for a full collection
    finally:
        del sys.modules[name]


def test_a_block_without_imports_leaves_the_young_generation_young():
    gc.collect()
    with gc_paused():
        dead = _cycle()
    assert gc.get_freeze_count() == 0
    gc.collect(0)                                       # a young collection finds the cycle
    assert dead() is None


def test_resumed_inside_a_block_collects_as_outside():
    seen = []
    cb = lambda phase, info: seen.append(phase)
    try:
        with gc_paused():
            with gc_paused():                           # nested: the outermost state counts
                with gc_resumed():
                    assert gc.isenabled()
                    gc.callbacks.append(cb)
                    keep = [[i] for i in range(5000)]   # > threshold: collects
                    gc.callbacks.remove(cb)
                    assert seen and keep
                assert not gc.isenabled()               # paused again after the stretch
            assert not gc.isenabled()
        assert gc.isenabled()
        with gc_resumed():                              # outside any block: no change
            assert gc.isenabled()
        gc.disable()                                    # a collector disabled before the block ...
        with gc_paused():
            with gc_resumed():
                assert not gc.isenabled()               # ... stays disabled
        assert not gc.isenabled()
    finally:
        gc.enable()
        if cb in gc.callbacks:
            gc.callbacks.remove(cb)
