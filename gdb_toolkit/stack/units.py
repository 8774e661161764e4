"""Sizes for stack reports: common.render.human_size plus TiB for address-space distances."""
from gdb_toolkit.common.render import human_size

TIB = 1 << 40


def hs(n: int | None) -> str:
    if n is not None and abs(n) >= TIB:
        return f"{n / TIB:.1f} TiB"
    return human_size(n)
