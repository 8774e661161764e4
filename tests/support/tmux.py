"""An interactive gdb in a real terminal of a given size, driven through tmux.

What a user sees at 80 columns is not what ``gdb -batch`` prints: gdb knows the
terminal's width, styles its output, pages, and repeats the last command on Enter.
This harness runs gdb in a detached tmux pane (its own server socket in a private
directory, so parallel tests never meet) and reads the screen back::

    with TmuxGdb(width=80, program=prog) as t:
        t.run("start")
        screen = t.run("got")                  # the text the command printed, as rows
        t.assert_whole(screen, ["0x555555557fd0", "puts@GLIBC_2.2.5"])
        t.enter()                              # an empty line: gdb repeats or not

``run`` returns the rows printed between the command line and the next prompt, exactly
as the terminal shows them (one entry per screen row, escape sequences removed unless
``styled=True``).  ``assert_whole`` checks that each token appears whole on one row
and that the terminal folded no row (a row of exactly ``width`` characters followed by
its continuation is what a mid-word wrap looks like).

Skips (pytest.skip with the reason) when tmux is not installed.
"""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid

from tests.support.gdbrun import GDB, GDBINIT

PROMPT = "(gdb) "
ANSI = re.compile(r"\x1b\[[0-9;:]*[A-Za-z]")


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


class TmuxGdb:
    def __init__(self, width: int = 80, height: int = 50, program=None, args=(), pre=(),
                 env=None, source: bool = True, history: int = 20000):
        if not tmux_available():
            import pytest

            pytest.skip("tmux is not installed (apt-get install tmux; scripts/setup.sh does)")
        self.width, self.height = width, height
        self.dir = tempfile.mkdtemp(prefix="gtk-tmux-")
        self.socket = os.path.join(self.dir, "sock")
        self.name = "g" + uuid.uuid4().hex[:8]
        argv = [GDB, "-nx", "-q", "-iex", "set debuginfod enabled off",
                "-iex", "set pagination off", "-iex", "set confirm off"]
        for c in pre:
            argv += ["-iex", c]
        if source:
            argv += ["-ex", f"source {GDBINIT}"]
        if program is not None:
            argv += ["--args", str(program), *map(str, args)] if args else [str(program)]
        environ = {"TERM": "xterm-256color", "LC_ALL": "C.UTF-8", **(env or {})}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in environ.items())
        # history-limit is read when a pane is made: set globally before the session's pane
        # exists (set on the session afterwards, the pane kept tmux's 2000 rows and a long
        # sweep's run() waited for a row count that no longer grew)
        self._tmux("-f", "/dev/null", "start-server", ";", "set-option", "-g", "history-limit",
                   str(history), ";", "new-session", "-d", "-s", self.name, "-x", str(width),
                   "-y", str(height), f"env {exports} {shlex.join(argv)}")
        self._tmux("set-option", "-t", self.name, "remain-on-exit", "on")
        self._mark = 0
        self.last_logical: list[str] = []
        self.wait_prompt(timeout=60)

    # -- tmux plumbing ---------------------------------------------------------------------------
    def _tmux(self, *args, check=True) -> str:
        proc = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              timeout=30)
        if check and proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def rows(self, styled: bool = False, joined: bool = False) -> list[str]:
        """Every row of the pane's history and screen (trailing blank rows dropped)."""
        flags = ["-p", "-S", "-", "-E", "-"] + (["-e"] if styled else []) + (["-J"] if joined else [])
        text = self._tmux("capture-pane", "-t", self.name, *flags)
        lines = text.split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def wait_prompt(self, timeout: float = 60.0) -> list[str]:
        """Wait until the last row is gdb's prompt."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if rows and rows[-1].rstrip() == PROMPT.rstrip():
                self._mark = len(rows)
                return rows
            if time.monotonic() > deadline:
                raise TimeoutError(f"no gdb prompt within {timeout}s; screen:\n" + "\n".join(rows[-40:]))
            time.sleep(0.05)

    # -- driving gdb -----------------------------------------------------------------------------
    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        """Type *text* literally (no Enter)."""
        self._tmux("send-keys", "-t", self.name, "-l", text)

    def run(self, command: str, timeout: float = 120.0, styled: bool = False) -> list[str]:
        """Type *command* + Enter; return the rows it printed (before the next prompt)."""
        before, joined = len(self.rows()), len(self.rows(joined=True))
        self.type(command)
        self.send_keys("Enter")
        return self._output_since(before, joined, timeout, styled)

    def enter(self, timeout: float = 30.0, styled: bool = False) -> list[str]:
        """Press Enter on an empty line; return what gdb printed (a repeat, or nothing)."""
        before, joined = len(self.rows()), len(self.rows(joined=True))
        self.send_keys("Enter")
        return self._output_since(before, joined, timeout, styled)

    def _output_since(self, before: int, joined_before: int, timeout: float, styled: bool) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if len(rows) > before and rows[-1].rstrip() == PROMPT.rstrip():
                break
            if time.monotonic() > deadline:
                raise TimeoutError("command did not finish; screen:\n" + "\n".join(rows[-40:]))
            time.sleep(0.05)
        time.sleep(0.1)                      # let late writes land, then read again
        rows = self.rows(styled=styled)
        self._mark = len(rows)
        # the same output with the rows the terminal wrapped joined back (tmux -J): a logical
        # line longer than the terminal is one the terminal folded
        self.last_logical = self.rows(joined=True)[joined_before:-1]
        # rows[before-1] is the command line itself ("(gdb) got"); the last row the new prompt
        return rows[before:-1]

    def json(self, command: str, timeout: float = 120.0):
        """*command* --json in this same session (same process, same addresses), through
        gdb's ``pipe`` into a file: the result part of its envelope."""
        import json as _json

        out = os.path.join(self.dir, f"out{uuid.uuid4().hex[:6]}.json")
        self.run(f"pipe {command} --json | cat > {out}", timeout=timeout)
        with open(out) as f:
            doc = _json.load(f)
        return doc["result"] if isinstance(doc, dict) and "schema_version" in doc else doc

    def close(self) -> None:
        self._tmux("kill-server", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- assertions ------------------------------------------------------------------------------
    def folded_rows(self) -> list[str]:
        """Lines of the last command's output that the terminal folded onto a second row."""
        return [r for r in self.last_logical if len(ANSI.sub("", r)) > self.width]

    def assert_whole(self, rows: list[str], tokens) -> None:
        """Every token appears whole on one row, and the terminal folded no line of the last
        command's output (gdb or the terminal breaking a line mid-word)."""
        plain = [ANSI.sub("", r) for r in rows]
        folded = self.folded_rows()
        assert not folded, "rows folded at the terminal's edge:\n" + "\n".join(folded)
        missing = [t for t in tokens if not any(_whole(t, r) for r in plain)]
        assert not missing, f"not shown whole: {missing}\n" + "\n".join(plain)


def _whole(token: str, row: str) -> bool:
    """*token* in *row*, not as part of a longer word."""
    return re.search(r"(?<![0-9A-Za-z_])" + re.escape(token) + r"(?![0-9A-Za-z_])", row) is not None
