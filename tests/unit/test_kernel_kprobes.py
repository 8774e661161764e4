"""kprobe decoding without a kernel: the kernel's text formats, byte classification, and
a synthetic kernel (structs laid out by gcc, BTF emitted by gcc -gbtf, memory in a
kcore-shaped ELF) walked and joined exactly as on a live system."""
import json
import struct
import subprocess

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.render import to_jsonable
from gdb_toolkit.kernel import kprobe_text as T
from gdb_toolkit.kernel import sites as S
from gdb_toolkit.kernel.btf import Btf
from gdb_toolkit.kernel.kallsyms import Kallsyms
from gdb_toolkit.kernel.kcore import Kcore
from gdb_toolkit.kernel.kprobe_table import KprobeLayout, TableWalker
from gdb_toolkit.kernel.kprobes import build_report, cross_check
from tests.support.gdbrun import compile_c
from tests.support.kcore_fixture import write_kcore

# -- text formats (lines captured from Debian's 6.1 kernel in the guest) ----------------

LIST = """\
ffffffffb8163fa0  r  do_sys_openat2+0x0    [FTRACE]
ffffffffb8163fa0  k  do_sys_openat2+0x0    [FTRACE]
ffffffffb81669e0  k  vfs_read+0x0    [DISABLED][FTRACE]
ffffffffb8167165  k  vfs_write+0x5    [OPTIMIZED]
ffffffffc0a01010  k  mod_fn+0x10  mymod [GONE]
ffffffffb8163fa7  k  0xffffffffb8163fa7
"""


def test_parse_kprobes_list():
    rows = T.parse_kprobes_list(LIST)
    assert [(r.kind, r.symbol, r.offset, r.flags) for r in rows[:4]] == [
        ("r", "do_sys_openat2", 0, ["FTRACE"]), ("k", "do_sys_openat2", 0, ["FTRACE"]),
        ("k", "vfs_read", 0, ["DISABLED", "FTRACE"]), ("k", "vfs_write", 5, ["OPTIMIZED"])]
    assert rows[3].address == 0xFFFFFFFFB8167165
    assert rows[4].module == "mymod" and rows[4].flags == ["GONE"]
    assert rows[5].symbol is None and rows[5].where == "0xffffffffb8163fa7"


def test_parse_events_profile_enabled_functions():
    ev = T.parse_kprobe_events("p:kprobes/pent do_sys_openat2\nr10:kprobes/rr do_mmap\n"
                               "p:grp/x mymod:fn+0x10 a=%di\np:kprobes/abs 0xffffffff81000000\n")
    assert [(e.probe_type, e.name, e.symbol, e.offset) for e in ev[:2]] == [
        ("p", "kprobes/pent", "do_sys_openat2", 0), ("r", "kprobes/rr", "do_mmap", 0)]
    assert ev[1].maxactive == 10 and ev[2].module == "mymod" and ev[2].offset == 16
    assert ev[2].args == "a=%di" and ev[3].address == 0xFFFFFFFF81000000
    prof = T.parse_kprobe_profile("  pent                       156               0\n"
                                  "  rr                          149               3\n")
    assert prof == {"pent": (156, 0), "rr": (149, 3)}
    en = T.parse_enabled_functions(
        "do_sys_openat2 (1) R    \ttramp: 0xffffffffc02c3000 (kprobe_ftrace_handler+0x0/0x1b0) "
        "->kprobe_ftrace_handler+0x0/0x1b0\nvfs_read (1)   \n"
        "ksys_read (2) R I   M \ttramp: 0xffffffffc02c4000 (ftrace_regs_caller+0x0/0x65)\n")
    assert en["do_sys_openat2"]["trampoline_address"] == 0xFFFFFFFFC02C3000
    # the flag letters as a list (kprobe-list's flags is a list too: one JSON type per key)
    assert en["do_sys_openat2"]["flags"] == ["R"] and en["vfs_read"]["flags"] == []
    assert en["ksys_read"]["flags"] == ["R", "I", "M"] and en["ksys_read"]["ref_count"] == 2
    assert en["do_sys_openat2"]["handler"].startswith("kprobe_ftrace_handler")
    assert en["vfs_read"]["ref_count"] == 1



def test_enabled_functions_handler_is_a_location_in_the_json():
    """Contract v4: ftrace-site's enabled.handler (the kernel's %pS text, "name+0x0/0x1b0")
    is `handler_location`, as kprobe-list's handlers; the line stays whole in `text`."""
    from gdb_toolkit.kernel.ftrace import enabled_entry

    en = T.parse_enabled_functions(
        "do_sys_openat2 (1) R    \ttramp: 0xffffffffc02c3000 (kprobe_ftrace_handler+0x0/0x1b0) "
        "->kprobe_ftrace_handler+0x0/0x1b0\nvfs_read (1)   \n"
        "ksys_read (1) R   \ttramp: 0xffffffffc02c4000 (my_handler+0x10/0x40 [mymod])\n")
    names = {"kprobe_ftrace_handler": 0xFFFFFFFF81234560, "mymod:my_handler": 0xFFFFFFFFC0B00000}
    kp = to_jsonable(enabled_entry(en["do_sys_openat2"], names.get), True)
    assert kp["handler_location"] == {"address": "0xffffffff81234560", "symbol": "kprobe_ftrace_handler",
                                      "offset": 0, "file": None, "line": None, "object": "vmlinux"}
    assert "handler" not in kp and kp["text"].startswith("do_sys_openat2 (1) R")
    mod = enabled_entry(en["ksys_read"], names.get)["handler_location"]
    assert (mod.address, mod.symbol, mod.offset, mod.object) == (0xFFFFFFFFC0B00010, "my_handler", 0x10, "mymod")
    unknown = enabled_entry(en["do_sys_openat2"], lambda n: None)["handler_location"]
    assert (unknown.address, unknown.symbol, unknown.object) == (None, "kprobe_ftrace_handler", "vmlinux")
    assert enabled_entry(en["vfs_read"], names.get)["handler_location"] is None
    assert enabled_entry(None, names.get) is None


# -- classification on byte fixtures (bytes seen in the guest) ------------------------------

SYMS = {0xFFFFFFFFC02C3000: "ftrace_trampoline [__builtin__ftrace]",
        0xFFFFFFFFC044E07C: "kprobe_optinsn_page+0x7c [__builtin__kprobes]",
        0xFFFFFFFF81E76660: "ftrace_caller", 0xFFFFFFFF81001000: "__fentry__",
        0xFFFFFFFF81234000: "some_function"}


def sym(a):
    return SYMS.get(a)


def rel(src, dst):
    return struct.pack("<i", dst - (src + 5))


@pytest.mark.parametrize("code,kind,target", [
    (b"\xcc\x89\xf4\x55", S.INT3, None),
    (b"\xe9" + rel(0xFFFFFFFFB4567165, 0xFFFFFFFFC044E07C), S.OPTIMIZED, 0xFFFFFFFFC044E07C),
    (b"\xe9" + rel(0xFFFFFFFFB4567165, 0xFFFFFFFF81234000), S.JMP, 0xFFFFFFFF81234000),
    (b"\xe8" + rel(0xFFFFFFFFB4567165, 0xFFFFFFFFC02C3000), S.FTRACE_CALL, 0xFFFFFFFFC02C3000),
    (b"\xe8" + rel(0xFFFFFFFFB4567165, 0xFFFFFFFF81E76660), S.FTRACE_CALL, 0xFFFFFFFF81E76660),
    (b"\xe8" + rel(0xFFFFFFFFB4567165, 0xFFFFFFFF81234000), S.CALL, 0xFFFFFFFF81234000),
    (bytes.fromhex("0f1f4400004157"), S.FTRACE_NOP, None),
    (bytes.fromhex("4157415641554154"), S.PLAIN, None),
])
def test_classify_x86(code, kind, target):
    site = S.classify(code, 0xFFFFFFFFB4567165, "x86_64", sym)
    assert site.kind == kind and site.target == target


def test_classify_arm64():
    a = 0xFFFF000008247910
    assert S.classify(struct.pack("<I", 0xD4200080), a, "aarch64").kind == S.BRK
    assert S.classify(struct.pack("<I", 0xD4210000), a, "aarch64").kind == S.OTHER_BRK   # brk #0x800
    bl = 0x94000000 | ((0x100 // 4) & 0x03FFFFFF)
    site = S.classify(struct.pack("<II", 0xAA1E03E9, bl), a, "aarch64", lambda t: "ftrace_caller"
                      if t == a + 4 + 0x100 else None)
    assert site.kind == S.FTRACE_CALL and site.target == a + 4 + 0x100
    assert S.classify(struct.pack("<II", 0xD503201F, 0xD503201F), a, "aarch64").kind == S.FTRACE_NOP
    assert S.classify(struct.pack("<I", 0xA9B97BFD), a, "aarch64").kind == S.PLAIN   # stp x29,x30
    assert S.fentry_offset(bytes.fromhex("f30f1efa0f1f440000")) == 4
    # a sealed ENDBR64 (apply_seal_endbr) is still one, as is_endbr() says: 6.12's osp nopl (%rax)
    # (vfs_write's first bytes in Debian's 6.12 guest), later kernels' nopl -0x2a(%rax)
    assert S.fentry_offset(bytes.fromhex("660f1f000f1f440000")) == 4
    assert S.fentry_offset(bytes.fromhex("0f1f40d60f1f440000")) == 4
    assert S.fentry_offset(bytes.fromhex("0f1f4000" "0f1f440000")) == 0      # another nopl
    assert S.fentry_offset(struct.pack("<I", 0xD503245F), "aarch64") == 4


def test_cross_check_says_when_an_int3_is_not_a_kprobe():
    site = S.classify(b"\xcc", 0x1000, "x86_64")
    assert cross_check(site, {0x1000}) == "kprobe breakpoint"
    assert "no kprobe here" in cross_check(site, set())


# -- a synthetic kernel -------------------------------------------------------------------

HEADER = r"""
typedef unsigned char u8; typedef unsigned int u32; typedef int s32; typedef unsigned long size_t;
typedef u8 kprobe_opcode_t;
struct hlist_node { struct hlist_node *next, **pprev; };
struct list_head { struct list_head *next, *prev; };
struct pt_regs;
struct kprobe;
typedef int (*kprobe_pre_handler_t)(struct kprobe *, struct pt_regs *);
typedef void (*kprobe_post_handler_t)(struct kprobe *, struct pt_regs *, unsigned long);
struct arch_specific_insn { kprobe_opcode_t *insn; unsigned int boostable:1; unsigned char size;
  union { unsigned char opcode; struct { unsigned char type; } jcc; }; s32 rel32;
  void (*emulate_op)(struct kprobe *, struct pt_regs *); int tp_len; };
struct kprobe { struct hlist_node hlist; struct list_head list; unsigned long nmissed;
  kprobe_opcode_t *addr; const char *symbol_name; unsigned int offset;
  kprobe_pre_handler_t pre_handler; kprobe_post_handler_t post_handler; kprobe_opcode_t opcode;
  struct arch_specific_insn ainsn; u32 flags; };
struct arch_optimized_insn { kprobe_opcode_t copied_insn[4]; kprobe_opcode_t *insn; size_t size; };
struct optimized_kprobe { struct kprobe kp; struct list_head list; struct arch_optimized_insn optinsn; };
struct kretprobe_instance;
typedef int (*kretprobe_handler_t)(struct kretprobe_instance *, struct pt_regs *);
struct kretprobe { struct kprobe kp; kretprobe_handler_t handler; kretprobe_handler_t entry_handler;
  int maxactive; int nmissed; size_t data_size; void *rh; };
struct dyn_event { struct list_head list; void *ops; };
struct trace_event_class { const char *system; };
struct bpf_prog_aux { u32 id; char name[16]; };
struct bpf_prog { unsigned short pages; unsigned int (*bpf_func)(const void *, const void *);
  struct bpf_prog_aux *aux; };
struct bpf_prog_array_item { struct bpf_prog *prog; unsigned long cookie; };
struct bpf_prog_array { struct list_head rcu; struct bpf_prog_array_item items[0]; };
struct trace_event_call { struct list_head list; struct trace_event_class *class;
  union { char *name; void *tp; }; struct bpf_prog_array *prog_array; };
struct trace_probe_event { unsigned int flags; struct trace_event_class class;
  struct trace_event_call call; };
struct trace_probe { struct list_head list; struct trace_probe_event *event; };
struct trace_kprobe { struct dyn_event devent; struct kretprobe rp; unsigned long *nhit;
  const char *symbol; struct trace_probe tp; };
"""

OFFSETS = ["kprobe:hlist", "kprobe:list", "kprobe:nmissed", "kprobe:addr", "kprobe:symbol_name",
           "kprobe:offset", "kprobe:pre_handler", "kprobe:post_handler", "kprobe:opcode",
           "kprobe:ainsn.insn", "kprobe:ainsn.size", "kprobe:flags",
           "optimized_kprobe:optinsn.copied_insn", "optimized_kprobe:optinsn.insn",
           "optimized_kprobe:optinsn.size", "kretprobe:kp", "kretprobe:handler",
           "kretprobe:maxactive", "trace_kprobe:rp", "trace_kprobe:tp.event",
           "trace_kprobe:devent.list", "trace_kprobe:nhit", "trace_kprobe:symbol",
           "trace_probe_event:call", "trace_probe_event:class", "trace_event_call:name", "trace_event_call:class",
           "trace_event_call:prog_array", "trace_event_class:system", "bpf_prog_array:items",
           "bpf_prog:bpf_func", "bpf_prog:aux", "bpf_prog_aux:id", "bpf_prog_aux:name"]
SIZES = ["kprobe", "optimized_kprobe", "kretprobe", "trace_kprobe", "bpf_prog_array_item"]


@pytest.fixture(scope="module")
def kernel_types(tmp_path_factory):
    """(Btf from gcc -gbtf, {"struct:member": offset} and sizes from gcc's offsetof)."""
    uses = "".join(f"struct {s} use_{s};\n" for s in SIZES + ["trace_event_class", "bpf_prog",
                                                               "bpf_prog_aux", "trace_probe_event"])
    d = tmp_path_factory.mktemp("btf")
    src = d / "types.c"
    src.write_text(HEADER + uses)
    obj = d / "types.o"
    proc = subprocess.run(["gcc", "-gbtf", "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"gcc -gbtf unsupported: {proc.stderr[:200]}")
    prog = ("#include <stdio.h>\n#include <stddef.h>\n" + HEADER + "int main(void){printf(\"{\");\n"
            + "".join(f'printf("\\"{o}\\": %zu, ", offsetof(struct {o.split(":")[0]}, {o.split(":")[1]}));\n'
                      for o in OFFSETS)
            + "".join(f'printf("\\"sizeof:{s}\\": %zu, ", sizeof(struct {s}));\n' for s in SIZES)
            + 'printf("\\"end\\": 0}\\n"); return 0;}\n')
    exe = compile_c(prog, "kprobe_offsets")
    off = json.loads(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
    return Btf.load(str(obj)), off


class Memory:
    """Kernel memory being built: page-aligned regions, little-endian writers."""

    def __init__(self):
        self.regions = {}

    def region(self, base, size):
        self.regions[base] = bytearray(size)

    def _find(self, addr):
        for base, buf in self.regions.items():
            if base <= addr < base + len(buf):
                return buf, addr - base
        raise KeyError(hex(addr))

    def put(self, addr, data):
        buf, off = self._find(addr)
        buf[off:off + len(data)] = data

    def q(self, addr, v):
        self.put(addr, struct.pack("<Q", v & (2 ** 64 - 1)))

    def u32(self, addr, v):
        self.put(addr, struct.pack("<I", v))


TEXT = 0xFFFFFFFF81000000
TABLE = 0xFFFFFFFF82000000
DYN_EVENT_LIST = TABLE + 0x800          # the tracefs events' list head (dyn_event_list)
PERCPU = 0xFFFF888000200000             # two CPUs' per-cpu areas, 0x8000 apart
PERCPU_OFFSETS = [PERCPU, PERCPU + 0x8000]
HEAP = 0xFFFF888000100000
OPTPAGE = 0xFFFFFFFFC0400000
TRAMP = 0xFFFFFFFFC0500000
BPF_JIT = 0xFFFFFFFFC0600000
F_OPEN, F_WRITE, F_KSYS, F_READ = TEXT + 0x1000, TEXT + 0x2000, TEXT + 0x3000, TEXT + 0x4000
F_QUIET = TEXT + 0x4800
GONE_ADDR = 0xFFFFFFFFC0A01010          # in a module that was unloaded: nothing mapped there
H_AGGR, H_KRET, H_KDISP, H_RDISP = TEXT + 0x5000, TEXT + 0x5100, TEXT + 0x5200, TEXT + 0x5300
H_MOD_POST = 0xFFFFFFFFC0B00000        # a module's own post_handler (kallsyms: my_post [mymod])

KALLSYMS = "\n".join([
    f"{TEXT:016x} T _text", f"{F_OPEN:016x} T do_sys_openat2", f"{F_WRITE:016x} T vfs_write",
    f"{F_KSYS:016x} T ksys_read", f"{F_READ:016x} T vfs_read", f"{F_QUIET:016x} T quiet_fn",
    f"{H_AGGR:016x} t aggr_pre_handler",
    f"{H_KRET:016x} t pre_handler_kretprobe", f"{H_KDISP:016x} t kprobe_dispatcher",
    f"{H_RDISP:016x} t kretprobe_dispatcher", f"{TEXT + 0x6000:016x} T _etext",
    f"{TABLE:016x} b kprobe_table", f"{TABLE + 0x1000:016x} b other_data",
    f"{OPTPAGE:016x} t kprobe_optinsn_page\t[__builtin__kprobes]",
    f"{TRAMP:016x} t ftrace_trampoline\t[__builtin__ftrace]",
    f"{BPF_JIT:016x} t bpf_prog_6deef7357e7b4530_trace\t[bpf]",
    f"{H_MOD_POST:016x} t my_post\t[mymod]",
]) + "\n"

# live bytes: an ftrace call, an optimized jmp, an int3, an idle NOP
OPEN_ORIG = bytes.fromhex("0f1f4400004154")
WRITE_ORIG = bytes.fromhex("41574156415541545553")        # push r15; push r14; push r13 ...
KSYS_ORIG = bytes.fromhex("4889e5c3")                      # mov rbp, rsp; ret


def build_kernel(tmp_path, types, mismatch=False, cycle=False, queued=False):
    btf, off = types
    m = Memory()
    m.region(TEXT, 0x7000)
    m.region(TABLE, 0x1000)
    m.region(HEAP, 0x10000)
    m.region(OPTPAGE, 0x1000)
    m.region(TRAMP, 0x1000)
    m.region(BPF_JIT, 0x1000)
    m.region(PERCPU, 0x10000)
    o = lambda k: off[k]   # noqa: E731
    counters = iter(range(0x100, 0x1000, 8))
    # text
    m.put(F_OPEN, b"\xe8" + struct.pack("<i", TRAMP - (F_OPEN + 5)) + OPEN_ORIG[5:])
    m.put(F_WRITE, WRITE_ORIG)
    m.put(F_WRITE + 2, b"\xcc" if queued else
          b"\xe9" + struct.pack("<i", OPTPAGE + 0x7C - (F_WRITE + 7)))
    m.put(F_KSYS, bytes.fromhex("0f1f440000"))
    m.put(F_KSYS + 5, (b"\x90" if mismatch else b"\xcc") + KSYS_ORIG[1:])
    m.put(F_READ, bytes.fromhex("0f1f4400004157"))
    m.put(F_QUIET, b"\xe8" + struct.pack("<i", TRAMP - (F_QUIET + 5)) + b"\x55")
    strings = HEAP + 0xE000
    names = {}

    def cstr(s):
        nonlocal strings
        names[s] = strings
        m.put(strings, s.encode() + b"\0")
        strings += 32
        return names[s]

    def kprobe(at, addr, pre, flags, opcode=0, ainsn_size=0, sym=None, offs=0, listp=None):
        m.q(at + o("kprobe:addr"), addr)
        m.q(at + o("kprobe:pre_handler"), pre)
        m.u32(at + o("kprobe:flags"), flags)
        m.put(at + o("kprobe:opcode"), bytes([opcode]))
        m.put(at + o("kprobe:ainsn.size"), bytes([ainsn_size]))
        m.u32(at + o("kprobe:offset"), offs)
        if sym:
            m.q(at + o("kprobe:symbol_name"), cstr(sym))
        if listp is not None:
            m.q(at + o("kprobe:list"), listp)

    def trace_kprobe(tk, event, system="kprobes", prog=None, local=False, nhit=(0, 0), target=None):
        call_evt = tk + 0x800        # trace_probe_event somewhere after the trace_kprobe
        m.q(tk + o("trace_kprobe:tp.event"), call_evt)
        call = call_evt + o("trace_probe_event:call")
        m.q(call + o("trace_event_call:name"), cstr(event))
        cls = call_evt + o("trace_probe_event:class")       # embedded, as in the kernel
        m.q(call + o("trace_event_call:class"), cls)
        m.q(cls + o("trace_event_class:system"), cstr(system))
        # a local (perf/BPF) trace_kprobe is never added to dyn_event_list
        dl = tk + o("trace_kprobe:devent.list")
        m.q(dl, dl if local else DYN_EVENT_LIST)
        ctr = next(counters)                                 # __percpu pointer: an offset
        m.q(tk + o("trace_kprobe:nhit"), ctr)
        for cpu_off, n in zip(PERCPU_OFFSETS, nhit):
            m.q(cpu_off + ctr, n)
        if target:
            m.q(tk + o("trace_kprobe:symbol"), cstr(target))
        if prog:
            arr, bp, aux = tk + 0x600, tk + 0x680, tk + 0x6C0
            m.q(call + o("trace_event_call:prog_array"), arr)
            m.q(arr + o("bpf_prog_array:items"), bp)
            m.q(bp + o("bpf_prog:bpf_func"), BPF_JIT)
            m.q(bp + o("bpf_prog:aux"), aux)
            m.u32(aux + o("bpf_prog_aux:id"), 42)
            m.put(aux + o("bpf_prog_aux:name"), b"trace\0")
        return tk + o("trace_kprobe:rp") + o("kretprobe:kp")       # its struct kprobe

    lst = o("kprobe:list")
    # 1. do_sys_openat2: aggregate (ftrace) with a kprobe (BPF attached) and a kretprobe
    aggr1 = HEAP + 0x0
    kp_a = trace_kprobe(HEAP + 0x1000, "pent", prog=True, local=True, nhit=(2, 1))
    kp_r = trace_kprobe(HEAP + 0x2000, "rr", nhit=(3, 2))
    kprobe(aggr1, F_OPEN, H_AGGR, 8 | 16, listp=kp_a + lst)
    m.q(aggr1 + lst + 8, kp_r + lst)
    kprobe(kp_a, F_OPEN, H_KDISP, 8 | 16, sym="do_sys_openat2", listp=kp_r + lst)
    kprobe(kp_r, F_OPEN, H_KRET, 8 | 16, sym="do_sys_openat2", listp=aggr1 + lst)
    m.q(kp_r - o("kretprobe:kp") + o("kretprobe:handler"), H_RDISP)
    m.u32(kp_r - o("kretprobe:kp") + o("kretprobe:maxactive"), 10)
    # 2. vfs_write+5: optimized aggregate with one kprobe
    aggr2 = HEAP + 0x400
    kp_w = trace_kprobe(HEAP + 0x3000, "poff2", nhit=(11, 0))
    kprobe(aggr2, F_WRITE + 2, H_AGGR, 4, opcode=WRITE_ORIG[2], ainsn_size=2, listp=kp_w + lst)
    m.q(aggr2 + lst + 8, kp_w + lst)
    m.put(aggr2 + o("optimized_kprobe:optinsn.copied_insn"), WRITE_ORIG[3:7])
    m.q(aggr2 + o("optimized_kprobe:optinsn.insn"), OPTPAGE + 0x7C)
    m.q(aggr2 + o("optimized_kprobe:optinsn.size"), 6)       # push r14; push r13; push r12
    kprobe(kp_w, F_WRITE + 2, H_KDISP, 0, opcode=WRITE_ORIG[2], ainsn_size=2, sym="vfs_write", offs=2,
           listp=aggr2 + lst)
    m.q(kp_w + o("kprobe:nmissed"), 1)
    # 3. ksys_read+5: plain int3 kprobe (not aggregated)
    kp_k = trace_kprobe(HEAP + 0x4000, "pint", nhit=(4, 3))
    kprobe(kp_k, F_KSYS + 5, H_KDISP, 0, opcode=KSYS_ORIG[0], ainsn_size=3, sym="ksys_read", offs=5,
           listp=kp_k + lst)
    m.q(kp_k + o("kprobe:post_handler"), H_MOD_POST + 0x8)     # inside a module's function
    # 4. vfs_read: disabled probe on an ftrace site
    kp_d = trace_kprobe(HEAP + 0x5000, "pdis")
    kprobe(kp_d, F_READ, H_KDISP, 2 | 8 | 16, sym="vfs_read", listp=kp_d + lst)
    # 5. quiet_fn: aggregate of a perf (bpftrace) probe and two tracefs events, in p->list
    #    order: newest first, as register_aggr_kprobe leaves them
    aggr3 = HEAP + 0x800
    kp_p = trace_kprobe(HEAP + 0x7000, "quiet_fn", prog=True, local=True, nhit=(1, 3))
    kp_e2 = trace_kprobe(HEAP + 0x8000, "entry2", system="ev", nhit=(2, 4))
    kp_e1 = trace_kprobe(HEAP + 0x9000, "entry", system="ev", nhit=(5, 4))
    kprobe(aggr3, F_QUIET, H_AGGR, 8 | 16, listp=kp_p + lst)
    m.q(aggr3 + lst + 8, kp_e1 + lst)
    kprobe(kp_p, F_QUIET, H_KDISP, 8 | 16, sym="quiet_fn", listp=kp_e2 + lst)
    kprobe(kp_e2, F_QUIET, H_KDISP, 8 | 16, sym="quiet_fn", listp=kp_e1 + lst)
    kprobe(kp_e1, F_QUIET, H_KDISP, 8 | 16, sym="quiet_fn", listp=aggr3 + lst)
    # 6. a probe on a module function, the module since unloaded: [GONE]
    kp_g = trace_kprobe(HEAP + 0xA000, "m", system="ev", target="mymod:mod_fn")
    kprobe(kp_g, GONE_ADDR, H_KDISP, 1 | 8, sym="mod_fn", listp=kp_g + lst)
    # hash chains: bucket 3 holds aggr1 -> aggr2, bucket 9 kp_k, bucket 20 kp_d, 30 aggr3 -> kp_g
    hl = o("kprobe:hlist")
    m.q(TABLE + 3 * 8, aggr1 + hl)
    m.q(aggr1 + hl, aggr2 + hl)
    m.q(TABLE + 9 * 8, kp_k + hl)
    m.q(TABLE + 20 * 8, kp_d + hl)
    m.q(TABLE + 30 * 8, aggr3 + hl)
    m.q(aggr3 + hl, kp_g + hl)
    if cycle:
        m.q(aggr2 + hl, aggr1 + hl)
    path = write_kcore(tmp_path / "kcore", {b: bytes(v) for b, v in m.regions.items()},
                       "OSRELEASE=6.1.0-synthetic\nKERNELOFFSET=0\n")
    return path


LISTED = f"""\
{F_OPEN:016x}  k  do_sys_openat2+0x0    [FTRACE]
{F_OPEN:016x}  r  do_sys_openat2+0x0    [FTRACE]
{F_WRITE + 2:016x}  k  vfs_write+0x2    [OPTIMIZED]
{F_KSYS + 5:016x}  k  ksys_read+0x5
{F_READ:016x}  k  vfs_read+0x0    [DISABLED][FTRACE]
{F_QUIET:016x}  k  quiet_fn+0x0    [FTRACE]
{F_QUIET:016x}  k  quiet_fn+0x0    [FTRACE]
{F_QUIET:016x}  k  quiet_fn+0x0    [FTRACE]
{GONE_ADDR:016x}  k  0x{GONE_ADDR:016x} [GONE][FTRACE]
"""
EVENTS = ("p:kprobes/pint ksys_read+5\np:kprobes/poff2 vfs_write+2\n"
          "p:kprobes/pdis vfs_read\nr10:kprobes/rr do_sys_openat2\n"
          "p:ev/entry quiet_fn\np:ev/entry2 quiet_fn\np:ev/m mymod:mod_fn\n")
PROFILE = ("  pint   7   0\n  poff2   11   1\n  pdis   0   0\n  rr   5   0\n"
           "  entry   9   0\n  entry2   6   0\n  m   0   0\n")


def _report(tmp_path, types, **kw):
    btf, _ = types
    core = build_kernel(tmp_path, types, **kw)
    kc = Kcore.open(str(core))
    syms = Kallsyms.parse(KALLSYMS)
    walker = TableWalker(kc, KprobeLayout.from_btf(btf), syms, PERCPU_OFFSETS)
    walk = walker.walk(syms.address("kprobe_table"))
    rep = build_report("x86_64", T.parse_kprobes_list(LISTED), walk, kc.read, syms.format
                       if False else (lambda a: syms.format(a) if syms.symbolize(a) else None),
                       T.parse_kprobe_events(EVENTS), T.parse_kprobe_profile(PROFILE),
                       resolve=syms.address, enrich=walker.enrich)
    return rep, walk, kc


def test_layout_from_gcc_btf_matches_offsetof(kernel_types):
    btf, off = kernel_types
    lay = KprobeLayout.from_btf(btf)
    assert lay.size == off["sizeof:kprobe"] and lay.opt_size == off["sizeof:optimized_kprobe"]
    assert (lay.addr, lay.pre_handler, lay.flags, lay.opcode, lay.ainsn_size) == (
        off["kprobe:addr"], off["kprobe:pre_handler"], off["kprobe:flags"], off["kprobe:opcode"],
        off["kprobe:ainsn.size"])
    assert lay.opt_copied == off["optimized_kprobe:optinsn.copied_insn"]
    assert lay.tk_event == off["trace_kprobe:tp.event"]


def test_walk_and_report_on_synthetic_kernel(tmp_path, kernel_types):
    rep, walk, kc = _report(tmp_path, kernel_types)
    with kc:
        assert not walk.notes
        assert len(walk.probes) == 6 and sum(len(p.children) for p in walk.probes) == 6
        by = {(p.symbol, p.kind): p for p in rep.probes}
        ent = by[("do_sys_openat2+0x0", "kprobe")]
        assert ent.state == "ftrace" and ent.consistent and ent.original == bytes.fromhex("0f1f440000")
        assert ent.handler == "kprobe_dispatcher" and ent.event == "kprobes/pent"
        assert ent.aggregate_address == HEAP and ent.bpf and ent.bpf[0]["bpf_func_address"] == BPF_JIT
        assert ent.bpf[0]["name"] == "trace" and ent.bpf[0]["id"] == 42
        ret = by[("do_sys_openat2+0x0", "kretprobe")]
        assert ret.handler == "pre_handler_kretprobe" and ret.ret_handler == "kretprobe_dispatcher"
        assert ret.event == "kprobes/rr" and (ret.hit_count, ret.miss_count) == (5, 0)
        opt = by[("vfs_write+0x2", "kprobe")]
        assert opt.state == "optimized" and opt.consistent and opt.detour_address == OPTPAGE + 0x7C
        assert opt.original == WRITE_ORIG[2:8] and "copied_insn" in opt.original_source
        assert (opt.hit_count, opt.miss_count) == (11, 1)
        i3 = by[("ksys_read+0x5", "kprobe")]
        assert i3.state == "int3" and i3.original == KSYS_ORIG[:3] and i3.original_source == "p->opcode"
        # contract v4: handlers are location objects (offset and module kept), the text unchanged
        assert i3.post_handler == "my_post+0x8 [mymod]"
        doc = to_jsonable(i3, True)
        assert doc["post_handler_location"] == {"address": f"0x{H_MOD_POST + 8:x}", "symbol": "my_post",
                                                "offset": 8, "file": None, "line": None, "object": "mymod"}
        assert doc["handler_location"]["symbol"] == "kprobe_dispatcher"
        assert (doc["handler_location"]["address"], doc["handler_location"]["object"]) == (f"0x{H_KDISP:x}", "vmlinux")
        assert doc["ret_handler_location"] is None and not {"handler", "post_handler", "ret_handler"} & doc.keys()
        assert to_jsonable(ret, True)["ret_handler_location"]["symbol"] == "kretprobe_dispatcher"
        dis = by[("vfs_read+0x0", "kprobe")]
        assert dis.state == "ftrace-nop" and dis.expected == "disarmed" and dis.consistent
        assert all(not p.notes for p in rep.probes)


def test_mismatch_and_race_are_reported_not_hidden(tmp_path, kernel_types):
    rep, walk, kc = _report(tmp_path, kernel_types, mismatch=True)
    kc.close()
    i3 = next(p for p in rep.probes if p.symbol == "ksys_read+0x5")
    assert not i3.consistent and "say int3" in i3.notes[0]
    rep, walk, kc = _report(tmp_path, kernel_types, cycle=True)
    kc.close()
    assert any("seen twice" in n for n in walk.notes)
    assert len(walk.probes) == 6          # the chain was cut at the repeat, nothing lost or doubled


def test_optimized_flag_over_an_int3_is_a_queued_optimization_not_a_mismatch(tmp_path, kernel_types):
    """kernel/kprobes.c optimize_kprobe() flags the probe OPTIMIZED when it queues it; the jmp
    comes after an RCU-tasks grace period (slow under TCG): between the two, kprobes/list says
    [OPTIMIZED] over an int3.  That is said, not called an inconsistency; a jmp-less site with
    no int3 still is one (test above)."""
    rep, walk, kc = _report(tmp_path, kernel_types, queued=True)
    kc.close()
    opt = next(p for p in rep.probes if p.symbol == "vfs_write+0x2")
    assert opt.flags == ["OPTIMIZED"] and opt.state == "int3" and opt.expected == "optimized"
    assert opt.consistent and opt.detour_address is None and "queued" in opt.notes[0]
    assert opt.original == WRITE_ORIG[2:4] and opt.original_source == "p->opcode"


def test_memory_only_report_without_debugfs(tmp_path, kernel_types):
    btf, _ = kernel_types
    core = build_kernel(tmp_path, kernel_types)
    with Kcore.open(str(core)) as kc:
        syms = Kallsyms.parse(KALLSYMS)
        walker = TableWalker(kc, KprobeLayout.from_btf(btf), syms)
        walk = walker.walk(syms.address("kprobe_table"))
        rep = build_report("x86_64", None, walk, kc.read, lambda a: syms.format(a),
                           enrich=walker.enrich)
    flags = {p.symbol: p.flags for p in rep.probes}
    assert flags["vfs_read+0x0"] == ["DISABLED", "FTRACE"]     # spelled as kprobes/list does
    assert flags["vfs_write+0x2"] == ["OPTIMIZED"]
    assert {p.kind for p in rep.probes if p.symbol == "do_sys_openat2+0x0"} == {"kprobe", "kretprobe"}
    assert all(p.found_in == "memory" for p in rep.probes)


def test_layout_error_without_kprobes():
    with pytest.raises(ToolkitError, match="CONFIG_KPROBES"):
        from tests.unit.test_kernel_btf import _blob   # noqa: F401  (same tiny BTF helper)
        KprobeLayout.from_btf(Btf(_blob([], b"\0")))


def test_btf_values_decode_a_struct_kprobe(kernel_types):
    """Field-by-field decode (kprobe-show's tables) of bytes laid out by gcc's offsetof."""
    from gdb_toolkit.kernel.btf_values import decode

    btf, off = kernel_types
    data = bytearray(off["sizeof:kprobe"])
    struct.pack_into("<Q", data, off["kprobe:addr"], F_WRITE + 2)
    struct.pack_into("<Q", data, off["kprobe:pre_handler"], H_KDISP)
    struct.pack_into("<Q", data, off["kprobe:symbol_name"], 0xFFFF888000200000)
    struct.pack_into("<I", data, off["kprobe:flags"], 4)
    data[off["kprobe:opcode"]] = 0x41
    data[off["kprobe:ainsn.size"]] = 2
    data[off["kprobe:ainsn.size"] - 1] = 1            # boostable:1 shares the byte before size
    syms = Kallsyms.parse(KALLSYMS)
    rows = {f.path: f for f in decode(btf, btf.find("kprobe").id, bytes(data), syms.describe,
                                      lambda p: "vfs_write" if p == 0xFFFF888000200000 else None)}
    assert rows["addr"].value == f"0x{F_WRITE + 2:x} <vfs_write+0x2>"
    assert rows["pre_handler"].value.endswith("<kprobe_dispatcher>")
    assert rows["symbol_name"].value.endswith("'vfs_write'")
    assert rows["opcode"].value == "65" and rows["flags"].raw == 4
    assert rows["ainsn.size"].value == "2" and rows["ainsn.boostable"].value == "1"
    assert rows["ainsn.boostable"].c_type.endswith(":1")
    assert rows["post_handler"].value == "NULL"
    assert rows["hlist.pprev"].offset == off["kprobe:hlist"] + 8


def test_event_only_in_memory_is_marked_not_tracefs(tmp_path, kernel_types):
    """A BPF/perf kprobe's trace_kprobe has a local event ('kprobes/pent') that tracefs
    kprobe_events does not list: the report must not pass it off as a tracefs event."""
    rep, walk, kc = _report(tmp_path, kernel_types)
    kc.close()
    by = {(p.symbol, p.kind): p for p in rep.probes}
    assert "pent" not in EVENTS                                 # only in the synthetic memory
    assert by[("do_sys_openat2+0x0", "kprobe")].event_tracefs is False
    assert by[("do_sys_openat2+0x0", "kretprobe")].event_tracefs is True     # r10:kprobes/rr
    assert by[("ksys_read+0x5", "kprobe")].event_tracefs is True             # p:kprobes/pint


def test_several_probes_at_one_address_each_get_their_own_event(tmp_path, kernel_types):
    """Issue 17 item 1: two tracefs events and a perf probe on one function are three rows,
    each with the event, hit count and BPF programs of its own trace_kprobe."""
    rep, walk, kc = _report(tmp_path, kernel_types)
    kc.close()
    rows = [p for p in rep.probes if p.address == F_QUIET]
    assert [(r.event, r.event_tracefs, r.hit_count) for r in rows] == [
        ("kprobes/quiet_fn", False, 4), ("ev/entry2", True, 6), ("ev/entry", True, 9)]
    assert [bool(r.bpf) for r in rows] == [True, False, False]
    assert len({r.struct_address for r in rows}) == 3 and {r.aggregate_address for r in rows} == {HEAP + 0x800}


def test_gone_module_probe_is_named_by_its_target_not_by_what_lives_there_now(tmp_path, kernel_types):
    """Issue 17 item 2: the address of a [GONE] probe belongs to nothing (or to another module
    now): name it by the trace_kprobe's target, no live bytes, no 'original'."""
    rep, walk, kc = _report(tmp_path, kernel_types)
    kc.close()
    (g,) = [p for p in rep.probes if p.address == GONE_ADDR]
    assert g.symbol == "mod_fn+0x0 [mymod]" and g.flags[0] == "GONE" and g.state == "gone"
    assert g.original is None and "unloaded" in g.original_source and g.consistent
    assert (g.event, g.event_tracefs) == ("ev/m", True)
    assert not any("0xffffffffc0a01010" in n for n in rep.notes)     # nothing read there


def test_without_memory_several_candidate_events_are_not_guessed(tmp_path, kernel_types):
    """kprobe-list --no-memory: tracefs alone cannot tell which of two events on one function
    a line is: say so instead of naming the first one three times."""
    core = build_kernel(tmp_path, kernel_types)
    syms = Kallsyms.parse(KALLSYMS)
    with Kcore.open(str(core)) as kc:
        rep = build_report("x86_64", T.parse_kprobes_list(LISTED), None, kc.read,
                           lambda a: syms.format(a) if syms.symbolize(a) else None,
                           T.parse_kprobe_events(EVENTS), T.parse_kprobe_profile(PROFILE),
                           resolve=syms.address)
    rows = [p for p in rep.probes if p.address == F_QUIET]
    assert [r.event for r in rows] == [None, None, None]
    assert all("one of ev/entry, ev/entry2" in r.notes[0] for r in rows)
    single = next(p for p in rep.probes if p.symbol == "ksys_read+0x5")
    assert (single.event, single.hit_count) == ("kprobes/pint", 7)        # one candidate: named
