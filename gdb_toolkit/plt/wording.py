"""The PLT/GOT commands' prose: counted nouns ("1 slot", "8 slots"), wrapping that keeps a
path or a name holding spaces whole, and gdb's styles on the words of a wrapped line.  Pure."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """*n* and *noun*, plural unless *n* is 1 (*plural*: an irregular form; by default
    the noun with an "s": "2 IRELATIVE (ifunc) stubs")."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {plural if plural is not None else noun + 's'}"


def wrap_keep(text: str, width, indent: str = "", subsequent_indent: str | None = None,
              keep=()) -> list[str]:
    """common.text.wrap_lines with *keep*: an object's path or name, a symbol -- strings that
    may hold spaces and must never be split across lines."""
    from gdb_toolkit.common.text import wrap_lines

    return wrap_lines(text, width, indent, subsequent_indent, keep=tuple(k for k in keep if k))


def headed(head: str, text: str, width, indent: str = "    ", styler=None, role: str = "file",
           look=None, keep=()) -> str:
    """``HEAD: TEXT`` wrapped to *width* with HEAD (an object's path, which may hold spaces)
    never split: it leads the first line (alone when it leaves no room for a word of TEXT),
    in gdb's style for *role* (filename) when styling is on; the words of *look* styled."""
    lines = wrap_keep(f"{head}: {text}", width, "", indent, keep=(head, *keep))
    if look:
        lines = [lines[0][:len(head)] + styled_line(lines[0][len(head):], look)] + \
            [styled_line(ln, look) for ln in lines[1:]]
    if styler is not None and lines and lines[0].startswith(head):
        lines[0] = styler(role, head) + lines[0][len(head):]
    return "\n".join(lines) + "\n"


_EDGE = "([{<*'\""
_TAIL = ")]}>,;:.'\""


def styled_line(line: str, look: dict[str, str]) -> str:
    """*line* with each word found in *look* (punctuation around it aside) styled."""
    if not look:
        return line
    out = []
    for word in line.split(" "):
        core = word.lstrip(_EDGE)
        head = word[:len(word) - len(core)]
        bare = core.rstrip(_TAIL)
        tail = core[len(bare):]
        hit = look.get(bare)
        if hit is None and "=" in bare:             # GOT[2]=0x7ffff7fdc290
            left, eq, right = bare.rpartition("=")
            hit = look.get(right)
            if hit is not None:
                hit = left + eq + hit
        elif hit is None and "-0x" in bare:         # a range 0x555555557dd0-0x555555558000
            lo, dash, hi = bare.partition("-")
            if lo in look and hi in look:
                hit = look[lo] + dash + look[hi]
        out.append(head + hit + tail if hit is not None else word)
    return " ".join(out)
