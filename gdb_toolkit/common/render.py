"""Rendering shared by all commands: JSON and number formats (tables are
common.table; prose and key/value blocks are common.text).

Reports are dataclasses; ``to_jsonable`` turns any of them into plain data so
``--json`` prints exactly what the Python API returns.  The envelope around it
(command, schema version, result or error) is added by the gdb layer; see
docs/json.md.
"""


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
    address-space distances and kcore's vmalloc region.  The toolkit's one size formatter:
    reports and error messages (safe_open's size refusals) say sizes the same way."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, scale in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
                        ("KiB", 1 << 10)):
        if n >= scale:
            return f"{sign}{n / scale:.1f} {unit}"
    return f"{sign}{n} B"
