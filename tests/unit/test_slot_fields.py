"""common.record.SlotFields: the one equality and repr of plt's hand-written slotted classes."""
import pytest


def test_slot_fields_equality_and_repr():
    """common.record.SlotFields, the one __eq__/__repr__ of plt's hand-written slotted classes
    (Section, Segment, Symbol, RawReloc, ProcessEnv, Binding, Hit, LinkMapEntry had a copy
    each): equal only to the same type with equal slots, unhashable, repr Name(v1, ...)."""
    from gdb_toolkit.common.record import SlotFields
    from gdb_toolkit.plt.elf_file import Segment
    from gdb_toolkit.plt.link_map import LinkMapEntry

    class Other(SlotFields):
        __slots__ = ("type", "flags", "offset", "vaddr", "filesz", "memsz")

        def __init__(self, *values):
            for k, v in zip(self.__slots__, values):
                setattr(self, k, v)

    a, b = Segment(1, 5, 0, 0x400000, 0x1000, 0x2000), Segment(1, 5, 0, 0x400000, 0x1000, 0x2000)
    assert a == b and not a != b and a != Segment(1, 5, 0, 0x400000, 0x1000, 0x2001)
    assert a != Other(1, 5, 0, 0x400000, 0x1000, 0x2000)     # same slots, another type
    assert repr(a) == "Segment(1, 5, 0, 4194304, 4096, 8192)"
    assert repr(LinkMapEntry("/lib/x.so", 0, 16, 32, 0)) == "LinkMapEntry('/lib/x.so', 0, 16, 32, 0)"
    with pytest.raises(TypeError):
        hash(a)
    with pytest.raises(AttributeError):
        a.extra = 1                     # still slotted: the base adds no __dict__
