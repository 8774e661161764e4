"""Importing a command's first-call modules in one pass, without importlib's per-module toll.

Why: an ``import`` of a module not yet loaded runs importlib._bootstrap, which is Python
code: a module lock, three finders (builtin, frozen, path: each with its own checks), a
spec, the loader's five file-system calls and the module's nine attributes -- about 230,000
instructions per module in CPython 3.11 before the module's own code runs (measured with
callgrind on empty modules; docs/architecture.md).  A command's first call imports 15 to 35
of the toolkit's modules, so that toll was a third of its import share.

``load(names)`` imports the toolkit modules named, in the order given, the way
SourceFileLoader does -- from ``__pycache__/<name>.<cache tag>.pyc`` when its header
matches the source (magic number, timestamp flag, mtime and size), with the same module
attributes (``__spec__`` a ModuleSpec with a SourceFileLoader, ``__file__``,
``__cached__``, ``__path__`` for a package) and the module set on its parent -- at about a
quarter of the cost.  The order is the one the modules finished loading in a recorded first
call (gdbsupport/first_call_modules.py), so each module's own imports find them loaded.

It only ever changes speed, never what is imported:
  * a name outside gdb_toolkit, or whose parent package is not loaded, or whose bytecode is
    missing, stale or not a plain timestamped .pyc (``-O``, PYTHONPYCACHEPREFIX, hash-based
    pycs), goes through the ordinary import system;
  * a name without a source file (a module renamed since the list was recorded) is skipped;
  * an error in a module's code propagates as the import's would, and the module is
    removed from sys.modules, as importlib does.
Each module is made under importlib's own lock for it, so a thread importing it meanwhile is
waited for (and deadlocks are detected as importlib detects them); the ``import`` audit event
is raised as import.c raises it; a finder before the path finder in sys.meta_path that claims
a module, or path hooks other than CPython's, send it the ordinary way; code objects get the
source path of this tree (``_imp._fix_co_filename``), as importlib gives them.
"""
import _imp
import marshal
import os
import stat
import sys
# importlib's frozen halves, always loaded: importlib.machinery and importlib.util (which
# only re-export these) would cost ~0.3-0.4 ms of every first call to import
from importlib._bootstrap import BuiltinImporter, FrozenImporter, ModuleSpec, _ModuleLockManager
from importlib._bootstrap_external import MAGIC_NUMBER, PathFinder, SourceFileLoader
from time import perf_counter
from types import CodeType

from gdb_toolkit.common.gc_pause import gc_paused

_PACKAGE = "gdb_toolkit."
#: the largest .pyc read here (the toolkit's largest is ~50 KB); a larger one goes to importlib
_MAX_PYC = 16 << 20
_ModuleType = type(sys)
_ORDINARY = ()                  # _locate: a module only the import system makes


def load(names, within: str = _PACKAGE) -> None:
    """Import every module of *names* that is not imported yet, in the order given; the
    fast way only for modules whose names start with *within*."""
    fast = not sys.flags.optimize and sys.pycache_prefix is None
    timed = _import_time_on()
    with gc_paused():           # the objects made here all stay: a collection frees nothing
        _load_all(names, within, fast and _plain_path_hooks(), timed, _other_finders())


def _load_all(names, within: str, fast: bool, timed: bool, finders: list) -> None:
    for name in names:
        if name in sys.modules:
            continue
        parent = sys.modules.get(name.rpartition(".")[0])
        path = getattr(parent, "__path__", None)
        if not (fast and name.startswith(within) and path
                and not any(f.find_spec(name, path) for f in finders)):
            _import_ordinary(name)
            continue
        start = perf_counter() if timed else 0.0
        # importlib's own per-module lock: a thread importing the same module meanwhile
        # finishes first (and is then not imported again), and none is held while another
        # thread waits for one (importlib's deadlock detection sees these locks)
        with _ModuleLockManager(name):
            if name in sys.modules:
                continue
            found = _locate(name, parent)
            if found is None:
                continue        # no such source file (any more): not ours to import
            loaded = found is not _ORDINARY and _load_cached(name, *found)
        if not loaded:
            _import_ordinary(name)
        elif timed:
            _report_time(name, perf_counter() - start)


def _plain_path_hooks() -> bool:
    """sys.path_hooks as CPython sets them (zipimport, then FileFinder): no hook of another
    tool wants a say in how a directory's modules are found."""
    hooks = sys.path_hooks
    return (len(hooks) == 2 and getattr(hooks[0], "__name__", "") == "zipimporter"
            and getattr(hooks[1], "__qualname__", "").startswith("FileFinder.path_hook"))


def _other_finders() -> list:
    """The finders sys.meta_path asks before the path finder, besides the built-in and
    frozen ones (setuptools' distutils hack, an import hook): each is asked about every
    module, and a module one of them claims is imported the ordinary way."""
    out = []
    for finder in sys.meta_path:
        if finder is PathFinder:
            break
        if finder not in (BuiltinImporter, FrozenImporter) and hasattr(finder, "find_spec"):
            out.append(finder)
    return out


def _locate(name: str, parent):
    """(parent, source path, its stat, package directory or None) of toolkit module *name*,
    found the way FileFinder finds a source module (a package's __init__.py before a
    module's .py; the toolkit has no extension modules); _ORDINARY for a namespace package;
    None when there is no such regular file."""
    package_dir = f"{parent.__path__[0]}/{name.rpartition('.')[2]}"
    for source, package in ((f"{package_dir}/__init__.py", package_dir), (f"{package_dir}.py", None)):
        try:
            st = os.stat(source)
        except OSError:
            continue
        return (parent, source, st, package) if stat.S_ISREG(st.st_mode) else None
    # a directory without __init__.py: a namespace package, which importlib makes
    return _ORDINARY if os.path.isdir(package_dir) else None


def _load_cached(name: str, parent, source: str, st, package_dir) -> bool:
    """Import *name* from its up-to-date .pyc; False when there is none."""
    directory, _, filename = source.rpartition("/")
    cached = f"{directory}/__pycache__/{filename[:-3]}.{sys.implementation.cache_tag}.pyc"
    data = _read_regular(cached)
    if (data is None or len(data) < 16 or data[:4] != MAGIC_NUMBER or data[4:8] != b"\0\0\0\0"
            or int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
            or int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF):
        return False
    try:
        code = marshal.loads(memoryview(data)[16:])
    except (ValueError, EOFError, TypeError):
        return False                # importlib's own path gives its own answer to bad data
    if type(code) is not CodeType:
        return False
    sys.audit("import", name, None, sys.path, sys.meta_path, sys.path_hooks)   # as import.c
    _imp._fix_co_filename(code, source)     # compiled elsewhere (a copied tree): this path
    _run(name, parent, code, source, cached, package_dir)
    return True


def _read_regular(path: str) -> bytes | None:
    """The bytes of regular file *path* (at most _MAX_PYC), or None: os.read on a descriptor
    (a third of io's buffered read here); O_NONBLOCK so a FIFO put there cannot block."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_PYC:
            return None
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _run(name: str, parent, code, source: str, cached: str, package_dir) -> None:
    """Execute *code* as module *name*, as importlib's _load_unlocked does."""
    loader = SourceFileLoader(name, source)
    spec = ModuleSpec(name, loader, origin=source, is_package=package_dir is not None)
    spec.cached = cached
    spec.has_location = True
    module = _ModuleType(name)
    module.__spec__, module.__loader__, module.__file__, module.__cached__ = spec, loader, source, cached
    if package_dir is not None:
        spec.submodule_search_locations = module.__path__ = [package_dir]
    module.__package__ = spec.parent
    spec._initializing = True
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        spec._initializing = False
    setattr(parent, name.rpartition(".")[2], sys.modules[name])


def _import_ordinary(name: str) -> None:
    """Through the import statement's own path (``-X importtime`` reports it)."""
    try:
        __import__(name)
    except ModuleNotFoundError as exc:
        if not (name + ".").startswith(f"{exc.name}."):    # it, or a package above it, is gone:
            raise                   # else the module exists and lacks one of its own imports


def _import_time_on() -> bool:
    """-X importtime, or PYTHONPROFILEIMPORTTIME when the environment counts (as CPython
    decides at start-up; 3.11 has no sys.flags for it)."""
    return ("importtime" in sys._xoptions
            or (not sys.flags.ignore_environment and bool(os.environ.get("PYTHONPROFILEIMPORTTIME"))))


def _report_time(name: str, seconds: float) -> None:
    """``-X importtime`` / PYTHONPROFILEIMPORTTIME: the line CPython writes for an import at
    the top level (import.c), so the modules loaded here are counted where imports are.  The
    list's order loads a module's own imports before it, so none nests inside it; if one does
    (a stale list), a reader summing the top-level lines counts it twice: over, never under."""
    us = int(seconds * 1e6)
    # to the process's stderr as CPython does (gdb's sys.stderr may be a captured stream)
    os.write(2, f"import time: {us:9d} | {us:10d} | {name}\n".encode())
