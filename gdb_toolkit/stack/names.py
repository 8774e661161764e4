"""Any-bytes names and regular-file opening for the stack domain.  Pure.

Transitional: delegates to the shared primitives (``common.names``, ``common.safe_open``)
of issue 11; until they are on main it keeps the same contract locally."""
import contextlib
import os
import stat

try:                                         # the shared primitives (issue 11)
    from gdb_toolkit.common.names import decode_name, escape_name   # noqa: F401
except ImportError:                          # pragma: no cover - until they land on main
    def decode_name(raw) -> str:
        return raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "surrogateescape")

    def escape_name(name) -> str:
        name = decode_name(name)
        if name.isprintable() and "\\" not in name:
            return name
        out = []
        for ch in name:
            o = ord(ch)
            if ch == "\\":
                out.append("\\\\")
            elif ch == " " or ch.isprintable():
                out.append(ch)
            elif 0xDC80 <= o <= 0xDCFF:
                out.append(f"\\x{o - 0xDC00:02x}")
            elif o < 0x20 or o == 0x7F:
                out.append(f"\\x{o:02x}")
            else:
                out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        return "".join(out)


@contextlib.contextmanager
def open_regular_file(path: str, what: str):
    """(binary file, size) of a regular file; a FIFO, device or directory is refused without
    blocking (O_NONBLOCK), as a one-line ToolkitError."""
    from gdb_toolkit.common.errors import ToolkitError

    raw = path.encode("utf-8", "surrogateescape") if isinstance(path, str) else path
    try:
        fd = os.open(raw, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ToolkitError(f"cannot open the {what} {escape_name(path)}: {exc.strerror}",
                           f"check the path of the {what}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ToolkitError(f"the {what} {escape_name(path)} is not a regular file",
                               f"give the path of a regular {what}")
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh, st.st_size
