"""Is the file on disk what the process mapped?  An executable rebuilt during a debugging
session gives a silently wrong GOT table (other slot addresses, other symbols), so the
build-id note (or, without one, the ELF header and program headers) is compared with the
bytes mapped in the target."""
from collections.abc import Callable

from gdb_toolkit.plt.elf_file import PT_LOAD

Reader = Callable[[int, int], "bytes | None"]


def compare_mapped(model, bias: int, read: Reader) -> str | None:
    """A sentence when the mapped object differs from *model*'s file, else None (also when
    memory cannot tell: nothing mapped there, a core without those pages)."""
    elf = model._elf
    loc = elf.build_id_vaddr()
    if loc is not None and model.build_id:
        addr, size = loc
        mem = read(addr + bias, size)
        if mem is None:
            return None
        try:
            disk = elf.read_vaddr(addr, size)
        except Exception:
            return None
        if disk is not None and mem != disk:
            from gdb_toolkit.plt.elf_file import parse_build_id

            running = parse_build_id(mem) or "?"
            return (f"the file changed on disk since the process loaded it (build-id {running[:16]} in "
                    f"memory, {model.build_id[:16]} in {model.path}): the table describes the new file, "
                    "not the code that runs")
        return None
    # no build-id: the ELF and program headers, mapped by the first PT_LOAD (file offset 0)
    first = next((s for s in elf.segments if s.type == PT_LOAD and s.offset == 0), None)
    if first is None:
        return None
    size = min(first.filesz, elf.layout.ehdr.size + len(elf.segments) * elf.layout.phdr.size, 4096)
    mem = read(first.vaddr + bias, size)
    if mem is None:
        return None
    try:
        disk = elf._read(0, size, "the ELF header")
    except Exception:
        return None
    if mem != disk:
        return (f"the file changed on disk since the process loaded it (its ELF headers differ from "
                f"memory; no build-id): the table describes the new file, not the code that runs")
    return None
