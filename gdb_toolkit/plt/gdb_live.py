"""Live facts for the PLT commands: loaded objects and load biases from the dynamic
linker's own list (r_debug -> link_map, reached through the executable's DT_DEBUG or the
``_r_debug`` symbol; the executable's bias from auxv AT_PHDR/AT_ENTRY), and one bulk
memory read per object's GOT.  Nothing here reads /proc/PID/maps for addresses."""
import os

import gdb

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.gdbsupport import facts
from gdb_toolkit.plt import link_map as link_map_core
from gdb_toolkit.plt.elf_model import load_model
from gdb_toolkit.plt.slots import LoadedObject


def executable() -> str:
    path = facts.executable_path()
    if not path:
        raise ToolkitError("no executable is loaded", "load one with 'file PROGRAM' (or start gdb with it)")
    return path


def mode() -> str:
    kind = facts.target_kind()
    if kind == "none":
        executable()
    return kind


def _read(addr: int, size: int) -> bytes | None:
    try:
        return bytes(gdb.selected_inferior().read_memory(addr, size))
    except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
        return None


def main_bias(model, aux: dict[str, int]) -> int:
    return link_map_core.main_bias(model.phdr_vaddr, model.entry, aux)


def r_debug_address(model, bias: int) -> int | None:
    """r_debug from the executable's DT_DEBUG (filled in by ld.so), else ``_r_debug``."""
    if model.dynamic_vaddr is not None:
        found = link_map_core.r_debug_from_dynamic(_read(model.dynamic_vaddr + bias, 16 * 64))
        if found:
            return found
    try:
        return int(gdb.parse_and_eval("(unsigned long)&_r_debug"))
    except gdb.error:
        return None


# objects in ld.so's list whose file could not be found here (set by link_map())
missing: list[str] = []


def _host_path(name: str, pid: int | None = None) -> str | None:
    """Map a path in the target to a file here (honouring 'set sysroot'); a relative path
    (dlopen("./x.so")) is the process's, so a live local one is resolved in /proc/PID/cwd."""
    try:
        sysroot = gdb.parameter("sysroot") or ""
    except gdb.error:
        sysroot = ""
    if sysroot.startswith("target:"):
        sysroot = sysroot[len("target:"):]
    rel = [] if os.path.isabs(name) or not pid else [f"/proc/{pid}/cwd/{name}"]
    for cand in ((sysroot + name) if sysroot else None, *rel, name):
        if cand and os.path.isfile(cand):
            return os.path.realpath(cand) if cand in rel else cand
    return None


def relocated(kind: str, objects: list[LoadedObject]) -> bool:
    """Has ld.so run its relocation pass?  Before it (starti) its list is still empty."""
    if kind == "file" or objects[0].model.is_static:
        return True
    return len(objects) > 1


def link_map() -> list[tuple[str, int]]:
    """(path, l_addr) for every object in the dynamic linker's list, the executable first."""
    exe = executable()
    model = load_model(exe)
    aux = facts.auxv()
    bias = main_bias(model, aux)
    out = [(exe, bias)]
    missing.clear()
    if model.is_static:
        return out
    pid = facts.inferior().pid if facts.target_kind() == "live" else None
    for name, l_addr in link_map_core.walk(_read, r_debug_address(model, bias)):
        if not name:
            continue          # the executable itself (already first)
        path = _host_path(name, pid)
        if path is None:
            if not name.startswith("linux-vdso"):
                missing.append(name)
        elif os.path.realpath(path) != os.path.realpath(exe):
            out.append((path, l_addr))
    return out


def loaded_objects() -> tuple[str, list[LoadedObject]]:
    """(mode, objects): the file view before run, else every object of the link_map
    (the executable first)."""
    kind = mode()
    exe = executable()
    if kind == "exec":
        return "file", [LoadedObject(exe, 0, load_model(exe))]
    objs = []
    for path, bias in link_map():
        try:
            objs.append(LoadedObject(path, bias, load_model(path)))
        except ToolkitError:
            continue
    return kind, objs


def core_writable_ranges() -> list[tuple[int, int]] | None:
    """Writable PT_LOAD ranges of the loaded core file (its program headers keep the
    protections the process had when it dumped)."""
    path = facts.core_file_path()
    if path is None:
        return None
    from gdb_toolkit.plt.elf_file import PT_LOAD, ElfFile

    try:
        core = ElfFile.open(path)
    except ToolkitError:
        return None
    out = [(s.vaddr, s.vaddr + s.memsz) for s in core.segments if s.type == PT_LOAD and s.flags & 2]
    core.close()
    return out


def read_slot_ranges(objects: list[LoadedObject]) -> dict[str, bytes | None]:
    """One bulk read per object: [lowest slot, highest slot + 8) at run-time addresses."""
    out = {}
    for obj in objects:
        slots = obj.model.slots
        if not slots:
            out[obj.path] = b""
            continue
        lo = slots[0].address + obj.bias
        hi = slots[-1].address + 8 + obj.bias
        data = _read(lo, hi - lo)
        if data is None:
            raise ToolkitError(f"cannot read the GOT of {obj.name} at 0x{lo:x}..0x{hi:x}",
                               "the object's data is not in the target's memory (a core file without it?)")
        out[obj.path] = data
    return out


def writable_ranges(kind: str) -> list[tuple[int, int]] | None:
    """Writable mappings of a live local process or a core ("is the slot read-only now?")."""
    if kind == "core":
        return core_writable_ranges()
    if kind != "live":
        return None
    from gdb_toolkit.common.procfs import read_maps

    try:
        return [(m.start, m.end) for m in read_maps(facts.inferior().pid) if "w" in m.perms]
    except ToolkitError:
        return None


def bind_now_env(kind: str) -> bool:
    if kind != "live":
        return False
    try:
        with open(f"/proc/{facts.inferior().pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    return any(e.startswith(b"LD_BIND_NOW=") and len(e) > len(b"LD_BIND_NOW=") for e in env)
