"""Opening a file that must be a regular file, and reading it within bounds.

Why: the toolkit runs as root on paths other people choose.  ``open()`` on a FIFO blocks until
a writer appears (gdb then ignores SIGINT and SIGTERM), a device can stream forever, a directory
fails with a confusing message, and sizes or offsets taken from a file's own headers can ask for
terabytes.  Every reader of a user-given or data-given path goes through here:

- ``open_regular(path, what)`` refuses anything but a regular file *without ever blocking*: it
  ``stat``s first (so a FIFO or device is not even opened), opens with ``O_NONBLOCK`` (so a file
  swapped for a FIFO between the two steps still cannot block), ``fstat``s the opened descriptor
  (the check that counts), then clears ``O_NONBLOCK``.  ``nofollow=True`` adds ``O_NOFOLLOW``.
- ``RegularFile.read_range(off, length)`` reads exactly ``[off, off+length)`` after checking the
  range lies inside the file; ``read_all(limit)`` reads a whole file up to a size cap (it works
  for /proc and /sys files whose ``st_size`` is 0 or a placeholder).
- ``check_range`` is the same bounds check for data already in memory.

Failures are ``ToolkitError``: one line naming the path (printable even when it is not UTF-8, see
``common.names``) and the fix.
"""
import os
import stat

from gdb_toolkit.common.closeable import Closeable
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import decode_name, encode_name, escape_name

#: default cap for whole-file reads: larger files must be read in ranges
DEFAULT_MAX_READ = 256 << 20


def describe_mode(mode: int) -> str:
    """'a FIFO', 'a directory', ... for an ``st_mode`` that is not a regular file."""
    for test, words in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISDIR, "a directory"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return words
    return "not a regular file"


def human_size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} bytes"


def _label(what: str, path) -> str:
    if not isinstance(path, (str, bytes, bytearray)):
        path = os.fspath(path)
    return f"{what} {escape_name(path)}"


def _os_error(exc: OSError, what: str, path) -> ToolkitError:
    import errno            # error paths only: a first command opening files spares the import

    label = _label(what, path)
    if exc.errno == errno.ENOENT:
        return ToolkitError(f"{label} does not exist", "check the path")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ToolkitError(f"cannot read {label}: permission denied",
                            "run gdb as a user who may read it (or as root)")
    if exc.errno == errno.ELOOP:
        return ToolkitError(f"{label} is a symbolic link, which is not followed here",
                            "give the path of the file itself")
    if exc.errno == errno.EISDIR:
        return ToolkitError(f"{label} is a directory, not a regular file", "give the path of a file")
    return ToolkitError(f"cannot open {label}: {exc.strerror or exc}", "check the path")


def check_range(offset: int, length: int, size: int, what: str = "data") -> None:
    """Raise ToolkitError unless ``[offset, offset+length)`` lies within ``[0, size)``."""
    if offset < 0 or length < 0 or offset > size or length > size - offset:
        raise ToolkitError(f"{what}: range 0x{max(offset, 0):x}+0x{max(length, 0):x} lies outside "
                           f"its {size}-byte container (corrupt or crafted file)",
                           "check the file; it is truncated or its headers lie")


class RegularFile(Closeable):
    """An open regular file: ``fd``, ``size`` (from fstat), ``path`` (as given), a binary
    ``file`` object (for parsers that want a stream), and bounded reads."""

    def __init__(self, fd: int, path, what: str, st: os.stat_result):
        self.fd = fd
        self.path = path
        self.what = what
        self.stat = st
        self.size = st.st_size
        self._file = None

    @property
    def label(self) -> str:
        return _label(self.what, self.path)

    @property
    def file(self):
        """A buffered binary file object over the same descriptor (closed with this object)."""
        if self._file is None:
            self._file = open(self.fd, "rb", closefd=False)
        return self._file

    def read_range(self, offset: int, length: int, check_size: bool = True) -> bytes:
        """Exactly the bytes ``[offset, offset+length)``; ToolkitError if the range is not in the
        file (``check_size=False`` for /proc files whose st_size means nothing) or comes up short."""
        if check_size:
            check_range(offset, length, self.size, self.label)
        elif offset < 0 or length < 0:
            check_range(offset, length, 0, self.label)
        chunks = []
        got = 0
        while got < length:
            try:
                chunk = os.pread(self.fd, min(length - got, 16 << 20), offset + got)
            except OSError as exc:
                raise ToolkitError(f"cannot read {self.label} at 0x{offset + got:x}: "
                                   f"{exc.strerror or exc}", "check the file") from None
            if not chunk:
                raise ToolkitError(f"{self.label} ends before 0x{offset + length:x} "
                                   f"(read 0x{got:x} of 0x{length:x} bytes at 0x{offset:x})",
                                   "the file is truncated or changed while being read")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def read_all(self, limit: int = DEFAULT_MAX_READ) -> bytes:
        """The whole file, refusing one longer than *limit* bytes (read until EOF: /proc files
        report st_size 0)."""
        chunks = []
        got = 0
        if 0 < self.size <= limit:
            # the size is known (a file, a sysfs attribute such as /sys/kernel/btf/vmlinux):
            # read into one buffer, which kernfs fills a page per call, instead of a fresh
            # 1 MiB bytes object per call; one byte more tells whether the file grew since fstat
            buf = bytearray(self.size + 1)
            with memoryview(buf) as view:
                while got < len(buf):
                    try:
                        n = os.preadv(self.fd, [view[got:]], got)
                    except OSError as exc:
                        raise ToolkitError(f"cannot read {self.label}: {exc.strerror or exc}",
                                           "check the file") from None
                    if not n:
                        break
                    got += n
            if got <= self.size:
                del buf[got:]
                return bytes(buf)
            chunks.append(bytes(buf))           # longer than fstat said: read on to EOF
            if got > limit:
                raise ToolkitError(f"{self.label} is larger than the {human_size(limit)} read here",
                                   "give the right file (it is not the kind of file expected)")
        while True:
            try:
                chunk = os.pread(self.fd, min(1 << 20, limit + 1 - got), got)
            except OSError as exc:
                raise ToolkitError(f"cannot read {self.label}: {exc.strerror or exc}",
                                   "check the file") from None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            got += len(chunk)
            if got > limit:
                raise ToolkitError(f"{self.label} is larger than the {human_size(limit)} read here",
                                   "give the right file (it is not the kind of file expected)")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


#: kernel interface filesystems: a "regular file" there is a kernel knob (a sysctl, a sysfs
#: attribute, /proc/self/mem), never a place to write a report or a program's output to
KERNEL_FILESYSTEMS = frozenset({"proc", "sysfs", "debugfs", "tracefs", "cgroup", "cgroup2",
                                "configfs", "securityfs", "bpf", "pstore", "efivarfs",
                                "selinuxfs", "binfmt_misc", "fusectl", "nsfs"})


def kernel_filesystem(st: os.stat_result) -> str | None:
    """The kernel interface filesystem (``proc``, ``sysfs``...) holding the file *st* is the
    stat of, found by its device in /proc/self/mountinfo; None for any other filesystem."""
    if os.major(st.st_dev) != 0:        # a block device: a disk filesystem
        return None
    want = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[2].decode() == want and b"-" in fields:
                    fstype = fields[fields.index(b"-") + 1].decode(errors="replace")
                    return fstype if fstype in KERNEL_FILESYSTEMS else None
    except OSError:
        return None
    return None


def refuse_kernel_file(path, st: os.stat_result, fix: str) -> None:
    """ToolkitError when *path* (being opened for writing) is a file of a kernel interface
    filesystem: writing a report into /proc/sys/kernel/core_pattern changes the system."""
    fstype = kernel_filesystem(st)
    if fstype is not None:
        raise ToolkitError(f"{escape_name(path)} is a kernel file ({fstype}), not a place for "
                           "output: writing there would change the system", fix)


def open_regular(path, what: str = "file", *, nofollow: bool = False,
                 max_size: int | None = None) -> RegularFile:
    """Open *path* for reading; refuse (ToolkitError) anything but a regular file, never blocking.

    *what* names the file in messages ("--btf file", "kcore").  *max_size* refuses larger files.
    *path* may be str (surrogateescape'd names work) or bytes.
    """
    raw = encode_name(path) if isinstance(path, str) else os.fsencode(path)
    try:
        st = os.stat(raw, follow_symlinks=not nofollow)
    except OSError as exc:
        raise _os_error(exc, what, path) from None
    if stat.S_ISLNK(st.st_mode):
        import errno

        raise _os_error(OSError(errno.ELOOP, "symbolic link"), what, path)
    if not stat.S_ISREG(st.st_mode):
        raise ToolkitError(f"{_label(what, path)} is {describe_mode(st.st_mode)}, not a regular file",
                           "give the path of a regular file")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    if nofollow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(raw, flags)
    except OSError as exc:
        raise _os_error(exc, what, path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ToolkitError(f"{_label(what, path)} is {describe_mode(st.st_mode)}, not a regular file",
                               "give the path of a regular file")
        if max_size is not None and st.st_size > max_size:
            raise ToolkitError(f"{_label(what, path)} is {human_size(st.st_size)}, more than the "
                               f"{human_size(max_size)} expected of it",
                               "give the right file (it is not the kind of file expected)")
        os.set_blocking(fd, True)       # F_GETFL, then F_SETFL without O_NONBLOCK
    except BaseException:
        os.close(fd)
        raise
    return RegularFile(fd, path, what, st)


def read_regular(path, what: str = "file", limit: int = DEFAULT_MAX_READ, *,
                 nofollow: bool = False) -> bytes:
    """The whole content of a regular file (at most *limit* bytes), refusing FIFOs and devices."""
    with open_regular(path, what, nofollow=nofollow) as f:
        return f.read_all(limit)


def read_regular_text(path, what: str = "file", limit: int = DEFAULT_MAX_READ, *,
                      nofollow: bool = False) -> str:
    """Like ``read_regular``, decoded as UTF-8 with surrogateescape (any bytes survive)."""
    return decode_name(read_regular(path, what, limit, nofollow=nofollow))


def require_regular(path, what: str = "file") -> os.stat_result:
    """Check without reading that *path* names a regular file (for paths handed to gdb or to
    another program, which would block on a FIFO themselves)."""
    with open_regular(path, what) as f:
        return f.stat
