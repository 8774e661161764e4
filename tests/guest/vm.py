"""Boot the guest and run one command in it.

    from tests.guest.vm import run_in_guest
    res = run_in_guest(["sh", "-c", "cat /proc/version"], timeout=600)
    status, output, boot_seconds = res        # also res.console, res.error, res.accel ...

The host root is the guest's root (read-only 9p, chroot), so every host tool is there; /tmp,
/run and /var/tmp are fresh tmpfs; the checkout is mounted at its own path even under /tmp.
"""
import json
import os
import re
import secrets
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .arch import ARM64, X86_64, GuestArch, get_arch
from .initramfs import build_initramfs
from .kernel import GuestError, cache_root, prepare_kernel

REPO = Path(__file__).resolve().parents[2]
QEMU = X86_64.qemu
XFER_IN_GUEST = "/run/gtk"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CMDLINE = X86_64.cmdline()


@dataclass
class GuestResult:
    status: int | None          # the command's exit status; None if it never reported one
    output: str                 # what the command printed (console between the markers)
    boot_seconds: float | None  # qemu start -> command start
    total_seconds: float = 0.0
    console: str = ""           # everything on the serial console
    error: str | None = None    # why there is no status (boot failure, timeout, ...)
    accel: str = ""
    kernel: str = ""
    qemu_stderr: str = ""
    files: dict = field(default_factory=dict)

    arch: str = "x86_64"
    stalled: str | None = None  # why the watchdog ended a guest whose heartbeat stopped

    def __iter__(self):
        return iter((self.status, self.output, self.boot_seconds))

    @property
    def ok(self) -> bool:
        return self.status == 0


# ---------------------------------------------------------------- pure parts

def marker_re(kind: str, nonce: str) -> re.Pattern:
    return re.compile(r"@@GTK-GUEST-" + kind + " " + re.escape(nonce) + r"(?: (\d+))?@@")


_FAIL_RE = re.compile(r"@@GTK-GUEST-FAIL (.*?)@@")


def parse_console(text: str, nonce: str) -> dict:
    """Split a console transcript: command output, exit status, failure reason.

    Only markers carrying this run's nonce count, so a command printing marker-like text
    cannot fake its status.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    begin = marker_re("BEGIN", nonce).search(text)
    exit_ = None
    for exit_ in marker_re("EXIT", nonce).finditer(text, begin.end() if begin else 0):
        pass  # the last one wins (there is only one unless output imitates it)
    fail = None if begin else _FAIL_RE.search(text)
    out = ""
    if begin:
        start = begin.end() + (1 if text[begin.end():begin.end() + 1] == "\n" else 0)
        out = text[start:exit_.start() if exit_ else len(text)]
    return {
        "begun": bool(begin),
        "status": int(exit_.group(1)) if exit_ else None,
        "output": out,
        "fail": fail.group(1) if fail else None,
    }


def held_back(buf: str, prefix: str) -> int:
    """Where a possibly incomplete exit marker starts at the end of buf (len(buf) if none).

    Streamed output stops there until more console text shows whether it is the marker.
    """
    for p in range(max(0, len(buf) - len(prefix) - 12), len(buf)):
        tail = buf[p:]
        if prefix.startswith(tail) or tail.startswith(prefix):
            return p
    return len(buf)


SHADOWED = ("/tmp", "/run", "/var/tmp", "/dev", "/proc", "/sys")  # fresh mounts in the guest


def visible_in_guest(path: Path) -> bool:
    """Whether a host path is seen through the root share (not hidden by a guest mount)."""
    p = str(path)
    return not any(p == s or p.startswith(s + "/") for s in SHADOWED)


def run_env(nonce: str, repo: Path | None, kernel) -> str:
    """/run/gtk/run.env, sourced by /init: nonce, checkout, module tree, header links.

    A guest with its own root (arm64) has the modules and the headers' links in it already."""
    host_mods = Path("/lib/modules") / kernel.version
    links = {"build": "", "source": ""}
    own_root = getattr(kernel, "guest_root", None) is not None
    for name in ("build", "source"):
        link = host_mods / name
        if not own_root and link.is_symlink():
            links[name] = os.readlink(link)
    moddir = str(kernel.modules) if not own_root and visible_in_guest(kernel.modules.resolve()) \
        else ""
    values = {"GTK_NONCE": nonce, "GTK_REPO": str(repo) if repo else "", "GTK_MODDIR": moddir,
              "GTK_BUILD": links["build"], "GTK_SOURCE": links["source"]}
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def guest_env(extra: dict | None = None, arch: GuestArch = X86_64) -> dict:
    env = {
        "GDB_TOOLKIT_GUEST_ARCH": arch.name,
        "PATH": GUEST_PATH, "HOME": "/tmp/home", "TMPDIR": "/tmp", "XDG_CACHE_HOME": "/tmp/.cache",
        "LANG": "C.UTF-8", "TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "GDB_TOOLKIT_IN_GUEST": "1", "GDB_TOOLKIT_GUEST_XFER": XFER_IN_GUEST,
    }
    env.update(extra or {})
    return env


def command_script(argv: list[str], cwd: str, env: dict, interactive: bool = False,
                   console: str = X86_64.console) -> str:
    """/run/gtk/cmd.sh: run argv in cwd with exactly env.

    stdin is /dev/null; interactive: the serial port, as the controlling terminal.
    """
    assigns = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    dirs = " ".join(shlex.quote(env[k]) for k in ("HOME", "TMPDIR", "XDG_CACHE_HOME") if k in env)
    run = f"/usr/bin/env -i {assigns} {' '.join(shlex.quote(a) for a in argv)}"
    tty = f"/dev/{console}"
    run = (f"setsid -w -c {run} <{tty} >{tty} 2>&1" if interactive
           else f"{run} </dev/null 2>&1")
    return ((f"mkdir -p {dirs}\n" if dirs else "") +
            f"cd {shlex.quote(cwd)} 2>/dev/null || cd /\n"
            f"exec {run}\n")


def qemu_argv(vmlinuz: Path, initrd: Path, xfer: Path, repo: Path | None, accel: str,
              memory: str = "4G", smp: int = 2, interactive: bool = False,
              arch: GuestArch = X86_64, root: Path | None = None) -> list[str]:
    """qemu's command line.  *root*: the directory shared as the guest's / (the host's / if
    None).  9p shares are virtio-9p-pci devices on both architectures."""
    # interactive: Ctrl-C goes to the guest instead of killing qemu
    argv = [arch.qemu, "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
            "-chardev", f"stdio,id=con,signal={'off' if interactive else 'on'}",
            "-serial", "chardev:con", "-m", memory, "-smp", str(smp)]
    argv += [a for k, v in arch.machine if k != "-cpu" for a in (k, v)]
    if accel == "kvm":
        argv += ["-accel", "kvm", "-cpu", "host"]
    else:
        argv += ["-accel", arch.tcg_accel(), "-cpu", arch.cpu()]
    argv += ["-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", arch.cmdline()]
    shares = [("host", str(root or "/"), True), ("xfer", str(xfer), False)]
    if repo is not None:
        shares.append(("repo", str(repo), True))
    for i, (tag, path, ro) in enumerate(shares):
        argv += ["-fsdev", f"local,id=fs{i},path={path},security_model=none,multidevs=remap"
                           + (",readonly=on" if ro else ""),
                 "-device", f"virtio-9p-pci,fsdev=fs{i},mount_tag={tag}"]
    return argv


ACCELS = ("auto", "tcg", "kvm")
KVM_BOOT_TIMEOUT = 30.0   # a KVM trial that has not started the command by then is abandoned
TCG_BOOT_TIMEOUT = 300.0
EXIT_GRACE = 30.0         # after the exit marker, qemu gets this long to power off, then is killed
STALL_SECONDS = 180.0     # no heartbeat from the guest's /init for this long: its kernel is hung
STALL_ENV = "GDB_TOOLKIT_GUEST_STALL"     # seconds; 0 turns the watchdog off
NMI_GRACE = 30.0          # after the watchdog's NMI: time for the panic to reach the console


def stall_limit() -> float:
    value = os.environ.get(STALL_ENV)
    try:
        return float(value) if value else STALL_SECONDS
    except ValueError:
        raise GuestError(f"{STALL_ENV}={value!r}: give seconds (0: no watchdog)") from None


def heartbeat_silence(heartbeat: Path, since: float, busy_until: float, now: float) -> float:
    """Seconds the guest has shown no life: since its heartbeat file last changed, the command
    started (*since*) or the host's last service ended (*busy_until*; a memory dump or a
    gdbstub session halts the VM), whichever is latest.  0 while a service runs (inf)."""
    try:
        beat = heartbeat.stat().st_mtime
    except OSError:
        beat = 0.0
    return max(0.0, now - max(beat, since, busy_until))


def requested_accel(requested: str | None = None) -> str:
    requested = (requested or os.environ.get("GDB_TOOLKIT_GUEST_ACCEL") or "auto").lower()
    if requested not in ACCELS:
        raise GuestError(f"accelerator {requested!r}: use one of {', '.join(ACCELS)}")
    return requested


def kvm_verdict_key() -> str:
    """KVM's usability depends on the host kernel and the qemu binary."""
    qemu = shutil.which(QEMU) or QEMU
    try:
        st = os.stat(qemu)
        qid = f"{st.st_size}-{int(st.st_mtime)}"
    except OSError:
        qid = "?"
    return f"{os.uname().release}|{qid}"


def plan_accels(requested: str, kvm_accessible: bool, verdict: str | None,
                kvm_possible: bool = True) -> list[str]:
    """Accelerators to try in order.

    auto: KVM first only if /dev/kvm is usable and KVM was not seen to fail on this host
    before (it hangs under some nested hypervisors), then TCG.  A guest of another
    architecture (*kvm_possible* False: arm64 on x86_64) runs under TCG whatever is asked.
    """
    if not kvm_possible:
        return ["tcg"]
    if requested == "tcg":
        return ["tcg"]
    if requested == "kvm":
        return ["kvm"]
    if kvm_accessible and verdict != "bad":
        return ["kvm", "tcg"]
    return ["tcg"]


def _verdict_file() -> Path:
    return cache_root() / "kvm-verdict.json"


def read_kvm_verdict() -> str | None:
    try:
        return json.loads(_verdict_file().read_text()).get(kvm_verdict_key())
    except (OSError, ValueError, AttributeError):
        return None


def write_kvm_verdict(verdict: str):
    try:
        data = json.loads(_verdict_file().read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[kvm_verdict_key()] = verdict
    try:
        _verdict_file().parent.mkdir(parents=True, exist_ok=True)
        tmp = _verdict_file().with_suffix(f".{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, _verdict_file())
    except OSError:
        pass


# ---------------------------------------------------------------- running

def _kill(proc: subprocess.Popen):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_in_guest(argv: list[str], timeout: float = 600, env: dict | None = None,
                 cwd: str | None = None, repo: Path | None = REPO, accel: str | None = None,
                 xfer: Path | None = None, stream=None, boot_stream=None,
                 log=lambda msg: None, memory: str | None = None, smp: int = 2,
                 interactive: bool = False, arch: GuestArch | str | None = None) -> GuestResult:
    """Boot the guest, run argv as root inside it, return its status and output.

    ``stream(text)`` receives the command's output as it arrives; ``boot_stream`` the console
    before the command starts.  ``xfer`` is a host directory shared writable at /run/gtk (a
    temporary one is used and removed if not given).  ``accel``: auto (default; KVM tried with
    a short boot timeout, then TCG), tcg or kvm.  ``interactive``: the command's stdio is the
    serial console, wired to this process's stdin (``python3 -m tests.guest shell``).
    ``arch``: x86_64 (default; the host's root) or arm64 (an assembled arm64 root, TCG).
    Raises GuestError only when the guest cannot be prepared; a failed boot or timeout is a
    result with ``status None`` and ``error``.
    """
    arch = arch if isinstance(arch, GuestArch) else get_arch(arch)
    if not shutil.which(arch.qemu):
        raise GuestError(f"{arch.qemu} not found: apt-get install {arch.qemu_package}")
    requested = requested_accel(accel)
    kernel = prepare_kernel(log=log, arch=arch)
    initrd = build_initramfs(kernel, log=log)
    if kernel.guest_root is not None and repo is not None:
        from .rootfs import mountpoint_for
        with_lock_mountpoint(kernel.guest_root, Path(repo), mountpoint_for)
    memory = memory or os.environ.get(arch.mem_env, arch.default_memory)
    plan = plan_accels(requested, os.access("/dev/kvm", os.R_OK | os.W_OK),
                       read_kvm_verdict() if requested == "auto" else None,
                       kvm_possible=arch.kvm_possible)
    own_xfer = xfer is None
    xfer = Path(tempfile.mkdtemp(prefix="gtk-guest-")) if own_xfer else Path(xfer)
    xfer.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    try:
        for i, acc in enumerate(plan):
            last = i == len(plan) - 1
            left = timeout - (time.monotonic() - t_start)
            boot_limit = KVM_BOOT_TIMEOUT if (acc == "kvm" and not last) else TCG_BOOT_TIMEOUT
            res = _boot_once(argv, left, min(boot_limit, left), env, cwd, repo, acc, xfer,
                             stream, boot_stream, log, memory, smp, kernel, initrd, interactive)
            if requested == "auto" and acc == "kvm" and arch.kvm_possible:
                write_kvm_verdict("good" if res.boot_seconds is not None else "bad")
            if res.boot_seconds is not None or last:
                res.total_seconds = time.monotonic() - t_start
                return res
            log(f"guest: KVM did not boot ({res.error}); falling back to TCG")
    finally:
        if own_xfer:
            shutil.rmtree(xfer, ignore_errors=True)
    raise AssertionError("unreachable")


def with_lock_mountpoint(root: Path, repo: Path, make):
    """The checkout's mount point inside the read-only arm64 root (made on the host, under the
    cache lock: the root is shared between runs)."""
    from .kernel import cache_lock
    with cache_lock(cache_root()):
        make(root, repo)


def _boot_once(argv, timeout, boot_timeout, env, cwd, repo, accel, xfer, stream, boot_stream,
               log, memory, smp, kernel, initrd, interactive=False) -> GuestResult:
    nonce = secrets.token_hex(8)
    watchdog = stall_limit()
    cwd = cwd or os.getcwd()
    (xfer / "run.env").write_text(run_env(nonce, repo, kernel))
    if interactive:
        env = {"TERM": os.environ.get("TERM", "linux"), **(env or {})}
    arch = getattr(kernel, "arch", X86_64)
    (xfer / "cmd.sh").write_text(command_script(list(argv), cwd, guest_env(env, arch), interactive,
                                                console=arch.console))
    for stale in ("status", "results.jsonl", "heartbeat"):
        (xfer / stale).unlink(missing_ok=True)
    qargv = qemu_argv(kernel.vmlinuz, initrd, xfer, repo, accel, memory=memory, smp=smp,
                      interactive=interactive, arch=arch, root=getattr(kernel, "guest_root", None))
    from .host_services import HostServices     # dumps and gdbstub sessions the guest asks for
    services = HostServices(xfer)
    qargv += services.qemu_args()
    errfile = tempfile.TemporaryFile()
    t0 = time.monotonic()
    proc = subprocess.Popen(qargv, stdin=None if interactive else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=errfile,
                            start_new_session=not interactive)
    services.start()
    begin_wall, next_check, stalled, stalled_at = None, 0.0, None, None
    begin_re = marker_re("BEGIN", nonce)
    exit_re = marker_re("EXIT", nonce)
    exit_prefix = f"@@GTK-GUEST-EXIT {nonce} "
    chunks, boot_seconds, timed_out, finished = [], None, None, False
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = ""        # console text not yet handed to a stream
    fresh = False
    tail = ""       # the console's last few KiB, to see the exit marker without a stream
    exited_at = None
    lingered = False
    try:
        while True:
            now = time.monotonic() - t0
            if exited_at is not None and time.monotonic() - exited_at >= EXIT_GRACE:
                lingered = True     # status is in; a stuck poweroff must not eat the timeout
                break
            if boot_seconds is None and now >= boot_timeout:
                timed_out = f"guest did not start the command within {boot_timeout:.0f} s ({accel})"
                break
            left = timeout - now
            if left <= 0:
                timed_out = f"guest timed out after {timeout:.0f} s"
                break
            if stalled_at is not None and time.monotonic() - stalled_at >= NMI_GRACE:
                timed_out = stalled
                break
            if (watchdog and begin_wall is not None and exited_at is None and stalled is None
                    and time.monotonic() >= next_check):
                next_check = time.monotonic() + 1.0
                silent = heartbeat_silence(xfer / "heartbeat", begin_wall, services.busy_until,
                                           time.time())
                if silent >= watchdog:
                    why = services.inject_nmi()
                    stalled = (f"guest stalled: no heartbeat for {silent:.0f} s (its kernel "
                               "stopped scheduling); " + (f"no NMI sent ({why})" if why else
                                                         "an NMI asked it for its backtraces"))
                    stalled_at = time.monotonic()
                    log(f"guest: {stalled}")
            if not sel.select(min(left, 0.5)):
                if proc.poll() is not None:
                    break
                continue
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                break
            text = data.decode("utf-8", "replace")
            chunks.append(text)
            buf += text.replace("\r", "")
            tail = (tail + text.replace("\r", ""))[-4096:]
            if boot_seconds is None:
                m = begin_re.search(buf)
                if m:
                    boot_seconds = time.monotonic() - t0
                    begin_wall = time.time()
                    if boot_stream:
                        boot_stream(buf[:m.start()])
                    buf = buf[m.end():]
                    fresh = True     # the marker's own newline may still be on its way
                    log(f"guest: booted {kernel.version} in {boot_seconds:.1f} s ({accel})")
                elif "\n" in buf:
                    head, _, buf = buf.rpartition("\n")
                    if boot_stream:
                        boot_stream(head + "\n")
            if boot_seconds is not None and fresh and buf:
                buf, fresh = (buf[1:] if buf[0] == "\n" else buf), False
            if boot_seconds is not None and stream:
                # hold back a possible partial marker at the end
                m = exit_re.search(buf)
                if m:
                    stream(buf[:m.start()])
                    buf = ""
                    stream = None
                else:
                    cut = held_back(buf, exit_prefix)
                    stream(buf[:cut])
                    buf = buf[cut:]
            if exited_at is None and boot_seconds is not None and exit_re.search(tail):
                exited_at = time.monotonic()
        finished = True
    finally:
        services.stop()
        sel.close()
        if timed_out or lingered or not finished:   # also on KeyboardInterrupt and errors
            _kill(proc)
        else:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _kill(proc)
        proc.stdout.close()
    total = time.monotonic() - t0
    errfile.seek(0)
    qemu_err = errfile.read().decode("utf-8", "replace")
    errfile.close()
    console = "".join(chunks)
    parsed = parse_console(console, nonce)
    status = parsed["status"]
    if status is None and (xfer / "status").is_file():
        try:
            status = int((xfer / "status").read_text().strip())
        except ValueError:
            pass
    error = None
    if status is None:
        if timed_out or stalled:
            error = timed_out or stalled
        elif parsed["fail"]:
            error = f"guest init failed: {parsed['fail']}"
        else:
            error = f"guest exited (qemu status {proc.returncode}) without reporting a status"
        if qemu_err.strip():
            error += f"; qemu: {qemu_err.strip().splitlines()[-1]}"
    files = {}
    for p in xfer.iterdir():
        if p.is_file() and p.name not in ("run.env", "cmd.sh") and p.stat().st_size < 16 << 20:
            files[p.name] = p.read_bytes()
    return GuestResult(status=status, output=parsed["output"], boot_seconds=boot_seconds,
                       total_seconds=total, console=console, error=error, accel=accel,
                       kernel=kernel.version, qemu_stderr=qemu_err, files=files, arch=arch.name,
                       stalled=stalled)
