"""Live facts for the PLT commands: loaded objects and load biases from the dynamic
linker's own list (r_debug -> link_map, every dlmopen namespace through r_debug_extended's
r_next, reached through the executable's DT_DEBUG or the ``_r_debug`` symbol; the
executable's bias from auxv AT_PHDR/AT_ENTRY), GOT[1]/GOT[2] and the process environment
for the binding decision, and bounded, chunked reads of the slots.  Nothing here reads
/proc/PID/maps for addresses."""
import os

import gdb

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.gdbsupport import facts
from gdb_toolkit.plt import link_map as link_map_core
from gdb_toolkit.plt.elf_file import display_path
from gdb_toolkit.plt.elf_model import load_model
from gdb_toolkit.plt.slots import (AddressSpace, Binding, LoadedObject, ProcessEnv, decide_binding, decode_words, is_relocated, mark_preloaded,
                                   read_plan, relocation_probe)

#: one gdb read is at most this big (gdb allocates the whole buffer first)
CHUNK = 1 << 20
MAX_READ = 64 << 20


def executable() -> str:
    from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename

    replaced_program[:] = []            # this call's answer only, never an earlier one's
    path = progspace_filename()         # any bytes (a non-UTF-8 name would make gdb raise)
    proc = _proc_exe()
    if not path:
        if proc:
            return proc
        raise ToolkitError("no executable is loaded", "load one with 'file PROGRAM' (or start gdb with it)")
    if proc and not _same_inode(path, proc):
        # the program file was deleted or replaced (a rebuild, an upgrade) while the process
        # runs: the kernel still maps the old one, and that is what the GOT belongs to
        replaced_program.append(path)
        return proc
    return path


#: [gdb's program path] when executable() read /proc/PID/exe instead (deleted or replaced)
replaced_program: list[str] = []


def _same_inode(path: str, proc_exe: str) -> bool:
    try:
        a, b = os.stat(path), os.stat(proc_exe)
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _proc_exe() -> str | None:
    """/proc/PID/exe of a live local process gdb found no program file for (attached to a
    process whose binary was deleted or replaced): the kernel still has the mapped file."""
    try:
        inf = gdb.selected_inferior()
        conn = getattr(inf, "connection", None)
        if not inf.pid or getattr(conn, "type", "native") != "native":
            return None
        path = f"/proc/{inf.pid}/exe"
        with open(path, "rb"):
            pass
        return path
    except (OSError, gdb.error, AttributeError):
        return None


def _exe_shown(path: str) -> str:
    """What /proc/PID/exe points at ('/x/prog (deleted)'), else the path itself."""
    if path.startswith("/proc/") and path.endswith("/exe"):
        try:
            return os.readlink(path)
        except OSError:
            pass
    return path


def mode() -> str:
    try:
        kind = facts.target_kind()
    except UnicodeDecodeError:          # a program file named in non-UTF-8 bytes, no process
        kind = "exec"
    if kind == "none":
        executable()
    return kind


def _read(addr: int, size: int) -> bytes | None:
    """Target bytes, or None; never asks gdb for more than MAX_READ, and in CHUNK pieces."""
    if size <= 0 or size > MAX_READ or addr < 0 or addr + size > 1 << 64:
        return None
    inf = gdb.selected_inferior()
    try:
        if size <= CHUNK:
            return bytes(inf.read_memory(addr, size))
        return b"".join(bytes(inf.read_memory(a, min(CHUNK, addr + size - a)))
                        for a in range(addr, addr + size, CHUNK))
    except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
        return None


def read_word(addr: int, wordsize: int) -> int | None:
    raw = _read(addr, wordsize)
    return int.from_bytes(raw, "little") if raw and len(raw) == wordsize else None


def main_bias(model, aux: dict[str, int]) -> int:
    return link_map_core.main_bias(model.phdr_vaddr, model.entry, aux)


def r_debug_address(model, bias: int) -> int | None:
    """r_debug from the executable's DT_DEBUG (filled in by ld.so), else ``_r_debug``."""
    if model.dynamic_vaddr is not None:
        # the whole loaded .dynamic (PT_DYNAMIC's size, capped): DT_DEBUG comes after every
        # DT_NEEDED, past the 64th entry in a program linked against 300 libraries
        size = min(model.dynamic_size, MAX_DYNAMIC) if model.dynamic_size else 16 * 64
        data = _read(model.dynamic_vaddr + bias, size)
        if data is None and size > 16 * 64:     # a size running past the mapping: its start
            data = _read(model.dynamic_vaddr + bias, 16 * 64)
        found = link_map_core.r_debug_from_dynamic(data, model.wordsize)
        if found:
            return found
    try:
        return int(gdb.parse_and_eval("(unsigned long)&_r_debug"))
    except gdb.error:
        return None


#: the most bytes of a loaded .dynamic read for DT_DEBUG (4096 64-bit entries)
MAX_DYNAMIC = 1 << 16


# objects in ld.so's list whose file could not be found here (set by link_map())
missing: list[str] = []
# objects whose l_name does not name the file the process mapped (a relative dlopen name
# after chdir, a file moved, deleted or replaced by an upgrade): (path read, l_name, how),
# how "moved" (read from the path /proc/PID/maps names) or "replaced" (read from the mapped
# copy, /proc/PID/map_files/LO-HI); set by link_map()
remapped: list[tuple[str, str, str]] = []
# the vDSO's link_map entries (set by link_map())
vdso: list = []
#: the most bytes of a vDSO image read (real ones are 8 KiB)
MAX_VDSO = 1 << 20


def _same_file(path: str, dev: str, inode: int) -> bool:
    """Does *path* still name the inode /proc/PID/maps lists (dev "fd:01")?"""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return st.st_ino == inode and f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}" == dev


# Facts of the current stop read once per command: a 'got' asks for the auxiliary vector
# (link_map walk, vDSO) and /proc/PID/maps (link_map walk, writable ranges) twice each; the
# process stays stopped in between.  Active only inside ``with same_stop():``.
_stop_memo: dict | None = None


class same_stop:
    """``with gdb_live.same_stop():`` -- auxv and /proc/PID/maps are read once inside it
    (a command that never resumes the inferior)."""

    def __enter__(self):
        global _stop_memo
        self._outer = _stop_memo
        if _stop_memo is None:
            _stop_memo = {}
        return self

    def __exit__(self, *exc):
        global _stop_memo
        _stop_memo = self._outer
        return False


def _memo(key, read):
    """read() once per same_stop() (its answer or its exception), every time outside one."""
    if _stop_memo is None:
        return read()
    hit = _stop_memo.get(key)
    if hit is None:
        try:
            hit = (read(), None)
        except Exception as exc:
            hit = (None, exc)
        _stop_memo[key] = hit
    if hit[1] is not None:
        raise hit[1]
    return hit[0]


def _auxv(wordsize: int) -> dict[str, int]:
    """The auxiliary vector of the process (*wordsize*: its ELF class's word)."""
    return _memo("auxv", lambda: _local_auxv(wordsize) or facts.auxv())


def _local_auxv(wordsize: int) -> dict[str, int] | None:
    """A live local process's auxiliary vector from /proc/PID/auxv -- the file gdb's native
    target reads for 'info auxv', without gdb formatting it and us parsing the text (~0.3 ms).
    None for a core or a remote target (their auxv is gdb's to fetch) or when unreadable."""
    from gdb_toolkit.common.procfs import parse_auxv_bytes, read_auxv

    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)
    if not inf.pid or conn is None or getattr(conn, "type", None) != "native":
        return None
    try:
        return parse_auxv_bytes(read_auxv(inf.pid), wordsize) or None
    except ValueError:
        return None


def _read_maps(pid: int):
    from gdb_toolkit.common.procfs import read_maps

    return _memo(("maps", pid), lambda: read_maps(pid))


def _process_maps(pid: int | None):
    """The mappings of a local live process (None when they cannot be read)."""
    if not pid:
        return None
    try:
        return _read_maps(pid)
    except (ToolkitError, OSError, UnicodeDecodeError, ValueError):
        return None


def _mapped_path(maps, entry, pid: int, named: str | None, starts: list[int] | None = None) -> str | None:
    """The file the process really mapped for a link_map entry: *named* (its l_name
    resolved here) when that is the mapped file, else what /proc/PID/maps says (see
    link_map.mapped_file); *named* when the maps cannot tell."""
    if not maps or not entry.l_ld:
        return named
    hit = link_map_core.mapping_at(maps, entry.l_ld, starts)
    if named is not None and hit is not None and hit.inode and _same_file(named, hit.dev, hit.inode):
        return named
    found = link_map_core.mapped_file(maps, entry.l_ld, pid, _same_file, starts)
    if found is None:
        return named
    path, was = found
    if was is None:
        remapped.append((path, entry.name, "moved"))
        return path
    try:
        with open(path, "rb"):      # map_files needs CAP_SYS_ADMIN (root); else the name it is
            pass
    except OSError:
        return named
    remapped.append((path, was, "replaced"))
    return path


def _sysroot() -> str:
    """'set sysroot' as a host directory prefix ('' for none; 'target:' is the local root)."""
    try:
        sysroot = gdb.parameter("sysroot") or ""
    except gdb.error:
        sysroot = ""
    return sysroot[len("target:"):] if sysroot.startswith("target:") else sysroot


def _host_path(name: str, pid: int | None = None, sysroot: str | None = None) -> str | None:
    """Map a path in the target to a file here (honouring 'set sysroot', asked of gdb unless
    given); a relative path (dlopen("./x.so")) is the process's, so a live local one is
    resolved in /proc/PID/cwd."""
    if sysroot is None:
        sysroot = _sysroot()
    rel = [] if os.path.isabs(name) or not pid else [f"/proc/{pid}/cwd/{name}"]
    for cand in ((sysroot + name) if sysroot else None, *rel, name):
        try:
            if cand and os.path.isfile(cand):
                return os.path.realpath(cand) if cand in rel else cand
        except (OSError, ValueError):
            continue
    return None


def relocated(kind: str, objects: list[LoadedObject]) -> bool:
    """Has ld.so run its relocation pass?  Before it (starti) its list is still empty."""
    if kind == "file" or objects[0].model.is_static:
        return True
    return len(objects) > 1


def link_map() -> list[tuple[str, int, int, int | None]]:
    """(path, l_addr, namespace, link_map address) for every object in the dynamic linker's
    lists, the executable first, then every dlmopen namespace."""
    exe = executable()
    model = load_model(exe)
    aux = _auxv(model.wordsize)
    bias = main_bias(model, aux)
    out = [(exe, bias, 0, None)]
    missing.clear()
    if model.is_static:
        return out
    pid = facts.inferior().pid if facts.target_kind() == "live" else None
    is_exe = _same_file_as(exe)
    remapped.clear()
    vdso.clear()
    if exe.startswith("/proc/"):
        remapped.append((exe, _exe_shown(exe), "program"))
    maps = _process_maps(pid)
    starts = link_map_core.sorted_starts(maps) if maps else None
    sysroot = _sysroot()        # once, not per object
    for e in link_map_core.walk(_read, r_debug_address(model, bias), model.wordsize):
        if not e.name:
            if e.namespace == 0 and len(out) == 1:
                out[0] = (exe, bias, 0, e.address)
            continue          # the executable itself (already first)
        if e.name.startswith(("linux-vdso", "linux-gate")):
            vdso.append(e)      # no file: read from memory (loaded_objects)
            continue
        path = _mapped_path(maps, e, pid, _host_path(e.name, pid, sysroot), starts)
        if path is None:
            missing.append(display_path(e.name))
        elif e.namespace or not is_exe(path):
            out.append((path, e.l_addr, e.namespace, e.address))
    return out


def _same_file_as(exe: str):
    """A test "is *path* the executable's file?": the same device and inode (as ld.so tells
    objects apart), one stat per path (realpath costs an lstat per path component, ~1/3 of
    a warm 'got'); by real path when a stat fails."""
    try:
        st = os.stat(exe)
        ident = (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        ident = None
    exe_real = None

    def is_exe(path: str) -> bool:
        nonlocal exe_real
        if ident is not None:
            try:
                st = os.stat(path)
                return (st.st_dev, st.st_ino) == ident
            except (OSError, ValueError):
                pass
        if exe_real is None:
            exe_real = os.path.realpath(exe)
        return os.path.realpath(path) == exe_real

    return is_exe


def vdso_object(entry, order: int, wordsize: int) -> LoadedObject | None:
    """The kernel's vDSO as an object (no file: its ELF image is read from the target), so
    that a slot an ifunc resolver pointed into it (time, gettimeofday) is named, not 'no
    loaded object'."""
    from gdb_toolkit.plt.elf_file import image_size
    from gdb_toolkit.plt.elf_model import model_from_image

    base = _auxv(wordsize).get("AT_SYSINFO_EHDR")
    if not base:
        return None
    size = image_size(_read(base, 64) or b"")
    data = _read(base, size) if size and size <= MAX_VDSO else None
    if data is None:
        return None
    try:
        model = model_from_image(entry.name or "linux-vdso.so.1", data)
    except ToolkitError:
        return None
    bias = base - model.span[0]
    return LoadedObject(entry.name or "linux-vdso.so.1", bias, model, entry.namespace, entry.address,
                        order=order, in_memory=True)


def process_env(kind: str) -> ProcessEnv:
    """LD_BIND_NOW / LD_BIND_NOT as the process started with them (its initial environment,
    which is what ld.so read)."""
    if kind != "live":
        return ProcessEnv()
    try:
        with open(f"/proc/{facts.inferior().pid}/environ", "rb") as f:
            env = f.read(1 << 20).split(b"\0")
    except OSError:
        return ProcessEnv()
    has = lambda key: any(e.startswith(key + b"=") and len(e) > len(key) + 1 for e in env)
    audit = next((e[len(b"LD_AUDIT="):] for e in env if e.startswith(b"LD_AUDIT=")), b"")
    from gdb_toolkit.common.names import decode_name

    preload = next((e[len(b"LD_PRELOAD="):] for e in env if e.startswith(b"LD_PRELOAD=")), b"")
    return ProcessEnv(bind_now=has(b"LD_BIND_NOW"), bind_not=has(b"LD_BIND_NOT"), known=True,
                      audit=[decode_name(a) for a in audit.replace(b" ", b":").split(b":") if a],
                      profile=has(b"LD_PROFILE"),
                      preload=[decode_name(a) for a in preload.replace(b" ", b":").split(b":") if a])


def got12(obj: LoadedObject) -> tuple[int, int] | None:
    """GOT[1] and GOT[2] of *obj* in the target (None when it has no PLT GOT or it is unreadable)."""
    g = obj.model.got_plt_reserved()
    if g is None:
        return None
    w = obj.model.wordsize
    raw = _read(g + obj.bias + w, 2 * w)
    if not raw or len(raw) != 2 * w:
        return None
    return int.from_bytes(raw[:w], "little"), int.from_bytes(raw[w:], "little")


def loaded_objects(decide: bool = True) -> tuple[str, list[LoadedObject]]:
    """(mode, objects): the file view before run, else every object of the link_map
    lists (the executable first), each with its binding decided from the process."""
    kind = mode()
    exe = executable()
    if kind == "exec":
        obj = LoadedObject(exe, 0, load_model(exe))
        obj.binding = decide_binding(obj, None, ProcessEnv(), True, live=False)
        return "file", [obj]
    objs = []
    entries = link_map()
    # /proc/PID/map_files/LO-HI (or /proc/PID/exe) -> the path it was loaded from
    shown = {path: was for path, was, how in remapped if how in ("replaced", "program")}
    for order, (path, bias, ns, lm) in enumerate(entries):
        try:
            model = load_model(path)
            if path in shown:       # name the mapped copy after the file it was loaded from
                model.__dict__["name"] = display_path(os.path.basename(shown[path].removesuffix(" (deleted)")))
            objs.append(LoadedObject(shown.get(path, path), bias, model, ns, lm, order=order))
        except ToolkitError as exc:
            if order == 0:
                raise
            missing.append(f"{display_path(path)} ({exc.cause})")
    base = {(o.bias, id(o.model)) for o in objs if o.namespace == 0}
    for o in objs:
        # glibc lists its one ld.so in every namespace: the same mapping, relocated once
        o.alias = o.namespace != 0 and (o.bias, id(o.model)) in base
    for e in vdso[:1]:
        obj = vdso_object(e, len(objs), objs[0].model.wordsize)
        if obj is not None:
            objs.append(obj)
    if decide:
        env = process_env(kind)
        if not (env.known and not env.preload and not os.path.exists("/etc/ld.so.preload")):
            mark_preloaded(objs)        # (a live process without either preloads nothing)
        done = relocated(kind, objs)
        # GOT[2] may be _dl_runtime_profile only with an rtld-audit module or LD_PROFILE: name
        # it then (and only then: naming costs a look into ld.so's symbols)
        profiling = env.audit or env.profile or any(o.model.audit_libs for o in objs)
        space = AddressSpace(objs) if profiling else None
        for o in objs:
            try:
                g12 = got12(o)
                if done and o.bias and not o.in_memory and not (g12 and g12[1]) and \
                        not o.model.is_dynamic_linker:
                    # GOT[2] unset: bound at load, or mapped by dlopen and not relocated yet
                    probe = relocation_probe(o.model)
                    if probe is not None:
                        raw = _read(probe[0] + o.bias, o.model.wordsize)
                        word = int.from_bytes(raw, "little") if raw and len(raw) == o.model.wordsize else None
                        o.relocated = is_relocated(probe, o.bias, word)
                resolver = space.describe(g12[1])[1] if space is not None and g12 and g12[1] else None
                o.binding = decide_binding(o, g12, env, done and o.relocated, live=True, resolver=resolver)
            except ToolkitError as exc:
                o.binding = Binding("?", exc.cause)
        _ldso_final_relocation(kind, objs)
        loaded_objects.env = env
    return kind, objs


loaded_objects.env = ProcessEnv()


def core_writable_ranges() -> list[tuple[int, int]] | None:
    """Writable PT_LOAD ranges of the loaded core file (its program headers keep the
    protections the process had when it dumped)."""
    try:
        path = facts.core_file_path()
    except UnicodeDecodeError:          # a non-UTF-8 name in 'info target' (facts is term's)
        import re

        from gdb_toolkit.gdbsupport.safe_gdb import execute_to_string

        m = re.search(r"core dump file:\s*`(.*)'", execute_to_string("info target"))
        path = m.group(1) if m else None
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


def read_slots(objects: list[LoadedObject]) -> tuple[dict[int, int], list[str]]:
    """The words of every slot of *objects* ({run-time address: value}), read in bounded
    ranges; and the objects whose GOT could not be read (a core without their data)."""
    good = []
    for o in objects:
        try:
            o.model.slots
            good.append(o)
        except ToolkitError:
            pass
    chunks = []
    failed: list[str] = []
    for obj in good:
        for lo, hi in read_plan([obj]):
            data = _read(lo, hi - lo)
            if data is None:
                if obj.name not in failed:
                    failed.append(obj.name)
                continue
            chunks.append((lo, data))
    w = good[0].model.wordsize if good else 8      # one process: one word size
    return decode_words(chunks, w), failed


def _ldso_final_relocation(kind: str, objs: list[LoadedObject]) -> None:
    """ld.so binds its own slots twice: in its bootstrap (to its own definitions), and again
    after every other start-up object (to what the lookup scope says: libc's
    _dl_catch_exception...), then makes its RELRO read-only.  Stopped in between (a
    breakpoint in _dl_relocate_object), its slots hold the bootstrap binding: not relocated
    yet.  Told by its RELRO still being writable in /proc/PID/maps (or the core); without a
    RELRO to read, by an unrelocated start-up object."""
    ldso = [o for o in objs if o.model.is_dynamic_linker and not o.alias]
    if not ldso:
        return
    writable = writable_ranges(kind) if any(o.model.relro for o in ldso) else None
    for o in ldso:
        if o.model.relro and writable is not None:
            # the RELRO answers for every stop, a later dlopen's included: read-only = done
            start = o.model.relro[0] + o.bias
            if any(lo <= start < hi for lo, hi in writable):
                o.relocated = False
            continue
        # no RELRO to read: an unrelocated start-up object (ahead of ld.so in the list; a
        # dlopen'ed one comes after it and says nothing of ld.so's own relocation)
        if any(not x.relocated for x in objs if x.namespace == 0 and x.order < o.order):
            o.relocated = False


def writable_ranges(kind: str) -> list[tuple[int, int]] | None:
    """Writable mappings of a live local process or a core ("is the slot read-only now?")."""
    if kind == "core":
        return core_writable_ranges()
    if kind != "live":
        return None
    try:
        return [(m.start, m.end) for m in _read_maps(facts.inferior().pid) if "w" in m.perms]
    except (ToolkitError, UnicodeDecodeError, ValueError):
        return None


def stale_objects(objects: list[LoadedObject]) -> list[str]:
    """Objects whose file on disk is not what the process mapped: the build-id note in
    memory differs from the file's (or, without a build-id, the ELF header does)."""
    from gdb_toolkit.plt.staleness import compare_mapped

    out = []
    for o in objects:
        why = compare_mapped(o.model, o.bias, _read)
        if why:
            out.append(f"{o.name}: {why}")
    return out
