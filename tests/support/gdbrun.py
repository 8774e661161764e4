"""Drive real gdb and real programs from tests.

- ``compile_c``: build a C fixture with gcc (cached per source+flags).
- ``run_gdb``: ``gdb -nx -batch`` with the package sourced, commands given.
- ``gdb_json``: run one toolkit command with ``--json`` and return its result
  (the ``result`` of the envelope every ``--json`` prints; ``gdb_envelope``
  returns the whole envelope).
- ``background``: a program running in the background (for attach), killed after.
"""
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GDBINIT = REPO / "gdb_toolkit" / "gdbinit.py"
GDB = shutil.which("gdb") or "/usr/bin/gdb"
BUILD_DIR = Path(os.environ.get("GDB_TOOLKIT_TEST_BUILD",
                                Path(tempfile.gettempdir()) / f"gdb_toolkit-fixtures-{os.getuid()}"))
JSON_BEGIN = "@@GTK-JSON-BEGIN@@"
JSON_END = "@@GTK-JSON-END@@"


_build_dir_checked = False


def _check_build_dir() -> None:
    """The shared fixture cache lives at a fixed name in /tmp: refuse it unless it is ours and
    not writable by others (else another user could plant the binaries root's tests run)."""
    global _build_dir_checked
    if _build_dir_checked:
        return
    BUILD_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.common.private_dirs import check_directory_chain

    try:
        check_directory_chain(str(BUILD_DIR))
    except ToolkitError as exc:
        raise RuntimeError(f"test fixture cache: {exc} (or set GDB_TOOLKIT_TEST_BUILD)") from None
    _build_dir_checked = True


def compile_c(source: str | Path, name: str | None = None, flags: list[str] = (),
              compiler: str = "gcc", out_dir: Path | None = None) -> Path:
    """Compile C source text (or a .c path) and return the binary's path.

    Binaries are cached by the hash of source, flags and compiler, so every
    test can call this freely.
    """
    if isinstance(source, Path) or (isinstance(source, str) and source.endswith(".c")
                                    and "\n" not in source):
        text = Path(source).read_text()
        name = name or Path(source).stem
    else:
        text = source
        name = name or "prog"
    key = hashlib.sha256("\0".join([text, compiler, *flags]).encode()).hexdigest()[:12]
    if out_dir is None:
        _check_build_dir()
    out_dir = Path(out_dir or BUILD_DIR / key)
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / name
    if binary.exists():
        return binary
    src = out_dir / f"{name}.c"
    src.write_text(text)
    cmd = [compiler, "-o", str(binary), str(src), *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{proc.stderr}")
    return binary


@dataclass
class GdbResult:
    stdout: str
    stderr: str
    returncode: int

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def envelopes(self) -> list:
        """Every JSON document printed between markers, as printed (envelopes)."""
        docs = []
        for chunk in re.findall(re.escape(JSON_BEGIN) + r"\n(.*?)" + re.escape(JSON_END),
                                self.stdout, flags=re.S):
            docs.append(json.loads(chunk))
        return docs

    def json_documents(self) -> list:
        """Every JSON document printed between markers (see gdb_json): the result
        of each successful envelope; a failed command's envelope is kept whole."""
        return [unwrap(d) for d in self.envelopes()]


def marked_documents(stdout: str) -> list:
    """Every JSON document printed between markers, as printed (envelopes), where output of the
    inferior may come first inside the markers (``ktrace --run`` lets the program run, and
    print, before the command's document)."""
    docs = []
    for chunk in stdout.split(JSON_BEGIN)[1:]:
        chunk = chunk.split(JSON_END, 1)[0]
        start = 0 if chunk.lstrip().startswith("{") else chunk.index("\n{")
        docs.append(json.loads(chunk[start:]))
    return docs


def gdb_argv(commands: list[str], program: str | Path | None = None, args: list[str] = (),
             core: str | Path | None = None, pid: int | None = None, source: bool = True,
             pre: list[str] = ()) -> list[str]:
    argv = [GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off"]
    for c in pre:
        argv += ["-iex", c]
    if source:
        argv += ["-ex", f"source {GDBINIT}"]
    for c in commands:
        argv += ["-ex", c]
    if program is not None:
        argv += ["--args", str(program), *map(str, args)] if args else [str(program)]
    if core is not None:
        argv += ["-c", str(core)] if program is not None else ["-c", str(core)]
    if pid is not None:
        argv += ["-p", str(pid)]
    return argv


def run_gdb(commands: list[str], program=None, args=(), core=None, pid=None, timeout=120,
            env=None, cwd=None, source=True, pre=()) -> GdbResult:
    """Run gdb in batch mode with the toolkit sourced and *commands* as -ex."""
    argv = gdb_argv(commands, program, args, core, pid, source, pre)
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("TERM", "dumb")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)
    return GdbResult(proc.stdout, proc.stderr, proc.returncode)


def json_wrapped(command: str) -> list[str]:
    """gdb commands that print *command*'s output between JSON markers."""
    return [f"echo {JSON_BEGIN}\\n", command, f"echo {JSON_END}\\n"]


def is_envelope(doc) -> bool:
    return isinstance(doc, dict) and {"command", "schema_version", "ok"} <= doc.keys()


def unwrap(doc):
    """The result of a successful ``--json`` envelope; anything else unchanged."""
    if is_envelope(doc) and doc["ok"]:
        return doc["result"]
    return doc


def addr(value) -> int:
    """An address from JSON as an int: "0x..." strings (the contract, docs/json.md) or ints."""
    return int(value, 16) if isinstance(value, str) else int(value)


def gdb_envelope(setup: list[str], command: str, **kw) -> dict:
    """Run *setup* commands, then *command* with --json; return its whole envelope."""
    if "--json" not in command:
        command += " --json"
    res = run_gdb([*setup, *json_wrapped(command)], **kw)
    docs = res.envelopes()
    assert docs, f"no JSON from {command!r}:\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}"
    return docs[-1]


def gdb_json(setup: list[str], command: str, **kw):
    """Run *setup* commands, then *command* (which must print JSON); return its result.

    Raises AssertionError with gdb's whole output when no document appears or
    the command failed (its envelope has ok false).
    """
    doc = gdb_envelope(setup, command, **kw)
    assert not is_envelope(doc) or doc["ok"], f"{command!r} failed: {doc['error']}"
    return unwrap(doc)


@contextlib.contextmanager
def background(argv: list[str], ready: str | None = None, timeout: float = 20, env=None,
               **popen_kw):
    """Start *argv*; wait until a stdout line contains *ready*; kill the group on exit.

    Yields (proc, lines) where lines holds stdout lines read so far.
    """
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                            env=dict(os.environ, **(env or {})), **popen_kw)
    lines: list[str] = []
    try:
        if ready is not None:
            deadline = time.monotonic() + timeout
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv[0]} did not print {ready!r} in {timeout}s: {lines}")
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{argv[0]} exited ({proc.poll()}) before {ready!r}: "
                                       f"{lines} {proc.stderr.read()}")
                lines.append(line.rstrip("\n"))
                if ready in line:
                    break
        yield proc, lines
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(Exception):
                stream.close()


def gdb_error_lines(result: GdbResult) -> list[str]:
    """Lines of stderr, for asserting on one-line errors with no traceback."""
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


def assert_no_traceback(result: GdbResult) -> None:
    assert "Traceback" not in result.output, result.output
    assert "internal error" not in result.output, result.output
