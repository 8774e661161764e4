"""The kernel's module list read from memory (kallsyms_mem.module_symbols, as for a vmcore or a
halted kernel): the bytes are kernel memory at HEAD, the ``modules`` list head first, with
6.1's x86_64 struct module offsets (the Debian guest's BTF).  Anything outside the bytes
cannot be read, like a page a dump does not hold."""
import struct

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kallsyms_mem as KM
from gdb_toolkit.kernel.kallsyms import Kallsyms
from gdb_toolkit.kernel.memory import CallbackMemory

MAX_LEN = 16384
HEAD = 0xFFFFFFFFC0400000
DICT = [struct.pack("<Q", HEAD), struct.pack("<Q", HEAD + 0x40), struct.pack("<Q", 0xDEAD000000000100),
        b"\xff\xff\xff\xff", b"9p\x00", b"\x00\x00\x00\x00"]
PER_INPUT_SECONDS = 2.0
MAX_SYMS = 4096

# Debian 6.1.0-57-amd64: struct module / struct mod_kallsyms member offsets (and name's size);
# syms/num_syms and kernel_symbol (x86_64: place-relative ints) placed freely
OFFSETS = {("module", "list"): 8, ("module", "name"): 24, ("module", "state"): 0,
           ("module", "core_layout.base"): 320, ("module", "core_layout.size"): 328,
           ("module", "kallsyms"): 544, ("mod_kallsyms", "symtab"): 0,
           ("mod_kallsyms", "num_symtab"): 8, ("mod_kallsyms", "strtab"): 16,
           ("mod_kallsyms", "typetab"): 24, ("module", "syms"): 400, ("module", "num_syms"): 408,
           ("kernel_symbol", "value_offset"): 0, ("kernel_symbol", "name_offset"): 4}


class _Member:
    def __init__(self, offset, size=None):
        self.offset, self.size = offset, size


class _Btf:
    """The two questions module_symbols asks of BTF, answered with OFFSETS."""

    def resolve(self, t, p):
        off = OFFSETS.get((t, p))
        if off is None:
            raise ToolkitError(f"no {t}.{p}", None)
        return _Member(off, 56 if p == "name" else None)

    def find(self, name, kind=None):
        return None

    def type_size(self, name):
        if name == "kernel_symbol":
            return 12
        raise ToolkitError(f"no {name}", None)


def fuzz(data: bytes) -> None:
    def read(addr, n):
        if n < 0 or addr < HEAD or addr + n > HEAD + len(data):
            raise ToolkitError(f"0x{addr:x} not here", None)
        return data[addr - HEAD:addr - HEAD + n]
    mem = CallbackMemory(read, "x86_64", "fuzz", page_cache=False)
    walk = KM.module_symbols(mem, HEAD, _Btf(), max_modules=64, max_syms=MAX_SYMS)
    assert len(walk.symbols) <= MAX_SYMS and len(walk.modules) <= 64
    for a, t, n, m in walk.symbols:
        assert n and not any(c.isspace() for c in n) and len(t) == 1 and m
    ks = Kallsyms(KM.kallsyms_text([], walk.symbols))
    ks.module_extents.update(walk.extents)
    assert len(ks.symbols) == len(walk.symbols)
