"""Private temporary directories and owner-checked persistent caches.

Why: a fixed name in a shared directory (``/tmp/gdb_toolkit-ktypes-0/...``) lets another user
create it first, or plant a symlink there, and root then writes through the link or loads a file
the attacker chose.  So:

- ``private_tmpdir()``: a fresh ``mkdtemp`` directory (mode 0700, unguessable name), removed
  with everything in it when the ``with`` block ends.  ``session_dir()`` is one such directory
  for the lifetime of the process (removed at exit) for things that must outlive a command.
- ``CacheDir``: a directory that persists between sessions (default ``~/.cache/gdb_toolkit``),
  used only after checking that it and every directory above it are owned by the caller or root,
  and that none is writable by others (unless sticky, like /tmp).  Files are created under a
  random name with ``O_CREAT|O_EXCL|O_NOFOLLOW`` relative to the checked directory's descriptor,
  then renamed into place atomically, so a reader never sees half a file and a planted symlink is
  never followed.

Failures (a full file system included) are ToolkitError with the path and the fix.
"""
import atexit
import contextlib
import errno
import os
import stat
import sys

from gdb_toolkit.common.closeable import Closeable
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import encode_name, escape_name

PREFIX = "gdb_toolkit-"


def _token() -> str:
    """16 random hex digits for temporary names (os.urandom: what secrets.token_hex uses; importing
    secrets pulls in random, ~13 ms on a command's first call)."""
    return os.urandom(8).hex()


def space_error(exc: OSError, path, doing: str) -> ToolkitError:
    """The ToolkitError for an OSError met while writing temporary or cache files: a full file
    system says so plainly (it used to hide behind a later, unrelated message)."""
    where = escape_name(os.fsdecode(path) if isinstance(path, bytes) else str(path))
    if exc.errno == errno.ENOSPC:
        return ToolkitError(f"no space left on the device of {where} while {doing}",
                            "free space there, or point TMPDIR at a file system with room")
    if exc.errno == errno.EDQUOT:
        return ToolkitError(f"disk quota exceeded on {where} while {doing}",
                            "free space there, or point TMPDIR elsewhere")
    if exc.errno == errno.EROFS:
        return ToolkitError(f"{where} is on a read-only file system ({doing})",
                            "point TMPDIR at a writable directory")
    return ToolkitError(f"cannot use {where} while {doing}: {exc.strerror or exc}",
                        "check TMPDIR and its permissions")


# tempfile.mkdtemp and tempfile.gettempdir without importing tempfile: it imports shutil (bz2,
# lzma, fnmatch) and random (~4-5 ms of vg-start's first call).  Same names (8 characters of
# _NAME_CHARS after the prefix, from os.urandom instead of random's generator), same search for
# the default directory, same mode and errors; tests/unit/test_safety_primitives.py compares them.
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"      # tempfile._RandomNameSequence's
_TMP_MAX = getattr(os, "TMP_MAX", 10000)                    # tempfile.TMP_MAX
_tempdir: str | None = None


def _random_name() -> str:
    """8 characters of _NAME_CHARS, each equally likely (bytes >= 222 = 6 * 37 are dropped)."""
    out = ""
    while len(out) < 8:
        out += "".join(_NAME_CHARS[b % 37] for b in os.urandom(12) if b < 222)
    return out[:8]


def temp_root() -> str:
    """``tempfile.gettempdir()``: $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp, then the current
    directory -- the first one a file can be created in, chosen once per process.  Once tempfile
    is imported (by anything), its answer (and a ``tempfile.tempdir`` someone set) is used."""
    global _tempdir
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        return tempfile.gettempdir()
    if _tempdir is None:
        _tempdir = _default_tempdir()
    return _tempdir


def _default_tempdir() -> str:
    """tempfile._get_default_tempdir on POSIX."""
    dirlist = [d for d in (os.getenv(e) for e in ("TMPDIR", "TEMP", "TMP")) if d]
    dirlist += ["/tmp", "/var/tmp", "/usr/tmp"]
    try:
        dirlist.append(os.getcwd())
    except OSError:
        dirlist.append(os.curdir)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    for d in dirlist:
        if d != os.curdir:
            d = os.path.abspath(d)
        for _ in range(100):
            filename = os.path.join(d, "tmp" + _random_name())
            try:
                fd = os.open(filename, flags, 0o600)
                try:
                    try:
                        os.write(fd, b"blat")
                    finally:
                        os.close(fd)
                finally:
                    os.unlink(filename)
                return os.fsdecode(d)
            except FileExistsError:
                pass
            except OSError:
                break       # no point trying more names in this directory
    raise FileNotFoundError(errno.ENOENT, f"No usable temporary directory found in {dirlist}")


def _mkdtemp(prefix: str, parent: str) -> str:
    """tempfile.mkdtemp(prefix=prefix, dir=parent) on POSIX."""
    for _ in range(_TMP_MAX):
        path = os.path.join(parent, prefix + _random_name())
        sys.audit("tempfile.mkdtemp", path)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "No usable temporary directory name found")


def make_private_dir(prefix: str = PREFIX, parent: str | None = None) -> str:
    """A new mode-0700 directory with an unguessable name (the caller removes it)."""
    parent = parent or temp_root()
    try:
        return _mkdtemp(prefix, parent)
    except OSError as exc:
        raise space_error(exc, parent, "creating a private temporary directory") from None


def remove_tree(path: str) -> None:
    """Remove a directory tree we created, never following symlinks inside it."""
    import shutil       # bz2, lzma, fnmatch: ~2-3 ms, on the way out only

    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)      # fd-based on Linux: immune to symlink races


@contextlib.contextmanager
def private_tmpdir(prefix: str = PREFIX, parent: str | None = None):
    """``with private_tmpdir() as d:`` a fresh private directory, removed afterwards."""
    path = make_private_dir(prefix, parent)
    try:
        yield path
    finally:
        remove_tree(path)


_session_dir: str | None = None


def session_dir() -> str:
    """One private directory for this process's lifetime (gdb aliases, helper logs), removed
    when the process exits."""
    global _session_dir
    if _session_dir is None or not os.path.isdir(_session_dir):
        _session_dir = make_private_dir(PREFIX + "session-")
        atexit.register(remove_tree, _session_dir)
    return _session_dir


def create_exclusive(path, mode: int = 0o600, dir_fd: int | None = None) -> int:
    """Create a new file for writing: fails if anything (file or symlink) already has the name."""
    raw = encode_name(path) if isinstance(path, str) else path
    return os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                   mode, dir_fd=dir_fd)


# -- owner-checked persistent cache --------------------------------------------------------

def _unsafe_reason(st: os.stat_result, euid: int, final: bool) -> str | None:
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid not in (euid, 0) or (final and st.st_uid != euid):
        return f"is owned by uid {st.st_uid}, not by you (uid {euid})"
    writable_by_others = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable_by_others and (final or not st.st_mode & stat.S_ISVTX):
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def check_directory_chain(path: str, final_must_be_mine: bool = True) -> None:
    """Raise ToolkitError unless *path* (an existing directory) and every directory above it are
    safe to trust: owned by the caller or root, not writable by others (sticky ancestors such as
    /tmp are fine).  The final directory must be the caller's own and not group/other-writable."""
    real = os.path.realpath(path)
    euid = os.geteuid()
    parts = real.split(os.sep)
    for i in range(1, len(parts) + 1):
        comp = os.sep.join(parts[:i]) or os.sep
        try:
            st = os.lstat(comp)
        except OSError as exc:
            raise ToolkitError(f"cannot check {escape_name(comp)}: {exc.strerror}",
                               "check the cache directory path") from None
        final = i == len(parts)
        why = _unsafe_reason(st, euid, final and final_must_be_mine)
        if why:
            raise ToolkitError(f"refusing to use {escape_name(real)}: {escape_name(comp)} {why}",
                               "remove it or set XDG_CACHE_HOME to a directory of your own")


def default_cache_root() -> str | None:
    """``$XDG_CACHE_HOME/gdb_toolkit`` or ``~/.cache/gdb_toolkit`` (None without a home)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not home or home == "~" or not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "gdb_toolkit")


class CacheDir(Closeable):
    """A checked directory held open by descriptor; files in it are written atomically.

    ``CacheDir.open(path)`` creates missing directories (mode 0700) and checks the whole chain;
    every later operation is relative to the opened descriptor, so renaming or replacing the
    path afterwards cannot redirect writes.
    """

    def __init__(self, path: str, fd: int):
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, path: str) -> "CacheDir":
        path = os.path.abspath(path)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            try:
                os.makedirs(parent, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise space_error(exc, parent, "creating the cache directory") from None
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise space_error(exc, path, "creating the cache directory") from None
        check_directory_chain(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise ToolkitError(f"cannot open cache directory {escape_name(path)}: {exc.strerror}",
                               "remove it; it is recreated") from None
        st = os.fstat(fd)
        why = _unsafe_reason(st, os.geteuid(), True)
        if why:
            os.close(fd)
            raise ToolkitError(f"refusing to use {escape_name(path)}: it {why}",
                               "remove it; it is recreated")
        return cls(path, fd)

    def subdir(self, name: str) -> "CacheDir":
        """A checked sub-directory (created 0700 if missing)."""
        _check_name(name)
        try:
            os.mkdir(name, 0o700, dir_fd=self.fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise space_error(exc, os.path.join(self.path, name), "creating a cache directory") from None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=self.fd)
        except OSError as exc:
            raise ToolkitError(f"cannot open {escape_name(os.path.join(self.path, name))}: "
                               f"{exc.strerror}", "remove it; it is recreated") from None
        why = _unsafe_reason(os.fstat(fd), os.geteuid(), True)
        if why:
            os.close(fd)
            raise ToolkitError(f"refusing to use {escape_name(os.path.join(self.path, name))}: "
                               f"it {why}", "remove it; it is recreated")
        return CacheDir(os.path.join(self.path, name), fd)

    def file_path(self, name: str) -> str:
        """The path of *name* in this directory (to hand to gdb or a compiler)."""
        _check_name(name)
        return os.path.join(self.path, name)

    def exists(self, name: str) -> bool:
        """True if *name* is a regular file here owned by the caller (a symlink is not)."""
        _check_name(name)
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()

    def read(self, name: str, limit: int = 256 << 20) -> bytes | None:
        """The content of regular file *name*, or None if absent; symlinks are not followed."""
        _check_name(name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ToolkitError(f"cannot read {escape_name(self.file_path(name))}: {exc.strerror}",
                               "remove it; it is recreated") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise ToolkitError(f"refusing {escape_name(self.file_path(name))}: not a regular "
                                   "file of yours", "remove it; it is recreated")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ToolkitError(f"{escape_name(self.file_path(name))} is too large",
                               "remove it; it is recreated")
        return data

    def new_temp(self, name: str) -> str:
        """A fresh, exclusively created empty file next to *name* (for tools that write their
        output to a path, e.g. ``gcc -o``); returns its name relative to this directory.
        Rename it into place with ``commit``, or ``discard`` it."""
        _check_name(name)
        tmp = f".{name}.{_token()}.tmp"
        try:
            os.close(create_exclusive(tmp, dir_fd=self.fd))
        except OSError as exc:
            raise space_error(exc, self.path, "creating a cache file") from None
        return tmp

    def commit(self, tmp: str, name: str) -> str:
        """Atomically rename temporary file *tmp* to *name*; returns the final path."""
        _check_name(name)
        try:
            os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            self.discard(tmp)
            raise space_error(exc, self.path, "storing a cache file") from None
        return self.file_path(name)

    def discard(self, tmp: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=self.fd)

    def write_atomic(self, name: str, data: bytes, mode: int = 0o600) -> str:
        """Write *data* as *name*: created exclusively under a random name, then renamed."""
        _check_name(name)
        tmp = f".{name}.{_token()}.tmp"
        try:
            fd = create_exclusive(tmp, mode, dir_fd=self.fd)
        except OSError as exc:
            raise space_error(exc, self.path, "creating a cache file") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            self.discard(tmp)
            raise space_error(exc, self.path, "writing a cache file") from None
        return self.commit(tmp, name)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ToolkitError(f"bad cache file name {escape_name(name)!s}",
                           "report it with GDB_TOOLKIT_DEBUG=1 output")


def open_cache(*parts: str) -> CacheDir | None:
    """The checked cache directory ``<cache root>/<parts...>``, or None when there is no usable
    home (callers then fall back to ``private_tmpdir``).  Raises ToolkitError when the directory
    exists but is not safe to trust (someone else's, or writable by others)."""
    root = default_cache_root()
    if root is None:
        return None
    cache = CacheDir.open(root)
    for p in parts:
        sub = cache.subdir(p)
        cache.close()
        cache = sub
    return cache


def cache_or_session(*parts: str) -> tuple[CacheDir, str | None]:
    """The persistent cache ``<cache root>/<parts...>`` when it is safe to use, else the same
    layout inside this process's private ``session_dir()`` (nothing persists, nothing is
    trusted from others).  Returns (cache, note): *note* says why it fell back (for the
    command's ``notes``), None when the persistent cache is used."""
    try:
        cache = open_cache(*parts)
        reason = None if cache is not None else "there is no home directory"
    except ToolkitError as exc:
        cache, reason = None, exc.cause
    if cache is not None:
        return cache, None
    cache = CacheDir.open(session_dir())
    for p in parts:
        sub = cache.subdir(p)
        cache.close()
        cache = sub
    return cache, f"results are not cached across sessions: {reason}"
