"""GOT diff: what changed between two ``got`` reports -- two stops of one process, or a
core file and a live process (other load addresses: slots are matched by object and
link-time offset, values compared by what they point to)."""
import json

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, json_keys, record


@record
class SlotChange:
    object: str
    address: int              # in the newer report
    symbol: str
    change: str               # changed / appeared / vanished
    before: str | None
    after: str | None
    value_before: int | None
    value_after: int | None

    #: slot contents: "0x..." in --json like the slot's address
    __json_hex__ = ("value_before", "value_after")


@record
class GotDiff:
    before: str               # what the older side is: "the previous 'got' (live)", a file name
    after: str
    same_addresses: bool      # same load biases: raw values are comparable
    changes: list[SlotChange] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)


# JSON key (contract v5, docs/json.md): counts end in `_count`
json_keys(GotDiff, {"unchanged": "unchanged_count"})


def _plain(report) -> dict:
    """A got report (dataclass) or its JSON (bare, or inside the toolkit's envelope)."""
    if isinstance(report, dict):
        doc = report.get("result", report) if "slots" not in report else report
        return doc
    from gdb_toolkit.common.render import to_jsonable

    return to_jsonable(report)


def load_saved(path: str) -> dict:
    """A report saved with 'got --json' (e.g. from a core: pipe got --json | cat > FILE)."""
    from gdb_toolkit.common.safe_open import read_regular

    data = read_regular(path, "saved 'got --json' report", 256 << 20)
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ToolkitError(f"{path} is not a JSON document ({exc})",
                           "give the file written by 'pipe got --json | cat > FILE'") from None
    doc = _plain(doc)
    if not isinstance(doc, dict) or not isinstance(doc.get("slots"), list) or not isinstance(doc.get("objects"), list):
        raise ToolkitError(f"{path} is not a 'got --json' report", "save one with 'pipe got --json | cat > FILE'")
    _check_saved(doc, path)
    return doc


def _check_saved(doc: dict, path: str) -> None:
    """Every field the diff reads has the type got --json writes (docs/json.md): an edited or
    damaged file was diffed as it was -- an object {"a": 1} shown as its Python repr, an
    address 2^70 as 0x400000000000000000, rows silently dropped -- now it is refused, naming
    the first bad field."""
    from gdb_toolkit.common.names import escape_name

    def bad(where: str, key: str, value) -> ToolkitError:
        shown = escape_name(json.dumps(value)[:40])
        return ToolkitError(f"{escape_name(path)}: {where} has {key} {shown}, which 'got --json' never "
                            "writes (the file is edited or damaged)",
                            "save the report again with 'pipe got --json | cat > FILE'")

    def number(v, lo: int = 0) -> bool:
        if isinstance(v, bool):
            return False
        try:
            n = _int(v) if isinstance(v, (int, str)) else None
        except ValueError:
            return False
        return n is not None and lo <= n < 1 << 64

    for i, o in enumerate(doc["objects"]):
        where = f"objects[{i}]"
        if not isinstance(o, dict) or not isinstance(o.get("path"), str):
            raise bad(where, "path", o.get("path") if isinstance(o, dict) else o)
        if o.get("bias") is not None and not number(o["bias"]):
            raise bad(where, "bias", o["bias"])
    for i, r in enumerate(doc["slots"]):
        where = f"slots[{i}]"
        if not isinstance(r, dict):
            raise bad(where, "type", r)
        if not isinstance(r.get("object"), str):
            raise bad(where, "object", r.get("object"))
        if not number(r.get("address")):
            raise bad(where, "address", r.get("address"))
        for key in ("symbol", "state", "target"):
            if r.get(key) is not None and not isinstance(r[key], str):
                raise bad(where, key, r[key])
        for key in ("value", "file_value"):
            if r.get(key) is not None and not number(r[key]):
                raise bad(where, key, r[key])


def _int(v) -> int:
    """An address or number from a report: an int, or "0x..." (the JSON contract)."""
    return int(v, 16) if isinstance(v, str) else int(v)


def _word(v) -> int | None:
    """A slot's value from a report: an int (a report of this session, a schema-1 file) or
    "0x..." (a saved 'got --json' since schema 2); None when absent or unreadable."""
    try:
        return None if v is None else _int(v)
    except (TypeError, ValueError):
        return None


def _keyed(doc: dict) -> tuple[dict, dict[str, int]]:
    biases = {}
    for o in doc.get("objects", []):
        try:
            name = str(o["path"]).rsplit("/", 1)[-1]
            if o.get("namespace"):
                name += f"[ns{o['namespace']}]"
            biases[name] = _int(o.get("bias") or 0)
        except (KeyError, TypeError, ValueError):
            continue
    rows = {}
    for r in doc.get("slots", []):
        try:
            obj = str(r["object"])
            rows[(obj, _int(r["address"]) - biases.get(obj, 0))] = r
        except (KeyError, TypeError, ValueError):
            continue
    return rows, biases


#: what a target says beside the address it names (new in later versions of the report):
#: a report saved before they existed must not differ from one with them
_ASIDES = (" (LD_PRELOAD)", " (the ifunc resolver, not its choice)")


def _what(r: dict) -> tuple:
    """(state, target) with the asides removed: what the slot points to."""
    target = str(r.get("target"))
    for aside in _ASIDES:
        target = target.replace(aside, "")
    cut = target.find(" (chosen by ifunc ")
    return r.get("state"), target[:cut] if cut >= 0 else target


def _show(r: dict) -> str:
    return f"{r.get('state')}: {r.get('target')}"


def diff_reports(old, new, old_label: str, new_label: str) -> GotDiff:
    a, ab = _keyed(_plain(old))
    b, bb = _keyed(_plain(new))
    same = all(ab.get(k) == v for k, v in bb.items() if k in ab)
    out = GotDiff(old_label, new_label, same)
    for key in sorted(set(a) | set(b), key=lambda k: (k[0], k[1])):
        ra, rb = a.get(key), b.get(key)
        if ra is None or rb is None:
            r = rb or ra
            out.changes.append(SlotChange(key[0], _int(r["address"]), str(r.get("symbol")),
                                          "appeared" if ra is None else "vanished",
                                          None if ra is None else _show(ra), None if rb is None else _show(rb),
                                          None if ra is None else _word(ra.get("value")),
                                          None if rb is None else _word(rb.get("value"))))
            continue
        differs = (_word(ra.get("value")) != _word(rb.get("value"))) if same else \
            _what(ra) != _what(rb)
        if differs:
            out.changes.append(SlotChange(key[0], _int(rb["address"]), str(rb.get("symbol")), "changed",
                                          _show(ra), _show(rb), _word(ra.get("value")), _word(rb.get("value"))))
        else:
            out.unchanged += 1
    if not same:
        out.notes.append("load addresses differ between the two sides: slots matched by object and offset, "
                         "values compared by what they point to")
    return out
