"""The BTF parser against bpftool's own dump of this machine's /sys/kernel/btf/vmlinux,
and against hand-built BTF blobs for the kinds vmlinux lacks (split BTF, tags, errors)."""
import os
import re
import shutil
import struct
import subprocess

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import btf as B

VMLINUX = "/sys/kernel/btf/vmlinux"
BPFTOOL = shutil.which("bpftool") or "/usr/sbin/bpftool"
needs_btf = pytest.mark.skipif(not os.path.exists(VMLINUX) or not os.path.exists(BPFTOOL),
                               reason="needs /sys/kernel/btf/vmlinux and bpftool")

LINE = re.compile(r"^\[(\d+)\] (\S+) '([^']*)'(.*)$")
MEMBER = re.compile(r"^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?$")
ENUMVAL = re.compile(r"^\t'([^']*)' val=(-?\d+)(?:ULL|LL)?$")
PARAM = re.compile(r"^\t'([^']*)' type_id=(\d+)$")
SECINFO = re.compile(r"^\ttype_id=(\d+) offset=(\d+) size=(\d+)")


def _kv(rest: str) -> dict:
    return dict(re.findall(r"(\w+)=([^\s,]+)", rest))


@pytest.fixture(scope="module")
def raw():
    """bpftool's raw dump as {id: (kind, name, attrs, [sub-lines])}."""
    out = subprocess.run([BPFTOOL, "btf", "dump", "file", VMLINUX, "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    types, cur = {}, None
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            cur = [m.group(2), m.group(3), _kv(m.group(4)), []]
            types[int(m.group(1))] = cur
        elif line.startswith("\t") and cur is not None:
            cur[3].append(line)
    return types


@pytest.fixture(scope="module")
def vm():
    return B.Btf.load(VMLINUX)


def _name(s):
    return "" if s == "(anon)" else s


@needs_btf
def test_every_type_matches_bpftool(raw, vm):
    assert vm.count - 1 == max(raw), "type count"
    for tid, (kind, name, kv, subs) in raw.items():
        t = vm.type(tid)
        assert t.kind_name == kind.lower(), (tid, kind)
        assert t.name == _name(name), tid
        if kind in ("INT", "STRUCT", "UNION", "ENUM", "ENUM64", "FLOAT", "DATASEC"):
            assert t.size == int(kv["size"]), tid
        if kind == "INT":
            assert (t.int_bits, t.int_offset) == (int(kv["nr_bits"]), int(kv["bits_offset"])), tid
            enc = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}[t.int_encoding]
            assert enc == kv["encoding"], tid
        elif kind in ("PTR", "TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "TYPE_TAG", "FUNC", "VAR"):
            assert t.ref == int(kv["type_id"]), tid
        elif kind == "ARRAY":
            assert (t.elem, t.nelems) == (int(kv["type_id"]), int(kv["nr_elems"])), tid
        elif kind in ("STRUCT", "UNION"):
            got = [(m.name, m.type_id, m.bit_offset, m.bit_size) for m in t.members]
            want = []
            for s in subs:
                mm = MEMBER.match(s)
                assert mm, s
                want.append((_name(mm.group(1)), int(mm.group(2)), int(mm.group(3)),
                             int(mm.group(4) or 0)))
            assert got == want, tid
        elif kind in ("ENUM", "ENUM64"):
            want = [(ENUMVAL.match(s).group(1), int(ENUMVAL.match(s).group(2))) for s in subs]
            assert t.members == want, tid
            assert ("SIGNED" if t.kind_flag else "UNSIGNED") == kv["encoding"], tid
        elif kind == "FUNC_PROTO":
            assert t.ref == int(kv["ret_type_id"]), tid
            want = []
            for s in subs:
                if s.strip() == "...":
                    want.append(("", 0))
                else:
                    pm = PARAM.match(s)
                    want.append((_name(pm.group(1)), int(pm.group(2))))
            assert t.members == want, tid
        elif kind == "DATASEC":
            want = [tuple(int(x) for x in SECINFO.match(s).groups()) for s in subs]
            assert [tuple(e) for e in t.members] == want, tid
        elif kind == "FWD":
            assert ("union" if t.kind_flag else "struct") == kv["fwd_kind"], tid


def _member_bits(raw, struct_id, name):
    """Walk bpftool's dump: bit offset and type id of *name* in *struct_id*, through
    anonymous members (an oracle independent of the parser under test)."""
    for s in raw[struct_id][3]:
        m = MEMBER.match(s)
        if m.group(1) == name:
            return int(m.group(3)), int(m.group(2))
    for s in raw[struct_id][3]:
        m = MEMBER.match(s)
        if m.group(1) == "(anon)":
            sub = _strip(raw, int(m.group(2)))
            if raw[sub][0] in ("STRUCT", "UNION"):
                r = _member_bits(raw, sub, name)
                if r:
                    return int(m.group(3)) + r[0], r[1]
    return None


def _strip(raw, tid):
    while raw[tid][0] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
        tid = int(raw[tid][2]["type_id"])
    return tid


def _struct_id(raw, name):
    return next(i for i, t in raw.items() if t[0] == "STRUCT" and t[1] == name and t[3])


@needs_btf
def test_rlimit_path_matches_bpftool(raw, vm):
    ts = _struct_id(raw, "task_struct")
    sig_bits, sig_t = _member_bits(raw, ts, "signal")
    assert raw[sig_t][0] == "PTR"
    ss = _strip(raw, int(raw[sig_t][2]["type_id"]))
    rlim_bits, rlim_t = _member_bits(raw, ss, "rlim")
    elem = _strip(raw, int(raw[rlim_t][2]["type_id"]))
    esize = int(raw[elem][2]["size"])
    cur_bits, _ = _member_bits(raw, elem, "rlim_cur")
    p = vm.resolve("task_struct", "signal->rlim[3].rlim_cur")
    assert p.hops == [sig_bits // 8, rlim_bits // 8 + 3 * esize + cur_bits // 8]
    assert [s.deref for s in p.steps] == [False, True, False, False]
    assert p.size == 8 and not p.signed and p.kind == "int" and p.bit_size == 0
    assert p.address(0x1000, lambda a: 0x5000 if a == 0x1000 + sig_bits // 8 else 0) == \
        0x5000 + p.hops[1]


@needs_btf
def test_anonymous_union_bitfield_and_typedef_paths(raw, vm):
    ts = _struct_id(raw, "task_struct")
    # a member reached only through an anonymous struct/union, and a bitfield
    bitfields = [MEMBER.match(s) for s in raw[ts][3] if "bitfield_size" in s]
    bf = bitfields[0]
    p = vm.resolve("task_struct", bf.group(1))
    bits = int(bf.group(3))
    assert (p.offset, p.bit_shift, p.bit_size) == (bits // 8, bits % 8, int(bf.group(4)))
    raw_val = (1 << (bits % 8))      # the bit at the field's position
    assert p.extract(raw_val.to_bytes(8, "little")) == 1
    # anonymous members anywhere in the kernel: pick struct page's 'lru' if present, else any
    page = _struct_id(raw, "page")
    names = [MEMBER.match(s).group(1) for s in raw[page][3]]
    assert "(anon)" in names
    want = _member_bits(raw, page, "mapping")
    p = vm.resolve("struct page", "mapping")
    assert p.offset == want[0] // 8 and p.type_id == want[1]
    # typedef'ed pointer: cpus_ptr is 'const cpumask_t *'
    p = vm.resolve("task_struct", "cpus_ptr")
    assert p.kind == "ptr" and p.type_name == "const cpumask_t *"
    # comm is an array of char
    p = vm.resolve("task_struct", "comm")
    assert p.type_name == "char [16]" and p.size == 16
    assert vm.resolve("task_struct", "comm[15]").offset == p.offset + 15
    # mm->mmap_base: two hops
    p = vm.resolve("task_struct", "mm->mmap_base")
    assert p.derefs == 1
    mm = _strip(raw, int(raw[_member_bits(raw, ts, "mm")[1]][2]["type_id"]))
    assert p.hops[1] == _member_bits(raw, mm, "mmap_base")[0] // 8


@needs_btf
def test_sizes_match_bpftool(raw, vm):
    for name in ("task_struct", "file", "kprobe", "list_head", "mm_struct"):
        want = next((int(t[2]["size"]) for t in raw.values() if t[0] == "STRUCT" and t[1] == name), None)
        if want is not None:
            assert vm.type_size(name) == want
    assert vm.type_size("u64") == 8 and vm.type_size("char") == 1


@needs_btf
def test_bad_paths_are_one_line_errors(vm):
    with pytest.raises(ToolkitError, match="no member 'sigal'.*did you mean signal"):
        vm.resolve("task_struct", "sigal")
    with pytest.raises(ToolkitError, match="not a pointer"):
        vm.resolve("task_struct", "comm->x")
    with pytest.raises(ToolkitError, match="outside"):
        vm.resolve("task_struct", "comm[16]")
    with pytest.raises(ToolkitError, match="no type"):
        vm.resolve("no_such_struct_xyz", "a")
    with pytest.raises(ToolkitError, match="cannot parse"):
        vm.resolve("task_struct", "comm[")
    with pytest.raises(ToolkitError, match="has no member"):
        vm.resolve("task_struct", "pid.x")


@needs_btf
def test_c_rendering_matches_bpftool_declarations(vm):
    out = subprocess.run([BPFTOOL, "btf", "dump", "file", VMLINUX, "format", "c"],
                         capture_output=True, text=True, check=True).stdout
    body = out[out.index("struct list_head {"):]
    body = body[:body.index("};")]
    text = vm.c_definition("list_head", offsets=False)
    assert [l.strip() for l in text.splitlines()[1:-1]] == [l.strip() for l in body.splitlines()[1:]]
    kp = vm.c_definition("task_struct")
    assert "char comm[16];" in kp and "/* size:" in kp


# -- synthetic BTF: split BTF, tags, bad input -------------------------------------------

def _blob(types: list[bytes], strings: bytes) -> bytes:
    tsec = b"".join(types)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(tsec), len(tsec), len(strings))
    return hdr + tsec + strings


def _t(name_off, kind, vlen, size_or_type, kflag=0, extra=b""):
    return struct.pack("<III", name_off, (kflag << 31) | (kind << 24) | vlen, size_or_type) + extra


def test_synthetic_kinds_and_split_btf():
    strs = b"\0int\0s\0a\0b\0tagged\0"
    off = {n: strs.index(n.encode() + b"\0") for n in ("int", "s", "a", "b", "tagged")}
    base = B.Btf(_blob([
        _t(off["int"], B.INT, 0, 4, extra=struct.pack("<I", (1 << 24) | 32)),          # 1 int
        _t(off["s"], B.STRUCT, 2, 8, kflag=1, extra=struct.pack("<III", off["a"], 1, 0)
           + struct.pack("<III", off["b"], 1, (3 << 24) | 37)),                        # 2 struct s
        _t(0, B.TYPE_TAG, 0, 1),                                                      # 3 tag -> int
        _t(off["tagged"], B.DECL_TAG, 0, 2, extra=struct.pack("<i", -1)),              # 4
    ], strs))
    p = base.resolve("s", "b")
    assert (p.offset, p.bit_shift, p.bit_size, p.signed) == (4, 5, 3, True)
    assert p.extract(bytes([0b11100000])) == -1 and p.extract(bytes([0b01000000])) == 2
    assert base.type(3).kind_name == "type_tag" and base.type(4).int_offset == -1
    # split: ids continue at 5, strings after the base's
    sstr = b"\0m\0"
    split = B.Btf(_blob([_t(len(strs) + 1, B.STRUCT, 1, 16,
                            extra=struct.pack("<III", off["a"], 2, 64))], sstr), base=base)
    assert split.first_id == 5
    m = split.find("m")
    assert m.id == 5 and split.resolve("m", "a.b").hops == [8 + 4]
    assert split.find("s").id == 2


def test_bad_blobs():
    with pytest.raises(ToolkitError, match="bad magic"):
        B.Btf(b"\0" * 32)
    with pytest.raises(ToolkitError, match="too short"):
        B.Btf(b"\x9f\xeb")
    blob = _blob([_t(0, B.INT, 0, 4)], b"\0")   # INT record missing its 4 extra bytes
    with pytest.raises(ToolkitError):
        b = B.Btf(blob)
        b.type(1)
    with pytest.raises(ToolkitError, match="does not exist"):
        B.Btf.load("/nonexistent/btf")


# -- hostile BTF (issue 11 item 7): bounded time and depth --------------------------------

def _cyclic_prototypes(nparams: int = 10) -> bytes:
    """FUNC vfs_read -> FUNC_PROTO(10 params, each a pointer back to the same prototype)."""
    strs = b"\0vfs_read\0p\0"
    params = b"".join(struct.pack("<II", strs.index(b"p\0"), 2) for _ in range(nparams))
    return _blob([
        _t(0, B.FUNC_PROTO, nparams, 2, extra=params),                 # 1: returns a pointer too
        _t(0, B.PTR, 0, 1),                                             # 2: -> 1
        _t(strs.index(b"vfs_read\0"), B.FUNC, 0, 1),                    # 3: vfs_read
    ], strs)


def test_a_prototype_that_refers_to_itself_renders_quickly():
    import time

    blob = _cyclic_prototypes()
    assert len(blob) < 160                      # the size of the report's file (136 bytes)
    btf = B.Btf(blob)
    t = time.monotonic()
    text = btf.c_decl(btf.find("vfs_read", "func").id)
    assert time.monotonic() - t < 2 and "<cycle>" in text and "vfs_read(" in text


def test_a_deep_chain_of_wide_prototypes_is_cut_by_the_budget():
    """No cycle, but 30 levels of 8 parameters each: 8^30 declarators unless bounded."""
    import time

    strs = b"\0f\0p\0"
    types = []
    depth, width = 30, 8
    for i in range(depth):                      # ids: proto 2i+1, ptr 2i+2 -> proto 2i+3
        nxt = 2 * i + 2 if i < depth - 1 else 0
        types.append(_t(0, B.FUNC_PROTO, width, 0,
                        extra=b"".join(struct.pack("<II", 3, nxt) for _ in range(width))))
        types.append(_t(0, B.PTR, 0, 2 * i + 3))
    types.append(_t(1, B.FUNC, 0, 1))
    btf = B.Btf(_blob(types, strs))
    t = time.monotonic()
    text = btf.c_decl(btf.find("f", "func").id)
    assert time.monotonic() - t < 3 and "..." in text and len(text) < 1 << 20


def test_self_referential_array_and_anonymous_member_do_not_recurse_forever():
    strs = b"\0s\0x\0"
    btf = B.Btf(_blob([
        _t(0, B.ARRAY, 0, 0, extra=struct.pack("<III", 1, 1, 4)),        # 1: array of itself
        _t(3, B.STRUCT, 1, 8, extra=struct.pack("<III", 0, 2, 0)),        # 2: s { anon of s }
    ], strs))
    with pytest.raises(ToolkitError):
        btf.size_of(1)
    assert btf.member_chain(2, "x") is None and btf.member_names(2) == []
