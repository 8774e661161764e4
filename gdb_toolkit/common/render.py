"""Rendering shared by all commands: JSON, number formats, and the legacy
table/key-value entry points (the renderer itself is common.table; prose and
key/value blocks are common.text).

Reports are dataclasses; ``to_jsonable`` turns any of them into plain data so
``--json`` prints exactly what the Python API returns.  The envelope around it
(command, schema version, result or error) is added by the gdb layer; see
docs/json.md.
"""
ELLIPSIS = "…"


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _json_fields(cls: type) -> tuple[str, ...] | None:
    """Names of the fields of a dataclass or a common.record class that go into JSON, None
    for any other type (cached: reports have thousands of rows)."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        pass
    names = getattr(cls, "__record_json__", None)
    if names is None and hasattr(cls, "__dataclass_fields__"):
        import dataclasses

        names = tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("json_skip"))
    _FIELD_NAMES[cls] = names
    return names


def _hex_fields(cls: type) -> frozenset:
    """Fields a report class declares as words of memory (``__json_hex__``): a GOT slot's
    ``value``, a load bias -- printed "0x..." like addresses although their names are not
    address keys (docs/json.md, "Addresses are strings").  Cached per class."""
    try:
        return _HEX_FIELDS[cls]
    except KeyError:
        found = _HEX_FIELDS[cls] = frozenset(getattr(cls, "__json_hex__", ()))
        return found


_HEX_FIELDS: dict[type, frozenset] = {}


def is_address_key(key: str) -> bool:
    """The vocabulary rule of docs/json.md: ``address``, ``*_address`` (and the
    plural forms) hold addresses, printed as "0x..." strings by hex-address commands."""
    return key == "address" or key.endswith("_address") or key == "addresses" \
        or key.endswith("_addresses")


def hex_address(value):
    """An address as the JSON contract spells it: "0x" + lower-case hex (exact in jq
    and JavaScript, whose numbers lose precision above 2**53); None stays null."""
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        return f"0x{value & 0xFFFFFFFFFFFFFFFF:x}" if value < 0 else f"0x{value:x}"
    if isinstance(value, (list, tuple)):
        return [hex_address(v) for v in value]
    return value


def to_jsonable(obj, hex_addresses: bool = False):
    """Plain JSON-ready data from dataclasses, enums, bytes, paths, sets, tuples.

    *hex_addresses*: values under address keys (see :func:`is_address_key`) become
    "0x..." strings -- the contract of every command that adopted the schema.
    """
    if obj is None or type(obj) in (str, int, float, bool):
        return obj
    if hex_addresses:
        return _jsonable_hex(obj)
    names = None if isinstance(obj, type) else _json_fields(type(obj))
    if names is not None:
        return {name: to_jsonable(getattr(obj, name)) for name in names}
    return _other(obj, to_jsonable)


def _jsonable_hex(obj):
    if obj is None or type(obj) in (str, int, float, bool):
        return obj
    names = None if isinstance(obj, type) else _json_fields(type(obj))
    if names is not None:
        out = {}
        hexed = _hex_fields(type(obj))
        for name in names:
            v = _jsonable_hex(getattr(obj, name))
            out[name] = hex_address(v) if name in hexed or is_address_key(name) else v
        return out
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            k = str(k)
            v = _jsonable_hex(v)
            out[k] = hex_address(v) if is_address_key(k) else v
        return out
    return _other(obj, _jsonable_hex)


def _other(obj, again):
    import enum

    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): again(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [again(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return obj.hex()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return obj


INDENT_LIMIT = 200_000


def dumps(data) -> str:
    """One JSON document from plain data: indented for reading, unless it is large.

    json only has a C encoder for un-indented output; indenting a 5000-row
    table costs ten times more, so documents over INDENT_LIMIT characters are
    printed compact (still one valid document).
    """
    import json

    compact = json.dumps(data)
    if "\\udc" in compact:     # maybe a name with non-UTF-8 bytes (surrogateescape): escape it
        fixed = _escape_undecodable(data)
        if fixed is not data:
            data = fixed
            compact = json.dumps(data)
    return compact if len(compact) > INDENT_LIMIT else json.dumps(data, indent=2)


def _escape_undecodable(data):
    """*data* with every string that carries undecodable bytes rendered by
    common.names.escape_name (lossless, valid UTF-8 JSON; docs/json.md)."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
            return data
        except UnicodeEncodeError:
            from gdb_toolkit.common.names import escape_name

            return escape_name(data)
    if isinstance(data, dict):
        return {_escape_undecodable(k): _escape_undecodable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_escape_undecodable(v) for v in data]
    return data


def to_json(obj, hex_addresses: bool = False) -> str:
    """:func:`to_jsonable` then :func:`dumps`."""
    return dumps(to_jsonable(obj, hex_addresses))


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
    """Deprecated (clipping widths of the old renderers); kept for callers not yet converted.

    Per-column widths so the table fits *width*; None when it already fits.
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


# -- the ambient render context -------------------------------------------------------------
# The gdb layer (gdbsupport.command) sets these for the duration of a command's render(), so
# the legacy helpers below (table(), key_values() called without width/styler) fit gdb's
# width and use gdb's styles with no change in the domains.  New code passes ctx.width and
# ctx.styler explicitly; explicit arguments always win.
AMBIENT = {"width": None, "styler": None}

#: header -> role, for tables rendered through the legacy table() call (no roles given)
LEGACY_ROLES = {
    "address": "address", "slot": "address", "stub": "address", "start": "address",
    "end": "address", "got slot": "address", "pointer at": "address", "block": "address",
    "task": "address", "struct kprobe": "address", "prog": "address", "bpf_func (jit)": "address",
    "value": "address", "sp": "address",
    "symbol": "symbol", "function": "symbol", "allocated in": "symbol", "handler": "symbol",
    "at": "location", "where": "location", "file": "location", "location": "location",
    "status": "state", "state": "state", "check": "state", "slot now": "state", "live": "state",
}


def _is_hex(v: str) -> bool:
    return v.startswith("0x") and len(v) > 2 and all(c in "0123456789abcdef" for c in v[2:])


def legacy_columns(headers, cells) -> list:
    """Columns for a table given only headers: roles guessed from the header and the cells.

    A guessed symbol/location column whose cells hold spaces stays free text (it may
    wrap at spaces); an address column must hold only 0x... or '-'.
    """
    from gdb_toolkit.common.table import Col

    cols = []
    for i, h in enumerate(headers):
        role = LEGACY_ROLES.get(str(h).lower(), "text")
        values = [r[i] for r in cells if r[i]]
        if role == "address" and not all(_is_hex(v) or v == "-" for v in values):
            role = "text"
        elif role != "address" and values and all(_is_hex(v) or v == "-" for v in values) \
                and any(v != "-" for v in values):
            role = "address"
        if role != "text" and any(" " in v for v in values):
            role = "text"
        cols.append(Col(str(h), role))
    return cols


def table(headers: list[str], rows: list[list], width: int | None = None,
          title: str | None = None, styler=None) -> str:
    """Legacy entry point: a table under plain *headers* (roles guessed, see
    :func:`legacy_columns`), rendered by common.table.render_table -- nothing is
    clipped any more.  New code calls render_table with explicit Col roles."""
    from gdb_toolkit.common.table import _cells, render_table

    cells = _cells(rows)
    if width is None:
        width = AMBIENT["width"]
    return render_table(legacy_columns(headers, cells), cells, width=width, title=title,
                        styler=styler if styler is not None else AMBIENT["styler"])


def key_values(pairs: list[tuple], width: int | None = None, styler=None) -> str:
    """Aligned ``key: value`` lines (values wrap under themselves at *width*,
    by default the ambient gdb width); see common.text.key_values."""
    from gdb_toolkit.common.text import key_values as kv

    return kv(pairs, width if width is not None else AMBIENT["width"],
              styler if styler is not None else AMBIENT["styler"])
