"""arm64 ftrace sites and kdis names on kcore-shaped cores holding the bytes Debian's 6.1 arm64
kernel really showed through /proc/kcore in the arm64 guest (tests/integration/
test_kernel_arm64_guest.py checks the same against the live kernel).

Oracles: the instruction words are the architecture's encodings as aarch64-linux-gnu-as
assembles them and aarch64-linux-gnu-objdump names them (both binutils, not capstone).
"""
import shutil
import struct
import subprocess

import pytest

from gdb_toolkit.kernel import sites as S
from gdb_toolkit.kernel.ftrace import ftrace_site
from gdb_toolkit.kernel.memory_views import kdis
from gdb_toolkit.kernel.session import KernelSession
from tests.support.kcore_fixture import write_kcore

EM_AARCH64 = 183
FTRACE_CALLER = 0xFFFFDD1B3EE2D10C
TEXT_PAGE = 0xFFFFDD1B3F1A8000          # do_sys_openat2 .. vfs_write live here
OPENAT2 = 0xFFFFDD1B3F1A8BA0
VFS_READ = 0xFFFFDD1B3F1AB520
NOTRACE = 0xFFFFDD1B3F1AB800           # starts with paciasp: no patchable entry
BTI_FUNC = 0xFFFFDD1B3F1AB900          # bti c; mov x9, x30; nop
ASM_FUNC = 0xFFFFDD1B3F1ABA00          # copy_page: bti c + an alternative's three NOPs
NOPS_FUNC = 0xFFFFDD1B3F1ABB00         # may_use_simd: three NOPs (alternatives), not traced
MOD_FUNC = 0xFFFFDD1B3F1AC000          # a "module" function calling ftrace via its PLT
MOD_PLT = 0xFFFFDD1B3F1ACF00

MOV_X9 = bytes.fromhex("e9031eaa")
NOP = bytes.fromhex("1f2003d5")
BRK4 = bytes.fromhex("800020d4")
PACIASP = bytes.fromhex("3f2303d5")
BTI_C = bytes.fromhex("5f2403d5")
BODY = PACIASP + bytes.fromhex("ff8302d1")          # paciasp; sub sp, sp, #0xa0


def bl(frm: int, to: int) -> bytes:
    return struct.pack("<I", 0x94000000 | (((to - frm) >> 2) & 0x03FFFFFF))


def plt(at: int, to: int) -> bytes:
    """adrp x16, to; add x16, x16, :lo12:to; br x16 (the kernel's struct plt_entry)."""
    delta = ((to & ~0xFFF) - (at & ~0xFFF)) >> 12
    adrp = 0x90000010 | ((delta & 3) << 29) | (((delta >> 2) & 0x7FFFF) << 5)
    add = 0x91000210 | ((to & 0xFFF) << 10)
    return struct.pack("<III", adrp, add, 0xD61F0200)


KALLSYMS = f"""\
{FTRACE_CALLER:016x} T ftrace_caller
{FTRACE_CALLER + 0x100:016x} T ftrace_stub
{OPENAT2:016x} t do_sys_openat2
{OPENAT2 + 0x200:016x} t do_sys_open
{VFS_READ:016x} T vfs_read
{VFS_READ + 0x200:016x} T vfs_notrace_x
{NOTRACE:016x} T notrace_fn
{NOTRACE + 0x80:016x} T after_notrace
{BTI_FUNC:016x} T bti_fn
{BTI_FUNC + 0x80:016x} T after_bti
{ASM_FUNC:016x} T copy_page
{ASM_FUNC + 0xd0:016x} T after_copy_page
{NOPS_FUNC:016x} T may_use_simd
{NOPS_FUNC + 0x40:016x} T after_may_use_simd
{MOD_FUNC:016x} t v9fs_file_read_iter\t[9p]
{MOD_FUNC + 0x100:016x} t v9fs_other\t[9p]
"""


def make_session(tmp_path, openat2: bytes, vfs_read: bytes, enabled: str = "",
                 listed: str = "", mod_call: bytes | None = None,
                 probed_nops: bool = False) -> KernelSession:
    page = bytearray(b"\0" * 0x5000)

    def put(addr, code):
        page[addr - TEXT_PAGE:addr - TEXT_PAGE + len(code)] = code
    put(OPENAT2, openat2 + BODY)
    put(VFS_READ, vfs_read + BODY)
    put(NOTRACE, BODY + NOP)
    put(BTI_FUNC, BTI_C + MOV_X9 + NOP + BODY)
    put(ASM_FUNC, COPY_PAGE)
    put(NOPS_FUNC, (BRK4 if probed_nops else NOP) + NOP + NOP + BODY)
    put(MOD_FUNC, MOV_X9 + (mod_call or NOP) + BODY)
    put(MOD_PLT, plt(MOD_PLT, FTRACE_CALLER))
    ftrace = bytearray(0x1000)
    kcore = write_kcore(tmp_path / "kcore", {TEXT_PAGE: bytes(page),
                                             FTRACE_CALLER & ~0xFFF: bytes(ftrace)},
                        "OSRELEASE=6.1.0-57-arm64\nPAGESIZE=4096\n", machine=EM_AARCH64)
    (tmp_path / "kallsyms").write_text(KALLSYMS)
    tracefs = tmp_path / "tracing"
    tracefs.mkdir(exist_ok=True)
    (tracefs / "enabled_functions").write_text(enabled)
    (tracefs / "available_filter_functions").write_text(
        "do_sys_openat2\nvfs_read\nbti_fn\nv9fs_file_read_iter [9p]\n")
    (tmp_path / "list").write_text(listed)
    return KernelSession(kcore=str(kcore), kallsyms=str(tmp_path / "kallsyms"),
                         kprobes_list=str(tmp_path / "list"), tracefs=str(tracefs), live=True)


IDLE = MOV_X9 + NOP
# copy_page's first five words as the guest's /proc/kcore showed them (bti c; nop x3 -- the
# alternative_else_nop_endif of its prefetches --; ldp x2, x3, [x1]); not in
# available_filter_functions there
COPY_PAGE = bytes.fromhex("5f2403d51f2003d51f2003d51f2003d5220c40a9")


def test_idle_entry_is_an_idle_site_not_notrace(tmp_path):
    """Wrong answer 1: 'not-a-site: ordinary instruction ... notrace' for mov x9, x30; nop."""
    with make_session(tmp_path, IDLE, IDLE) as s:
        r = ftrace_site(s, "vfs_read")
    assert r.state == "idle" and r.kind == S.FTRACE_NOP
    assert r.entry_address == VFS_READ and r.site_address == VFS_READ + 4
    assert r.original == IDLE and r.live == IDLE and r.traceable
    assert not any("notrace" in n for n in r.notes), r.notes


def test_traced_entry_site_is_func_plus_4_and_original_keeps_mov_x9(tmp_path):
    """Wrong answer 2: site reported at func+0 with the original as two NOPs; the real original
    is e9 03 1e aa 1f 20 03 d5."""
    live = MOV_X9 + bl(VFS_READ + 4, FTRACE_CALLER)
    with make_session(tmp_path, IDLE, live, enabled="vfs_read (1)      \n") as s:
        r = ftrace_site(s, "vfs_read")
    assert r.state == "patched" and r.kind == S.FTRACE_CALL
    assert r.site_address == VFS_READ + 4 and r.target_address == FTRACE_CALLER
    assert r.target_symbol == "ftrace_caller"
    assert r.original == bytes.fromhex("e9031eaa1f2003d5")
    assert r.enabled is not None and not r.notes, r.notes


def test_kprobe_and_tracer_together_is_traced_with_the_kprobe_beside_it(tmp_path):
    """Wrong answer 3: 'a kprobe breakpoint sits on the site (not using ftrace)' although func+4
    is bl ftrace_caller and the function is in enabled_functions."""
    live = BRK4 + bl(OPENAT2 + 4, FTRACE_CALLER)
    listed = f"{OPENAT2:016x}  k  do_sys_openat2+0x0    \n"
    with make_session(tmp_path, live, IDLE, enabled="do_sys_openat2 (1)      \n",
                      listed=listed) as s:
        r = ftrace_site(s, "do_sys_openat2")
        rows = {row.address: row for row in kdis(s, OPENAT2, 4, {OPENAT2}).insns}
    assert r.state == "patched" and r.target_symbol == "ftrace_caller"
    assert r.original == MOV_X9 + NOP and r.enabled is not None
    assert r.kprobes == [listed.strip()]
    assert not any("not using ftrace" in n for n in r.notes)
    assert any("brk #0x4 replaced the entry's first instruction (mov x9, x30)" in n
               and "do not use ftrace" in n for n in r.notes), r.notes
    # kdis: the brk is the kprobe over mov x9, x30; +4 is ftrace's own call
    assert rows[OPENAT2].text == "brk #0x4"
    assert rows[OPENAT2].note == "kprobe breakpoint over the patchable entry's mov x9, x30"
    assert rows[OPENAT2 + 4].target_symbol == "ftrace_caller"
    assert rows[OPENAT2 + 4].note.startswith("ftrace call")
    assert rows[OPENAT2 + 8].text == "paciasp"          # hint #0x19, named


def test_kprobe_on_idle_entry(tmp_path):
    listed = f"{OPENAT2:016x}  k  do_sys_openat2+0x0    \n"
    with make_session(tmp_path, BRK4 + NOP, IDLE, listed=listed) as s:
        r = ftrace_site(s, "do_sys_openat2")
        rows = {row.address: row for row in kdis(s, OPENAT2, 3, {OPENAT2}).insns}
    assert r.state == "idle" and r.original == IDLE and r.kprobes
    assert any("kprobe's brk #0x4" in n and "(idle)" in n for n in r.notes), r.notes
    assert rows[OPENAT2 + 4].note == "idle ftrace site (NOP)"


def test_idle_kdis_names_both_slots(tmp_path):
    with make_session(tmp_path, IDLE, IDLE) as s:
        rows = kdis(s, VFS_READ, 3, set()).insns
    assert [r.note for r in rows] == ["patchable entry: ftrace's mov x9, x30 (saves LR)",
                                      "idle ftrace site (NOP)", ""]
    assert rows[2].text == "paciasp"


def test_notrace_function_is_not_a_site_in_arm64_words(tmp_path):
    with make_session(tmp_path, IDLE, IDLE) as s:
        r = ftrace_site(s, "notrace_fn")
    assert r.state == "not-a-site" and r.original is None
    text = " ".join(r.notes)
    assert "patchable function entry" in text and "DYNAMIC_FTRACE_WITH_REGS" in text
    assert "fentry" not in text


def test_bti_c_then_entry(tmp_path):
    with make_session(tmp_path, IDLE, IDLE) as s:
        r = ftrace_site(s, "bti_fn")
        rows = kdis(s, BTI_FUNC, 3, set()).insns
    assert r.state == "idle" and r.entry_address == BTI_FUNC + 4 and r.site_address == BTI_FUNC + 8
    assert rows[0].text == "bti c" and rows[1].note.startswith("patchable entry")
    assert rows[2].note == "idle ftrace site (NOP)"


def test_module_function_calls_ftrace_through_its_plt(tmp_path):
    with make_session(tmp_path, IDLE, IDLE, mod_call=bl(MOD_FUNC + 4, MOD_PLT),
                      enabled="v9fs_file_read_iter [9p] (1)      \n") as s:
        r = ftrace_site(s, "v9fs_file_read_iter")
        rows = {row.address: row for row in kdis(s, MOD_FUNC, 2, set()).insns}
    assert r.state == "patched" and r.target_address == FTRACE_CALLER
    assert r.target_symbol == f"ftrace_caller via the module PLT at 0x{MOD_PLT:x}"
    assert rows[MOD_FUNC + 4].note.startswith("ftrace call via the module's ftrace PLT")


@pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-as"), reason="needs binutils-aarch64-linux-gnu")
def test_plt_decoder_against_the_assembler(tmp_path):
    """arm64_plt_target against ld's own relocation of adrp/add :lo12: (independent)."""
    src = tmp_path / "plt.s"
    src.write_text(".global _start\n_start:\n adrp x16, target\n add x16, x16, :lo12:target\n"
                   " br x16\n")
    obj, exe = tmp_path / "plt.o", tmp_path / "plt"
    subprocess.run(["aarch64-linux-gnu-as", str(src), "-o", str(obj)], check=True)
    for at, target in ((0xFFFF800001234F00, 0xFFFF80000FFFE10C), (0x400F00, 0x1000)):
        subprocess.run(["aarch64-linux-gnu-ld", f"-Ttext=0x{at:x}", f"--defsym=target=0x{target:x}",
                        "-o", str(exe), str(obj)], check=True)
        code = subprocess.run(["aarch64-linux-gnu-objcopy", "-O", "binary", "-j", ".text", str(exe),
                               "/dev/stdout"], capture_output=True, check=True).stdout
        assert S.arm64_plt_target(code, at) == target
        assert code[:12] == plt(at, target)            # the test's own builder agrees with ld
    assert S.arm64_plt_target(NOP * 3, 0x1000) is None


@pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-objdump"),
                    reason="needs binutils-aarch64-linux-gnu")
def test_pac_bti_names_match_objdump(tmp_path):
    from gdb_toolkit.common.disasm import disassemble
    words = [0xD503233F, 0xD50323BF, 0xD503237F, 0xD50323FF, 0xD503231F, 0xD503239F,
             0xD503245F, 0xD503249F, 0xD50324DF, 0xD503241F, 0xD50320FF, 0xD503229F,
             0xD65F0BFF, 0xD65F0FFF, 0xD63F081F, 0xD61F0A1F, 0xD71F0A30, 0xD73F0E30,
             0xDAC103E9, 0xDAC11BE0, 0xDAC10441, 0xDAC143E3, 0xDAC147E3, 0xAA1E03E9, 0xD503201F]
    blob = tmp_path / "w.bin"
    blob.write_bytes(struct.pack(f"<{len(words)}I", *words))
    dump = subprocess.run(["aarch64-linux-gnu-objdump", "-D", "-b", "binary", "-m", "aarch64",
                           str(blob)], capture_output=True, text=True, check=True).stdout
    want = []
    for line in dump.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].strip().endswith(":"):
            want.append(" ".join(" ".join(parts[2:]).split()).split("//")[0].strip())
    got = [" ".join(i.text.split()) for i in disassemble(blob.read_bytes(), 0, "aarch64")]
    assert len(want) == len(words) and got == want, list(zip(got, want))


def test_an_assembly_routines_own_nops_are_not_a_patchable_entry(tmp_path):
    """copy_page (seed: the walkthrough's ftrace section) is an assembly routine: bti c and
    three alternative NOPs.  ftrace-site called them 'the compiler's two NOPs (ftrace never
    initialised this entry)' with a patchable entry at +4, and kdis 'patchable entry, not
    initialised by ftrace'; the kernel does not list it in available_filter_functions, and
    every entry ftrace records reads mov x9, x30."""
    with make_session(tmp_path, IDLE, IDLE) as s:
        r = ftrace_site(s, "copy_page")
        rows = kdis(s, ASM_FUNC, 5, set()).insns
    assert r.state == "not-a-site" and r.entry_address is None and r.original is None, r
    assert r.traceable is False
    text = " ".join(r.notes)
    assert "not in available_filter_functions" in text and "own instructions" in text
    assert "follows the function's BTI c" not in text
    assert [x.text for x in rows[:4]] == ["bti c", "nop", "nop", "nop"]
    assert [x.note for x in rows] == [""] * 5, [x.note for x in rows]


def test_a_kprobe_over_an_untraced_functions_nop_is_not_over_mov_x9(tmp_path):
    """brk #4 over the first of may_use_simd's NOPs: no kprobe_table to read p->opcode from
    here, and the function is not traced, so the brk is not over ftrace's mov x9, x30."""
    listed = f"{NOPS_FUNC:016x}  k  may_use_simd+0x0\n"
    with make_session(tmp_path, IDLE, IDLE, listed=listed, probed_nops=True) as s:
        r = ftrace_site(s, "may_use_simd")
    assert r.state == "not-a-site" and r.entry_address is None and r.original is None, r
    assert not any("mov x9, x30) at" in n for n in r.notes), r.notes
    assert r.kprobes == [listed.strip()]
