"""Build small ELF64 cores shaped like /proc/kcore for tests (and benchmarks).

``write_kcore(path, {vaddr: bytes, ...}, vmcoreinfo="OSRELEASE=...\\n")`` writes a
core whose PT_LOADs have p_vaddr = the given kernel addresses, a PT_NOTE with a
CORE note and a VMCOREINFO note, like the kernel's fs/proc/kcore.c does.
"""
import struct
from pathlib import Path


def _note(name: bytes, ntype: int, desc: bytes) -> bytes:
    name = name + b"\0"
    out = struct.pack("<III", len(name), len(desc), ntype)
    out += name + b"\0" * (-len(name) % 4)
    out += desc + b"\0" * (-len(desc) % 4)
    return out


def kcore_bytes(regions: dict[int, bytes], vmcoreinfo: str = "", machine: int = 62,
                e_type: int = 4, holes: dict[int, int] | None = None,
                paddrs: dict[int, int] | None = None) -> bytes:
    """The ELF image; *holes* maps extra vaddrs to sizes of segments with no file data;
    *paddrs* gives a region's p_paddr (0 when not given; the kernel's -1 for vmalloc and
    module segments is 0xffffffffffffffff)."""
    notes = _note(b"CORE", 1, b"\0" * 336)
    if vmcoreinfo:
        notes += _note(b"VMCOREINFO", 0, vmcoreinfo.encode())
    loads = sorted(regions.items())
    phnum = 1 + len(loads)
    ehdr_size, ph_size = 64, 56
    data_off = ehdr_size + ph_size * phnum
    notes_off = data_off
    cur = notes_off + len(notes)
    cur = (cur + 4095) & ~4095
    phdrs = [struct.pack("<IIQQQQQQ", 4, 0, notes_off, 0, 0, len(notes), 0, 4)]
    blobs = []
    for vaddr, data in loads:
        phdrs.append(struct.pack("<IIQQQQQQ", 1, 7, cur, vaddr, (paddrs or {}).get(vaddr, 0),
                                 len(data), len(data), 4096))
        blobs.append((cur, data))
        cur = (cur + len(data) + 4095) & ~4095
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr += struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, ehdr_size, 0, 0, ehdr_size,
                        ph_size, phnum, 0, 0, 0)
    image = bytearray(cur)
    image[:64] = ehdr
    image[64:64 + ph_size * phnum] = b"".join(phdrs)
    image[notes_off:notes_off + len(notes)] = notes
    for off, data in blobs:
        image[off:off + len(data)] = data
    return bytes(image)


def write_kcore(path, regions: dict[int, bytes], vmcoreinfo: str = "", **kw) -> Path:
    path = Path(path)
    path.write_bytes(kcore_bytes(regions, vmcoreinfo, **kw))
    return path


BENCH_KTEXT = 0xffffffff81000000
BENCH_FUNCTIONS = ["_stext", "do_sys_openat2", "vfs_read", "vfs_write", "register_kprobe"]


def write_code_kcore(tmp: Path, libc: str = "/lib/x86_64-linux-gnu/libc.so.6") -> dict:
    """A kcore shaped like /proc/kcore whose kernel text is real x86_64 code (libc's .text:
    this VM's kernel has no /proc/kcore) and a kallsyms naming functions in it, so the kernel
    commands run their whole first call on it (--kcore/--kallsyms).  bench/first_call.py and
    tests/integration/test_foundation.py's first-call test use it.  {"kcore": path, "kallsyms": path}."""
    from tests.support.capstone_diff import sections

    tmp = Path(tmp)
    code = sections(libc, [".text"])[0][2][:0x40000]
    syms = "".join(f"{BENCH_KTEXT + i * 0x800:016x} T {n}\n" for i, n in enumerate(BENCH_FUNCTIONS))
    data = BENCH_KTEXT + 0x200000
    banner = b"Linux version 6.1.0-bench (bench@first_call) #1 SMP\n\0"
    (tmp / "kallsyms").write_text(syms + f"{BENCH_KTEXT + len(code):016x} T _etext\n"
                                  f"{data:016x} D linux_banner\n")
    write_kcore(tmp / "kcore", {BENCH_KTEXT: code, data: banner.ljust(4096, b"\0")},
                "OSRELEASE=6.1.0-bench\nPAGESIZE=4096\n")
    return {"kallsyms": tmp / "kallsyms", "kcore": tmp / "kcore"}
