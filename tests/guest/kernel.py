"""Debian's own kernel for the guest: which version, where it is cached, how it is fetched.

x86_64: the kernel package (``linux-image-<version>``, the dependency of the ``linux-image-amd64``
metapackage) is fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a cache
directory -- never installed into the host's /boot.  The matching ``linux-headers-<version>`` IS
installed on the host, because bcc inside the guest runs on the host's (read-only) root and needs
``/lib/modules/<version>/build``.

arm64: the dependency of ``linux-image-arm64:arm64`` and its headers are part of the arm64 root
assembled by rootfs.py; ``prepare_kernel(ARM64)`` returns that root as the kernel's tree.

x86_64-new: Debian's newer kernel (the dependency of ``linux-image-amd64`` in bookworm-backports,
e.g. ``6.12.95+deb12-amd64``), resolved and downloaded through a private apt state in
``<cache>/apt-bookworm-backports/`` (its own sources.list, lists and archives: the host's apt
sources are never changed, nothing is installed), unpacked like the x86_64 one.  No headers are
installed for it (bcc/ktrace are not in its test set).
"""
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .arch import ARM64, X86_64, GuestArch

METAPACKAGE = X86_64.metapackage


class GuestError(RuntimeError):
    """The guest cannot be prepared or booted; the message says why."""


def cache_root() -> Path:
    """Where kernels and initramfs images are kept between runs (never /tmp)."""
    env = os.environ.get("GDB_TOOLKIT_GUEST_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/gdb_toolkit/guest")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gdb_toolkit" / "guest"


# ---------------------------------------------------------------- pure parts

def _dep_re(deb_arch: str) -> re.Pattern:
    return re.compile(r"^\s*\|?Depends:\s*linux-image-(\d[\w.+~-]*?-" + deb_arch +
                      r")(?:-unsigned)?(?::" + deb_arch + r")?\s*$", re.M)


# 6.1.0-56-amd64 (Debian 12's ABI naming) and 6.12.95+deb12-amd64 (backports, Debian 13's)
_VER_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-(\d+))?(?:\+deb(\d+))?-[a-z0-9]+$")


def parse_depends(text: str, arch: GuestArch = X86_64) -> list[str]:
    """Kernel versions (e.g. ``6.1.0-56-amd64``) named by ``apt-cache depends linux-image-amd64``
    (arm64: ``6.1.0-57-arm64`` from ``apt-cache depends linux-image-arm64:arm64``)."""
    seen = []
    for v in _dep_re(arch.deb_arch).findall(text):
        if v not in seen:
            seen.append(v)
    return seen


def version_key(version: str) -> tuple:
    """Sort key for ``6.1.0-56-amd64`` / ``6.12.95+deb12-amd64`` versions (unknown shapes sort
    first)."""
    m = _VER_RE.match(version)
    return tuple(int(x or 0) for x in m.groups()) if m else (-1,)


def choose_version(apt_versions: list[str], cached_versions: list[str],
                   override: str | None = None) -> str | None:
    """The kernel to boot: an explicit override, else apt's current one, else the newest cached."""
    if override:
        return override
    if apt_versions:
        return max(apt_versions, key=version_key)
    if cached_versions:
        return max(cached_versions, key=version_key)
    return None


# ---------------------------------------------------------------- side effects

@dataclass
class Kernel:
    version: str
    root: Path  # the dpkg -x tree
    arch: GuestArch = X86_64
    guest_root: Path | None = None   # the guest's / (None: the host's own root)

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.version


TOOL_TIMEOUT = float(os.environ.get("GDB_TOOLKIT_GUEST_PREP_TIMEOUT", "900"))
LOCK_TIMEOUT = TOOL_TIMEOUT + 300     # another run may be preparing (downloading) under the lock


def _run(argv: list[str], timeout: float | None = None, **kw) -> subprocess.CompletedProcess:
    """Run a preparation tool (apt-get, dpkg, depmod): never longer than *timeout* seconds, so a
    stalled mirror or lock cannot hang CI; GuestError on expiry."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
    timeout = TOOL_TIMEOUT if timeout is None else timeout
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise GuestError(f"`{' '.join(argv[:3])}` did not finish within {timeout:.0f} s "
                         "(network or package lock?); set GDB_TOOLKIT_GUEST_PREP_TIMEOUT to wait "
                         "longer") from None


@contextlib.contextmanager
def cache_lock(root: Path, timeout: float | None = None):
    """Serialise preparation between concurrent runs (several engineers, several pytest runs).
    Waits at most *timeout* seconds for a run holding it; GuestError after that."""
    root.mkdir(parents=True, exist_ok=True)
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    with open(root / ".lock", "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GuestError(f"another run held the guest cache lock {root / '.lock'} for "
                                     f"over {timeout:.0f} s; is a stale preparation still running?"
                                     ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


SUITE_FILE = "suite"    # <cache>/<version>/suite: the Debian suite it came from (none: the host's)


def cached_versions(root: Path, suite: str = "") -> list[str]:
    """Unpacked kernels in the cache that came from *suite* ("": the host's apt sources)."""
    if not root.is_dir():
        return []

    def origin(p: Path) -> str:
        try:
            return (p / SUITE_FILE).read_text().strip()
        except OSError:
            return ""
    return sorted((p.name for p in root.iterdir()
                   if (p / "tree" / "boot" / f"vmlinuz-{p.name}").is_file()
                   and origin(p) == suite), key=version_key)


DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def private_apt(suite: str, root: Path) -> list[str]:
    """apt options for a private apt state in ``root/apt-<suite>`` holding only *suite*: its own
    sources.list, lists and archive cache (the host's sources and lists stay untouched).  apt's
    download sandbox user stays root: _apt cannot write into a root-only cache directory."""
    d = root / f"apt-{suite}"
    for sub in ("lists/partial", "cache/archives/partial"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    sources = d / "sources.list"
    line = f"deb [signed-by={DEBIAN_KEYRING}] http://deb.debian.org/debian {suite} main\n"
    if not sources.is_file() or sources.read_text() != line:
        sources.write_text(line)
    return ["-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={d / 'lists'}", "-o", f"Dir::Cache={d / 'cache'}",
            "-o", "APT::Sandbox::User=root"]


def _suite_update(opts: list[str], suite: str):
    proc = _run(["apt-get", *opts, "update", "-q"])
    if proc.returncode != 0 or "Err:" in proc.stdout:
        raise GuestError(f"cannot fetch Debian's {suite} package lists (apt-get update with a "
                         f"private apt state: {(proc.stderr or proc.stdout).strip()[-300:]}); "
                         "the newer-kernel guest needs http://deb.debian.org reachable once "
                         "(later runs use the cached kernel)")


def suite_versions(arch: GuestArch, root: Path) -> list[str]:
    """Kernel versions named by *arch.kernel_suite*'s ``linux-image-amd64`` (private apt state;
    its lists are refreshed when they name none, e.g. on the first run)."""
    if not shutil.which("apt-cache") or not shutil.which("apt-get"):
        return []
    opts = private_apt(arch.kernel_suite, root)
    versions = parse_depends(_run(["apt-cache", *opts, "depends", arch.metapackage]).stdout, arch)
    if not versions:
        _suite_update(opts, arch.kernel_suite)
        versions = parse_depends(_run(["apt-cache", *opts, "depends", arch.metapackage]).stdout,
                                 arch)
    return versions


def apt_versions(arch: GuestArch = X86_64) -> list[str]:
    if not shutil.which("apt-cache"):
        return []
    meta = arch.metapackage if arch is X86_64 else f"{arch.metapackage}:{arch.deb_arch}"
    proc = _run(["apt-cache", "depends", meta])
    versions = parse_depends(proc.stdout, arch)
    if not versions and os.geteuid() == 0:
        if arch is not X86_64:
            ensure_foreign_arch(arch)
        _run(["apt-get", "update", "-q"])
        versions = parse_depends(_run(["apt-cache", "depends", meta]).stdout, arch)
    return versions


def ensure_foreign_arch(arch: GuestArch):
    """``dpkg --add-architecture`` so apt lists (and can download) the other architecture's
    packages; nothing is installed for it on the host."""
    proc = _run(["dpkg", "--print-foreign-architectures"])
    if arch.deb_arch in proc.stdout.split():
        return
    if os.geteuid() != 0:
        raise GuestError(f"apt does not know {arch.deb_arch} packages; run as root: "
                         f"dpkg --add-architecture {arch.deb_arch} && apt-get update")
    proc = _run(["dpkg", "--add-architecture", arch.deb_arch])
    if proc.returncode != 0:
        raise GuestError(f"dpkg --add-architecture {arch.deb_arch} failed: {proc.stderr.strip()}")


def _apt_get(argv: list[str], cwd: Path | None = None,
             opts: list[str] | None = None) -> subprocess.CompletedProcess:
    """apt-get *argv*, once more after ``apt-get update`` if it fails (as root, or always with
    a private apt state *opts*, which needs no root)."""
    opts = opts or []
    argv = argv[:1] + opts + argv[1:]
    proc = _run(argv, cwd=cwd)
    if proc.returncode != 0 and (opts or os.geteuid() == 0):
        _run(["apt-get", *opts, "update", "-q"])
        proc = _run(argv, cwd=cwd)
    return proc


def fetch_kernel(version: str, root: Path, log=print, arch: GuestArch = X86_64) -> Kernel:
    """apt-get download + dpkg -x into ``root/<version>/tree`` (atomic; call under cache_lock).
    A kernel from another suite (x86_64-new) is downloaded through the private apt state."""
    dest = root / version
    tree = dest / "tree"
    kernel = Kernel(version, tree, arch)
    if kernel.vmlinuz.is_file():
        return kernel
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise GuestError("apt-get/dpkg not found: cannot fetch Debian's kernel package")
    dest.mkdir(parents=True, exist_ok=True)
    opts = private_apt(arch.kernel_suite, root) if arch.kernel_suite else None
    if arch.kernel_suite:
        (dest / SUITE_FILE).write_text(arch.kernel_suite + "\n")
    work = Path(tempfile.mkdtemp(prefix="fetch-", dir=dest))
    try:
        where = f" from {arch.kernel_suite}" if arch.kernel_suite else ""
        log(f"guest: downloading linux-image-{version}{where} (apt-get download)")
        proc = _apt_get(["apt-get", "download", "-q", f"linux-image-{version}"], cwd=work,
                        opts=opts)
        debs = list(work.glob("linux-image-*.deb"))
        if proc.returncode != 0 or not debs:
            raise GuestError(f"apt-get download linux-image-{version} failed: "
                             f"{(proc.stderr or proc.stdout).strip()[-400:]}")
        unpack = work / "tree"
        proc = _run(["dpkg", "-x", str(debs[0]), str(unpack)])
        if proc.returncode != 0:
            raise GuestError(f"dpkg -x failed: {proc.stderr.strip()[-400:]}")
        if not (unpack / "boot" / f"vmlinuz-{version}").is_file():
            raise GuestError(f"{debs[0].name} holds no boot/vmlinuz-{version}")
        if tree.exists():
            shutil.rmtree(tree)
        unpack.rename(tree)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return kernel


def ensure_depmod(kernel: Kernel):
    """modules.dep for the unpacked tree (dpkg -x skips the postinst that makes it), so that
    modprobe works in the guest. Best effort: only tests loading extra modules need it."""
    if (kernel.modules / "modules.dep").is_file():
        return
    depmod = shutil.which("depmod") or ("/sbin/depmod" if Path("/sbin/depmod").exists() else None)
    if depmod:
        _run([depmod, "-b", str(kernel.root), kernel.version])


def ensure_headers(version: str, log=print) -> str | None:
    """Install linux-headers-<version> on the host if /lib/modules/<version>/build is missing.

    Returns None when the headers are present, else a one-line reason (not fatal: only bcc
    needs them).
    """
    if Path(f"/lib/modules/{version}/build").exists():
        return None
    if os.geteuid() != 0:
        return f"/lib/modules/{version}/build missing; run: sudo apt-get install linux-headers-{version}"
    log(f"guest: installing linux-headers-{version} on the host (for bcc)")
    proc = _apt_get(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                     f"linux-headers-{version}"])
    if proc.returncode != 0:
        return f"apt-get install linux-headers-{version} failed: {proc.stderr.strip()[-300:]}"
    return None


def prepare_kernel(log=print, arch: GuestArch = X86_64) -> Kernel:
    """The kernel to boot, fetched and unpacked if needed (headers installed as a side effect).

    arm64: the assembled arm64 root, which holds the kernel package, modules and headers."""
    if arch is ARM64:
        from .rootfs import prepare_root
        return prepare_root(log=log)
    root = cache_root()
    with cache_lock(root):
        override = os.environ.get(arch.kernel_env)
        if arch.kernel_suite:
            cached = cached_versions(root, arch.kernel_suite)
            try:
                listed = [] if override else suite_versions(arch, root)
            except GuestError:
                if not cached:
                    raise
                listed = []             # offline: the newest cached one from that suite
            version = choose_version(listed, cached, override)
            where = f"{arch.kernel_suite}'s"
        else:
            version = choose_version(apt_versions(), cached_versions(root), override)
            where = "the host's apt sources'"
        if not version:
            raise GuestError(f"cannot tell which kernel to boot: {where} `apt-cache depends "
                             f"{METAPACKAGE}` names none and nothing is cached in {root}; "
                             f"set {arch.kernel_env} to a version")
        kernel = fetch_kernel(version, root, log=log, arch=arch)
        ensure_depmod(kernel)
        if arch.kernel_suite:
            return kernel       # no host headers for it: bcc/ktrace are not in its test set
        problem = ensure_headers(version, log=log)
        if problem:
            log("guest: warning: " + problem)
        return kernel
