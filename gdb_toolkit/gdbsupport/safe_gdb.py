"""Passing paths and values to gdb without letting any byte start a new command.

Never write ``gdb.execute(f"file {path}")``: gdb runs every line of the string (see
``common/gdb_quoting.py`` for what gdb 13's parser does, measured).  Use instead:

- ``load_executable(path)``      -- ``file PATH`` (program and its symbols)
- ``add_symbol_file(path, addr)`` -- ``add-symbol-file PATH ADDR``
- ``load_core(path)``             -- ``core-file PATH``
- ``target_remote_pipe(argv, stderr_path=None)`` -- ``target remote | ARGV...`` (vgdb)
- ``execute_fixed(cmd)``          -- any other command: refuses line breaks and NUL
- ``execute_to_string(cmd)``      -- same, and output with non-UTF-8 bytes does not raise
  (gdb 13 raises UnicodeDecodeError after running the command; the bytes are recovered)
- ``progspace_filename()`` / ``objfile_filename(o)`` -- names that may be any bytes (gdb 13's
  attributes raise UnicodeDecodeError for a non-UTF-8 file name)

A path is checked to be a regular file first (gdb itself would block on a FIFO, ignoring
SIGINT), made absolute, and backslash-escaped; a path that no escaping can carry (a newline,
trailing whitespace, non-UTF-8 bytes) is passed through a private symlink with a safe name in
``session_dir()`` (kept until gdb exits: gdb re-opens the executable by that name on ``run``).
"""
import contextlib
import itertools
import os

import gdb

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import decode_name, encode_name, escape_name

# common.gdb_quoting is imported where a command text or a path is built, not here: a
# command that only asks for the program's name (progspace_filename) does not need it

_alias_counter = itertools.count(1)


def execute_fixed(command: str, to_string: bool = True, from_tty: bool = False):
    """``gdb.execute`` for a command that must be exactly one line (refuses \\n, \\r, NUL)."""
    from gdb_toolkit.common.gdb_quoting import check_command_text

    check_command_text(command, "gdb command")
    if to_string:
        return execute_to_string(command, from_tty)
    return gdb.execute(command, from_tty, False)


def execute_to_string(command: str, from_tty: bool = False) -> str:
    """Run a one-line command and return its output; bytes that are not UTF-8 (a file or
    process name) come back surrogateescape-decoded instead of raising UnicodeDecodeError."""
    from gdb_toolkit.common.gdb_quoting import check_command_text

    check_command_text(command, "gdb command")
    try:
        return gdb.execute(command, from_tty, True)
    except UnicodeDecodeError as exc:
        if isinstance(exc.object, (bytes, bytearray)):
            return bytes(exc.object).decode("utf-8", "surrogateescape")
        raise


def _make_alias(path: str) -> str:
    from gdb_toolkit.common.gdb_quoting import alias_basename
    from gdb_toolkit.common.private_dirs import session_dir

    d = os.path.join(session_dir(), f"alias{next(_alias_counter)}")
    os.mkdir(d, 0o700)
    alias = os.path.join(d, alias_basename(path))
    os.symlink(encode_name(path), alias)
    return alias


def gdb_file_argument(path: str, what: str = "file", check_regular: bool = True) -> str:
    """*path* as one safe word of a gdb file command: escaped, or a private alias.

    *check_regular*: refuse (ToolkitError) anything but a regular file first."""
    from gdb_toolkit.common.gdb_quoting import absolute, can_quote_filename, quote_filename

    if isinstance(path, bytes):
        path = decode_name(path)
    path = absolute(path)
    if check_regular:
        from gdb_toolkit.common.safe_open import require_regular

        require_regular(path, what)
    if can_quote_filename(path):
        return quote_filename(path)
    return quote_filename(_make_alias(path))


@contextlib.contextmanager
def _confirm_off():
    try:
        old = gdb.parameter("confirm")
    except gdb.error:
        old = None
    if old:
        gdb.execute("set confirm off", False, True)
    try:
        yield
    finally:
        if old:
            gdb.execute("set confirm on", False, True)


def _run_file_command(verb: str, path: str, what: str, tail: str = "") -> str:
    word = gdb_file_argument(path, what)
    command = f"{verb} {word}{tail}"
    try:
        with _confirm_off():
            return execute_to_string(command)
    except gdb.error as exc:
        raise ToolkitError(f"gdb cannot load {what} {escape_name(path)}: {exc}",
                           "check the file") from None


def load_executable(path: str, what: str = "program") -> str:
    """``file PATH``: load *path* as the program and its symbols; returns gdb's output."""
    return _run_file_command("file", path, what)


def add_symbol_file(path: str, address: int = 0, what: str = "symbol file") -> str:
    """``add-symbol-file PATH ADDRESS``: add *path*'s symbols with .text at *address*."""
    return _run_file_command("add-symbol-file", path, what, f" {int(address):#x}")


def load_core(path: str, what: str = "core file") -> str:
    """``core-file PATH``."""
    return _run_file_command("core-file", path, what)


ENV_PREFIX = "GDB_TOOLKIT_PIPE_"


def target_remote_pipe(argv: list, stderr_path: str | None = None) -> str:
    """``target remote | ARGV... 2>>STDERR_PATH`` with no byte of *argv* or the path in the
    command: gdb hands the text after ``|`` to its shell (``$SHELL -c``, else ``/bin/sh -c``), so
    the command is constant
    (``exec "$GDB_TOOLKIT_PIPE_0" "$GDB_TOOLKIT_PIPE_1" ...``) and the values travel in gdb's
    environment (inherited by the shell gdb forks), removed again once connected.
    Raises gdb.error like ``gdb.execute`` when the connection fails."""
    if not argv:
        raise ValueError("empty argv")
    names = []
    values = {}
    for i, arg in enumerate(argv):
        name = f"{ENV_PREFIX}{i}"
        values[name] = encode_name(arg) if isinstance(arg, str) else bytes(arg)
        names.append(f'"${name}"')
    command = "target remote | exec " + " ".join(names)
    if stderr_path is not None:
        values[ENV_PREFIX + "ERR"] = encode_name(stderr_path) if isinstance(stderr_path, str) \
            else bytes(stderr_path)
        command += f' 2>>"${ENV_PREFIX}ERR"'
    for name, value in values.items():
        if b"\0" in value:
            raise ToolkitError(f"argument {escape_name(value)} contains a NUL byte",
                               "use a path without it")
    # gdb forks the pipe with its own environment and $SHELL (bash runs BASH_ENV): loader and
    # shell-startup variables are taken out for that moment, so neither the shell nor the helper
    # loads or runs what they name (common.helper_process.is_forbidden)
    from gdb_toolkit.common.helper_process import is_forbidden

    hidden = [n for n in os.environb if is_forbidden(n.decode("latin-1"))]
    saved = {name: os.environb.get(name.encode()) for name in values}
    saved.update({n.decode("latin-1"): os.environb[n] for n in hidden})
    try:
        for n in hidden:
            del os.environb[n]
        for name, value in values.items():
            os.environb[name.encode()] = value
        return execute_to_string(command)
    finally:
        for name, old in saved.items():
            if old is None:
                os.environb.pop(name.encode("latin-1"), None)
            else:
                os.environb[name.encode("latin-1")] = old


# -- names gdb holds that may be any bytes -------------------------------------------------

@contextlib.contextmanager
def _latin1_host_charset():
    """gdb decodes file names with the host charset (UTF-8: strict, raises on other bytes);
    ISO-8859-1 decodes every byte, and re-encoding gives the bytes back."""
    try:
        old = gdb.parameter("host-charset")
    except gdb.error:
        old = None
    gdb.execute("set host-charset ISO-8859-1", False, True)
    try:
        yield
    finally:
        gdb.execute(f"set host-charset {old or 'auto'}", False, True)


def _raw_name(get) -> str | None:
    try:
        return get()
    except UnicodeDecodeError:
        pass
    with _latin1_host_charset():
        value = get()
    if value is None:
        return None
    return decode_name(value.encode("latin-1"))


def progspace_filename(progspace=None) -> str | None:
    """The program's file name (any bytes, surrogateescape-decoded), or None."""
    ps = progspace or gdb.current_progspace()
    return _raw_name(lambda: ps.filename)


def objfile_filename(objfile) -> str | None:
    """An objfile's file name (any bytes, surrogateescape-decoded), or None."""
    return _raw_name(lambda: objfile.filename)


def symtab_filename(symtab) -> str | None:
    """A symbol table's source file name (DWARF names it as compiled: any bytes)."""
    return _raw_name(lambda: symtab.filename)


def source_of(sal) -> tuple[str | None, int | None]:
    """(file, line) of a gdb symtab-and-line: the file's base name, as stack-diagnose and
    the valgrind commands give it; (None, None) without line information."""
    if sal is None or sal.symtab is None or not sal.line:
        return None, None
    name = symtab_filename(sal.symtab)          # any bytes (surrogateescape)
    # printed once, here (common.names.escape_name), as every name the toolkit shows
    return (escape_name(os.path.basename(name)), sal.line) if name else (None, None)


def solib_name(address: int) -> str | None:
    """``gdb.solib_name`` that survives a non-UTF-8 library path."""
    return _raw_name(lambda: gdb.solib_name(address))
