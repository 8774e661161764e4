"""The ELF auxiliary vector as gdb prints it (``info auxv``), for load bias and page size."""


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
