"""A BTF parser: /sys/kernel/btf/vmlinux and module BTF, written from the format spec.

Layout (include/uapi/linux/btf.h): ``struct btf_header`` (magic 0xeB9F, version,
flags, hdr_len, type_off/len, str_off/len -- offsets after the header), then the
type section (a ``struct btf_type`` per type, ids from 1, each followed by
kind-specific data) and the string section.  Module BTF is "split": its ids
continue after the base's and string offsets past the base's string section are
its own.

Loading only scans the type section to record where each type starts (well under
a second for vmlinux); names are indexed on the first ``find``.  ``resolve``
turns ``task_struct`` + ``signal->rlim[3].rlim_cur`` into byte offsets with the
pointer dereferences between them, and ``c_decl``/``c_definition`` render C.
"""
import os
import _struct as struct   # what struct.py re-exports (see plt/slots.py)
from gdb_toolkit.common.record import field, record

from gdb_toolkit.common.errors import ToolkitError

BTF_MAGIC = 0xEB9F
MAX_BTF_FILE = 1 << 30          # a vmlinux ELF carrying .BTF can be large; BTF itself ~5 MB

(UNKN, INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC,
 FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64) = range(20)
KIND_NAMES = ["unknown", "int", "ptr", "array", "struct", "union", "enum", "fwd", "typedef",
              "volatile", "const", "restrict", "func", "func_proto", "var", "datasec", "float",
              "decl_tag", "type_tag", "enum64"]
KIND_BY_NAME = {n: i for i, n in enumerate(KIND_NAMES)}
MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)
QUALIFIERS = {VOLATILE: "volatile", CONST: "const", RESTRICT: "restrict"}
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4

_HDR = struct.Struct("<HBBIIIII")
_T = struct.Struct("<III")


@record
class Member:
    name: str           # "" for an anonymous struct/union member
    type_id: int
    bit_offset: int     # from the start of the enclosing struct
    bit_size: int       # 0 unless a bitfield


@record
class Type:
    id: int
    kind: int
    name: str
    size: int | None = None          # INT/STRUCT/UNION/ENUM/FLOAT/DATASEC/ENUM64
    ref: int | None = None           # PTR/TYPEDEF/modifiers/FUNC/VAR/DECL_TAG: target; FUNC_PROTO: return
    members: list = field(default_factory=list)      # Member | (name, value) | (name, type_id) params
    kind_flag: bool = False
    # INT
    int_encoding: int = 0
    int_bits: int = 0
    int_offset: int = 0
    # ARRAY
    elem: int | None = None
    nelems: int = 0
    vlen: int = 0

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]


@record
class PathStep:
    """One component of a member path."""
    text: str            # as written: "signal", "rlim[3]", "rlim_cur"
    deref: bool          # the pointer reached so far must be loaded before adding offset
    offset: int          # bytes added (after the dereference, if any)
    type_id: int
    type_name: str       # C spelling of the component's type


@record
class MemberPath:
    """``resolve``'s answer: where a member lives, hop by hop, and what it is."""
    root: str
    expr: str
    steps: list[PathStep]
    hops: list[int]      # byte offsets; between consecutive hops a pointer is loaded
    type_id: int
    type_name: str
    kind: str            # int, ptr, struct, array, enum, ...
    size: int | None
    signed: bool
    bit_size: int = 0    # > 0: a bitfield of this many bits ...
    bit_shift: int = 0   # ... starting this many bits into the byte at the final offset

    @property
    def offset(self) -> int:
        """The final byte offset (within the last dereferenced object)."""
        return self.hops[-1]

    @property
    def derefs(self) -> int:
        return len(self.hops) - 1

    def address(self, base: int, read_pointer) -> int:
        """Final address from an object at *base*; read_pointer(addr) -> int loads pointers."""
        addr = base + self.hops[0]
        for off in self.hops[1:]:
            addr = read_pointer(addr) + off
        return addr

    def extract(self, data: bytes) -> int:
        """The integer value from the bytes read at the final address (handles bitfields)."""
        if self.bit_size:
            raw = int.from_bytes(data[:(self.bit_shift + self.bit_size + 7) // 8], "little")
            v = (raw >> self.bit_shift) & ((1 << self.bit_size) - 1)
            if self.signed and v >> (self.bit_size - 1):
                v -= 1 << self.bit_size
            return v
        return int.from_bytes(data[:self.size], "little", signed=self.signed)


class _Offsets:
    """Type record offsets kept as word indexes (sorted), with a reverse lookup."""

    def __init__(self, words: list[int], start: int):
        self.words = words
        self.start = start

    def __len__(self):
        return len(self.words)

    def __getitem__(self, i: int) -> int:
        return self.start + 4 * self.words[i]

    def __iter__(self):
        s = self.start
        return (s + 4 * w for w in self.words)

    def index_of(self, byte_offset: int) -> int | None:
        import _bisect as bisect   # what bisect.py re-exports (see plt/slots.py)

        w = (byte_offset - self.start) // 4
        i = bisect.bisect_left(self.words, w)
        return i if i < len(self.words) and self.words[i] == w else None


def _btf_error(path: str, why: str) -> ToolkitError:
    return ToolkitError(f"{path} is not valid BTF: {why}",
                        "give /sys/kernel/btf/vmlinux or a module's /sys/kernel/btf/MODULE")


class Btf:
    def __init__(self, data: bytes, path: str = "<bytes>", base: "Btf | None" = None):
        self.path = path
        self.base = base
        if len(data) < _HDR.size:
            raise _btf_error(path, "too short")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(data)
        if magic != BTF_MAGIC:
            if magic == 0x9FEB:
                raise _btf_error(path, "big-endian BTF is not supported")
            raise _btf_error(path, f"bad magic 0x{magic:04x}")
        if version != 1:
            raise _btf_error(path, f"version {version}")
        if hdr_len + type_off + type_len > len(data) or hdr_len + str_off + str_len > len(data):
            raise _btf_error(path, "sections run past the end")
        self.data = data
        self.types_start = hdr_len + type_off
        self.types_end = self.types_start + type_len
        self.strs_start = hdr_len + str_off
        self.strs_end = self.strs_start + str_len
        self.first_id = base.count if base else 1   # ids of this (split) BTF start here
        self.base_str_len = base.total_str_len if base else 0
        self._offsets = self._scan()
        self._cache: dict[int, Type] = {}
        self._names: dict[tuple[str, int], list[int]] | None = None
        self._id_cache: dict[str, list[int]] = {}
        self._ptr_size: int | None = None

    @property
    def total_str_len(self) -> int:
        return self.base_str_len + (self.strs_end - self.strs_start)

    @property
    def count(self) -> int:
        """One past the largest type id (base included)."""
        return self.first_id + len(self._offsets)

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, path: str = "/sys/kernel/btf/vmlinux", base: "Btf | str | None" = None) -> "Btf":
        """Load BTF from *path*; module BTF needs *base* (a Btf or the vmlinux path).

        A file under /sys/kernel/btf/ other than vmlinux gets the vmlinux base by default."""
        if base is None and path.startswith("/sys/kernel/btf/") and not path.endswith("/vmlinux"):
            base = "/sys/kernel/btf/vmlinux"
        if isinstance(base, str):
            base = cls.load(base)
        from gdb_toolkit.common.safe_open import read_regular

        if path == "/sys/kernel/btf/vmlinux" and not os.path.exists(path):
            raise ToolkitError("/sys/kernel/btf/vmlinux does not exist: the kernel has no "
                               "CONFIG_DEBUG_INFO_BTF",
                               "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y "
                               "(Debian's has it)")
        data = read_regular(path, "BTF file", MAX_BTF_FILE)
        if data[:4] == b"\x7fELF":
            data = _elf_btf_section(data, path)
        return cls(data, path, base)

    def _scan(self) -> list[int]:
        """Byte offset of every type record, in id order (one pass over 32-bit words)."""
        start, end = self.types_start, self.types_end
        if (end - start) % 4:
            raise _btf_error(self.path, "type section size is not a multiple of 4")
        if start % 4:   # memoryview.cast needs no alignment, but keep word indexes simple
            words = memoryview(bytes(self.data[start:end])).cast("I")
        else:
            words = memoryview(self.data)[start:end].cast("I")
        # words after the 3-word header: fixed per kind, plus per-vlen
        fixed = [0] * 32
        per = [0] * 32
        for k, n in ((INT, 1), (ARRAY, 3), (VAR, 1), (DECL_TAG, 1)):
            fixed[k] = n
        for k, n in ((STRUCT, 3), (UNION, 3), (ENUM, 2), (FUNC_PROTO, 2), (DATASEC, 3), (ENUM64, 3)):
            per[k] = n
        n_words = len(words)
        offsets = []
        append = offsets.append
        i = 0
        try:
            while i < n_words:
                append(i)
                info = words[i + 1]
                kind = (info >> 24) & 0x1F
                if kind > ENUM64:
                    raise _btf_error(self.path, f"unknown kind {kind} (type {len(offsets)})")
                i += 3 + fixed[kind] + per[kind] * (info & 0xFFFF)
        except IndexError:
            raise _btf_error(self.path, f"truncated type {len(offsets)}") from None
        finally:
            words.release()
        if i != n_words:
            raise _btf_error(self.path, "the last type runs past the type section")
        return _Offsets(offsets, start)

    # -- strings and types ------------------------------------------------------
    def string(self, off: int) -> str:
        if off < self.base_str_len:
            return self.base.string(off)
        start = self.strs_start + off - self.base_str_len
        if start >= self.strs_end:
            raise _btf_error(self.path, f"string offset {off} out of range")
        end = self.data.find(b"\0", start, self.strs_end)
        if end < 0:
            raise _btf_error(self.path, f"string at offset {off} is not terminated")
        return self.data[start:end].decode("utf-8", "replace")

    def _owner(self, tid: int) -> "Btf":
        if tid < self.first_id:
            if self.base is None:
                raise KeyError(tid)
            return self.base._owner(tid)
        return self

    def type(self, tid: int) -> Type:
        """The decoded type *tid* (0 is void)."""
        if tid == 0:
            return Type(0, UNKN, "void")
        owner = self._owner(tid)
        if owner is not self:
            return owner.type(tid)
        t = self._cache.get(tid)
        if t is None:
            idx = tid - self.first_id
            if idx >= len(self._offsets):
                raise ToolkitError(f"BTF type id {tid} does not exist in {self.path}",
                                   "ids run up to " + str(self.count - 1))
            t = self._decode(tid, self._offsets[idx])
            self._cache[tid] = t
        return t

    def _decode(self, tid: int, off: int) -> Type:
        d = self.data
        name_off, info, sz = _T.unpack_from(d, off)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        t = Type(tid, kind, self.string(name_off) if name_off else "", kind_flag=kflag, vlen=vlen)
        p = off + 12
        if kind == INT:
            t.size = sz
            enc = struct.unpack_from("<I", d, p)[0]
            t.int_encoding, t.int_offset, t.int_bits = (enc >> 24) & 0xF, (enc >> 16) & 0xFF, enc & 0xFF
        elif kind in (STRUCT, UNION):
            t.size = sz
            for i in range(vlen):
                mn, mt, mo = struct.unpack_from("<III", d, p + 12 * i)
                if kflag:
                    t.members.append(Member(self.string(mn) if mn else "", mt, mo & 0xFFFFFF, mo >> 24))
                else:
                    t.members.append(Member(self.string(mn) if mn else "", mt, mo, 0))
        elif kind == ENUM:
            t.size = sz
            for i in range(vlen):
                mn, val = struct.unpack_from("<Ii" if kflag else "<II", d, p + 8 * i)  # kflag: signed
                t.members.append((self.string(mn), val))
        elif kind == ENUM64:
            t.size = sz
            for i in range(vlen):
                mn, lo, hi = struct.unpack_from("<III", d, p + 12 * i)
                val = (hi << 32) | lo
                if kflag and val >> 63:
                    val -= 1 << 64
                t.members.append((self.string(mn), val))
        elif kind == ARRAY:
            t.elem, _index, t.nelems = struct.unpack_from("<III", d, p)
        elif kind == FUNC_PROTO:
            t.ref = sz
            for i in range(vlen):
                pn, pt = struct.unpack_from("<II", d, p + 8 * i)
                t.members.append((self.string(pn) if pn else "", pt))
        elif kind == DATASEC:
            t.size = sz
            for i in range(vlen):
                t.members.append(struct.unpack_from("<III", d, p + 12 * i))
        elif kind == VAR:
            t.ref = sz
            t.int_encoding = struct.unpack_from("<I", d, p)[0]     # linkage
        elif kind == DECL_TAG:
            t.ref = sz
            t.int_offset = struct.unpack_from("<i", d, p)[0]       # component_idx
        elif kind == FLOAT:
            t.size = sz
        elif kind == FWD:
            pass
        else:   # PTR TYPEDEF VOLATILE CONST RESTRICT FUNC TYPE_TAG
            t.ref = sz
        return t

    def __iter__(self):
        for tid in range(self.first_id, self.count):
            yield self.type(tid)

    # -- names ------------------------------------------------------------------
    def names(self) -> dict[tuple[str, int], list[int]]:
        """(name, kind) -> ids of this BTF's own types: a full index, built once on demand
        (for listings and prefix searches; ``find`` does not need it)."""
        if self._names is None:
            names: dict[tuple[str, int], list[int]] = {}
            d, unpack = self.data, _T.unpack_from
            strs, base_len = self.strs_start, self.base_str_len
            for i, off in enumerate(self._offsets):
                name_off, info, _ = unpack(d, off)
                if not name_off:
                    continue
                if name_off >= base_len:
                    s = strs + name_off - base_len
                    name = d[s:d.index(b"\0", s)].decode("utf-8", "replace")
                else:
                    name = self.base.string(name_off)
                names.setdefault((name, (info >> 24) & 0x1F), []).append(self.first_id + i)
            self._names = names
        return self._names

    def _name_offsets(self, name: str) -> list[int]:
        """String-section offsets (as BTF name_off values) whose string is exactly *name*."""
        out = []
        needle = b"\0" + name.encode("utf-8", "surrogateescape") + b"\0"   # a kallsyms name: any bytes
        pos = self.data.find(needle, self.strs_start, self.strs_end)
        if pos >= 0:
            out.append(pos + 1 - self.strs_start + self.base_str_len)
        if self.base is not None:
            out += [o for o in self.base._name_offsets(name) if o < self.base_str_len]
        return out

    def _ids_named(self, name: str) -> list[int]:
        """Ids of this BTF's own types called *name* (string search, no full index).

        A record starts with name_off, then info whose top byte holds the kind (bits
        24..28) and kind_flag (bit 31): the regex finds exactly those byte patterns."""
        import re

        hit = self._id_cache.get(name)
        if hit is not None:
            return hit
        ids = []
        d = self.data
        for name_off in self._name_offsets(name):
            pat = re.compile(re.escape(struct.pack("<I", name_off)) + b"...[\x01-\x13\x81-\x93]",
                             re.S)
            for m in pat.finditer(d, self.types_start, self.types_end):
                pos = m.start()
                if (pos - self.types_start) % 4 == 0:
                    idx = self._offsets.index_of(pos)
                    if idx is not None:
                        ids.append(self.first_id + idx)
        ids.sort()
        self._id_cache[name] = ids
        return ids

    def find_all(self, name: str, kind: str | int | None = None) -> list[Type]:
        k = self._kind(kind) if kind is not None else None
        out = [t for t in (self.type(i) for i in self._ids_named(name)) if k is None or t.kind == k]
        if self.base is not None:
            out = self.base.find_all(name, kind) + out
        return out

    @staticmethod
    def _kind(kind) -> int:
        if isinstance(kind, int):
            return kind
        try:
            return KIND_BY_NAME[kind]
        except KeyError:
            raise ToolkitError(f"unknown BTF kind {kind!r}",
                               "use one of " + ", ".join(KIND_NAMES[1:])) from None

    def find(self, name: str, kind: str | int | None = "struct") -> Type | None:
        """The type called *name* of *kind* (None: any kind; "struct foo"/"union foo"/
        "enum foo" spellings pick the kind).  Complete definitions win over forward
        declarations."""
        name = name.strip()
        for prefix in ("struct ", "union ", "enum "):
            if name.startswith(prefix):
                kind, name = prefix.strip(), name[len(prefix):].strip()
        kinds = [kind] if kind is not None else ["struct", "union", "typedef", "enum", "enum64",
                                                  "int", "float", "func", "var", "datasec", "fwd"]
        if kind == "enum":
            kinds = ["enum", "enum64"]
        for k in kinds:
            found = self.find_all(name, k)
            if found:
                return found[0]
        return None

    def lookup_type(self, name: str) -> Type:
        """A type by C name: "task_struct", "struct file", "u64", "unsigned long"; else ToolkitError."""
        t = self.find(name, None if not name.startswith(("struct ", "union ", "enum ")) else "struct")
        if t is None or t.kind in (FUNC, VAR, DATASEC):
            for kind in ("struct", "union", "typedef", "enum", "int", "float"):
                t2 = self.find(name, kind)
                if t2 is not None:
                    return t2
            raise ToolkitError(f"no type {name!r} in {self.path}",
                               "check the spelling (BTF has no macros or #defines)")
        return t

    # -- type arithmetic ------------------------------------------------------------
    def strip(self, tid: int, typedefs: bool = True) -> Type:
        """Follow typedefs/const/volatile/restrict/type tags."""
        t = self.type(tid)
        seen = 0
        while t.kind in MODIFIERS and (typedefs or t.kind != TYPEDEF):
            t = self.type(t.ref)
            seen += 1
            if seen > 64:
                raise _btf_error(self.path, f"modifier loop at type {tid}")
        return t

    def size_of(self, tid: int, _depth: int = 0) -> int:
        t = self.strip(tid)
        if t.kind == PTR:
            return self.pointer_size
        if t.kind == ARRAY:
            if _depth > 32:
                raise _btf_error(self.path, f"array type {tid} nests too deep (a loop?)")
            n = t.nelems * self.size_of(t.elem, _depth + 1)
            if n > 1 << 40:
                raise _btf_error(self.path, f"array type {tid} claims {n} bytes")
            return n
        if t.size is not None:
            return t.size
        if t.kind == UNKN:
            return 0
        raise ToolkitError(f"type {self.type_name(tid)!r} has no size ({t.kind_name})",
                           "a forward declaration or function has no size")

    @property
    def pointer_size(self) -> int:
        if self._ptr_size is None:
            if self.base is not None:
                self._ptr_size = self.base.pointer_size
            else:
                t = self.find("long unsigned int", "int") or self.find("unsigned long", "int")
                self._ptr_size = t.size if t else 8
        return self._ptr_size

    def type_size(self, name: str) -> int:
        return self.size_of(self.lookup_type(name).id)

    # -- member paths -------------------------------------------------------------
    def member_chain(self, tid: int, name: str, _seen: frozenset = frozenset()) -> list[Member] | None:
        """Members leading to *name* in struct/union *tid*, descending into anonymous
        structs/unions; None if there is none."""
        t = self.strip(tid)
        if t.kind not in (STRUCT, UNION) or t.id in _seen or len(_seen) > 32:
            return None
        for m in t.members:
            if m.name == name:
                return [m]
        for m in t.members:
            if not m.name:
                sub = self.member_chain(m.type_id, name, _seen | {t.id})
                if sub is not None:
                    return [m] + sub
        return None

    def member_names(self, tid: int, _seen: frozenset = frozenset()) -> list[str]:
        t = self.strip(tid)
        out = []
        if t.kind in (STRUCT, UNION) and t.id not in _seen and len(_seen) <= 32:
            for m in t.members:
                out += [m.name] if m.name else self.member_names(m.type_id, _seen | {t.id})
        return out

    def resolve(self, type_name: str, path: str) -> MemberPath:
        """Resolve ``type_name`` + ``path`` ("signal->rlim[3].rlim_cur", "comm", "[2]")."""
        root = self.lookup_type(type_name)
        tokens = _tokenize(path)
        cur = root.id
        hops = [0]
        steps: list[PathStep] = []
        bit_size, bit_rem = 0, 0
        for sep, tok in tokens:
            t = self.strip(cur)
            deref = False
            if sep == "->" or (t.kind == PTR and (sep == "." or tok.startswith("["))):
                if t.kind != PTR:
                    raise ToolkitError(f"'->' before {tok!r}: {self.type_name(cur)!r} is not a pointer",
                                       "use '.' for an embedded member")
                if bit_size:
                    raise ToolkitError(f"cannot follow bitfield before {tok!r}", None)
                deref = True
                hops.append(0)
                cur = t.ref
                t = self.strip(cur)
                if t.kind == FWD or (t.kind in (STRUCT, UNION) and not t.members and t.size == 0
                                     and t.name):
                    full = self.find(t.name, "union" if (t.kind == UNION or (t.kind == FWD and t.kind_flag))
                                     else "struct")
                    if full is not None and full.members:
                        cur, t = full.id, full
            if tok.startswith("["):
                idx = int(tok[1:-1], 0)
                if deref:   # p[3] on a pointer: index the pointee
                    off = idx * self.size_of(cur)
                elif t.kind == ARRAY:
                    if t.nelems and not 0 <= idx < t.nelems:
                        raise ToolkitError(f"index {idx} is outside {self.type_name(cur)} "
                                           f"(0..{t.nelems - 1})", "use a smaller index")
                    cur = t.elem
                    off = idx * self.size_of(cur)
                else:
                    raise ToolkitError(f"cannot index {self.type_name(cur)!r} with {tok}",
                                       "only arrays and pointers can be indexed")
                hops[-1] += off
                steps.append(PathStep(tok, deref, off, cur, self.type_name(cur)))
                bit_size = bit_rem = 0
                continue
            if t.kind not in (STRUCT, UNION):
                raise ToolkitError(f"{self.type_name(cur)!r} has no member {tok!r} "
                                   f"(it is a {t.kind_name})", "members exist only in structs and unions")
            chain = self.member_chain(t.id, tok)
            if chain is None:
                if t.kind in (STRUCT, UNION) and not t.members:
                    raise ToolkitError(f"{self.type_name(t.id)} is only declared in {self.path}",
                                       "load the module BTF that defines it")
                names = self.member_names(t.id)
                import difflib
                near = difflib.get_close_matches(tok, names, n=3)
                raise ToolkitError(f"{self.type_name(t.id)} has no member {tok!r}",
                                   f"did you mean {', '.join(near)}" if near else
                                   f"members are: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}")
            bits = sum(m.bit_offset for m in chain)
            last = chain[-1]
            fld = self.strip(last.type_id)
            bit_size = last.bit_size
            if not bit_size and fld.kind == INT and fld.int_bits and fld.int_bits != fld.size * 8:
                bit_size = fld.int_bits       # old-style bitfield encoded in the int
                bits += fld.int_offset
            if not bit_size and bits % 8:
                bit_size = self.size_of(last.type_id) * 8
            off, bit_rem = bits // 8, bits % 8
            hops[-1] += off
            cur = last.type_id
            steps.append(PathStep(tok, deref, off, cur, self.type_name(cur)))
        final = self.strip(cur)
        signed = bool(final.kind == INT and final.int_encoding & INT_SIGNED)
        if final.kind in (ENUM, ENUM64):
            signed = final.kind_flag
        size = None
        try:
            size = self.size_of(cur)
        except ToolkitError:
            pass
        return MemberPath(root=self.type_name(root.id), expr=path, steps=steps, hops=hops,
                          type_id=cur, type_name=self.type_name(cur), kind=final.kind_name,
                          size=size, signed=signed, bit_size=bit_size, bit_shift=bit_rem)

    # -- C rendering ----------------------------------------------------------------
    def type_name(self, tid: int) -> str:
        """C spelling of a type, e.g. "struct task_struct *", "char [16]"."""
        return self.c_decl(tid, "").strip()

    def _base_name(self, t: Type) -> str:
        if t.kind == UNKN:
            return "void"
        if t.kind in (STRUCT, UNION):
            kw = "struct" if t.kind == STRUCT else "union"
            return f"{kw} {t.name}" if t.name else f"{kw} {{...}}"
        if t.kind in (ENUM, ENUM64):
            return f"enum {t.name}" if t.name else "enum {...}"
        if t.kind == FWD:
            return ("union " if t.kind_flag else "struct ") + t.name
        return t.name or f"<anon {t.kind_name} #{t.id}>"

    #: type records one rendering may visit: a crafted BTF whose prototypes take pointers to
    #: prototypes (each with many parameters) would otherwise branch without end
    DECL_BUDGET = 4000

    def c_decl(self, tid: int, inner: str = "", _depth: int = 0, _walk=None) -> str:
        """A C declarator: c_decl(id_of("char [16]"), "comm") -> "char comm[16]".

        Bounded: a type that refers back to itself renders as ``<cycle>`` and, past
        DECL_BUDGET visited records, nested prototypes' parameters shorten to ``...``."""
        if _walk is None:
            _walk = [self.DECL_BUDGET, set()]      # [records left, ids on the current chain]
        _walk[0] -= 1
        if _depth > 64 or tid in _walk[1]:
            return f"<cycle> {inner}".strip() if tid in _walk[1] else "<loop> " + inner
        t = self.type(tid)
        k = t.kind
        if k in (PTR, ARRAY, FUNC_PROTO) or k in QUALIFIERS or k in (TYPE_TAG, FUNC, VAR):
            _walk[1].add(tid)
        try:
            return self._c_decl(t, inner, _depth, _walk)
        finally:
            _walk[1].discard(tid)

    def _c_decl(self, t: Type, inner: str, _depth: int, _walk) -> str:
        k = t.kind
        if k == PTR:
            target = self.strip(t.ref, typedefs=False)
            if target.kind in (ARRAY, FUNC_PROTO):
                inner = f"(*{inner})"
            else:
                inner = "*" + inner
            return self.c_decl(t.ref, inner, _depth + 1, _walk)
        if k == ARRAY:
            return self.c_decl(t.elem, f"{inner}[{t.nelems}]", _depth + 1, _walk)
        if k == FUNC_PROTO:
            params = []
            if _walk[0] <= 0:
                params = ["..."]
            else:
                for pname, ptype in t.members:
                    if _walk[0] <= 0:
                        params.append("...")
                        break
                    params.append("..." if ptype == 0 and not pname else
                                  self.c_decl(ptype, pname, _depth + 1, _walk).strip())
            return self.c_decl(t.ref, f"{inner}({', '.join(params) or 'void'})", _depth + 1, _walk)
        if k in QUALIFIERS:
            target = self.type(t.ref)
            if target.kind == PTR:
                return self.c_decl(t.ref, f" {QUALIFIERS[k]} {inner.lstrip()}", _depth + 1, _walk)
            return f"{QUALIFIERS[k]} " + self.c_decl(t.ref, inner, _depth + 1, _walk)
        if k == TYPE_TAG:
            return self.c_decl(t.ref, inner, _depth + 1, _walk)
        if k == FUNC:
            return self.c_decl(t.ref, t.name, _depth + 1, _walk)
        if k == VAR:
            return self.c_decl(t.ref, t.name, _depth + 1, _walk)
        base = self._base_name(t)
        if not inner:
            return base
        return f"{base} {inner}"

    def c_definition(self, name_or_id, offsets: bool = True, expand_anonymous: bool = True,
                     indent: int = 0) -> str:
        """The C definition of a struct/union/enum/typedef (bpftool-like), with
        ``/* offset size */`` comments when *offsets*."""
        tid = name_or_id if isinstance(name_or_id, int) else self.lookup_type(name_or_id).id
        t = self.type(tid)
        if t.kind == TYPEDEF:
            return f"typedef {self.c_decl(t.ref, t.name)};\n"
        if t.kind == FUNC:
            return self.c_decl(tid) + ";\n"
        return self._definition(t, offsets, 0, 0, [self.DECL_BUDGET, set()]) + ";\n"

    def _definition(self, t: Type, offsets: bool, level: int, base_bits: int, walk) -> str:
        """*walk*: [members left to render, ids of the anonymous structs being rendered]:
        nested anonymous structs that repeat (or contain themselves) stay bounded."""
        pad = "\t" * (level + 1)
        if level > 16 or t.id in walk[1]:
            return "/* nested too deep */" if level > 16 else "/* cycle */"
        if walk[0] <= 0:
            return "/* ... */"
        if t.kind in (ENUM, ENUM64):
            body = "".join(f"{pad}{n} = {v},\n" for n, v in t.members)
            return f"{self._base_name(t) if t.name else 'enum'} {{\n{body}{chr(9) * level}}}"
        if t.kind not in (STRUCT, UNION):
            return self.c_decl(t.id)
        kw = "struct" if t.kind == STRUCT else "union"
        head = f"{kw} {t.name} {{" if t.name else f"{kw} {{"
        lines = [head]
        walk[1].add(t.id)
        for m in t.members:
            walk[0] -= 1
            if walk[0] < 0:
                lines.append(pad + "/* ... */")
                break
            mt = self.strip(m.type_id, typedefs=False)
            bits = base_bits + m.bit_offset
            if not m.name and mt.kind in (STRUCT, UNION) and not mt.name:
                text = self._definition(mt, offsets, level + 1, bits, walk) + ";"
            else:
                text = self.c_decl(m.type_id, m.name) + (f": {m.bit_size}" if m.bit_size else "") + ";"
            if offsets:
                try:
                    size = self.size_of(m.type_id)
                except ToolkitError:
                    size = 0
                where = f"{bits // 8}" + (f":{bits % 8}" if bits % 8 or m.bit_size else "")
                text += f"\t/* {where} {f'{m.bit_size} bits' if m.bit_size else size} */"
            lines.append(pad + text)
        walk[1].discard(t.id)
        tail = "\t" * level + "}"
        if offsets and level == 0 and t.size is not None:
            tail += f"\t/* size: {t.size} */"
        lines.append(tail)
        return "\n".join(lines)


def _tokenize(path: str) -> list[tuple[str, str]]:
    """"a->b[3].c" -> [(".", "a"), ("->", "b"), ("", "[3]"), (".", "c")]."""
    import re

    out = []
    s = path.strip()
    pos = 0
    sep = "."
    pat = re.compile(r"\s*(->|\.|\[\s*(?:0x[0-9a-fA-F]+|\d+)\s*\]|[A-Za-z_][A-Za-z0-9_]*)\s*")
    expect_name = True
    while pos < len(s):
        m = pat.match(s, pos)
        if not m:
            raise ToolkitError(f"cannot parse member path {path!r} at {s[pos:]!r}",
                               "write it like signal->rlim[3].rlim_cur")
        tok = m.group(1)
        pos = m.end()
        if tok in ("->", "."):
            if expect_name and out:
                raise ToolkitError(f"cannot parse member path {path!r}: '{tok}' twice", None)
            sep = tok
            expect_name = True
        elif tok.startswith("["):
            out.append(("", "[" + tok[1:-1].strip() + "]"))
            expect_name = False
        else:
            if not expect_name:
                raise ToolkitError(f"cannot parse member path {path!r}: missing '.' or '->' before {tok!r}",
                                   None)
            out.append((sep, tok))
            expect_name = False
    if not out or expect_name and out and pos and s.rstrip().endswith(("->", ".")):
        raise ToolkitError(f"member path {path!r} is empty or ends in a separator",
                           "write it like signal->rlim[3].rlim_cur")
    return out


def _elf_btf_section(data: bytes, path: str) -> bytes:
    """The .BTF section of an ELF file (a vmlinux or .ko)."""
    import io

    from gdb_toolkit.common.deps import require

    require("elftools")
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    sec = elf.get_section_by_name(".BTF")
    if sec is None:
        raise ToolkitError(f"{path} has no .BTF section", "build with CONFIG_DEBUG_INFO_BTF=y")
    return sec.data()
