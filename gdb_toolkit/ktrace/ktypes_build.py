"""ktypes core: the running kernel's BTF -> C declarations -> a ``gcc -g`` object
that gdb can ``add-symbol-file``, cached by the kernel's build id.  No gdb here."""
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass

from gdb_toolkit.common.errors import ToolkitError

CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                     "gdb_toolkit", "ktypes")
ANCHORS = ("task_struct", "mm_struct", "vm_area_struct", "signal_struct", "file", "inode",
           "dentry", "super_block", "page", "sk_buff", "sock", "cred", "pid", "kprobe", "module")


@dataclass
class KtypesResult:
    object_path: str
    build_id: str
    cached: bool
    source: str                   # 'btf' | 'vmlinux debug info'
    btf_path: str
    seconds: float = 0.0
    loaded: bool = False


def build_id(notes_path: str = "/sys/kernel/notes") -> str:
    """The running kernel's GNU build id (hex) from its ELF notes; else a BTF hash."""
    try:
        with open(notes_path, "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = (int.from_bytes(data[off + i:off + i + 4], "little") for i in (0, 4, 8))
        name = data[off + 12:off + 12 + namesz]
        doff = off + 12 + ((namesz + 3) & ~3)
        if ntype == 3 and name.rstrip(b"\0") == b"GNU":
            return data[doff:doff + descsz].hex()
        off = doff + ((descsz + 3) & ~3)
    return ""


def btf_hash(btf_path: str) -> str:
    h = hashlib.sha256()
    with open(btf_path, "rb") as f:
        h.update(f.read())
    return "btf-" + h.hexdigest()[:24]


def render_c(btf_path: str) -> str:
    """C declarations for every BTF type (bpftool's dependency-ordered dump)."""
    bpftool = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
    if not bpftool:
        raise ToolkitError("bpftool is needed to render BTF as C", "apt-get install bpftool")
    proc = subprocess.run([bpftool, "btf", "dump", "file", btf_path, "format", "c"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        why = "; ".join(l.strip() for l in proc.stderr.splitlines() if l.strip())[:200]
        raise ToolkitError(f"bpftool could not dump {btf_path}: {why or proc.returncode}",
                           "check the file is BTF (/sys/kernel/btf/vmlinux)")
    return proc.stdout


def build(btf_path: str = "/sys/kernel/btf/vmlinux", cache_dir: str = CACHE, force: bool = False,
          compiler: str = "gcc") -> KtypesResult:
    import time

    if not os.path.exists(btf_path):
        raise ToolkitError(f"no {btf_path}: the kernel has no BTF",
                           "boot a kernel with CONFIG_DEBUG_INFO_BTF=y, or load a vmlinux with debug info "
                           "(file vmlinux)")
    t0 = time.monotonic()
    bid = build_id() if btf_path == "/sys/kernel/btf/vmlinux" else ""
    key = bid or btf_hash(btf_path)
    out_dir = os.path.join(cache_dir, key)
    obj = os.path.join(out_dir, "ktypes.o")
    if os.path.exists(obj) and not force:
        return KtypesResult(obj, key, True, "btf", btf_path, time.monotonic() - t0)
    if not shutil.which(compiler):
        raise ToolkitError(f"{compiler} is needed to build the type object", "apt-get install gcc")
    try:
        os.makedirs(out_dir, exist_ok=True)
        if not os.access(out_dir, os.W_OK):
            raise OSError("read-only")
    except OSError:                      # read-only home (e.g. the test guest): use the temp dir
        import tempfile
        out_dir = os.path.join(tempfile.gettempdir(), f"gdb_toolkit-ktypes-{os.getuid()}", key)
        os.makedirs(out_dir, exist_ok=True)
        obj = os.path.join(out_dir, "ktypes.o")
    header = os.path.join(out_dir, "vmlinux_btf.h")
    with open(header, "w") as f:
        f.write(render_c(btf_path))
    src = os.path.join(out_dir, "ktypes.c")
    with open(src, "w") as f:
        f.write('#include "vmlinux_btf.h"\n')
        for name in ANCHORS:
            f.write(f"struct {name} *gtk_ktypes_{name};\n")
    tmp = obj + f".tmp{os.getpid()}"
    proc = subprocess.run([compiler, "-g", "-fno-eliminate-unused-debug-types", "-w", "-c", src, "-o", tmp],
                          capture_output=True, text=True, cwd=out_dir)
    if proc.returncode != 0:
        raise ToolkitError(f"{compiler} could not compile the BTF declarations: "
                           f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}",
                           f"see {src}")
    os.replace(tmp, obj)
    return KtypesResult(obj, key, False, "btf", btf_path, time.monotonic() - t0)
