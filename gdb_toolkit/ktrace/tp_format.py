"""Parse a tracepoint's ``format`` file (tracefs events/CAT/NAME/format). Pure."""
import re

_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d)")


def parse_format(text: str) -> dict[str, tuple[int, int, bool]]:
    """{field name: (offset, size, signed)} in declaration order."""
    out = {}
    for m in _FIELD.finditer(text):
        decl = m.group("decl").strip()
        name = re.sub(r"\[.*\]$", "", decl.split()[-1]).lstrip("*")
        out[name] = (int(m.group("off")), int(m.group("size")), m.group("signed") == "1")
    return out
