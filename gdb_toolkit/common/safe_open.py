"""Opening a file that must be a regular file, and reading it within bounds.

Why: the toolkit runs as root on paths other people choose.  ``open()`` on a FIFO blocks until
a writer appears (gdb then ignores SIGINT and SIGTERM), a device can stream forever, a directory
fails with a confusing message, and sizes or offsets taken from a file's own headers can ask for
terabytes.  Every reader of a user-given or data-given path goes through here:

- ``open_regular(path, what)`` refuses anything but a regular file *without ever blocking*: it
  ``stat``s first (so a FIFO or device is not even opened), opens with ``O_NONBLOCK`` (so a file
  swapped for a FIFO between the two steps still cannot block), ``fstat``s the opened descriptor
  (the check that counts), then clears ``O_NONBLOCK`` -- except on a virtual filesystem
  (procfs, tracefs...), where a "regular file" may be a kernel stream: /proc/kmsg and trace_pipe
  are refused before any read (a read would wait, and take the messages from their reader), any
  other stream answers EAGAIN ("nothing to read now") instead of blocking.
  ``nofollow=True`` adds ``O_NOFOLLOW``.
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


def _label(what: str, path) -> str:
    if not isinstance(path, (str, bytes, bytearray)):
        path = os.fspath(path)
    return f"{what} {escape_name(path)}"


def _os_error(exc: OSError, what: str, path, nofollow: bool = True) -> ToolkitError:
    import errno            # error paths only: a first command opening files spares the import

    label = _label(what, path)
    if exc.errno == errno.ELOOP and not nofollow:   # followed, and went round in a circle
        return ToolkitError(f"{label} is a loop of symbolic links (or more than 40 of them in a row)",
                            "give the path of the file itself")
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
                raise stream_error(exc, f"{self.label} at 0x{offset + got:x}") from None
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
                        raise stream_error(exc, self.label) from None
                    if not n:
                        break
                    got += n
            if got <= self.size:
                del buf[got:]
                return bytes(buf)
            chunks.append(bytes(buf))           # longer than fstat said: read on to EOF
            if got > limit:
                from gdb_toolkit.common.render import human_size      # error path only

                raise ToolkitError(f"{self.label} is larger than the {human_size(limit)} read here",
                                   "give the right file (it is not the kind of file expected)")
        while True:
            try:
                chunk = os.pread(self.fd, min(1 << 20, limit + 1 - got), got)
            except OSError as exc:
                raise stream_error(exc, self.label) from None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            got += len(chunk)
            if got > limit:
                from gdb_toolkit.common.render import human_size      # error path only

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


#: kernel files that look regular but are streams: a read waits for the next kernel message or
#: trace event, and *consumes* it (another reader -- syslog, a tracer -- then never sees it)
KERNEL_STREAMS = {"kmsg": ("proc", "kernel log messages"),
                  "trace_pipe": ("tracefs", "trace events"),
                  "trace_pipe_raw": ("tracefs", "trace events")}


def refuse_kernel_stream(fd: int, st: os.stat_result, what: str, path) -> None:
    """ToolkitError when the open file *fd* (on a virtual filesystem) is a kernel stream
    (/proc/kmsg, tracefs trace_pipe...), refused before a byte is read: reading would block
    and take the messages from their real reader.  Looks at the file opened (its
    /proc/self/fd link), not at the name given, so a symlink to /proc/kmsg is found too."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return
    kind = KERNEL_STREAMS.get(os.path.basename(real))
    if kind is None:
        return
    fstype = kernel_filesystem(st)
    if fstype is None or fstype != kind[0] and not (kind[0] == "tracefs" and fstype == "debugfs"):
        return
    raise ToolkitError(f"{_label(what, path)} is a kernel stream of {kind[1]} ({escape_name(real)}), "
                       "not a file: reading it waits for new ones and takes them from their reader",
                       "give the path of a regular file")


def stream_error(exc: OSError, label: str):
    """The ToolkitError for a failed read: EAGAIN means a stream with nothing to read now
    (the descriptor of a virtual-filesystem file stays non-blocking, see open_regular)."""
    import errno

    if exc.errno == errno.EAGAIN:
        return ToolkitError(f"{label} is a stream with nothing to read now (reading it would wait "
                            "for more)", "give the path of a regular file")
    return ToolkitError(f"cannot read {label}: {exc.strerror or exc}", "check the file")


def open_regular(path, what: str = "file", *, nofollow: bool = False,
                 max_size: int | None = None, os_error=None,
                 fix: str = "give the path of a regular file") -> RegularFile:
    """Open *path* for reading; refuse (ToolkitError) anything but a regular file, never blocking.

    *what* names the file in messages ("--btf file", "kcore").  *max_size* refuses larger files.
    *path* may be str (surrogateescape'd names work) or bytes.  *os_error* (OSError ->
    ToolkitError) replaces the generic explanation of a failed stat/open (kcore's EPERM has
    its own causes); *fix* is the fix given for a file that is not regular.
    """
    raw = encode_name(path) if isinstance(path, str) else os.fsencode(path)

    def failed(exc: OSError) -> ToolkitError:
        return os_error(exc) if os_error is not None else _os_error(exc, what, path, nofollow)

    try:
        st = os.stat(raw, follow_symlinks=not nofollow)
    except (OSError, ValueError) as exc:    # ValueError: a NUL in the name
        raise failed(exc if isinstance(exc, OSError) else OSError(22, "a NUL byte in the name")) \
            from None
    if stat.S_ISLNK(st.st_mode):
        import errno

        raise _os_error(OSError(errno.ELOOP, "symbolic link"), what, path)
    if not stat.S_ISREG(st.st_mode):
        raise ToolkitError(f"{_label(what, path)} is {describe_mode(st.st_mode)}, not a regular file",
                           fix)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    if nofollow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(raw, flags)
    except OSError as exc:
        raise failed(exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ToolkitError(f"{_label(what, path)} is {describe_mode(st.st_mode)}, not a regular file",
                               fix)
        if max_size is not None and st.st_size > max_size:
            from gdb_toolkit.common.render import human_size          # error path only

            raise ToolkitError(f"{_label(what, path)} is {human_size(st.st_size)}, more than the "
                               f"{human_size(max_size)} expected of it",
                               "give the right file (it is not the kind of file expected)")
        if os.major(st.st_dev) == 0:
            # a virtual filesystem (procfs, sysfs, tracefs, tmpfs...): a "regular file" there
            # may be a kernel stream whose read waits for the next event (/proc/kmsg,
            # tracefs trace_pipe); O_NONBLOCK stays set so a read answers EAGAIN instead of
            # hanging gdb (regular files of other filesystems ignore the flag)
            refuse_kernel_stream(fd, st, what, path)
        else:
            os.set_blocking(fd, True)   # F_GETFL, then F_SETFL without O_NONBLOCK
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


def _others_may_create(directory: bytes) -> os.stat_result | None:
    """The stat of *directory* if others than its owner may create files in it (/tmp), else
    None (also when it cannot be read)."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return st if st.st_mode & stat.S_IWOTH else None


def shared_directory(path) -> str | None:
    """*path* (a directory) if others than its owner may create files in it (/tmp), else None."""
    raw = encode_name(path) if isinstance(path, str) else os.fsencode(path)
    return path if _others_may_create(raw) is not None else None


def _shared_dir(raw: bytes) -> tuple[bytes, os.stat_result | None]:
    """(directory of *raw*, its stat if others than its owner may create files in it: /tmp)."""
    d = os.path.dirname(raw) or b"."
    return d, _others_may_create(d)



def parsed_once(cache: dict, path, parse):
    """``parse(path)``, parsed again only when the file changed: *cache* (the caller's dict)
    keeps one entry, keyed by path, size and mtime, so a session that keeps reading one BTF
    file or one core parses it once and a replaced file is never answered from the old one.
    A path that cannot be stat'ed is keyed by its name alone (*parse* reports the error)."""
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
    except OSError:
        key = (path, None, None)
    if key not in cache:
        cache.clear()
        cache[key] = parse(path)
    return cache[key]

def check_output_path(path, what: str, fix: str = "give the path of a new or regular file",
                      allow_devices: bool = False) -> os.stat_result | None:
    """Refuse, before anything is opened, an output path that would write somewhere the user did
    not mean: a FIFO/socket/directory (blocks or fails), a kernel file (``/proc/sys/...``: changes
    the system) and -- in a directory anyone may write (/tmp) -- a symbolic link or an existing
    file owned by another user (planted there, it makes root write through it into any file:
    fs.protected_symlinks/protected_regular may be 0).  Returns the lstat of what is there (None
    for a new file).  For paths another program opens (valgrind's --log-file) this check is all
    there is; ``open_output`` repeats it on the descriptor."""
    raw = encode_name(path) if isinstance(path, str) else os.fsencode(path)
    label = _label(what, path)
    try:
        lst = os.lstat(raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ToolkitError(f"cannot write {label}: {getattr(exc, 'strerror', None) or exc}",
                           "give another path") from None
    d, shared = _shared_dir(raw)
    if shared is not None and lst.st_uid != os.geteuid() and \
            (stat.S_ISLNK(lst.st_mode) or stat.S_ISREG(lst.st_mode)):
        kind = "a symbolic link" if stat.S_ISLNK(lst.st_mode) else "a file"
        raise ToolkitError(f"{label} is {kind} owned by uid {lst.st_uid} in {escape_name(d)}, a "
                           "directory anyone may write: writing through it as uid "
                           f"{os.geteuid()} could land in a file of their choosing",
                           "give a path in a directory only you can write, or remove it first")
    try:
        st = os.stat(raw)
    except FileNotFoundError:          # a dangling link of our own: creating through it is ok
        return lst
    except OSError as exc:
        raise ToolkitError(f"cannot write {label}: {exc.strerror or exc}", "give another path") from None
    if stat.S_ISREG(st.st_mode):
        refuse_kernel_file(path, st, fix)
    elif not (allow_devices and stat.S_ISCHR(st.st_mode)):
        raise ToolkitError(f"{label} is {describe_mode(st.st_mode)}, not a regular file", fix)
    return lst


def open_output(path, what: str, *, append: bool = False,
                fix: str = "give the path of a new or regular file", allow_devices: bool = False) -> int:
    """A descriptor open for writing *path* (truncated, or appended to), after
    ``check_output_path``: a new file is created ``O_EXCL|O_NOFOLLOW`` (a link planted between
    the check and the open fails instead of being followed), an existing one is opened without
    ``O_CREAT`` and must still be what was checked; never blocks (``O_NONBLOCK`` until checked).
    *allow_devices*: a character device is an answer (/dev/null, a terminal)."""
    raw = encode_name(path) if isinstance(path, str) else os.fsencode(path)
    label = _label(what, path)
    lst = check_output_path(path, what, fix, allow_devices)
    base = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        if lst is None:
            fd = os.open(raw, base | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        else:
            follow = stat.S_ISLNK(lst.st_mode)      # a link check_output_path let through
            fd = os.open(raw, base | (os.O_APPEND if append else 0) | (0 if follow else os.O_NOFOLLOW)
                         | (os.O_CREAT if follow else 0), 0o644)
    except OSError as exc:
        import errno

        if exc.errno == errno.EEXIST:
            raise ToolkitError(f"{label} appeared while being created (another process made it)",
                               "try again, or give a path in a directory only you can write") from None
        if exc.errno == errno.ENXIO:
            raise ToolkitError(f"{label} has nothing behind it (a FIFO nobody reads, a socket, or "
                               "/dev/tty without a terminal)", fix) from None
        raise ToolkitError(f"cannot write {label}: {exc.strerror or exc}", "give another path") from None
    try:
        st = os.fstat(fd)
        if lst is not None and not stat.S_ISLNK(lst.st_mode) and \
                (st.st_dev, st.st_ino) != (lst.st_dev, lst.st_ino):
            raise ToolkitError(f"{label} was replaced while being opened", "try again")
        if stat.S_ISREG(st.st_mode):
            refuse_kernel_file(path, st, fix)
            if not append and st.st_size:
                os.ftruncate(fd, 0)                 # after the checks, never before
        elif not (allow_devices and stat.S_ISCHR(st.st_mode)):
            raise ToolkitError(f"{label} is {describe_mode(st.st_mode)}, not a regular file", fix)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
