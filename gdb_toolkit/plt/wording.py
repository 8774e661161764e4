"""Counted nouns in the PLT/GOT commands' prose: "1 slot", "8 slots".  Pure."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """*n* and *noun*, plural unless *n* is 1 (*plural*: an irregular form; by default
    the noun with an "s": "2 IRELATIVE (ifunc) stubs")."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {plural if plural is not None else noun + 's'}"
