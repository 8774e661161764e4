"""The arm64 guest's root: assembled from Debian's arm64 ``.deb``s on the host, cached by versions.

Running debootstrap's second stage under TCG takes ~30 minutes, so nothing is installed under
emulation.  Instead, on the host:

1. apt resolves the package set (``PACKAGES`` + the Essential set + the kernel image and headers of
   the version ``linux-image-arm64:arm64`` depends on) for arm64 against an EMPTY dpkg status, so
   every dependency is listed even when the host has its amd64 twin (``--print-uris``).
2. The root is keyed by the sorted ``.deb`` file names (name_version_arch) and ``RECIPE``: the same
   versions give the same cached root (warm preparation: one apt resolution, ~2 s).
3. Cold: ``apt-get --download-only`` into a private archive dir, ``dpkg -x`` each, then the few
   things maintainer scripts would have done that the tests need (``fix_up``): alternatives
   (cc, awk, which, ...), /etc/passwd and /etc/group from base-passwd's masters, /etc/mtab,
   modules.dep (host depmod), Python bytecode for the stdlib (host python3, same 3.11), no device
   nodes (qemu's 9p server refuses to open them).  Built in a staging dir, renamed into place.

The guest mounts the root read-only over 9p (see initramfs.py); /lib/modules/<version>/build is
the package's own link to the unpacked headers, for bcc/bpftrace.
"""
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .arch import ARM64
from .kernel import (GuestError, Kernel, _run, apt_versions, cache_lock, cache_root,
                     choose_version, ensure_foreign_arch, version_key)

# Bump when fix_up or the package set's meaning changes: the cached roots are rebuilt.
RECIPE = "arm64-root-2"

# What the tests and the demo run inside: gdb + the toolkit's Python dependencies, pytest,
# a compiler for fixtures, the oracles (binutils, file, procps), tracing (bcc, bpftrace,
# bpftool), module tools, and busybox-static for the initramfs.
PACKAGES = [
    "gdb", "python3", "python3-pytest", "python3-capstone", "python3-pyelftools",
    "python3-tabulate", "python3-jsonschema",
    "gcc", "libc6-dev", "make", "binutils", "file", "procps", "util-linux", "mount", "kmod",
    "e2fsprogs", "libc6-dbg",
    "python3-bpfcc", "bpftrace", "bpftool",
    "busybox-static",
]
KEEP_ROOTS = 2          # the newest roots kept (a running guest may still use the previous one)


def arch_dir() -> Path:
    return cache_root() / ARM64.name


# ---------------------------------------------------------------- pure parts

@dataclass(frozen=True)
class Deb:
    url: str
    filename: str       # name_version_arch.deb
    size: int

    @property
    def package(self) -> str:
        return self.filename.split("_", 1)[0]


_URI_RE = re.compile(r"^'(?P<url>[^']+)' (?P<file>\S+\.deb) (?P<size>\d+) ", re.M)


def parse_print_uris(text: str) -> list[Deb]:
    """The packages ``apt-get --print-uris install`` would download, in its order."""
    return [Deb(m["url"], m["file"], int(m["size"])) for m in _URI_RE.finditer(text)]


def root_key(debs: list[Deb]) -> str:
    """The cache key: which exact package versions (and which recipe) built the root."""
    h = hashlib.sha256(RECIPE.encode())
    for name in sorted(d.filename for d in debs):
        h.update(b"\0" + name.encode())
    return h.hexdigest()[:16]


_ALT_RE = re.compile(r"--install\s+(\S+)\s+(\S+)\s+(\S+)\s+(-?\d+)")


def parse_alternatives(postinst: str) -> list[tuple[str, str, str, int]]:
    """``update-alternatives --install LINK NAME PATH PRIO`` calls with literal absolute paths
    in a maintainer script: (link, name, path, priority).  Lines joined at backslashes;
    anything built from shell variables is skipped."""
    text = re.sub(r"\\\n", " ", postinst)
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        if "update-alternatives" not in line:
            continue
        for m in _ALT_RE.finditer(line):
            link, name, path, prio = (x.strip("'\"") for x in m.groups())
            if link.startswith("/") and path.startswith("/") and "$" not in link + name + path:
                found.append((link, name, path, int(prio)))
    return found


def best_alternatives(entries) -> dict[str, tuple[str, str]]:
    """name -> (link, path) of the highest priority, as update-alternatives' auto mode picks."""
    best: dict[str, tuple[int, str, str]] = {}
    for link, name, path, prio in entries:
        if name not in best or prio > best[name][0]:
            best[name] = (prio, link, path)
    return {n: (link, path) for n, (_p, link, path) in best.items()}


def _inside(root: Path, path: str) -> Path:
    """*path* (absolute in the guest) as a path under *root*, never outside it: no '..', and no
    symlinked directory on the way leading out of the root (a package's link is followed as the
    guest would follow it, from the root)."""
    if ".." in Path(path).parts:
        raise GuestError(f"refusing path {path!r} with '..' while assembling the root")
    out = root / path.lstrip("/")
    real_root = root.resolve()
    parent = out.parent.resolve()
    if parent != real_root and real_root not in parent.parents:
        raise GuestError(f"refusing {path!r}: its directory leads out of the root ({parent})")
    return out


# ---------------------------------------------------------------- apt

def apt_options(state: Path) -> list[str]:
    """apt for arm64 only, against an empty dpkg status and a private cache, so the host's own
    packages neither satisfy nor disturb the resolution, and its lock is not taken."""
    (state / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    status = state / "status"
    if not status.exists():
        status.write_text("")
    return ["-o", f"APT::Architecture={ARM64.deb_arch}",
            "-o", f"APT::Architectures::={ARM64.deb_arch}",
            "-o", f"Dir::State::status={status}",
            "-o", f"Dir::Cache={state}",
            "-o", f"Dir::Cache::archives={state / 'archives'}",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Install-Recommends=false",
            "-o", "APT::Get::AllowUnauthenticated=false"]


def package_set(version: str) -> list[str]:
    return ["?essential", *PACKAGES, f"linux-image-{version}", f"linux-headers-{version}"]


def resolve(version: str, state: Path) -> list[Deb]:
    """Every .deb of the root for *version*, resolved by apt (no download)."""
    argv = ["apt-get", "-q", *apt_options(state), "--print-uris", "-y", "install",
            *package_set(version)]
    proc = _run(argv)
    if proc.returncode != 0 and os.geteuid() == 0:
        _run(["apt-get", "update", "-q"])
        proc = _run(argv)
    debs = parse_print_uris(proc.stdout)
    if proc.returncode != 0 or not debs:
        raise GuestError("apt cannot resolve the arm64 root's packages: "
                         + (proc.stderr or proc.stdout).strip()[-600:])
    return debs


def download(version: str, state: Path, debs: list[Deb], log=print) -> list[Path]:
    archives = state / "archives"
    total = sum(d.size for d in debs)
    log(f"guest: downloading {len(debs)} arm64 packages ({total / 1e6:.0f} MB, apt-get)")
    proc = _run(["apt-get", "-q", *apt_options(state), "--download-only", "-y", "install",
                 *package_set(version)])
    paths = [archives / d.filename for d in debs]
    missing = [p.name for p in paths if not p.is_file()]
    if proc.returncode != 0 or missing:
        raise GuestError(f"apt-get --download-only failed ({len(missing)} missing, e.g. "
                         f"{missing[:3]}): {(proc.stderr or proc.stdout).strip()[-400:]}")
    return paths


# ---------------------------------------------------------------- assembling

def extract(debs: list[Path], root: Path):
    for deb in debs:
        proc = _run(["dpkg-deb", "-x", str(deb), str(root)])
        if proc.returncode != 0:
            raise GuestError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()[-300:]}")


def maintainer_alternatives(debs: list[Path]) -> list:
    entries = []
    for deb in debs:
        proc = _run(["dpkg-deb", "--info", str(deb), "postinst"])
        if proc.returncode == 0 and "update-alternatives" in proc.stdout:
            entries += parse_alternatives(proc.stdout)
    return entries


def _symlink(root: Path, link: str, target: str):
    dst = _inside(root, link)
    if dst.exists() or dst.is_symlink():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, dst)


def fix_up(root: Path, debs: list[Path], version: str, log=print):
    """What the skipped maintainer scripts would have done that gdb, python, gcc, the tests
    and the guest's /init need."""
    # alternatives, in auto mode: link -> /etc/alternatives/name -> path
    for name, (link, path) in sorted(best_alternatives(maintainer_alternatives(debs)).items()):
        if (_inside(root, path).exists() or _inside(root, path).is_symlink()):
            _symlink(root, f"/etc/alternatives/{name}", path)
            _symlink(root, link, f"/etc/alternatives/{name}")
    # base-passwd's postinst
    for name in ("passwd", "group"):
        master = _inside(root, f"/usr/share/base-passwd/{name}.master")
        dest = _inside(root, f"/etc/{name}")
        if master.is_file() and not master.is_symlink() and not (dest.exists() or dest.is_symlink()):
            shutil.copyfile(master, dest)
    _symlink(root, "/etc/mtab", "../proc/self/mounts")
    hostname = _inside(root, "/etc/hostname")
    hostname.unlink(missing_ok=True)
    hostname.write_text("gtk-arm64\n")
    # mount points the guest's /init uses
    for d in ("proc", "sys", "dev", "tmp", "run", "var/tmp", "root", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)
    # 9p refuses device nodes, FIFOs and sockets: devtmpfs provides /dev
    for dirpath, dirnames, filenames in os.walk(root):
        for f in filenames:
            p = Path(dirpath) / f
            try:
                mode = p.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                p.unlink()
    # modules.dep (the kernel package's postinst runs depmod)
    depmod = shutil.which("depmod") or ("/sbin/depmod" if Path("/sbin/depmod").exists() else None)
    if depmod:
        proc = _run([depmod, "-b", str(root), version])
        if proc.returncode != 0:
            log(f"guest: warning: depmod for the arm64 modules failed: {proc.stderr.strip()[-200:]}")
    # Python bytecode (py3compile's job): without it every process in the guest recompiles the
    # stdlib under emulation.  Same Python minor version on the host, paths as in the guest.
    pyver = sorted(p.name for p in (root / "usr/lib").glob("python3.[0-9]*") if p.is_dir())
    host = f"/usr/bin/{pyver[-1]}" if pyver else None
    if host and Path(host).exists():
        dirs = [str(root / "usr/lib" / pyver[-1]), str(root / "usr/lib/python3/dist-packages"),
                str(root / "usr/share/gdb/python")]
        _run([host, "-m", "compileall", "-q", "-j", "2", "-x", r"(lib2to3/tests|test/)",
              "-s", str(root), "-p", "/", *dirs], timeout=900)
    # ld.so.cache (libc-bin's trigger): without it the loader probes every library directory
    # over 9p for each of gdb's ~40 libraries.  The root's own (static) ldconfig, run by
    # qemu-user; not fatal without qemu-user, only slower.
    qemu_user = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if qemu_user and (root / "sbin/ldconfig").is_file():
        proc = _run([qemu_user, str(root / "sbin/ldconfig"), "-r", str(root)])
        if proc.returncode != 0:
            log(f"guest: warning: ldconfig for the arm64 root failed: {proc.stderr.strip()[-200:]}")
    else:
        log("guest: warning: qemu-aarch64 (qemu-user) missing: the arm64 root has no "
            "ld.so.cache (programs start slower in the guest)")
    (root / ".gtk-root").write_text(f"{RECIPE}\n{version}\n")


def cached_roots() -> list[Path]:
    base = arch_dir()
    if not base.is_dir():
        return []
    roots = [p for p in base.glob("root-*") if (p / ".gtk-root").is_file()]
    return sorted(roots, key=lambda p: (p / ".gtk-root").stat().st_mtime)


def root_version(root: Path) -> str:
    lines = (root / ".gtk-root").read_text().split("\n")
    return lines[1] if len(lines) > 1 else ""


def _prune(keep: Path, log=print):
    roots = [r for r in cached_roots() if r != keep]
    for old in roots[:max(0, len(roots) - (KEEP_ROOTS - 1))]:
        log(f"guest: removing the old arm64 root {old.name}")
        shutil.rmtree(old, ignore_errors=True)


def build_root(version: str, debs: list[Deb], key: str, state: Path, log=print) -> Path:
    dest = arch_dir() / f"root-{key}"
    if (dest / ".gtk-root").is_file():
        return dest
    t0 = time.monotonic()
    paths = download(version, state, debs, log)
    t1 = time.monotonic()
    stage = Path(tempfile.mkdtemp(prefix=f"root-{key}.partial-", dir=arch_dir()))
    try:
        log(f"guest: unpacking {len(paths)} arm64 packages (dpkg -x)")
        extract(paths, stage)
        fix_up(stage, paths, version, log)
        if not (stage / "boot" / f"vmlinuz-{version}").is_file():
            raise GuestError(f"linux-image-{version} holds no boot/vmlinuz-{version}")
        if dest.exists():
            shutil.rmtree(dest)
        stage.rename(dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        for p in paths:                 # the root is the cache; the .debs are not kept
            p.unlink(missing_ok=True)
    log(f"guest: arm64 root {dest.name} ready: download {t1 - t0:.0f} s, "
        f"unpack + fix-up {time.monotonic() - t1:.0f} s")
    _prune(dest, log)
    return dest


def prepare_root(log=print) -> Kernel:
    """The arm64 root (kernel tree included) for apt's current kernel, built if needed.

    Offline or with apt failing, the newest cached root is used (like the x86_64 kernel)."""
    base = arch_dir()
    base.mkdir(parents=True, exist_ok=True)
    with cache_lock(cache_root()):
        override = os.environ.get("GDB_TOOLKIT_GUEST_ARM64_KERNEL")
        problem = None
        try:
            ensure_foreign_arch(ARM64)
            versions = apt_versions(ARM64)
        except GuestError as exc:
            versions, problem = [], str(exc)
        cached = {root_version(r): r for r in cached_roots()}
        version = choose_version(versions, list(cached), override)
        if not version:
            raise GuestError("cannot tell which arm64 kernel to boot: `apt-cache depends "
                             f"{ARM64.metapackage}:arm64` names none"
                             + (f" ({problem})" if problem else "") +
                             f" and no arm64 root is cached in {base}")
        state = base / "apt"
        try:
            debs = resolve(version, state)
        except GuestError as exc:
            if version in cached:
                log(f"guest: warning: {exc}; using the cached arm64 root {cached[version].name}")
                root = cached[version]
                return Kernel(version, root, ARM64, root)
            raise
        root = build_root(version, debs, root_key(debs), state, log)
        os.utime(root / ".gtk-root")      # most recently used: kept by _prune
        return Kernel(version, root, ARM64, root)


def mountpoint_for(root: Path, path: Path) -> str | None:
    """Make an empty directory for *path* (the checkout) in the read-only root, on the host,
    so the guest can mount the checkout there.  Returns None if *path* is under a directory
    the guest mounts afresh (/tmp...), where /init creates it."""
    from .vm import visible_in_guest
    if not visible_in_guest(path):
        return None
    target = _inside(root, str(path))
    target.mkdir(parents=True, exist_ok=True)
    return str(target)
