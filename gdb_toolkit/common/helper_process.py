"""Running helper programs and helper Python interpreters isolated from where gdb was started.

Why: gdb runs as root in a directory, with an environment, that may belong to someone else.
``python3 -c ...`` puts the current directory first on ``sys.path`` (a planted ``json.py`` runs
as root), ``PYTHONPATH``/``PYTHONSTARTUP``/``PYTHONHOME`` redirect imports, ``LD_PRELOAD`` and
``LD_LIBRARY_PATH`` load code into every program, ``BASH_ENV`` runs a script in every shell.  So a
helper:

- runs Python with ``-I`` (isolated: no cwd or script dir on sys.path, PYTHON* ignored, no user
  site-packages); a toolkit module is run by adding the checkout explicitly (``python_argv``);
- starts in ``/`` (never the caller's cwd);
- gets an environment built from an allow-list (``helper_env``): locale, PATH without relative
  entries, HOME, TMPDIR, TERM, plus exactly the variables the caller names or sets;
- is bounded: a timeout (the whole process group is killed), and at most ``max_output`` bytes of
  each of stdout/stderr are kept (the rest is drained and counted, so the child never blocks).
"""
import os
import time

from gdb_toolkit.common.record import record

SYSTEM_PYTHON = "/usr/bin/python3"
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: variables a helper inherits unless told otherwise (everything else is dropped)
DEFAULT_KEEP = ("HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_NUMERIC",
                "LC_TIME", "LC_COLLATE", "TERM", "TZ", "TMPDIR", "USER", "LOGNAME")

#: never passed on, even when named in *keep* (they make another program run code)
FORBIDDEN_PREFIXES = ("LD_", "PYTHON", "GCONV_", "MALLOC_", "PERL5", "RUBY", "NODE_")
FORBIDDEN = {"BASH_ENV", "ENV", "IFS", "CDPATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH",
             "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "TMPPREFIX", "SHELLOPTS", "BASHOPTS",
             "PS4", "PROMPT_COMMAND"}


def is_forbidden(name: str) -> bool:
    """True for environment variables that make a program load or run something else."""
    return name in FORBIDDEN or name.startswith(FORBIDDEN_PREFIXES)


def safe_path_value(value: str | None) -> str:
    """PATH without empty or relative entries (which would search the current directory)."""
    if not value:
        return SAFE_PATH
    parts = [p for p in value.split(os.pathsep) if p.startswith("/")]
    return os.pathsep.join(parts) or SAFE_PATH


def which(name: str, path: str | None = None) -> str | None:
    """``shutil.which(name, path=path)`` on POSIX, without importing shutil (bz2, lzma,
    fnmatch: ~2 ms of a command's first call): *name* itself when it has a directory part,
    else the first ``DIR/name`` on *path* (default $PATH, then the system's CS_PATH) that
    exists, is executable and is not a directory.  tests/unit/test_safety_primitives.py
    compares the two."""
    if os.path.dirname(name):
        return name if _runnable(name) else None
    if path is None:
        path = os.environ.get("PATH", None)
        if path is None:
            try:
                path = os.confstr("CS_PATH")
            except (AttributeError, ValueError):
                path = os.defpath
    if not path:
        return None
    seen = set()
    for d in path.split(os.pathsep):
        if d not in seen:
            seen.add(d)
            candidate = os.path.join(d, name)
            if _runnable(candidate):
                return candidate
    return None


def _runnable(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)


def helper_env(keep: tuple | list = (), set: dict | None = None, base: dict | None = None,
               allow_forbidden: tuple | list = ()) -> dict:
    """An environment for a helper: the allow-listed variables of *base* (default os.environ),
    those named in *keep*, then *set* (which wins).  Loader and interpreter variables are dropped
    even if named, unless listed in *allow_forbidden* (for a caller that set them itself)."""
    base = os.environ if base is None else base
    env = {}
    for name in (*DEFAULT_KEEP, *keep):
        if name in base and not (is_forbidden(name) and name not in allow_forbidden):
            env[name] = base[name]
    env["PATH"] = safe_path_value(base.get("PATH"))
    for name, value in (set or {}).items():
        if is_forbidden(name) and name not in allow_forbidden:
            raise ValueError(f"refusing to pass {name} to a helper")
        env[name] = value
    return env


def python_argv(*, code: str | None = None, module: str | None = None, args=(),
                sys_path: tuple | list = (), python: str = SYSTEM_PYTHON) -> list[str]:
    """argv for an isolated Python running *code* or *module* with *args*.

    ``-I`` keeps the cwd, the script's directory, PYTHON* variables and user site-packages out;
    *sys_path* entries (e.g. the toolkit checkout, for ``module``) are added explicitly.
    """
    if (code is None) == (module is None):
        raise ValueError("give exactly one of code= or module=")
    prelude = ""
    if sys_path:
        prelude = f"import sys; sys.path[:0] = {list(map(str, sys_path))!r}\n"
    if module is not None:
        body = prelude + ("import runpy, sys; sys.argv[0] = " + repr(module) +
                          "; runpy.run_module(" + repr(module) + ", run_name='__main__', alter_sys=True)")
    else:
        body = prelude + code
    return [python, "-I", "-c", body, *map(str, args)]


@record
class HelperResult:
    returncode: int | None       # None: killed after the timeout
    stdout: str                  # decoded with surrogateescape (any bytes survive)
    stderr: str
    timed_out: bool = False
    stdout_dropped: int = 0      # bytes beyond max_output that were read and discarded
    stderr_dropped: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def popen_helper(argv: list, *, env: dict | None = None, cwd: str = "/", **kw) -> "subprocess.Popen":
    """``subprocess.Popen`` with the isolation defaults: cwd ``/``, ``helper_env()`` unless an
    env is given, its own session (so the whole group can be killed), no inherited fds.

    subprocess (and selectors, signal) are imported where a helper runs: ``which``,
    ``helper_env`` and the constants here are on first-call paths that start no helper
    (vg-start's valgrind lookup: locale, threading, selectors, signal ~4-5 ms)."""
    import subprocess

    kw.setdefault("start_new_session", True)
    kw.setdefault("close_fds", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen([str(a) if not isinstance(a, bytes) else a for a in argv],
                            env=helper_env() if env is None else env, cwd=cwd, **kw)


def kill_group(proc: "subprocess.Popen") -> None:
    """SIGKILL the helper's process group (it runs in its own session), then reap it."""
    import subprocess

    _sigkill_group(proc.pid)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_helper(argv: list, *, timeout: float, env: dict | None = None, input: bytes | str | None = None,
               max_output: int = 1 << 20, cwd: str = "/") -> HelperResult:
    """Run *argv* to completion (or *timeout* seconds), isolated (see ``popen_helper``), keeping
    at most *max_output* bytes of stdout and of stderr.

    Started with ``os.posix_spawn`` (``spawn_isolated``), read with ``select.poll``: no
    subprocess, selectors or signal module (locale, threading, enums: ~4-5 ms of the doctor's
    first call), and no Python runs between fork and exec in multi-threaded gdb."""
    if isinstance(input, str):
        input = input.encode()
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    if input is not None:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
    try:
        pid = spawn_isolated(argv, env=env, cwd=cwd, stdin=in_r, stdout=out_w, stderr=err_w)
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, in_r):
            os.close(fd)
    kept = {out_r: bytearray(), err_r: bytearray()}
    try:
        return _collect(pid, in_w, input, kept, timeout, max_output)
    except BaseException:
        # Ctrl-C (KeyboardInterrupt) or any failure while it runs: the helper is in its own
        # session, so gdb's SIGINT never reached it -- it went on running, or stayed a zombie
        _kill_group_pid(pid)
        raise
    finally:
        for fd in kept:
            os.close(fd)


def _collect(pid: int, in_w: int | None, input: bytes | None, kept: dict, timeout: float,
             max_output: int) -> "HelperResult":
    """run_helper's wait: feed *input*, read stdout/stderr into *kept* until EOF or the
    deadline, then reap *pid* (killing its group on timeout)."""
    import select

    out_r, err_r = kept
    dropped = {out_r: 0, err_r: 0}
    deadline = time.monotonic() + timeout
    timed_out = False
    if in_w is not None:
        try:
            view = memoryview(input)
            while view:
                view = view[os.write(in_w, view):]
        except BrokenPipeError:
            pass
        finally:
            os.close(in_w)
    poller = select.poll()
    for fd in kept:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    open_fds = set(kept)
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for fd, _ in poller.poll(min(left, 1.0) * 1000):
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            buf = kept[fd]
            room = max_output - len(buf)
            buf += chunk[:room]
            dropped[fd] += max(0, len(chunk) - room)
    if timed_out:
        _kill_group_pid(pid)
        rc = None
    else:
        rc = wait_pid(pid, max(0.1, deadline - time.monotonic()))
        if rc is None:
            _kill_group_pid(pid)
            timed_out = True
    return HelperResult(rc, bytes(kept[out_r]).decode("utf-8", "surrogateescape"),
                        bytes(kept[err_r]).decode("utf-8", "surrogateescape"), timed_out,
                        dropped[out_r], dropped[err_r])


#: posix_spawn cannot change directory: /bin/sh does, then execs the program (same process)
_CD_EXEC = 'cd -- "$1" || exit 127; shift; exec "$@"'


def spawn_isolated(argv: list, *, env: dict | None, cwd: str | None, stdin: int,
                   stdout: int | None, stderr: int | None) -> int:
    """Start *argv* as ``popen_helper`` does (``helper_env()`` unless *env*, in *cwd* (None:
    gdb's), its own session, descriptors 0-2 from *stdin*/*stdout*/*stderr* (None: gdb's own),
    no other descriptor inherited, SIGPIPE and SIGXFSZ at their defaults as Popen's
    restore_signals), with ``os.posix_spawn``; return its pid.  A missing program, a program
    that cannot be executed or a missing *cwd* raise the OSError Popen raises.  Also
    vg-start's valgrind (valgrind.launch.start_valgrind)."""
    from _signal import SIGPIPE, SIGXFSZ

    argv = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in argv]
    env = helper_env() if env is None else env
    exe = argv[0]
    found = exe if os.path.dirname(exe) else which(exe, path=env.get("PATH", os.defpath))
    if found is None or not os.path.exists(found):
        raise FileNotFoundError(2, os.strerror(2), exe)
    if not _runnable(found):
        raise PermissionError(13, os.strerror(13), exe)
    if cwd is not None and not os.path.isdir(cwd):
        raise FileNotFoundError(2, os.strerror(2), cwd)
    if cwd is not None:
        path, argv = "/bin/sh", ["/bin/sh", "-c", _CD_EXEC, "sh", cwd, *argv]
    else:
        path = found
    actions = [(os.POSIX_SPAWN_DUP2, fd, target)
               for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)) if fd is not None]
    # close_fds: every other descriptor (a descriptor closed meanwhile is no error: glibc
    # ignores EBADF on a close action)
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in open_descriptors() if fd > 2]
    return os.posix_spawn(path, argv, env, file_actions=actions, setsid=True,
                          setsigdef=(SIGPIPE, SIGXFSZ))


def open_descriptors() -> list[int]:
    """This process's open descriptors (/proc/self/fd; without /proc, 0-255)."""
    try:
        return sorted(int(n) for n in os.listdir("/proc/self/fd"))
    except OSError:
        return list(range(256))


def wait_pid(pid: int, timeout: float) -> int | None:
    """The exit status as Popen.returncode gives it (a signal's negative number; 0 when it was
    reaped elsewhere), or None when *pid* still runs after *timeout* seconds (0: one look;
    ``float("inf")``: until it ends)."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:       # reaped elsewhere: Popen's answer
            return 0
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def _sigkill_group(pid: int) -> None:
    """SIGKILL *pid*'s process group (a helper runs in its own session), or *pid* alone."""
    from _signal import SIGKILL

    try:
        os.killpg(pid, SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass


def _kill_group_pid(pid: int) -> None:
    """``kill_group`` for a spawned pid: SIGKILL its process group, reap it."""
    _sigkill_group(pid)
    wait_pid(pid, 5)
