"""Build the core_notes fuzz seeds: small synthetic cores (ELF header, a PT_NOTE and a few
PT_LOAD headers, the notes the kernel writes) -- kept small so the fuzzer mutates what the
parser reads.  Run from the checkout root: python3 -m tests.support.core_seeds"""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz", "corpus", "core_notes")


def note(name: bytes, ntype: int, desc: bytes) -> bytes:
    n = name + b"\0"
    return (struct.pack("<III", len(n), len(desc), ntype) + n + b"\0" * (-len(n) % 4) + desc
            + b"\0" * (-len(desc) % 4))


def core(machine: int, regs: int, loads, notes: bytes) -> bytes:
    phnum = 1 + len(loads)
    phoff = 64
    notes_off = phoff + 56 * phnum
    eh = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0, phoff,
                                                            0, 0, 64, 56, phnum, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, notes_off, 0, 0, len(notes), 0, 1)
    for vaddr, memsz, flags in loads:
        ph += struct.pack("<IIQQQQQQ", 1, flags, 0, vaddr, 0, 0, memsz, 4096)
    return eh + ph + notes


def prstatus(pid: int, cursig: int, nregs: int) -> bytes:
    head = struct.pack("<iiih", 11, 1, 0, cursig) + b"\0\0" + b"\0" * 16 + struct.pack("<iiii", pid, 1, pid, pid)
    head += b"\0" * 64
    return head + struct.pack(f"<{nregs}Q", *range(0x1000, 0x1000 + nregs)) + b"\0" * 8


def prpsinfo(fname: bytes, args: bytes) -> bytes:
    return (b"R\0\0\0" + b"\0" * 4 + b"\0" * 8 + struct.pack("<IIiiii", 1000, 1000, 42, 1, 42, 42)
            + fname.ljust(16, b"\0")[:16] + args.ljust(80, b"\0")[:80])


def siginfo(addr: int) -> bytes:
    return struct.pack("<iii", 11, 0, 1) + b"\0" * 4 + struct.pack("<Q", addr) + b"\0" * 104


def nt_file(entries) -> bytes:
    desc = struct.pack("<QQ", len(entries), 4096)
    for lo, hi, off, _ in entries:
        desc += struct.pack("<QQQ", lo, hi, off)
    return desc + b"".join(n + b"\0" for *_, n in entries)


def main() -> None:
    stack = (0x7ffffffde000, 0x21000, 6)
    exe = (0x555555554000, 0x1000, 5)
    files = [(0x555555554000, 0x555555555000, 0, b"/tmp/caf\xe9/teststack")]
    auxv = struct.pack("<8Q", 6, 4096, 31, 0x7fffffffefe0, 25, 0x7fffffffe9c9, 0, 0)
    x86 = (note(b"CORE", 1, prstatus(42, 11, 27)) + note(b"CORE", 3, prpsinfo(b"teststack", b"./t it's 1"))
           + note(b"CORE", 0x53494749, siginfo(0x7fffff02c630)) + note(b"CORE", 6, auxv)
           + note(b"CORE", 0x46494C45, nt_file(files)) + note(b"CORE", 1, prstatus(43, 0, 27)))
    a64 = note(b"CORE", 1, prstatus(7, 11, 34)) + note(b"CORE", 3, prpsinfo(b"ts64", b"ts64 1920 1080")) \
        + note(b"CORE", 6, auxv)
    seeds = {
        "x86_64-kernel-like": core(62, 27, [exe, stack], x86),
        "aarch64-qemu-like": core(183, 34, [(0x5500001000, 0x800000, 6), (0x5500000000, 0x1000, 0)], a64),
        "regress-ntfile-count-2^60": core(62, 27, [stack], note(b"CORE", 0x46494C45,
                                                           struct.pack("<QQ", 1 << 60, 4096))),
        "regress-note-past-segment": core(62, 27, [stack], note(b"CORE", 1, prstatus(1, 11, 27))[:40]),
    }
    for name, data in seeds.items():
        with open(os.path.join(HERE, name), "wb") as fh:
            fh.write(data)


if __name__ == "__main__":
    main()
