"""Rendering shared by all commands: tables that fit the terminal, and JSON.

Reports are dataclasses; ``to_jsonable`` turns any of them into plain data so
``--json`` prints exactly what the Python API returns.
"""
import dataclasses
import enum
import json
from pathlib import PurePath

ELLIPSIS = "…"


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _json_fields(cls: type) -> tuple[str, ...]:
    """Names of a dataclass's fields that go into JSON (cached: reports have thousands of rows)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("json_skip"))
        _FIELD_NAMES[cls] = names
    return names


def to_jsonable(obj):
    """Plain JSON-ready data from dataclasses, enums, bytes, paths, sets, tuples."""
    if obj is None or type(obj) in (str, int, float, bool):
        return obj
    if hasattr(type(obj), "__dataclass_fields__") and not isinstance(obj, type):
        return {name: to_jsonable(getattr(obj, name)) for name in _json_fields(type(obj))}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return obj.hex()
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


INDENT_LIMIT = 200_000


def to_json(obj) -> str:
    """One JSON document: indented for reading, unless it is large.

    json only has a C encoder for un-indented output; indenting a 5000-row
    table costs ten times more, so documents over INDENT_LIMIT characters are
    printed compact (still one valid document).
    """
    data = to_jsonable(obj)
    compact = json.dumps(data)
    return compact if len(compact) > INDENT_LIMIT else json.dumps(data, indent=2)


def hexaddr(value: int | None, width: int = 0) -> str:
    if value is None:
        return "-"
    return f"0x{value:0{width}x}"


def human_size(n: int | None) -> str:
    """Bytes as a short human figure: 15.8 MiB, 64.0 KiB, 512 B -- up to PiB, for
    address-space distances and kcore's vmalloc region."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, scale in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
                        ("KiB", 1 << 10)):
        if n >= scale:
            return f"{sign}{n / scale:.1f} {unit}"
    return f"{sign}{n} B"


def _clip(text: str, width: int) -> str:
    if width <= 0 or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS


def fit_columns(headers: list[str], rows: list[list[str]], width: int | None,
                sep: int = 2, header_pad: int = 0) -> list[int] | None:
    """Per-column widths so the table fits *width*; None when it already fits.

    The widest columns are shrunk first, never below their header or 8 characters.
    *header_pad*: extra characters the layout gives every header (tabulate's
    "simple" format pads headers by 2, so a column is at least header + 2 wide).
    """
    if not width or not rows:
        return None
    cols = len(headers)
    natural = [max([len(str(headers[c])) + header_pad] + [len(str(r[c])) for r in rows])
               for c in range(cols)]
    total = sum(natural) + sep * (cols - 1)
    if total <= width:
        return None
    floor = [max(len(str(headers[c])) + header_pad, 8) for c in range(cols)]
    widths = list(natural)
    excess = total - width
    while excess > 0:
        c = max(range(cols), key=lambda i: widths[i] - floor[i])
        room = widths[c] - floor[c]
        if room <= 0:
            break
        take = min(room, excess, max(1, widths[c] // 4))
        widths[c] -= take
        excess -= take
    return widths


def table(headers: list[str], rows: list[list], width: int | None = None,
          title: str | None = None) -> str:
    """A plain-format table (tabulate) clipped to *width* characters when given."""
    from gdb_toolkit.common.deps import require

    tabulate = require("tabulate").tabulate
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    widths = fit_columns(headers, cells, width, header_pad=2)   # tabulate pads headers by 2
    if widths:
        cells = [[_clip(v, widths[i]) for i, v in enumerate(r)] for r in cells]
        headers = [_clip(h, widths[i]) for i, h in enumerate(headers)]
    text = tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)
    if title:
        text = f"{title}\n{text}"
    return text + "\n"


def key_values(pairs: list[tuple[str, object]]) -> str:
    """Aligned ``key: value`` lines for summaries above tables."""
    pairs = [(k, v) for k, v in pairs if v is not None]
    if not pairs:
        return ""
    w = max(len(k) for k, _ in pairs)
    return "".join(f"{k + ':':<{w + 1}} {v}\n" for k, v in pairs)
