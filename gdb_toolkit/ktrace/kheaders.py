"""Which kernel headers bcc compiles against, and how to tell it.  Pure given paths.

bcc looks in /lib/modules/$(uname -r)/build (or /sys/kernel/kheaders.tar.xz).
When the running kernel has none (a custom kernel, this 6.18 VM), any Debian
linux-headers-* tree works for our programs: they use only basic types and
read every kernel field at BTF offsets, so we point bcc at it with
BCC_KERNEL_SOURCE (the -common half) plus -I for the generated half.
"""
import os
import re

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, record


@record
class HeadersChoice:
    path: str                                   # what bcc compiles against
    env: dict[str, str] = field(default_factory=dict)
    cflags: list[str] = field(default_factory=list)
    note: str = ""                              # non-empty when not the running kernel's own


def _has_kconfig(d: str) -> bool:
    return os.path.isfile(os.path.join(d, "include", "linux", "kconfig.h"))


def _version_key(path: str):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.-]", os.path.basename(path))]


def _glob_star(directory: str, prefix: str, suffix: str = "") -> list[str]:
    """``glob.glob(os.path.join(directory, prefix + "*" + suffix))`` for a *directory*, *prefix* and
    *suffix* without wildcards, in the same (directory) order, without importing glob and
    fnmatch (~0.7 ms of the doctor's first call).  tests/unit/test_doctor_checks.py compares them."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names
            if n.startswith(prefix) and n.endswith(suffix) and len(n) >= len(prefix) + len(suffix)
            and not n.startswith(".")]


def choose(release: str, arch: str = "x86", modules_dir: str = "/lib/modules", src_dir: str = "/usr/src",
           kheaders: str = "/sys/kernel/kheaders.tar.xz") -> HeadersChoice:
    kdir = os.path.join(modules_dir, release)
    build, source = os.path.join(kdir, "build"), os.path.join(kdir, "source")
    if (os.path.isdir(build) and os.path.isdir(source) and _has_kconfig(source)) or _has_kconfig(build):
        return HeadersChoice(os.path.realpath(build))
    if os.path.exists(kheaders):
        return HeadersChoice(kheaders)
    # Debian split packages: linux-headers-V-common (sources) + linux-headers-V-FLAVOUR (generated)
    for common in sorted(_glob_star(src_dir, "linux-headers-", "-common"), key=_version_key,
                         reverse=True):
        if not _has_kconfig(common):
            continue
        stem = common[: -len("-common")]
        flavours = [d for d in _glob_star(os.path.dirname(stem), os.path.basename(stem) + "-")
                    if d != common and
                    os.path.isdir(os.path.join(d, "include", "generated"))]
        if not flavours:
            continue
        gen = sorted(flavours)[0]
        cflags = [f"-I{gen}/arch/{arch}/include/generated", f"-I{gen}/arch/{arch}/include/generated/uapi",
                  f"-I{gen}/include", f"-I{gen}/include/generated/uapi"]
        return HeadersChoice(common, {"BCC_KERNEL_SOURCE": common}, cflags,
                             f"no headers for the running kernel {release}; compiling against "
                             f"{os.path.basename(gen)} instead (safe: the BPF program uses only basic "
                             "types and reads kernel fields at BTF offsets)")
    for d in sorted(_glob_star(src_dir, "linux-headers-"), key=_version_key, reverse=True):
        if _has_kconfig(d) and os.path.isdir(os.path.join(d, "include", "generated")):
            return HeadersChoice(d, {"BCC_KERNEL_SOURCE": d}, [],
                                 f"no headers for the running kernel {release}; compiling against {d}")
    raise missing_error(release)


def missing_error(release: str) -> ToolkitError:
    debian = re.fullmatch(r"\d+\.\d+\.\d+-\d+-(amd64|arm64|cloud-amd64|rt-amd64)", release)
    fix = (f"apt-get install linux-headers-{release}" if debian else
           f"install the headers of kernel {release} at /lib/modules/{release}/build, or any Debian "
           "headers package (apt-get install linux-headers-amd64): ktrace only needs basic types")
    return ToolkitError(f"bcc needs kernel headers to compile, and there are none for {release} "
                        f"(no /lib/modules/{release}/build, no /sys/kernel/kheaders.tar.xz, "
                        "no /usr/src/linux-headers-*)", fix)
