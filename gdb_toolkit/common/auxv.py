"""The ELF auxiliary vector as gdb prints it (``info auxv``), for load bias and page size."""


def parse_auxv(text: str) -> dict[str, int]:
    """gdb's ``info auxv`` text -> {"AT_PHDR": value, ...}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].startswith("AT_"):
            try:
                out[parts[1]] = int(parts[-1], 0)
            except ValueError:
                pass
    return out
