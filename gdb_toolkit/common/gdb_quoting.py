"""What gdb 13's command parser does with the bytes of a command, and how to pass a value
through it safely (pure; the gdb side is ``gdbsupport/safe_gdb.py``).

Measured on gdb 13.1 (tests/integration/test_safe_gdb.py keeps these facts checked):

- ``gdb.execute(s)`` runs *every line* of ``s``: ``"file /x\\nshell id"`` runs ``shell id``.
  A NUL raises ValueError; a lone surrogate (a non-UTF-8 byte carried by surrogateescape)
  raises UnicodeEncodeError: such bytes cannot be passed through a command at all.
  ``\\r`` does not split commands, but is refused too (terminal confusion, no legitimate use).
- gdb strips trailing whitespace from a command line, so an argument ending in a space or tab
  (even backslash-escaped) loses it and names another file.
- ``file``, ``exec-file``, ``symbol-file``, ``core-file`` and ``add-symbol-file`` split their
  argument with libiberty's ``buildargv``: whitespace separates words, ``'...'`` and ``"..."``
  group, and a backslash escapes the next character everywhere, inside quotes too.  Words that
  begin with ``-`` are options (``file -x`` is skipped, not loaded); ``~`` is tilde-expanded;
  a name without a slash is searched in ``$PATH``; ``target:`` means the target's file system.
  No shell is involved, so ``$(...)``, backticks, ``;`` and globs are inert.
- ``target remote | CMD`` hands everything after ``|`` to ``/bin/sh -c``: shell syntax applies.
  ``safe_gdb.target_remote_pipe`` therefore uses a *constant* command string and passes the
  values in environment variables, which may hold any byte but NUL.

Rules that follow: a file name goes to gdb as an absolute path (no ``-``, ``~``, ``$PATH`` or
``target:`` meaning) with every character outside a small safe set backslash-escaped, when it is
printable UTF-8 without trailing whitespace (``quote_filename``); otherwise through a private
symlink whose name is safe (``safe_gdb.gdb_file_argument``).  Any other text that must be part of
a command goes through ``check_command_text``, which refuses line breaks and NUL.
"""
import os

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import escape_name

#: the characters a file name may hold unescaped: [A-Za-z0-9_./,+=@%:-] (a set, not a regular
#: expression: compiling one cost every first command that asks gdb something ~0.2 ms)
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./,+=@%:-")
_BREAKS = ("\n", "\r", "\0")


def command_text_problem(text: str) -> str | None:
    """Why *text* cannot be part of a gdb command line, or None if it can."""
    for ch, name in (("\n", "a newline"), ("\r", "a carriage return"), ("\0", "a NUL byte")):
        if ch in text:
            return f"contains {name}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains bytes that are not UTF-8"
    return None


def check_command_text(text: str, what: str = "argument") -> str:
    """Return *text* unchanged if gdb's parser can carry it as one line; else ToolkitError."""
    why = command_text_problem(text)
    if why:
        raise ToolkitError(f"{what} {escape_name(text)} {why}, which cannot be passed to a gdb "
                           "command safely", "rename it, or use a path without such characters")
    return text


def can_quote_filename(path: str) -> bool:
    """True when ``quote_filename`` can pass *path* exactly (else a symlink alias is needed)."""
    if not path or command_text_problem(path):
        return False
    if not all(ch == " " or ch.isprintable() for ch in path):
        return False
    return not path[-1].isspace()


def quote_filename(path: str) -> str:
    """*path* made absolute and escaped for buildargv: every character but ``[A-Za-z0-9_./,+=@%:-]``
    gets a backslash.  ValueError if ``can_quote_filename`` is false."""
    path = absolute(path)
    if not can_quote_filename(path):
        raise ValueError(f"cannot quote {escape_name(path)} for gdb")
    return "".join(ch if ch in _SAFE_CHARS else "\\" + ch for ch in path)


def absolute(path: str) -> str:
    """An absolute path (no leading ``-``, ``~`` or ``target:``, no $PATH search).  Not
    normalised: ``a/../b`` differs from ``b`` when ``a`` is a symlink."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path if path.startswith("/") else os.path.join(os.getcwd(), path)


def alias_basename(path: str, limit: int = 60) -> str:
    """A recognisable, parser-safe name for a private symlink to *path*."""
    base = os.path.basename(path.rstrip("/")) or "file"
    safe = "".join(ch if ch in _SAFE_CHARS and ch != ":" else "_" for ch in base)
    safe = safe.lstrip("-.") or "file"
    return safe[:limit]


def shell_word(value: str) -> str:
    """*value* as one /bin/sh word (single-quoted); refuses line breaks and NUL."""
    check_command_text(value, "value")
    return "'" + value.replace("'", "'\\''") + "'"
