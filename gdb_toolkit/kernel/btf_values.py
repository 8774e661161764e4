"""Decode raw bytes of a BTF-described object into named fields (like gdb's ``p *ptr``).

``decode(btf, type_id, data)`` flattens structs/unions/arrays into rows of
(path, C type, byte offset, value text): integers in decimal (and hex when large),
pointers in hex with the symbol they point at, ``char[]`` and ``char *`` as strings,
enums by name, bitfields extracted.  Pure: symbolizing and string reading are callbacks.
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.kernel import btf as B


MAX_ROWS = 4096      # a struct dump stops there (a crafted BTF can nest wide types deep)


@record
class FieldValue:
    path: str
    c_type: str
    offset: int          # bytes from the start of the object
    value: str
    raw: int | None = field(default=None, metadata={"json_skip": True})   # the integer read


# JSON keys (docs/json.md): the rendered value is `text`, as ktask's fields say it (`value` is a
# string of one kind, "0x..." bits or a char array's text, in ktask, got and kx; contract v3);
# the member path is `member_path` (`path` is a file path: got's objects, kcore; contract v4)
json_keys(FieldValue, {"path": "member_path", "value": "text"})


def _int(data: bytes, off: int, size: int, signed: bool) -> int | None:
    if off + size > len(data) or size not in (1, 2, 4, 8, 16):
        return None
    return int.from_bytes(data[off:off + size], "little", signed=signed)


def decode(btf, type_id: int, data: bytes, symbolize=None, read_string=None,
           prefix: str = "", base: int = 0, max_array: int = 16, depth: int = 0) -> list[FieldValue]:
    """Rows for every leaf member of *type_id* found in *data* (object starts at data[base])."""
    rows: list[FieldValue] = []
    t = btf.strip(type_id)
    tname = btf.type_name(type_id)
    if depth > 8 or base > len(data):
        return [FieldValue(prefix, tname, base, "...")]
    if t.kind in (B.STRUCT, B.UNION):
        for m in t.members:
            sub = f"{prefix}.{m.name}" if prefix and m.name else (m.name or prefix)
            off = base + m.bit_offset // 8
            if m.bit_size or m.bit_offset % 8:
                try:
                    bits = m.bit_size or btf.size_of(m.type_id) * 8
                except B.ToolkitError:
                    bits = 0
                shift = m.bit_offset % 8
                if not 0 < bits <= 128:              # not a bitfield any compiler makes
                    rows.append(FieldValue(sub, btf.type_name(m.type_id), off, "<bad bitfield>"))
                    continue
                raw = int.from_bytes(data[off:off + (shift + bits + 7) // 8], "little")
                val = (raw >> shift) & ((1 << bits) - 1)
                rows.append(FieldValue(sub, btf.type_name(m.type_id) + f":{bits}", off, str(val), val))
                continue
            rows += decode(btf, m.type_id, data, symbolize, read_string, sub, off, max_array, depth + 1)
            if len(rows) > MAX_ROWS:
                rows.append(FieldValue(f"{prefix}...", "", off, "... (more fields)"))
                break
        return rows
    if t.kind == B.ARRAY:
        elem = btf.strip(t.elem)
        esize = btf.size_of(t.elem)
        if elem.kind == B.INT and esize == 1:
            raw = data[base:base + t.nelems]
            if elem.int_encoding & B.INT_CHAR or elem.name == "char":
                text = raw.split(b"\0")[0].decode("latin-1")
                if text.isprintable() and (text or not any(raw)):
                    return [FieldValue(prefix, tname, base, repr(text))]
            return [FieldValue(prefix, tname, base, raw.hex(" "))]
        out = []
        for i in range(min(t.nelems, max_array)):
            out += decode(btf, t.elem, data, symbolize, read_string, f"{prefix}[{i}]",
                          base + i * esize, max_array, depth + 1)
        if t.nelems > max_array:
            out.append(FieldValue(f"{prefix}[{max_array}..]", btf.type_name(t.elem), base + max_array * esize,
                                  f"... {t.nelems - max_array} more"))
        return out
    if t.kind == B.PTR:
        v = _int(data, base, 8, False)
        if v is None:
            return [FieldValue(prefix, tname, base, "<not read>")]
        text = f"0x{v:x}" if v else "NULL"
        target = btf.strip(t.ref)
        s = None
        if v and target.kind == B.INT and target.name == "char" and read_string:
            s = read_string(v)
            if s is not None and s.isprintable():
                text += f" {s!r}"
        if v and s is None and symbolize:
            s = symbolize(v)
            if s:
                text += f" <{s}>"
        return [FieldValue(prefix, tname, base, text, v)]
    if t.kind in (B.INT, B.ENUM, B.ENUM64):
        signed = bool(t.int_encoding & B.INT_SIGNED) if t.kind == B.INT else t.kind_flag
        v = _int(data, base, t.size, signed)
        if v is None:
            return [FieldValue(prefix, tname, base, "<not read>")]
        if t.kind == B.INT and t.int_encoding & B.INT_BOOL:
            text = "true" if v else "false"
        elif t.kind != B.INT:
            names = [n for n, val in t.members if val == v]
            text = names[0] if names else str(v)
        else:
            text = str(v) if -1000000 < v < 1000000 else f"{v} (0x{v & ((1 << (8 * t.size)) - 1):x})"
        return [FieldValue(prefix, tname, base, text, v)]
    if t.kind == B.FLOAT:
        fmt = {4: "<f", 8: "<d"}.get(t.size)
        if fmt and base + t.size <= len(data):
            return [FieldValue(prefix, tname, base, repr(struct.unpack_from(fmt, data, base)[0]))]
    return [FieldValue(prefix, tname, base, f"<{t.kind_name}>")]
