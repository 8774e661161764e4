"""Module symbols read from kernel memory (a vmcore, a halted kernel): the ``modules`` list
walked the way /proc/kallsyms walks it, on crafted memory laid out like the kernel's.

Each module's allocation ends with its core symtab, strtab and typetab, followed by the
unmapped guard page vmalloc leaves after every allocation -- the state that hid every module
after ``loop`` in the x86_64 test guest: the string table was read 512 bytes past its last
name, into the guard page, and the error ended the whole walk.  The struct layouts come from
gcc (-gbtf for the BTF the walk reads, offsetof for the bytes the test writes); the expected
symbols are the ones planted.
"""
import json
import struct
import subprocess

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kallsyms_mem as KM
from gdb_toolkit.kernel.btf import Btf
from gdb_toolkit.kernel.kallsyms import Kallsyms
from gdb_toolkit.kernel.memory import CallbackMemory
from tests.support.gdbrun import compile_c
from tests.support.kallsyms_tables import BASE, build, sample_symbols

COMMON = r"""
struct list_head { struct list_head *next, *prev; };
enum module_state { MODULE_STATE_LIVE, MODULE_STATE_COMING, MODULE_STATE_GOING,
                    MODULE_STATE_UNFORMED };
typedef struct { unsigned int st_name; unsigned char st_info, st_other; unsigned short st_shndx;
                 unsigned long st_value, st_size; } Elf64_Sym;
struct mod_kallsyms { Elf64_Sym *symtab; unsigned int num_symtab; char *strtab; char *typetab; };
"""
# x86_64/arm64 (CONFIG_HAVE_ARCH_PREL32_RELOCATIONS): place-relative offsets
KSYM_PREL32 = "struct kernel_symbol { int value_offset; int name_offset; int namespace_offset; };\n"
KSYM_ABS = "struct kernel_symbol { unsigned long value; const char *name; const char *namespace; };\n"
# 6.1: one core allocation (struct module_layout core_layout)
LAYOUT_61 = COMMON + KSYM_PREL32 + r"""
struct module_layout { void *base; unsigned int size, text_size, ro_size, ro_after_init_size; };
struct module { enum module_state state; struct list_head list; char name[56];
  char other[100]; const struct kernel_symbol *syms; const int *crcs; unsigned int num_syms;
  char other2[180]; struct module_layout core_layout; struct module_layout init_layout;
  char more[120]; struct mod_kallsyms *kallsyms; struct mod_kallsyms core_kallsyms; };
"""
# 6.4+: struct module_memory mem[MOD_MEM_NUM_TYPES] (mem[0]: the text); absolute kernel_symbol
LAYOUT_64 = COMMON + KSYM_ABS + r"""
struct module_memory { void *base; unsigned int size; };
struct module { enum module_state state; struct list_head list; char name[56];
  char other[100]; const struct kernel_symbol *syms; const int *crcs; unsigned int num_syms;
  char other2[76]; struct module_memory mem[7]; char more[88];
  struct mod_kallsyms *kallsyms; struct mod_kallsyms core_kallsyms; };
"""
FIELDS = ["module:state", "module:list", "module:name", "module:kallsyms", "module:core_kallsyms",
          "module:syms", "module:num_syms"]
BASE_FIELD = {"61": ("core_layout.base", "core_layout.size"), "64": ("mem[0].base", "mem[0].size")}

PAGE = 4096
MODULES = 0xFFFFFFFF82000000          # the list head (a vmlinux data symbol)
MODAREA = 0xFFFFFFFFC0400000          # module allocations, each followed by a guard page
LIVE, COMING, GOING, UNFORMED = 0, 1, 2, 3
SHN_TEXT, SHN_LIVEPATCH = 2, 0xFF20


@pytest.fixture(scope="module", params=["61", "64"])
def types(request, tmp_path_factory):
    """(kind, path of an object with gcc's BTF, {field: offset} from offsetof)."""
    kind = request.param
    src = LAYOUT_61 if kind == "61" else LAYOUT_64
    d = tmp_path_factory.mktemp(f"modbtf{kind}")
    c = d / "types.c"
    c.write_text(src + "struct module use_module; struct mod_kallsyms use_ks; "
                 "struct kernel_symbol use_ksym;\n")
    obj = d / "types.o"
    proc = subprocess.run(["gcc", "-gbtf", "-c", str(c), "-o", str(obj)], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"gcc -gbtf unsupported: {proc.stderr[:200]}")
    fields = FIELDS + [f"module:{f}" for f in BASE_FIELD[kind]] + \
        ["mod_kallsyms:symtab", "mod_kallsyms:num_symtab", "mod_kallsyms:strtab", "mod_kallsyms:typetab"]
    prog = ("#include <stdio.h>\n#include <stddef.h>\n" + src + "int main(void){printf(\"{\");\n"
            + "".join(f'printf("\\"{f}\\": %zu, ", offsetof(struct {f.split(":")[0]}, {f.split(":")[1]}));\n'
                      for f in fields)
            + 'printf("\\"ksym_size\\": %zu, ", sizeof(struct kernel_symbol));\n'
            + 'printf("\\"end\\": 0}\\n"); return 0;}\n')
    exe = compile_c(prog, f"module_offsets_{kind}")
    off = json.loads(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
    off["base"], off["size"] = (off[f"module:{f}"] for f in BASE_FIELD[kind])
    return kind, str(obj), off


class Pages:
    """Kernel memory as 4 KiB pages; a page not mapped cannot be read (as in a dump)."""

    def __init__(self):
        self.pages: dict[int, bytearray] = {}
        self.reads: list[tuple[int, int]] = []

    def map(self, addr: int, size: int):
        for p in range(addr & ~(PAGE - 1), addr + size, PAGE):
            self.pages.setdefault(p, bytearray(PAGE))

    def unmap(self, addr: int, size: int):
        for p in range(addr & ~(PAGE - 1), addr + size, PAGE):
            self.pages.pop(p, None)

    def put(self, addr: int, data: bytes):
        for i, b in enumerate(data):
            self.pages[(addr + i) & ~(PAGE - 1)][(addr + i) & (PAGE - 1)] = b

    def q(self, addr: int, v: int):
        self.put(addr, struct.pack("<Q", v & (2 ** 64 - 1)))

    def read(self, addr: int, n: int) -> bytes:
        self.reads.append((addr, n))
        out = bytearray()
        for a in range(addr, addr + n):
            page = self.pages.get(a & ~(PAGE - 1))
            if page is None:
                raise ToolkitError(f"0x{a:x} is not mapped", None)
            out.append(page[a & (PAGE - 1)])
        return bytes(out)

    def memory(self, info: dict | None = None, description: str = "test target") -> CallbackMemory:
        return CallbackMemory(self.read, "x86_64", description, vmcoreinfo=info)


class Kernel:
    """A ``modules`` list being built: each module in its own allocation, newest first (the
    kernel's list_add_rcu at the head)."""

    def __init__(self, off: dict, mem: Pages | None = None):
        self.off = off
        self.mem = mem or Pages()
        self.mem.map(MODULES, 16)
        self.nodes: list[int] = []          # list order
        self.next_alloc = MODAREA
        self.relink()

    def relink(self):
        """Write the list pointers for self.nodes (head -> nodes -> head)."""
        ring = [MODULES] + self.nodes + [MODULES]
        for a, b in zip(ring, ring[1:]):
            self.mem.q(a, b)
            self.mem.q(b + 8, a)

    def add(self, name: str, syms: list, state: int = LIVE, slack: int = 0, raw_name: bytes | None = None,
            num: int | None = None, kallsyms: int | None = None, end_unterminated: bytes = b"",
            extra: int = 0, exports: tuple = ()) -> dict:
        """A module whose symtab/strtab/typetab end *slack* bytes before its allocation's end
        (a guard page follows); *syms* = [(name, type, address, shndx)]; *exports* = the
        names of *syms* it exports (mod->syms).  Returns its addresses."""
        o, m = self.off, self.mem
        strtab = bytearray(b"\0")
        ents = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]
        types = bytearray(b"\0")
        for n, t, value, shndx in syms:
            ents.append(struct.pack("<IBBHQQ", len(strtab), 0x12, 0, shndx, value, 0x40))
            strtab += n.encode() + b"\0"
            types += t.encode()
        if end_unterminated:                     # a last name running into the guard page
            ents.append(struct.pack("<IBBHQQ", len(strtab), 0x12, 0, SHN_TEXT, 0xFFFFFFFFC0FFF000, 0))
            types += b"t"
            strtab += end_unterminated
        symtab = b"".join(ents)
        tables = len(symtab) + len(strtab) + len(types)
        struct_size = o["module:core_kallsyms"] + 64 + sum(o["ksym_size"] + len(n) + 1 for n in exports)
        size = -(-(0x200 + struct_size + tables + slack) // PAGE) * PAGE + extra
        base = self.next_alloc
        self.next_alloc += size + PAGE          # + the guard page, never mapped
        m.map(base, size)
        mod = base + 0x200
        at = base + size - slack - tables        # the tables end at the allocation's end
        sym_at, str_at = at, at + len(symtab)
        typ_at = str_at + len(strtab)
        if end_unterminated:                     # strtab last: its unterminated name hits the guard page
            typ_at, str_at = at + len(symtab), at + len(symtab) + len(types)
        m.put(sym_at, symtab)
        m.put(str_at, bytes(strtab))
        m.put(typ_at, bytes(types))
        m.put(mod + o["module:state"], struct.pack("<I", state))
        m.put(mod + o["module:name"], (raw_name if raw_name is not None else name.encode()) + b"\0")
        m.q(mod + o["base"], base)
        m.put(mod + o["size"], struct.pack("<I", size))
        ks = mod + o["module:core_kallsyms"]
        m.q(mod + o["module:kallsyms"], kallsyms if kallsyms is not None else ks)
        m.q(ks + o["mod_kallsyms:symtab"], sym_at)
        m.put(ks + o["mod_kallsyms:num_symtab"], struct.pack("<I", num if num is not None else len(ents)))
        m.q(ks + o["mod_kallsyms:strtab"], str_at)
        m.q(ks + o["mod_kallsyms:typetab"], typ_at)
        if exports:                             # struct kernel_symbol[] + names, after the struct
            ex_at = ks + 64
            names_at = ex_at + o["ksym_size"] * len(exports)
            for i, n in enumerate(exports):
                value = next(a for nm, _t, a, _s in syms if nm == n)
                e = ex_at + i * o["ksym_size"]
                if kind_of(o) == "prel32":
                    m.put(e, struct.pack("<ii", value - e, names_at - (e + 4)))
                else:
                    m.q(e, value)
                    m.q(e + 8, names_at)
                m.put(names_at, n.encode() + b"\0")
                names_at += len(n) + 1
            assert names_at <= at
            m.q(mod + o["module:syms"], ex_at)
            m.put(mod + o["module:num_syms"], struct.pack("<I", len(exports)))
        self.nodes.insert(0, mod + o["module:list"])
        self.relink()
        return {"mod": mod, "base": base, "size": size, "symtab": sym_at, "end": base + size}

    def remove(self, name_addr: int):
        node = name_addr + self.off["module:list"]
        self.nodes.remove(node)
        self.relink()


def kind_of(off: dict) -> str:
    return "prel32" if off["ksym_size"] == 12 else "absolute"


def text_syms(prefix: str, n: int, at: int) -> list:
    return [(f"{prefix}_fn_{i}", "t" if i % 2 else "T", at + 0x10 * i, SHN_TEXT) for i in range(n)]


def expected(mod: str, syms: list, exports=()) -> list:
    """As /proc/kallsyms prints a module's symbols: upper case when exported, else lower."""
    return [(a, t.upper() if n in exports else t.lower(), n, mod) for n, t, a, _s in syms]


def test_a_module_whose_tables_end_at_its_guard_page_hides_nothing(types):
    """The guest's failure: loop's strtab + typetab ended 0x9c short of 512 bytes before the
    unmapped page after its allocation; 9p, further down the list, went missing with it."""
    kind, btf_path, off = types
    btf = Btf.load(btf_path)
    k = Kernel(off)
    nine = text_syms("v9fs", 40, 0xFFFFFFFFC0A00000)
    fs = text_syms("fscache", 7, 0xFFFFFFFFC0A10000)
    loop = text_syms("loop", 90, 0xFFFFFFFFC0A20000)
    k.add("fscache", fs)
    k.add("9p", nine, slack=0)
    exports = ("loop_fn_1", "loop_fn_2")          # a "t" and a "T": both print "T"; other "T"s "t"
    a = k.add("loop", loop, slack=3, exports=exports)
    walk = KM.module_symbols(k.mem.memory(), MODULES, btf)
    assert walk.notes == []
    assert [m for m, _s in walk.modules] == ["loop", "9p", "fscache"]
    assert walk.symbols == expected("loop", loop, exports) + expected("9p", nine) + expected("fscache", fs)
    assert [t for _a, t, n, _m in walk.symbols if n in ("loop_fn_0", "loop_fn_1", "loop_fn_2")] == \
        ["t", "T", "T"]
    assert walk.extents["loop"] == (a["base"], a["end"])
    if kind == "64":
        # 6.4+: /proc/modules' size is module_total_size(), every mem[] region's size (text,
        # data, rodata, ro_after_init, the init ones 0 once loaded), the base mem[MOD_TEXT]'s
        sizes = {1: 0x3000, 2: 0x1000, 3: 0x1000, 4: 0}
        for idx, n in sizes.items():              # struct module_memory: 16 bytes
            k.mem.put(a["mod"] + off["size"] + 16 * idx, struct.pack("<I", n))
        walk = KM.module_symbols(k.mem.memory(), MODULES, btf)
        assert walk.extents["loop"] == (a["base"], a["end"] + sum(sizes.values()))
    # the tables really end where the guard page begins: a read of 512 bytes past the last name fails
    with pytest.raises(ToolkitError):
        k.mem.read(a["end"] - 3, 512)
    ks = Kallsyms(KM.kallsyms_text([], walk.symbols))
    assert ks.lookup("v9fs_fn_7", "9p").address == nine[7][2]


def test_one_unreadable_module_is_skipped_with_a_note_and_the_walk_goes_on(types):
    kind, btf_path, off = types
    btf = Btf.load(btf_path)
    k = Kernel(off)
    old = text_syms("old", 5, 0xFFFFFFFFC0B00000)
    k.add("old", old)
    k.add("broken", text_syms("broken", 3, 0xFFFFFFFFC0B10000), kallsyms=0xFFFFFFFFC3F00000)
    k.add("huge", text_syms("huge", 3, 0xFFFFFFFFC0B20000), num=0xFFFFFFFF)
    k.add("\x01bad", [], raw_name=b"a b]\n")
    gone = k.add("symtab_gone", text_syms("sg", 4, 0xFFFFFFFFC0B30000), extra=PAGE)
    new = text_syms("new", 6, 0xFFFFFFFFC0B40000)
    n_mod = k.add("new", new, exports=("new_fn_3",))
    k.mem.q(n_mod["mod"] + off["module:syms"], 0xFFFFFFFFC3F00000)    # its exports: not in the dump
    assert gone["symtab"] >= (gone["mod"] | (PAGE - 1)) + 1
    k.mem.unmap(gone["symtab"], 24)           # its tables' first page is not in the dump
    walk = KM.module_symbols(k.mem.memory(), MODULES, btf)
    assert walk.symbols == [(a, t, n, "new") for n, t, a, _s in new] + expected("old", old)
    assert [m for m, _s in walk.modules] == ["new", "symtab_gone", "huge", "broken", "old"]
    notes = "\n".join(walk.notes)
    assert "module symtab_gone is skipped: " in notes and "is not mapped" in notes
    assert "module huge is skipped: num_symtab reads 4294967295" in notes
    assert "module broken is skipped: " in notes
    assert "is skipped: its name is not a module name" in notes
    assert "module new: its exports could not be read (symbol letters keep their binding's case)" \
        in walk.notes
    assert len(walk.notes) == 5, walk.notes


def test_module_states_unformed_skipped_coming_and_going_read(types):
    """As /proc/kallsyms: an UNFORMED module (set up not finished, or torn down) is passed
    over; a COMING one's kallsyms (its init-time table) and a GOING one's are listed."""
    kind, btf_path, off = types
    btf = Btf.load(btf_path)
    k = Kernel(off)
    live = text_syms("live", 3, 0xFFFFFFFFC0C00000)
    going = text_syms("going", 3, 0xFFFFFFFFC0C10000)
    coming = text_syms("coming", 3, 0xFFFFFFFFC0C20000) + [("coming_init", "t", 0xFFFFFFFFC0D00000, SHN_TEXT)]
    k.add("live", live)
    k.add("going", going, state=GOING)
    k.add("unformed", text_syms("unformed", 3, 0xFFFFFFFFC0C30000), state=UNFORMED,
          kallsyms=0xFFFFFFFFC3F00000)           # not set up: the pointer is garbage
    k.add("coming", coming, state=COMING)
    walk = KM.module_symbols(k.mem.memory(), MODULES, btf)
    assert walk.modules == [("coming", "COMING"), ("unformed", "UNFORMED"), ("going", "GOING"),
                            ("live", "LIVE")]
    assert walk.symbols == expected("coming", coming) + expected("going", going) + expected("live", live)
    assert walk.notes == ["module coming is COMING (being loaded)", "module going is GOING (being removed)"]


def test_names_a_kallsyms_line_cannot_carry_and_a_name_cut_by_the_guard_page(types):
    kind, btf_path, off = types
    btf = Btf.load(btf_path)
    k = Kernel(off)
    good = [("foo.cold", "t", 0xFFFFFFFFC0E00000, SHN_TEXT), ("klp_patch_fn", "T", 0xFFFFFFFFC0E00040, SHN_TEXT),
            ("__func__.1", "r", 0xFFFFFFFFC0E00080, SHN_TEXT)]
    bad = [("$x", "t", 0xFFFFFFFFC0E000C0, SHN_TEXT), ("a b", "t", 0xFFFFFFFFC0E00100, SHN_TEXT),
           ("nl\nfake", "t", 0xFFFFFFFFC0E00140, SHN_TEXT),
           (".klp.sym.vmlinux.printk,0", "U", 0, SHN_LIVEPATCH)]     # livepatch relocation placeholder
    k.add("livepatch_x", good + bad, end_unterminated=b"runs_into_the_guard_page")
    walk = KM.module_symbols(k.mem.memory(), MODULES, btf)
    assert walk.symbols == expected("livepatch_x", good)
    assert walk.notes == ["module livepatch_x: 1 symbol names could not be read"]


def test_list_walk_is_bounded_and_cut_lists_say_so(types):
    kind, btf_path, off = types
    btf = Btf.load(btf_path)
    k = Kernel(off)
    addrs = [k.add(f"m{i}", text_syms(f"m{i}", 2, 0xFFFFFFFFC1000000 + 0x1000 * i))["mod"] for i in range(5)]
    mem = k.mem.memory()
    walk = KM.module_symbols(mem, MODULES, btf, max_modules=3)
    assert [m for m, _s in walk.modules] == ["m4", "m3", "m2"]
    assert walk.notes == ["the module list is longer than 3 modules after 3 modules: the rest is not read"]
    # a cycle: m2's next points back at m3
    node = lambda a: a + off["module:list"]        # noqa: E731
    k.mem.q(node(addrs[2]), node(addrs[3]))
    walk = KM.module_symbols(k.mem.memory(), MODULES, btf)
    assert [m for m, _s in walk.modules] == ["m4", "m3", "m2"]
    assert walk.notes[0].startswith(f"the module list loops back to 0x{node(addrs[3]):x} after 3")
    # a poisoned / garbage next pointer (LIST_POISON1) and one into nothing
    for bad, why in ((0xDEAD000000000100, "not a kernel address"), (0xFFFFFFFFC3F00000, "cannot be followed")):
        k.mem.q(node(addrs[2]), bad)
        walk = KM.module_symbols(k.mem.memory(), MODULES, btf)
        assert [m for m, _s in walk.modules] == ["m4", "m3", "m2"]
        assert len(walk.notes) == 1 and why in walk.notes[0], walk.notes
    assert KM.find_module(k.mem.memory(), MODULES, btf, "m3") == addrs[3]
    assert KM.find_module(k.mem.memory(), MODULES, btf, "m0") is None        # past the cut
    with pytest.raises(ToolkitError, match="module list head"):
        KM.module_symbols(k.mem.memory(), 0xFFFFFFFFC3F00000, btf)


def test_the_symbol_budget_bounds_every_module_together(types):
    kind, btf_path, off = types
    btf = Btf.load(btf_path)
    k = Kernel(off)
    k.add("a", text_syms("a", 10, 0xFFFFFFFFC1100000))
    k.add("b", text_syms("b", 10, 0xFFFFFFFFC1200000))
    walk = KM.module_symbols(k.mem.memory(), MODULES, btf, max_syms=15)
    assert [s[3] for s in walk.symbols] == ["b"] * 10
    assert walk.notes == ["module a is skipped: num_symtab reads 11 (more than 5 can be)"]


# -- a halted kernel that runs between commands: the session must not keep stale modules ------

def _kernel_image(pages: Pages):
    syms = sample_symbols(1500) + [(MODULES, "d", "modules")]
    img, labels = build(syms)
    pages.map(BASE, len(img))
    pages.put(BASE, img)
    return {f"SYMBOL({k})": f"{v:x}" for k, v in labels.items()} | {"OSRELEASE": "6.1.0-test"}


def test_gdb_target_sessions_see_modules_loaded_and_removed_between_commands(types):
    """gdb's target resumes between commands: a module removed must vanish and one loaded
    must appear in the next command's symbols, while vmlinux's tables (and unchanged
    modules' symbols) are reused, not read again."""
    from gdb_toolkit.kernel import session as S

    kind, btf_path, off = types
    S._MEMORY_SYMBOLS.clear()
    pages = Pages()
    info = _kernel_image(pages)
    k = Kernel(off, pages)
    stay = text_syms("stay", 4, 0xFFFFFFFFC1300000)
    s_mod = k.add("stay", stay)
    leave = k.add("leave", text_syms("leave", 4, 0xFFFFFFFFC1400000))
    try:
        one = S.KernelSession(memory=pages.memory(info), btf=btf_path)
        assert one.symbols.lookup("leave_fn_1", "leave") is not None
        assert one.symbols.lookup("stay_fn_2", "stay").address == stay[2][2]
        one.close()
        # the target runs: rmmod leave, insmod arrive
        k.remove(leave["mod"])
        arrive = text_syms("arrive", 3, 0xFFFFFFFFC1500000)
        k.add("arrive", arrive, state=COMING)
        pages.reads.clear()
        two = S.KernelSession(memory=pages.memory(info), btf=btf_path)
        syms = two.symbols
        assert syms.lookup("arrive_fn_2", "arrive").address == arrive[2][2]
        assert syms.lookup("leave_fn_1", "leave") is None
        assert syms.lookup("stay_fn_3", "stay").address == stay[3][2]
        assert two.symbol_notes() == ["module list: module arrive is COMING (being loaded)"]
        assert "2 modules from the module list" in two.symbol_sources()[0]
        assert not any(a == s_mod["symtab"] for a, _n in pages.reads), "stay's symtab read again"
        names_page = int(info["SYMBOL(kallsyms_names)"], 16) & ~(PAGE - 1)
        offsets_page = int(info["SYMBOL(kallsyms_offsets)"], 16) & ~(PAGE - 1)
        assert names_page != int(info["SYMBOL(kallsyms_token_index)"], 16) & ~(PAGE - 1)
        assert not any(a & ~(PAGE - 1) in (names_page, offsets_page) for a, _n in pages.reads), \
            "vmlinux's kallsyms tables decoded again"
        two.close()
    finally:
        S._MEMORY_SYMBOLS.clear()
