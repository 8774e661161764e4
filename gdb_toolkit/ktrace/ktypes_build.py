"""ktypes core: kernel BTF -> C declarations -> a ``gcc -g`` object that gdb can
``add-symbol-file``, cached by the kernel's build id (or the BTF's hash).  No gdb here.

The object holds types only: no variable, no function, no symbol at all, so no address ever
resolves to it (it used to define ``gtk_ktypes_task_struct`` & co. in .bss, loaded at 0: every
NULL pointer then printed as ``0x0 <gtk_ktypes_task_struct>``).  gcc keeps every type with
``-fno-eliminate-unused-debug-types``.

Files: the cache is ``private_dirs.cache_or_session("ktypes", KEY)`` -- ~/.cache/gdb_toolkit,
owner- and mode-checked, written under random names with O_EXCL|O_NOFOLLOW and renamed into
place; when that is not usable (a read-only or foreign home), a private per-session directory.
The BTF is read once (regular files only, bounded) and handed to bpftool as a private copy;
bpftool and gcc run as isolated helpers (allow-listed environment, cwd in the private
directory), piped into each other, bounded in time.
"""
import os
import time

from gdb_toolkit.common.errors import ToolkitError

LIVE_BTF = "/sys/kernel/btf/vmlinux"
OBJECT = "ktypes.o"
#: the object's format: objects of older ktypes (with anchor symbols at 0) are never reused
FORMAT = "v2"
MAX_BTF = 256 << 20
TOOL_TIMEOUT = float(os.environ.get("GDB_TOOLKIT_KTYPES_TIMEOUT", "900"))


class KtypesResult:
    """What ktypes did (a plain class: dataclasses costs ~25 ms of imports on a first call)."""

    __slots__ = ("object_path", "build_id", "cached", "source", "btf_path", "seconds", "loaded", "notes")

    def __init__(self, object_path: str, build_id: str, cached: bool, source: str, btf_path: str,
                 seconds: float = 0.0, loaded: bool = False, notes: list | None = None):
        self.object_path = object_path
        self.build_id = build_id
        self.cached = cached
        self.source = source              # 'btf' | 'vmlinux debug info'
        self.btf_path = btf_path
        self.seconds = seconds
        self.loaded = loaded
        self.notes = list(notes or [])

    def __repr__(self) -> str:
        return "KtypesResult(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    def for_json(self) -> dict:
        """The --json result (schema gdb_toolkit/schemas/ktypes.schema.json)."""
        return {"object_file": self.object_path or None, "build_id": self.build_id or None,
                "cached": self.cached, "type_source": self.source, "btf_file": self.btf_path or None,
                "seconds": round(self.seconds, 3), "loaded": self.loaded, "notes": list(self.notes)}


def build_id(notes_path: str = "/sys/kernel/notes") -> str:
    """The running kernel's GNU build id (hex) from its ELF notes; '' when there is none."""
    try:
        with open(notes_path, "rb") as f:
            data = f.read(1 << 16)
    except OSError:
        data = b""
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = (int.from_bytes(data[off + i:off + i + 4], "little") for i in (0, 4, 8))
        if namesz > len(data) or descsz > len(data):
            return ""
        name = data[off + 12:off + 12 + namesz]
        doff = off + 12 + ((namesz + 3) & ~3)
        if ntype == 3 and name.rstrip(b"\0") == b"GNU":
            return data[doff:doff + descsz].hex()
        off = doff + ((descsz + 3) & ~3)
    return ""


def btf_key(data: bytes) -> str:
    import hashlib

    return "btf-" + hashlib.sha256(data).hexdigest()[:24]


def read_btf(path: str) -> bytes:
    """The BTF file's bytes: a regular file only (a FIFO would block gdb), bounded."""
    from gdb_toolkit.common.safe_open import read_regular

    if path == LIVE_BTF and not os.path.exists(path):
        raise ToolkitError(f"no {path}: the kernel has no BTF",
                           "boot a kernel with CONFIG_DEBUG_INFO_BTF=y, or load a vmlinux with debug info "
                           "(file vmlinux)")
    data = read_regular(path, "--btf file", MAX_BTF)
    if data[:2] not in (b"\x9f\xeb", b"\xeb\x9f"):
        raise ToolkitError(f"{path} is not BTF (no 0xeb9f magic)", "give /sys/kernel/btf/vmlinux or "
                           "a raw BTF file (bpftool btf dump ... format raw is not BTF)")
    return data


def _tool(name: str) -> str:
    from gdb_toolkit.common.helper_process import which

    found = which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        pkg = {"bpftool": "bpftool", "gcc": "gcc"}.get(name, name)
        raise ToolkitError(f"{name} is needed to build the kernel types object", f"apt-get install {pkg}")
    return found


def find_tools(compiler: str = "gcc") -> tuple[str, str]:
    """(bpftool, compiler) paths for compile_types, or the one-line error naming the missing one."""
    return _tool("bpftool"), _tool(compiler)


def _no_space(text: str) -> bool:
    return "No space left on device" in text or "Disk quota exceeded" in text


def compile_types(btf_file: str, out_path: str, workdir: str, tools: tuple[str, str]) -> None:
    """``bpftool btf dump file BTF format c | gcc -g -x c - -o OUT`` as isolated helpers;
    *tools* are the (bpftool, compiler) paths find_tools gave."""
    import subprocess

    from gdb_toolkit.common.helper_process import kill_group, popen_helper

    (bpftool, cc), compiler = tools, os.path.basename(tools[1])
    dump = popen_helper([bpftool, "btf", "dump", "file", btf_file, "format", "c"], cwd=workdir,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gcc = popen_helper([cc, "-g", "-fno-eliminate-unused-debug-types", "-w", "-pipe", "-x", "c", "-c", "-",
                        "-o", out_path], cwd=workdir, stdin=dump.stdout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dump.stdout.close()                  # gcc holds the read end now
    try:
        gcc_err = gcc.communicate(timeout=TOOL_TIMEOUT)[1].decode(errors="replace")
        dump_err = dump.communicate(timeout=30)[1].decode(errors="replace")
    except subprocess.TimeoutExpired:
        kill_group(gcc)
        kill_group(dump)
        raise ToolkitError(f"building the kernel types took more than {TOOL_TIMEOUT:.0f} s",
                           "raise GDB_TOOLKIT_KTYPES_TIMEOUT on a slow machine") from None
    if dump.returncode != 0:
        why = "; ".join(l.strip() for l in dump_err.splitlines() if l.strip())[:200]
        raise ToolkitError(f"bpftool could not dump the BTF: {why or dump.returncode}",
                           "check the file is BTF (/sys/kernel/btf/vmlinux)")
    if gcc.returncode != 0:
        if _no_space(gcc_err):
            raise ToolkitError(f"no space left on the device of {workdir} while compiling the kernel types",
                               "free space there, or point TMPDIR / XDG_CACHE_HOME at a file system "
                               "with room") from None
        last = gcc_err.strip().splitlines()[-1] if gcc_err.strip() else str(gcc.returncode)
        raise ToolkitError(f"{compiler} could not compile the BTF declarations: {last}",
                           "check gcc works (toolkit doctor)")


def render_c(btf_path: str) -> str:
    """C declarations for every BTF type of a file (bpftool's dependency-ordered dump)."""
    from gdb_toolkit.common.helper_process import run_helper

    read_btf(btf_path)
    res = run_helper([_tool("bpftool"), "btf", "dump", "file", btf_path, "format", "c"],
                     timeout=TOOL_TIMEOUT, max_output=1 << 30)
    if not res.ok:
        err = res.stderr.decode(errors="replace") if isinstance(res.stderr, bytes) else str(res.stderr)
        why = "; ".join(l.strip() for l in err.splitlines() if l.strip())[:200]
        raise ToolkitError(f"bpftool could not dump {btf_path}: {why or res.returncode}",
                           "check the file is BTF (/sys/kernel/btf/vmlinux)")
    out = res.stdout
    return out.decode(errors="replace") if isinstance(out, bytes) else out


def build(btf_path: str = LIVE_BTF, force: bool = False, compiler: str = "gcc",
          btf_data: bytes | None = None, key: str | None = None,
          where: str | None = None) -> KtypesResult:
    """The cached object for *btf_path* (or *btf_data*, e.g. a vmcore's BTF), built if needed.
    *key* names the cache entry (default: the running kernel's build id for the live BTF,
    else a hash of the BTF); *where* says in the result where the BTF came from."""
    from gdb_toolkit.common.private_dirs import cache_or_session, private_tmpdir, space_error

    t0 = time.monotonic()
    if btf_data is None:
        btf_data = read_btf(btf_path)
    if key is None:
        key = (build_id() if btf_path == LIVE_BTF else "") or btf_key(btf_data)
    notes: list[str] = []
    cache, note = cache_or_session("ktypes", FORMAT, key)
    if note:
        notes.append(note)
    try:
        if cache.exists(OBJECT) and not force:
            return KtypesResult(cache.file_path(OBJECT), key, True, "btf", where or btf_path,
                                time.monotonic() - t0, notes=notes)
        # both tools before any temporary file: a machine without bpftool gets its one-line
        # fix without a private directory made and removed (shutil) first
        tools = find_tools(compiler)
        tmp = cache.new_temp(OBJECT)
        try:
            with private_tmpdir("gdb_toolkit-ktypes-") as work:
                btf_copy = os.path.join(work, "vmlinux.btf")
                try:
                    with open(btf_copy, "xb") as f:
                        f.write(btf_data)
                except OSError as exc:
                    raise space_error(exc, work, "copying the BTF for bpftool") from None
                compile_types(btf_copy, cache.file_path(tmp), work, tools)
            path = cache.commit(tmp, OBJECT)
        except BaseException:
            cache.discard(tmp)
            raise
        if note is None and os.environ.get("GDB_TOOLKIT_KTYPES_INDEX", "1") != "0":
            from gdb_toolkit.ktrace import ktypes_index

            ktypes_index.start(cache.path)      # later loads skip gdb's DWARF scan
    finally:
        cache.close()
    return KtypesResult(path, key, False, "btf", where or btf_path, time.monotonic() - t0, notes=notes)

