"""Live valgrind gdbservers, found through their vgdb FIFOs.

valgrind --vgdb=yes creates ``$TMPDIR/vgdb-pipe-from-vgdb-to-PID-by-USER-on-HOST``
(USER/HOST are ``???`` when the environment lacks them).  A SIGKILLed valgrind
leaves its FIFOs behind, so a FIFO only counts when PID is alive and is a
valgrind tool.
"""
import os
import re
import stat

from gdb_toolkit.common.record import field, json_keys, record

FIFO_RE = re.compile(r"^vgdb-pipe-from-vgdb-to-(\d+)-by-(.*)-on-(.*)$")


def fifo_re(prefix: str | None = None) -> "re.Pattern":
    """The from-vgdb FIFO's name for valgrind's --vgdb-prefix (default $TMPDIR/vgdb-pipe)."""
    if not prefix:
        return FIFO_RE
    return re.compile("^" + re.escape(os.path.basename(prefix)) + r"-from-vgdb-to-(\d+)-by-(.*)-on-(.*)$")


def display_name(raw: bytes) -> str:
    """A name from /proc (any bytes) as printable, lossless text (common.names.escape_name)."""
    from gdb_toolkit.common.names import escape_name

    return escape_name(raw)


@record
class ValgrindProcess:
    pid: int
    fifo: str = field(metadata={"json_skip": True})
    user: str
    host: str
    alive: bool
    tool: str | None = None          # memcheck, from the process name
    program: str | None = None       # the client program (absolute when resolvable), for display
    arguments: list[str] = field(default_factory=list)
    valgrind_options: list[str] = field(default_factory=list)
    program_path: str | None = field(default=None, repr=False, metadata={"json_skip": True})
    # ^ the real path (os.fsdecode: any bytes), for loading symbols; None when not a file


def fifo_dir(prefix: str | None = None, env=None) -> str:
    env = os.environ if env is None else env
    if prefix:
        return os.path.dirname(prefix) or "."
    return env.get("TMPDIR") or "/tmp"


def parse_cmdline(argv: list[str], cwd: str | None = None) -> tuple[list[str], str | None, list[str]]:
    """valgrind's argv -> (valgrind options, program, program args)."""
    opts: list[str] = []
    for i, a in enumerate(argv[1:], start=1):
        if a.startswith("-"):
            opts.append(a)
            continue
        prog = a
        if cwd and not os.path.isabs(prog):
            prog = os.path.normpath(os.path.join(cwd, prog))
        return opts, prog, argv[i + 1:]
    return opts, None, []


def process_info(pid: int, proc: str = "/proc") -> tuple[bool, str | None, list[str], str | None]:
    """(alive and a valgrind tool?, tool name, argv, cwd) for PID.

    argv and cwd are os.fsdecode'd (any bytes survive, as surrogate escapes)."""
    base = f"{proc}/{pid}"
    try:
        with open(f"{base}/comm", "rb") as fh:
            comm = display_name(fh.read(64).strip())
        with open(f"{base}/cmdline", "rb") as fh:
            argv = [os.fsdecode(a) for a in fh.read(1 << 20).split(b"\0") if a]
        with open(f"{base}/stat", "rb") as fh:
            state = fh.read(4096).rsplit(b")", 1)[1].split()[0].decode("ascii", "replace")
    except (OSError, IndexError):
        return False, None, [], None
    if state in ("Z", "X"):
        return False, None, argv, None
    try:
        cwd = os.fsdecode(os.readlink(os.fsencode(f"{base}/cwd")))
    except OSError:
        cwd = None
    by_comm = re.match(r"^([a-z]+)-(amd64|x86|arm64|arm|ppc64le|s390x|mips\d*)-", comm)
    by_argv = bool(argv) and os.path.basename(argv[0]).startswith("valgrind")
    is_vg = bool(by_comm) or by_argv
    tool = None
    if is_vg:
        # the program can rename the process (prctl PR_SET_NAME): valgrind's argv says the tool
        opts = [a for a in argv[1:] if a.startswith("--tool=")] if by_argv else []
        tool = opts[-1].split("=", 1)[1] if opts else ("memcheck" if by_argv else by_comm.group(1))
    return is_vg, tool, argv, cwd


def _shown(text: str) -> str:
    return display_name(os.fsencode(text))


def list_processes(directory: str | None = None, include_dead: bool = False,
                   proc: str = "/proc", prefix: str | None = None) -> list[ValgrindProcess]:
    """Valgrind processes with a vgdb FIFO in *directory* (or --vgdb-prefix's), sorted by pid."""
    directory = directory or fifo_dir(prefix)
    pattern = fifo_re(prefix)
    out = []
    try:
        names = [os.fsdecode(n) for n in os.listdir(os.fsencode(directory))]
    except OSError:
        return []
    for name in names:
        m = pattern.match(name)
        if not m:
            continue
        path = os.path.join(directory, name)
        try:
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                continue
        except OSError:
            continue
        pid = int(m.group(1))
        alive, tool, argv, cwd = process_info(pid, proc)
        if not alive and not include_dead:
            continue
        opts, prog, args = parse_cmdline(argv, cwd) if argv else ([], None, [])
        out.append(ValgrindProcess(pid, path, _shown(m.group(2)), _shown(m.group(3)), alive, tool,
                                   _shown(prog) if prog else None, [_shown(a) for a in args],
                                   [_shown(o) for o in opts],
                                   prog if prog and os.path.isfile(prog) else None))
    return sorted(out, key=lambda p: p.pid)


def fifo_for(pid: int, directory: str | None = None, prefix: str | None = None) -> str | None:
    """The from-vgdb FIFO of *pid* if it exists."""
    directory = directory or fifo_dir(prefix)
    pattern = fifo_re(prefix)
    try:
        for name in os.listdir(directory):
            m = pattern.match(name)
            if m and int(m.group(1)) == pid:
                return os.path.join(directory, name)
    except OSError:
        pass
    return None


def own_prefix(pid: int, proc: str = "/proc") -> str | None:
    """The vgdb FIFO prefix valgrind *pid* uses: its --vgdb-prefix, else
    $TMPDIR/vgdb-pipe of its own environment (vgdb looks in gdb's TMPDIR)."""
    _, _, argv, cwd = process_info(pid, proc)
    opts = parse_cmdline(argv, cwd)[0] if argv else []
    given = [o.split("=", 1)[1] for o in opts if o.startswith("--vgdb-prefix=")]
    if given:
        p = given[-1]
        return p if os.path.isabs(p) or not cwd else os.path.join(cwd, p)
    try:
        with open(f"{proc}/{pid}/environ", "rb") as fh:
            env = fh.read(1 << 20).split(b"\0")
    except OSError:
        return None
    tmp = next((e[7:] for e in env if e.startswith(b"TMPDIR=")), b"/tmp") or b"/tmp"
    return os.path.join(os.fsdecode(tmp), "vgdb-pipe")


def not_attachable(pid: int, proc: str = "/proc") -> tuple[str, str] | None:
    """(cause, fix) when *pid* cannot be a vg-* connection whatever the FIFO directory:
    no such process, not under valgrind, an exited one, valgrind without a gdbserver."""
    alive, tool, argv, cwd = process_info(pid, proc)
    if not alive:
        try:
            with open(f"{proc}/{pid}/comm", "rb") as fh:
                comm = display_name(fh.read(64).strip())
        except OSError:
            return (f"there is no process {pid}", "run vg-attach with no PID to list the valgrind processes")
        try:
            with open(f"{proc}/{pid}/stat", "rb") as fh:
                state = fh.read(4096).rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = b"?"
        if state in (b"Z", b"X"):
            return (f"pid {pid} ({comm}) has exited (a zombie its parent has not reaped)",
                    "run vg-attach with no PID to list the live valgrind processes")
        return (f"pid {pid} ({comm}) is not running under valgrind",
                "start it under valgrind: vg-start PROGRAM [ARGS], or valgrind --vgdb=yes PROGRAM")
    opts = parse_cmdline(argv, cwd)[0] if argv else []
    vgdb = [o.split("=", 1)[1] for o in opts if o.startswith("--vgdb=")]
    if vgdb and vgdb[-1] == "no":
        return (f"valgrind {pid} runs with --vgdb=no: it has no gdbserver to connect to",
                "restart it with --vgdb=yes (the default)")
    return None


def tool_note(pid: int, tool: str) -> str:
    """What works with a valgrind running another tool than memcheck (vg-start starts
    memcheck only; a helgrind or drd server can still be attached)."""
    return (f"valgrind {pid} runs {tool}, not memcheck: vg-errors and the error stops work (its "
            f"errors, their further stacks kept apart); vg-leaks, vg-who, vg-block, vg-vbits and "
            f"vg-check need memcheck ('monitor help' lists {tool}'s own commands)")


@record
class AttachReport:
    connected: bool
    pid: int | None
    program: str | None
    processes: list[ValgrindProcess]      # live ones (the choice when several)
    stale_fifos: list[int]                # pids whose FIFO is left by a dead valgrind
    stopped_at: str | None = None
    notes: list[str] = field(default_factory=list)


# JSON key (contract v6, docs/json.md): a list of pids says so (`stale_fifos` held pids, not FIFOs)
json_keys(AttachReport, {"stale_fifos": "stale_fifo_pids"})


def choose(processes: list[ValgrindProcess], pid: int | None) -> ValgrindProcess | None:
    """The process to connect to: *pid* if live, the only one, else None (ask)."""
    if pid is not None:
        return next((p for p in processes if p.pid == pid), None)
    return processes[0] if len(processes) == 1 else None


def remove_stale_fifos(pid: int, directory: str | None = None, prefix: str | None = None) -> int:
    """Remove the vgdb FIFOs/shared-memory file of a dead valgrind *pid*; returns how many."""
    import contextlib

    if os.path.exists(f"/proc/{pid}/cmdline") and process_info(pid)[0]:
        return 0        # still alive: not stale
    directory = directory or fifo_dir(prefix)
    base = re.escape(os.path.basename(prefix)) if prefix else "vgdb-pipe"
    removed = 0
    pat = re.compile(rf"^{base}-(from-vgdb-to|to-vgdb-from|shared-mem-vgdb)-{pid}-by-")
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if pat.match(name):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
                removed += 1
    return removed
