"""Parse a tracepoint's ``format`` file (tracefs events/CAT/NAME/format). Pure.

Each ``field:DECL; offset:N; size:N; signed:N;`` line gives a field; the name is DECL's last
identifier (``char comm[16]`` -> comm, ``__data_loc char[] name`` -> name).  A line whose name
is not an identifier, or whose offset/size is beyond what a trace record can hold, is skipped:
the file is the kernel's, but ktrace turns offsets into BPF immediates and must not be handed
nonsense by a crafted file."""
import re

MAX_OFFSET = 1 << 16          # trace records are smaller than a page
MAX_SIZE = 1 << 16
_FIELD = re.compile(r"field:(?P<decl>[^;\n]+);\s*offset:(?P<off>\d{1,12});\s*size:(?P<size>\d{1,12});"
                    r"\s*signed:(?P<signed>\d)")
_NAME = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$")


def parse_format(text: str) -> dict[str, tuple[int, int, bool]]:
    """{field name: (offset, size, signed)} in declaration order (first one wins)."""
    out: dict[str, tuple[int, int, bool]] = {}
    for m in _FIELD.finditer(text):
        name = _NAME.search(m.group("decl").strip())
        off, size = int(m.group("off")), int(m.group("size"))
        if not name or off > MAX_OFFSET or not 0 < size <= MAX_SIZE:
            continue
        out.setdefault(name.group(1), (off, size, m.group("signed") == "1"))
    return out
