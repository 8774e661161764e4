"""Kernel facts the guest tests and the guest docs transcripts read beside the toolkit:
tracefs writes and /proc/kallsyms (the oracle the toolkit's answers are checked against)."""
import os
import re
from pathlib import Path


def append(path: Path, line: str) -> None:
    """One line appended to a tracefs control file (kprobe_events): tracefs wants O_APPEND,
    never a seek or a truncating open, which would remove every other probe."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


ENDBR64 = bytes.fromhex("f30f1efa")
# what the kernel's is_endbr() also counts: a sealed ENDBR64 (apply_seal_endbr's poison,
# gen_endbr_poison(): osp nopl (%rax) in 6.2-6.12, nopl -0x2a(%rax) later) on a function nothing
# calls indirectly (Debian's 6.12: vfs_write, vfs_read)
ENDBR_POISON = bytes.fromhex("660f1f00")
ENDBRS = (ENDBR64, ENDBR_POISON, bytes.fromhex("0f1f40d6"))


def kcore_bytes(addr: int, n: int) -> bytes:
    """The oracle for live bytes: /proc/kcore read here through pyelftools' program headers
    (not the toolkit's own kcore reader, which is under test)."""
    from elftools.elf.elffile import ELFFile
    with open("/proc/kcore", "rb") as f:
        for seg in ELFFile(f).iter_segments():
            h = seg.header
            if h.p_type == "PT_LOAD" and h.p_vaddr <= addr and addr + n <= h.p_vaddr + h.p_memsz:
                return os.pread(f.fileno(), n, h.p_offset + addr - h.p_vaddr)
    raise AssertionError(f"0x{addr:x} is in no PT_LOAD of /proc/kcore")


def probe_site(name: str) -> int:
    """Where the kernel puts a probe on *name* (``p name``) and where its ftrace call is: the
    symbol, or past its ENDBR64 (or sealed ENDBR64) on an IBT kernel (x86's
    arch_adjust_kprobe_addr; Debian's 6.12 has CONFIG_X86_KERNEL_IBT, its 6.1 not).
    Oracle: kallsyms + the bytes in /proc/kcore."""
    addr = kallsyms(name)
    return addr + 4 if kcore_bytes(addr, 4) in ENDBRS else addr


def after_site(name: str) -> int:
    """The offset from *name* of the instruction after its 5-byte ftrace call: +5, or +9
    past an ENDBR64."""
    return probe_site(name) + 5 - kallsyms(name)


def kallsyms(name: str) -> int:
    """The address /proc/kallsyms gives the vmlinux symbol *name*."""
    m = re.search(r"^([0-9a-f]+) \w " + re.escape(name) + "$", Path("/proc/kallsyms").read_text(), re.M)
    if not m:
        raise AssertionError(f"{name} is not in /proc/kallsyms")
    return int(m.group(1), 16)
