"""The ELF auxiliary vector, for load bias and page size: as gdb prints it (``info auxv``)
or as the kernel stores it (/proc/PID/auxv), under the same AT_* names."""

#: the Linux AT_* types, named as gdb names them (elf.h / linux/auxvec.h)
AT_NAMES = {0: "AT_NULL", 1: "AT_IGNORE", 2: "AT_EXECFD", 3: "AT_PHDR", 4: "AT_PHENT", 5: "AT_PHNUM",
            6: "AT_PAGESZ", 7: "AT_BASE", 8: "AT_FLAGS", 9: "AT_ENTRY", 10: "AT_NOTELF", 11: "AT_UID",
            12: "AT_EUID", 13: "AT_GID", 14: "AT_EGID", 15: "AT_PLATFORM", 16: "AT_HWCAP", 17: "AT_CLKTCK",
            23: "AT_SECURE", 24: "AT_BASE_PLATFORM", 25: "AT_RANDOM", 26: "AT_HWCAP2", 31: "AT_EXECFN",
            32: "AT_SYSINFO", 33: "AT_SYSINFO_EHDR", 51: "AT_MINSIGSTKSZ"}
#: the most bytes of an auxiliary vector read (a real one is ~400)
MAX_AUXV = 1 << 16


def parse_auxv(text: str) -> dict[str, int]:
    """gdb's ``info auxv`` text -> {"AT_PHDR": value, ...}."""
    out = {}
    for line in text.split("\n"):
        # AT_EXECFN / AT_PLATFORM end with the quoted string: the value is the word before it
        parts = line.split('"', 1)[0].split()
        if len(parts) >= 3 and parts[1].startswith("AT_"):
            try:
                out[parts[1]] = int(parts[-1], 0)
            except ValueError:
                pass
    return out


def auxv_entries(data: bytes, wordsize: int) -> dict[int, int]:
    """The kernel's auxv bytes ((type, value) word pairs, little-endian as on every target the
    toolkit reads: x86_64, i386, aarch64) -> {type: value}, up to and with AT_NULL; the first
    entry of a type wins, as getauxval(3) answers.  At most MAX_AUXV bytes are looked at; a torn
    last pair is ignored.  (/proc/PID/auxv, a core's NT_AUXV and gdb's live reads all use it.)"""
    if wordsize not in (4, 8):
        raise ValueError(f"word size {wordsize}")
    step = 2 * wordsize
    # the host's order is the target's: the toolkit runs on x86_64 and aarch64 only
    words = memoryview(data[: min(len(data), MAX_AUXV) // step * step]).cast("Q" if wordsize == 8 else "I")
    out: dict[int, int] = {}
    for i in range(0, len(words), 2):
        out.setdefault(words[i], words[i + 1])
        if words[i] == 0:
            break
    return out


def parse_auxv_bytes(data: bytes, wordsize: int) -> dict[str, int]:
    """The kernel's auxv bytes -> {"AT_PHDR": value, ...} (auxv_entries under gdb's names);
    types without an AT_NAMES name are left out."""
    return {AT_NAMES[t]: v for t, v in auxv_entries(data, wordsize).items() if t in AT_NAMES}
