"""Differential check of common.capstone_lite against the capstone package's own
``Cs.disasm_lite`` (the oracle: the package's binding of the same library).

Run under any Python that has a capstone package (Debian's python3-capstone, or a venv with a
PyPI wheel, 4.x or 5.x), from the checkout root:

    python3 -m tests.support.capstone_diff [--bytes-per-section 65536]

It prints one line per corpus (arch, source, bytes, instructions compared) and exits non-zero
on the first difference.  tests/unit/test_capstone_lite.py runs it with /usr/bin/python3.
"""
import argparse
import glob
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gdb_toolkit.common import capstone_lite  # noqa: E402

#: our arch -> (capstone arch, mode) names in the package
ARCHES = {"x86_64": ("CS_ARCH_X86", "CS_MODE_64"), "i386": ("CS_ARCH_X86", "CS_MODE_32"),
          "aarch64": ("CS_ARCH_ARM64", "CS_MODE_ARM"), "arm": ("CS_ARCH_ARM", "CS_MODE_ARM")}

#: real code: (arch, glob of ELF files, section names); the first file a glob finds is used
REAL = [
    ("x86_64", "/lib/x86_64-linux-gnu/libc.so.6", (".text", ".plt", ".plt.sec")),
    ("x86_64", "/usr/bin/gdb", (".plt", ".plt.sec")),
    ("i386", "/usr/lib32/libc.so.6", (".text", ".plt")),
    ("i386", "/usr/i686-linux-gnu/lib/libc.so.6", (".text", ".plt")),
    ("aarch64", "/usr/aarch64-linux-gnu/lib/libc.so.6", (".text", ".plt")),
    ("arm", "/usr/arm-linux-gnueabihf/lib/libc.so.6", (".text", ".plt")),
    # kernel code: modules of the guests' Debian kernels (tests/guest caches them)
    ("x86_64", "/var/cache/gdb_toolkit/guest/*-amd64/tree/lib/modules/*/kernel/fs/ext4/ext4.ko",
     (".text", ".init.text", ".noinstr.text")),
    ("aarch64", "/var/cache/gdb_toolkit/guest/arm64/root-*/lib/modules/*/kernel/fs/ext4/ext4.ko",
     (".text", ".init.text")),
]


class Mismatch(AssertionError):
    pass


def package_engine(cs, arch: str):
    a, m = ARCHES[arch]
    md = cs.Cs(getattr(cs, a), getattr(cs, m))
    md.detail = False
    return md


def lite_engine(lib, arch: str):
    a, m = ARCHES[arch]
    return lib.open(getattr(capstone_lite, a[3:]), getattr(capstone_lite, m[3:]))


def compare(lite, pkg, code: bytes, address: int, count: int = 0, where: str = "") -> int:
    """Both listings of *code* at *address*; raises Mismatch on a difference, returns the
    number of instructions."""
    want = list(pkg.disasm_lite(code, address, count))
    got = lite.disasm_lite(code, address, count)
    if got != want:
        i = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        raise Mismatch(f"{where}: first difference at instruction {i}: lite "
                       f"{got[i] if i < len(got) else 'END'} vs package "
                       f"{want[i] if i < len(want) else 'END'} ({len(got)} vs {len(want)} instructions)")
    return len(want)


def sweep(lite, pkg, code: bytes, address: int, where: str) -> int:
    """Compare from every place where decoding stops (skip one byte and go on), so code that
    does not decode in one run (data in .text, Thumb code read as ARM) is covered too."""
    n = off = 0
    while off < len(code):
        got = compare(lite, pkg, code[off:], address + off, 0, where)
        n += got
        listing = lite.disasm_lite(code[off:], address + off) if got else []
        off += sum(size for _, size, _, _ in listing) + 1
    return n


def sections(path: str, names) -> list[tuple[str, int, bytes]]:
    """(name, sh_addr, bytes) of the PROGBITS sections *names* of a little-endian ELF file
    (a few lines of struct, so this runs in a venv without pyelftools)."""
    import struct

    data = Path(path).read_bytes()
    is64 = data[4] == 2
    if is64:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        fmt = "<IIQQQQ"
    else:
        shoff, = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
        fmt = "<IIIIII"
    hdrs = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
    strtab = hdrs[shstrndx][4]
    out = []
    for want in names:
        for name_off, sh_type, _flags, addr, off, size in hdrs:
            name = data[strtab + name_off:data.index(b"\0", strtab + name_off)].decode()
            if name == want and sh_type == 1 and size:      # SHT_PROGBITS
                out.append((name, addr or 0xffffffffc0000000, data[off:off + size]))
    return out


def real_corpora(limit: int):
    """(arch, label, address, code) for every REAL file found; labels of missing ones too."""
    missing = []
    for arch, pattern, names in REAL:
        files = sorted(glob.glob(pattern))
        if not files:
            missing.append(pattern)
            continue
        for name, addr, data in sections(files[0], names):
            yield arch, f"{files[0]}:{name}", addr, data[:limit]
    if missing:
        yield None, missing, 0, b""


def random_corpora(seed: int = 14, rounds: int = 60):
    rng = random.Random(seed)
    addresses = [0, 0x401000, 0xffffffff81000000, (1 << 64) - 8, (1 << 64) - 0x100]
    for arch in ARCHES:
        for r in range(rounds):
            n = rng.choice([0, 1, 2, 3, 4, 7, 15, 16, 17, 64, 300, 5000])
            yield arch, f"random #{r}", rng.choice(addresses), rng.randbytes(n), rng.choice([0, 0, 1, 3])


def run(limit: int = 1 << 16, out=print) -> dict:
    """Everything above; returns {'instructions': N, 'missing': [patterns not found]}."""
    from gdb_toolkit.common.disasm import _import_capstone

    cs = _import_capstone()
    lib = capstone_lite.load()
    if lib is None:
        raise Mismatch(f"capstone_lite does not bind this package's library "
                       f"(capstone {cs.__version__} at {cs.__file__}: {capstone_lite.locate()})")
    out(f"package capstone {cs.__version__} ({cs.__file__}); lite: {lib.where} API {lib.api}")
    lites = {a: lite_engine(lib, a) for a in ARCHES}
    pkgs = {a: package_engine(cs, a) for a in ARCHES}
    total, missing = 0, []
    for arch, label, addr, code in real_corpora(limit):
        if arch is None:
            missing = label
            continue
        n = sweep(lites[arch], pkgs[arch], code, addr, label)
        total += n
        out(f"{arch:8} {label}: {len(code)} bytes, {n} instructions equal")
    n_rand = 0
    for arch, label, addr, code, count in random_corpora():
        n_rand += compare(lites[arch], pkgs[arch], code, addr, count, f"{arch} {label}")
        n_rand += sweep(lites[arch], pkgs[arch], code, addr, f"{arch} {label}")
    out(f"random bytes: {n_rand} instructions equal")
    for e in lites.values():
        e.close()
    return {"instructions": total + n_rand, "missing": missing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes-per-section", type=int, default=1 << 16)
    opts = ap.parse_args()
    r = run(opts.bytes_per_section)
    if r["missing"]:
        print(f"not found (skipped): {', '.join(r['missing'])}")
    print(f"OK: {r['instructions']} instructions equal")


if __name__ == "__main__":
    main()
