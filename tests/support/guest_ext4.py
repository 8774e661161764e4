"""A scratch ext4 filesystem inside the test guest (its root is 9p, its /tmp tmpfs): ext4 files
are the ones whose f_op->get_unmapped_area is thp_get_unmapped_area, as in the seed.

Loads loop/ext4 (and their dependencies, via modinfo) from the guest kernel's module tree that
the harness extracted on the host, then mounts a loop-backed image.
"""
import contextlib
import os
import platform
import subprocess
from pathlib import Path


def _module_index(release: str) -> dict[str, Path]:
    roots = [Path(os.environ.get("GDB_TOOLKIT_GUEST_CACHE", "/var/cache/gdb_toolkit/guest")),
             Path.home() / ".cache" / "gdb_toolkit" / "guest"]
    bases = [root / release / "tree" / "lib" / "modules" / release for root in roots]
    bases.append(Path("/lib/modules") / release)     # the arm64 guest's own root has them
    for base in bases:
        if (base / "kernel").is_dir():
            # 6.1: plain .ko; Debian's 6.12: .ko.xz (kmod's insmod/modinfo read either)
            return {p.name.split(".ko")[0].replace("-", "_"): p for p in base.rglob("*.ko*")
                    if p.name.endswith((".ko", ".ko.xz", ".ko.zst", ".ko.gz"))}
    return {}


def load_module(name: str, index: dict[str, Path], seen=None) -> None:
    name = name.replace("-", "_")
    seen = seen if seen is not None else set()
    if name in seen or Path(f"/sys/module/{name}").exists():
        return
    seen.add(name)
    path = index.get(name)
    if path is None:
        raise RuntimeError(f"module {name} not found (and not built in)")
    deps = subprocess.run(["modinfo", "-F", "depends", str(path)], capture_output=True, text=True).stdout
    for dep in filter(None, deps.strip().split(",")):
        load_module(dep, index, seen)
    subprocess.run(["insmod", str(path)], check=True, capture_output=True)


@contextlib.contextmanager
def ext4_mount(size_mb: int = 64):
    """Yield the mount point of a fresh ext4 filesystem; unmounted and detached afterwards."""
    index = _module_index(platform.release())
    for m in ("loop", "crc32c_generic", "ext4"):   # ext4 asks the crypto API for crc32c at mount
        if m in index or not Path(f"/sys/module/{m}").exists():
            try:
                load_module(m, index)
            except RuntimeError:
                if m != "crc32c_generic":
                    raise
    img, mnt = Path("/tmp/gtk-ext4.img"), Path("/tmp/gtk-ext4")
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True, capture_output=True)
    mnt.mkdir(exist_ok=True)
    dev = subprocess.run(["losetup", "-f", "--show", str(img)], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        proc = subprocess.run(["mount", "-t", "ext4", dev, str(mnt)], capture_output=True, text=True)
        if proc.returncode != 0:
            dmesg = subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()[-5:]
            raise RuntimeError(f"mount ext4 failed: {proc.stderr.strip()} {dmesg}")
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
        img.unlink(missing_ok=True)
