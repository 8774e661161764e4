"""Gather the host facts the doctor judges (the only impure part of the doctor)."""
import os
import sys

from gdb_toolkit.common.deps import version_of
from gdb_toolkit.common.record import field, record
from gdb_toolkit.loader import interpreter_path

#: = kernel.kprobe_text.TRACEFS_DIRS, spelt here: importing the kernel package and its kprobe
#: parsers for this constant was ~0.7 ms of the doctor's first call (tests/unit/test_doctor_checks.py
#: checks the two agree)
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@record
class HostFacts:
    gdb_version: str | None
    python_version: str
    python_executable: str
    deps: dict[str, str | None]            # module -> version or None
    euid: int
    ptrace_scope: int | None               # None: no Yama
    kcore: str                              # 'readable', 'absent', 'denied: ...'
    kallsyms: str                           # 'visible', 'zeroed', 'absent'
    btf: bool
    tracefs: str | None                     # mounted tracefs dir, or None
    tracefs_mountable: bool                 # tracefs listed in /proc/filesystems
    kprobe_events: bool                     # tracefs has kprobe_events
    kprobe_pmu: bool                        # /sys/bus/event_source/devices/kprobe
    kprobes_list: bool                      # debugfs kprobes/list readable
    kernel_config_kprobes: str | None       # 'y', 'n' or None (config not visible)
    lockdown: str | None
    valgrind: str | None                    # version or None
    vgdb: str | None                        # path or None
    bcc_compile: str | None                 # None ok, else the error (or "not checked")
    kernel_release: str = field(default_factory=lambda: os.uname().release)
    kernel_headers: str | None = None       # headers bcc compiles against (see ktrace.kheaders)
    kernel_headers_note: str = ""           # why they are not the running kernel's own
    cap_sys_ptrace: bool | None = None      # CAP_SYS_PTRACE in CapEff (None: unknown)


def _read(path: str, limit: int = 4096) -> str | None:
    try:
        with open(path) as f:
            return f.read(limit)
    except OSError:
        return None


def probe_kcore(path: str = "/proc/kcore") -> str:
    if not os.path.exists(path):
        return "absent"
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        return f"denied: {exc.strerror}"
    return "readable" if magic == b"\x7fELF" else "denied: not an ELF file"


def probe_kallsyms(path: str = "/proc/kallsyms") -> str:
    text = _read(path, 8192)
    if text is None:
        return "absent"
    addrs = [line.split(" ", 1)[0] for line in text.splitlines()[:50] if line]
    return "zeroed" if addrs and all(int(a, 16) == 0 for a in addrs) else "visible"


def probe_capability(bit: int, status_path: str = "/proc/self/status") -> bool | None:
    """Whether capability *bit* is in this process's effective set (None: unknown)."""
    for line in (_read(status_path, 1 << 14) or "").splitlines():
        if line.startswith("CapEff:"):
            try:
                return bool(int(line.split()[1], 16) >> bit & 1)
            except (IndexError, ValueError):
                return None
    return None


def read_gzip_text(path: str) -> str | None:
    """``gzip.open(path, "rt").read()`` (every member, zero padding between them skipped), or
    None where gzip would raise OSError (unreadable, not gzip, a bad CRC), through zlib: the
    gzip module costs ~1.5 ms of the doctor's first call.  tests/unit/test_doctor_checks.py
    compares the two."""
    import zlib         # loaded with gdb's Python already

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    out = []
    try:
        while raw:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(d.decompress(raw))
            if not d.eof:           # truncated: gzip's own error (not an OSError), as before
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            raw = d.unused_data.lstrip(b"\0")
    except zlib.error:
        return None
    # text mode: the locale's encoding (UTF-8 here, as gdb runs Python), universal newlines
    return b"".join(out).decode().replace("\r\n", "\n").replace("\r", "\n")


def probe_kernel_config(option: str) -> str | None:
    release = os.uname().release
    sources = [f"/boot/config-{release}"]
    for src in sources:
        text = _read(src, 1 << 22)
        if text is not None:
            break
    else:
        text = read_gzip_text("/proc/config.gz")
        if text is None:
            return None
    for line in text.splitlines():
        if line.startswith(option + "="):
            return line.split("=", 1)[1]
        if line == f"# {option} is not set":
            return "n"
    return "n"


def probe_valgrind() -> tuple[str | None, str | None]:
    from gdb_toolkit.common.helper_process import helper_env, run_helper, safe_path_value, which

    search = safe_path_value(os.environ.get("PATH"))     # no relative PATH entries (cwd)
    vg = which("valgrind", path=search)
    version = None
    if vg:
        try:
            res = run_helper([vg, "--version"], timeout=10, env=helper_env(), max_output=4096)
            version = res.stdout.strip().removeprefix("valgrind-") if res.ok else None
        except OSError:
            version = None
    return version, which("vgdb", path=search)


BCC_PROBE = """
import sys
import bcc
print(getattr(bcc, "__version__", "unknown"), flush=True)
if sys.argv[1] == "compile":
    bcc.BPF(text="int gtk_doctor(void *ctx) { return 0; }", cflags=sys.argv[2:])
"""


def probe_bcc(compile_it: bool, python: str = "/usr/bin/python3", timeout: int = 60,
              env: dict | None = None, cflags: list | None = None) -> tuple[str | None, str | None]:
    """(bcc version or None, compile error or None) -- in a separate process,
    because bcc must never be loaded into gdb itself.  *env*/*cflags* select the
    kernel headers the way ktrace does (gdb_toolkit.ktrace.kheaders).

    The probe runs isolated (issue 11): ``python3 -I`` (no cwd on sys.path, PYTHON* ignored),
    from ``/``, with an allow-listed environment plus *env*: a ``sys.py`` or ``bcc.py`` planted
    in the directory gdb was started from is never imported as root."""
    from gdb_toolkit.common.helper_process import helper_env, python_argv, run_helper

    if not os.path.exists(python):
        return None, f"{python} not found"
    argv = python_argv(code=BCC_PROBE, python=python,
                       args=["compile" if compile_it else "import", *(cflags or [])])
    try:
        proc = run_helper(argv, timeout=timeout, env=helper_env(set=env or {}), max_output=1 << 16)
    except OSError as exc:
        return None, f"cannot run {python}: {exc.strerror or exc}"
    if proc.timed_out:
        return None, f"compiling a test program took over {timeout}s"
    version = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else None
    if proc.returncode == 0:
        return version, None if compile_it else "not checked (--quick)"
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return version, lines[-1] if lines else f"exit status {proc.returncode}"


def gather(gdb_version: str | None = None, compile_bcc: bool = True) -> HostFacts:
    tracefs = next((d for d in TRACEFS_DIRS if os.path.exists(os.path.join(d, "trace"))), None)
    scope = _read("/proc/sys/kernel/yama/ptrace_scope")
    lockdown = _read("/sys/kernel/security/lockdown")
    vg_version, vgdb = probe_valgrind()
    deps = {m: version_of(m) for m in ("elftools", "capstone", "tabulate")}
    release = os.uname().release
    headers = headers_choice(release)
    deps["bcc"], bcc_error = probe_bcc(compile_bcc, env=headers.env if headers else None,
                                       cflags=headers.cflags if headers else None)
    return HostFacts(
        gdb_version=gdb_version,
        python_version=sys.version.split()[0],   # = platform.python_version()
        python_executable=interpreter_path(),
        deps=deps,
        euid=os.geteuid(),
        ptrace_scope=int(scope) if scope and scope.strip().isdigit() else None,
        kcore=probe_kcore(),
        kallsyms=probe_kallsyms(),
        btf=os.path.exists("/sys/kernel/btf/vmlinux"),
        tracefs=tracefs,
        tracefs_mountable="tracefs" in (_read("/proc/filesystems", 1 << 16) or ""),
        kprobe_events=bool(tracefs and os.path.exists(os.path.join(tracefs, "kprobe_events"))),
        kprobe_pmu=os.path.exists("/sys/bus/event_source/devices/kprobe"),
        kprobes_list=os.access("/sys/kernel/debug/kprobes/list", os.R_OK),
        kernel_config_kprobes=probe_kernel_config("CONFIG_KPROBES"),
        lockdown=lockdown.strip() if lockdown else None,
        valgrind=vg_version,
        vgdb=vgdb,
        bcc_compile=bcc_error,
        kernel_release=release,
        kernel_headers=headers.path if headers else None,
        kernel_headers_note=headers.note if headers else "",
        cap_sys_ptrace=probe_capability(19),      # CAP_SYS_PTRACE
    )


def headers_choice(release: str):
    """The kernel headers ktrace would compile against, or None."""
    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.ktrace.kheaders import choose

    try:
        return choose(release)
    except ToolkitError:
        return None

