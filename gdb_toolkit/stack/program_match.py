"""Is the program file gdb was given the one that dumped the core?  Pure.

A program rebuilt after the crash still loads: gdb warns at most once, puts the new file's
symbols over the old code (or, a PIE whose layout changed, none at all), and its unwinder
stops at frame #0.  The kernel dumps the first page of every ELF mapping (coredump_filter bit
4, on by default), which holds the build-id note: the note in the core's memory is compared
with the one in the file.  Imported only for a core with a program file.
"""
import os

from gdb_toolkit.common.names import escape_name


def mismatch(path: str, maps, read, absent) -> tuple[str, str, str] | None:
    """(build-id in the core, build-id in *path*, the mapping's path) when the core's memory
    holds the build-id note of the program's first mapping and it differs from the file's;
    None when they agree or memory cannot tell (no build-id, no such mapping, the page not
    dumped)."""
    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.plt.elf_file import PT_LOAD, ElfFile, parse_build_id

    try:
        elf = ElfFile.open(path)
    except (ToolkitError, OSError):
        return None
    try:
        loc, disk_id = elf.build_id_vaddr(), elf.build_id()
        loads = [s for s in elf.segments if s.type == PT_LOAD]
        if loc is None or not disk_id or not loads:
            return None
        home = _mapping_of(path, maps)
        if home is None:
            return None
        first = min(s.vaddr for s in loads)
        bias = home.start - (first & ~0xFFF) if elf.etype == 3 else 0      # ET_DYN: a PIE
        addr, size = loc[0] + bias, loc[1]
        if any(a < addr + size and addr < b for a, b, _why in absent):
            return None                          # not in the core: gdb would read the file
        mem = read(addr, size)
        disk = elf.read_vaddr(loc[0], size)
    except (ToolkitError, OSError):
        return None
    finally:
        elf.close()
    if mem is None or disk is None or bytes(mem) == disk:
        return None
    return parse_build_id(bytes(mem)) or "?", disk_id, home.path


def _mapping_of(path: str, maps):
    """The core's mapping of *path* at file offset 0: by its name, else its real path, else
    (the file moved or was renamed) by its base name."""
    firsts = [m for m in maps if m.offset == 0 and m.path and m.path.startswith("/")]
    real = os.path.realpath(path)
    for want in (path, real):
        hit = next((m for m in firsts if m.path == want), None)
        if hit is not None:
            return hit
    base = os.path.basename(real)
    same = [m for m in firsts if os.path.basename(m.path) == base]
    return same[0] if len(same) == 1 else None


def sentence(path: str, found: tuple[str, str, str]) -> str:
    core_id, disk_id, mapped = found
    where = "" if mapped == path else f" (it ran as {escape_name(mapped)})"
    return (f"program file: {escape_name(path)} is not the program that dumped this core{where} "
            f"-- build-id {core_id[:16]} in the core's memory, {disk_id[:16]} in the file: it "
            "was rebuilt or replaced since, so gdb's symbols, unwind tables and code are the "
            "wrong ones; give gdb the very binary that ran (and its libraries) with the core")
