"""stack/fault_insn.py reads the faulting instruction's memory operand from capstone's text;
the oracle is its former implementation on the capstone package's operand details
(tests/support/fault_insn_package.py), over real code (libc .text of x86_64 and aarch64),
random bytes, and encodings chosen for their corner cases."""
import random
import re
import tempfile

import pytest

from gdb_toolkit.stack.fault_insn import faulting_access
from tests.support import capstone_diff
from tests.support.fault_insn_package import faulting_access as package_access

X86 = "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip fs_base gs_base".split()
A64 = [f"x{i}" for i in range(31)] + ["sp"]
LIBC = {"x86_64": "/lib/x86_64-linux-gnu/libc.so.6",
        "aarch64": "/usr/aarch64-linux-gnu/lib/libc.so.6"}      # scripts/setup.sh installs it


def registers(rnd: random.Random, arch: str) -> dict[str, int]:
    """Random values (some small, some 64-bit); a few registers missing now and then."""
    names = X86 if arch == "x86_64" else A64
    regs = {n: rnd.getrandbits(64) if rnd.random() < 0.7 else rnd.getrandbits(12) for n in names}
    if rnd.random() < 0.3:
        for n in rnd.sample(names, 3):
            del regs[n]
    return regs


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_same_address_as_the_package_details_on_real_and_random_code(arch):
    rnd = random.Random(arch)
    code = capstone_diff.sections(LIBC[arch], [".text"])[0][2]
    step = 1 if arch == "x86_64" else 4
    found = 0
    for i in range(30000):
        off = rnd.randrange(0, len(code) - 16) // step * step
        c = code[off:off + 16] if i % 4 else rnd.randbytes(16)
        pc = rnd.choice((0x401000 + off, 0xffffffff81000000, (1 << 64) - 8))
        regs = registers(rnd, arch)
        want = package_access(c, pc, arch, regs)
        assert faulting_access(c, pc, arch, regs) == want, (arch, c.hex(), hex(pc))
        found += want is not None
    assert found > 5000                 # the memory operands were exercised, not only None


@pytest.mark.parametrize("code", [
    "678b0425d43b0cf0",     # mov eax, [0xf00c3bd4]: a lone disp32 (sign-extended by capstone)
    "8b0425d43b0c70",       # the same below 2^31
    "a1d43b0cf000000000",   # movabs eax, [0xf00c3bd4]: a 64-bit moffs, not sign-extended
    "67a1d43b0cf0",         # mov eax, [0xf00c3bd4]: a 32-bit moffs (address-size prefix)
    "4c67a2c09f34b8",       # REX before the address-size prefix, moffs
    "648b0425d43b0cf0",     # fs:[disp32]
    "65488b042528000000",   # mov rax, gs:[0x28]
    "268b00",               # es:[rax]: no es base -> None
    "8b05d43b0cf0",         # [rip - 0xff3c42c]
    "678b05d43b0cf0",       # [eip - ...]
    "48a5", "aa", "f3a4",   # movsq, stosb, rep movsb: [rdi] first
    "d7",                   # xlatb
    "ff5010", "50", "9c",   # call [rax + 0x10], push rax, pushfq: sp - 8
    "8b0c9d10000000",       # mov ecx, [rbx*4 + 0x10]: index without base
    "8b4c1df0",             # mov ecx, [rbp + rbx - 0x10]
    "62f17c48100488",       # vmovups zmm0, [rax + rcx*4]
])
def test_x86_64_corner_cases(code):
    regs = {"rax": 0x1000, "rbx": 0x20, "rcx": 3, "rbp": 0x7ff0, "rsp": 0x7000, "rdi": 0x100,
            "rsi": 0x200, "rip": 0x401000, "fs_base": 0x5000, "gs_base": 0x6000}
    c = bytes.fromhex(code)
    assert faulting_access(c, 0x401000, "x86_64", regs) == package_access(c, 0x401000, "x86_64",
                                                                           regs)


@pytest.mark.parametrize("word", [
    0xF9400420,     # ldr x0, [x1, #8]
    0xF8408C20,     # ldr x0, [x1, #8]!
    0xF8408420,     # ldr x0, [x1], #8
    0xF8627820,     # ldr x0, [x1, x2, lsl #3]
    0xB862D820,     # ldr w0, [x1, w2, sxtw #2]
    0xB8624820,     # ldr w0, [x1, w2, uxtw]
    0xA9BE7BFD,     # stp x29, x30, [sp, #-0x20]!
    0xA8C27BFD,     # ldp x29, x30, [sp], #0x20
    0x4CDF7000,     # ld1 {v0.16b}, [x0], #16
    0x4CC27000,     # ld1 {v0.16b}, [x0], x2
    0x4D408400,     # ld1 {v0.d}[1], [x0]: a lane index before the operand
    0xF9800000,     # prfm pldl1keep, [x0]
    0x58000040,     # ldr x0, #8 (literal: no memory operand)
])
def test_aarch64_corner_cases(word):
    regs = {f"x{i}": 0x1000 * (i + 1) for i in range(31)} | {"sp": 0x7ff0, "x2": (1 << 64) - 2}
    c = word.to_bytes(4, "little")
    assert faulting_access(c, 0x401000, "aarch64", regs) == package_access(c, 0x401000,
                                                                            "aarch64", regs)


@pytest.mark.parametrize("code", [
    "8a0c25000045e5",       # mov cl, byte ptr [-0x1abb0000]: capstone 4 prints [0x0]
    "8a0c25100000e5",       # ... prints [0x10]
    "c60425000045e57f",     # mov byte ptr [disp32], 0x7f: an immediate after the disp
    "8b0425000045e5",       # mov eax, dword ptr [0xe5450000]: printed whole
    "648a0c25f0ffffff",     # mov cl, byte ptr fs:[-0x10]
    "8a0c2500008000",       # mov cl, byte ptr [0x800000]
])
def test_a_lone_displacement_is_the_one_objdump_decodes(code):
    """An operand that is only a disp32 is sign-extended (objdump prints the 64-bit address
    it reads), whatever capstone's text shows of it."""
    import subprocess

    c = bytes.fromhex(code)
    regs = {"rsp": 0x7000, "fs_base": 0x5000}
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(c)
        f.flush()
        dump = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", "-M", "intel",
                               f.name], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(?:ds|fs):(0x[0-9a-f]+)", dump)
    want = int(m.group(1), 16) + (regs["fs_base"] if "fs:" in m.group(0) else 0)
    got = faulting_access(c, 0x401000, "x86_64", regs)
    assert got is not None and got.address == want & ((1 << 64) - 1), (dump, got)
    assert got == package_access(c, 0x401000, "x86_64", regs)


def test_the_package_is_not_imported(tmp_path):
    """The point of the text: a core without siginfo does not import the capstone package."""
    import subprocess
    import sys

    code = ("import sys; from gdb_toolkit.stack.fault_insn import faulting_access as f; "
            "a = f(bytes.fromhex('488b4010'), 0x401000, 'x86_64', {'rax': 0x1000}); "
            "print(hex(a.address), a.text, 'capstone' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=capstone_diff.REPO, check=True).stdout
    assert out.split() == ["0x1010", "mov", "rax,", "qword", "ptr", "[rax", "+", "0x10]", "False"]
