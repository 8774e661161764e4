"""The guest's initramfs: busybox-static, the 9p/virtio modules, and /init.

/init loads the modules, mounts the per-run exchange share (``xfer``: run.env + cmd.sh written
by the host, status written back), mounts the host root read-only over 9p, gives it writable
tmpfs on /tmp, /run, /var/tmp, mounts proc/sys/dev/tracefs/debugfs, mounts the checkout at its
own path (it may live under /tmp), lays the package's modules over /lib/modules/<version>
(keeping the host's build/source links, for modprobe and bcc; a kernel the host has no
/lib/modules entry for gets a tmpfs /lib/modules), chroots, runs /run/gtk/cmd.sh and reports the exit status on
the console between markers carrying a per-run nonce, then powers off.  While the command runs
it writes /run/gtk/heartbeat every few seconds: the host ends a guest whose heartbeat stops.

The image is cached per kernel version and hash of this script and busybox.  x86_64 uses the
host's busybox-static; arm64 the arm64 busybox-static inside the assembled arm64 root.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .kernel import GuestError, Kernel, cache_lock, cache_root

MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
           "netfs", "fscache", "9pnet", "9pnet_virtio", "9p"]
BUSYBOX = "/bin/busybox"
NINEP_OPTS = "trans=virtio,version=9p2000.L,msize=512000"
HEARTBEAT_SECONDS = 5   # how often /init touches /run/gtk/heartbeat while the command runs

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /xfer /newroot
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
say() { echo "@@GTK-GUEST-$1@@"; }
die() { say "FAIL $*"; sync; poweroff -f; sleep 5; echo o >/proc/sysrq-trigger; }
for m in @MODULES@; do
  [ -e "/lib/modules/$m.ko" ] && insmod "/lib/modules/$m.ko" 2>/dev/null
done
mnt9p() {  # tag dir options: the device may need a moment after virtio_pci probes
  i=0
  while ! mount -t 9p -o "@NINEP@$3" "$1" "$2" 2>/tmp/mnt.err; do
    i=$((i+1)); [ $i -ge 20 ] && { cat /tmp/mnt.err; return 1; }; sleep 0.1
  done
}
mnt9p xfer /xfer "" || die "mount of the xfer share failed"
. /xfer/run.env || die "no run.env"
mnt9p host /newroot ",ro,cache=loose" || die "mount of the host root (9p) failed"
R=/newroot
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=755 tmpfs $R/run
mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t tracefs tracefs $R/sys/kernel/tracing
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t bpf bpf $R/sys/fs/bpf 2>/dev/null
mkdir -p $R/run/gtk
mount --move /xfer $R/run/gtk || die "cannot move the xfer share"
if [ -n "$GTK_REPO" ]; then
  mkdir -p "$R$GTK_REPO"
  mnt9p repo "$R$GTK_REPO" ",ro,cache=loose" || die "mount of the checkout $GTK_REPO failed"
fi
M=$R/lib/modules/$(uname -r)
if [ -n "$GTK_MODDIR" ] && [ -d "$R$GTK_MODDIR" ] && [ ! -d "$M" ]; then
  # a kernel the host has no /lib/modules entry for (x86_64-new): a tmpfs /lib/modules to hold it
  mount -t tmpfs -o mode=755 tmpfs "$R/lib/modules" && mkdir "$M"
fi
if [ -n "$GTK_MODDIR" ] && [ -d "$R$GTK_MODDIR" ] && [ -d "$M" ]; then
  # the package's modules (from the cache, via the root share) + the host's build/source links
  mount -t tmpfs -o mode=755 tmpfs "$M"
  for f in "$R$GTK_MODDIR"/*; do ln -s "${f#$R}" "$M/"; done
  [ -n "$GTK_BUILD" ] && ln -sfn "$GTK_BUILD" "$M/build"
  [ -n "$GTK_SOURCE" ] && ln -sfn "$GTK_SOURCE" "$M/source"
fi
echo 1 >/proc/sys/kernel/sysrq
dmesg -n 1
# the heartbeat: the host's watchdog (vm.py) ends a guest whose kernel stopped scheduling
( while :; do date +%s >$R/run/gtk/heartbeat; sleep @BEAT@; done ) </dev/null >/dev/null 2>&1 &
beat=$!
say "BEGIN $GTK_NONCE"
chroot $R /bin/sh /run/gtk/cmd.sh
rc=$?
kill $beat 2>/dev/null
echo $rc >$R/run/gtk/status
sync
say "EXIT $GTK_NONCE $rc"
poweroff -f
sleep 5
echo o >/proc/sysrq-trigger
"""


def init_script() -> str:
    return (INIT.replace("@MODULES@", " ".join(MODULES)).replace("@NINEP@", NINEP_OPTS)
            .replace("@BEAT@", str(HEARTBEAT_SECONDS)))


def busybox_for(kernel: Kernel) -> Path:
    """The static busybox of the kernel's architecture: the host's for x86_64, the arm64 root's
    for arm64."""
    if kernel.guest_root is not None:
        return kernel.guest_root / BUSYBOX.lstrip("/")
    return Path(BUSYBOX)


def image_key(busybox: Path | str = BUSYBOX) -> str:
    h = hashlib.sha256(init_script().encode())
    try:
        h.update(Path(busybox).read_bytes())
    except OSError:
        pass
    return h.hexdigest()[:12]


def build_initramfs(kernel: Kernel, log=print) -> Path:
    """The cached initramfs for ``kernel`` (built atomically on first use)."""
    busybox = busybox_for(kernel)
    where = cache_root() / kernel.version
    if kernel.guest_root is not None:     # next to the root it belongs to
        where = kernel.guest_root.parent
    out = where / f"initramfs-{kernel.version}-{image_key(busybox)}.cpio"
    if kernel.guest_root is None:
        out = where / f"initramfs-{image_key(busybox)}.cpio"
    if out.is_file():
        return out
    if not busybox.is_file():
        raise GuestError(f"{busybox} missing: apt-get install busybox-static"
                         + (f":{kernel.arch.deb_arch}" if kernel.guest_root is not None else ""))
    if not shutil.which("cpio"):
        raise GuestError("cpio missing: apt-get install cpio")
    with cache_lock(cache_root()):
        if out.is_file():
            return out
        log(f"guest: building initramfs for {kernel.version}")
        stage = Path(tempfile.mkdtemp(prefix="initramfs-", dir=out.parent))
        try:
            (stage / "bin").mkdir()
            (stage / "lib" / "modules").mkdir(parents=True)
            shutil.copy2(busybox, stage / "bin" / "busybox")
            init = stage / "init"
            init.write_text(init_script())
            init.chmod(0o755)
            index = {p.name.split(".ko")[0]: p for p in kernel.modules.rglob("*.ko*")}
            for m in MODULES:
                src = index.get(m)
                if src is None:
                    continue  # built in
                dst = stage / "lib" / "modules" / f"{m}.ko"
                if src.name.endswith(".ko"):
                    shutil.copy2(src, dst)
                else:
                    tool = {".xz": ["xz", "-dc"], ".zst": ["zstd", "-dcq"],
                            ".gz": ["gzip", "-dc"]}[src.suffix]
                    with open(dst, "wb") as fh:
                        subprocess.run([*tool, str(src)], stdout=fh, check=True)
            tmp = out.with_suffix(".part")
            names = subprocess.run(["find", "."], cwd=stage, capture_output=True,
                                   text=True, check=True).stdout
            with open(tmp, "wb") as fh:
                proc = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=stage,
                                      input=names.encode(), stdout=fh, stderr=subprocess.PIPE)
            if proc.returncode != 0:
                raise GuestError(f"cpio failed: {proc.stderr.decode()[-300:]}")
            os.replace(tmp, out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return out
