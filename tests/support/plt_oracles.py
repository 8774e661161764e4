"""Independent oracles for the PLT/GOT tests: binutils' readelf/objdump/nm output, and the
fixture programs of examples/plt built with compile_c (cached)."""
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.gdbrun import REPO, compile_c

EXAMPLES = REPO / "examples" / "plt"
#: i386 programs come from the cross compiler (gcc-i686-linux-gnu, with libc6-i386 to run
#: them): `gcc -m32` would need gcc-multilib, which the set-up does not install
I686 = "i686-linux-gnu-gcc"
HAVE_I386 = bool(shutil.which(I686)) and Path("/lib/ld-linux.so.2").exists()
NO_I386 = "needs gcc-i686-linux-gnu and the i386 runtime (libc6-i386)"


def tool(name: str, arch: str = "x86_64") -> str:
    if arch == "aarch64":
        return shutil.which(f"aarch64-linux-gnu-{name}") or name
    return name


def run(argv: list) -> str:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True).stdout


def readelf_relocs(path, arch="x86_64") -> list[dict]:
    """Every relocation row of ``readelf -rW``: offset, type (JUMP_SLOT...), name, version, addend."""
    out = []
    section = None
    for line in run([tool("readelf", arch), "-rW", path]).splitlines():
        m = re.match(r"Relocation section '([^']+)'", line)
        if m:
            section = m.group(1)
            continue
        parts = line.split()
        if len(parts) >= 3 and re.fullmatch(r"[0-9a-f]{16}", parts[0]) and parts[2].startswith("R_"):
            rtype = re.sub(r"^R_(X86_64|AARCH64)_", "", parts[2])
            name = version = ""
            addend = 0
            rest = parts[3:]
            if len(rest) >= 4 and rest[-2] in "+-":          # value name + addend
                name = rest[1]
                addend = int(rest[-1], 16)
            elif len(rest) == 1:                               # IRELATIVE / RELATIVE: addend only
                addend = int(rest[0], 16)
            if "@" in name:
                name, _, version = name.partition("@")
            out.append(dict(offset=int(parts[0], 16), type=rtype, name=name, version=version,
                            addend=addend, section=section))
    return out


def readelf_sections(path, arch="x86_64") -> dict[str, tuple[int, int]]:
    """name -> (address, size) from ``readelf -SW``."""
    out = {}
    for line in run([tool("readelf", arch), "-SW", path]).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]{16})\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            out[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16))
    return out


def readelf_relro(path, arch="x86_64") -> tuple[int, int] | None:
    for line in run([tool("readelf", arch), "-lW", path]).splitlines():
        parts = line.split()
        if parts and parts[0] == "GNU_RELRO":
            va, memsz = int(parts[2], 16), int(parts[5], 16)
            return va, va + memsz
    return None


def readelf_bind_now(path, arch="x86_64") -> bool:
    text = run([tool("readelf", arch), "-dW", path])
    return "BIND_NOW" in text or re.search(r"FLAGS_1.*\bNOW\b", text) is not None


def objdump_stubs(path, arch="x86_64") -> dict[int, dict]:
    """PLT stubs from ``objdump -d``: address -> {name, section, slot (x86 '# addr' comment)}."""
    out = {}
    sect = cur = None
    text = run([tool("objdump", arch), "-d", "-j", ".plt", "-j", ".plt.sec", "-j", ".plt.got", path])
    for line in text.splitlines():
        m = re.match(r"Disassembly of section (\S+):", line)
        if m:
            sect = m.group(1)
            continue
        m = re.match(r"([0-9a-f]+) <([^>]+)>:", line)
        if m:
            cur = int(m.group(1), 16)
            out[cur] = dict(name=m.group(2), section=sect, slot=None, lines=[])
            continue
        if cur is not None and line.strip():
            out[cur]["lines"].append(line)
            m = re.search(r"jmp\s+\*0x[0-9a-f]+\(%rip\)\s+# ([0-9a-f]+)", line)
            if m and out[cur]["slot"] is None:
                out[cur]["slot"] = int(m.group(1), 16)
    return out


def objdump_calls(path, func: str, arch="x86_64") -> list[tuple[int, str]]:
    """(address, instruction text) of each call/bl instruction inside *func*."""
    out = []
    inside = False
    for line in run([tool("objdump", arch), "-d", "--no-show-raw-insn", path]).splitlines():
        m = re.match(r"[0-9a-f]+ <([^>]+)>:", line)
        if m:
            inside = m.group(1) == func
            continue
        if inside:
            m = re.match(r"\s+([0-9a-f]+):\s+(.*)", line)
            if m and re.match(r"(call|bl|blr)\b", m.group(2).split(maxsplit=0)[0] if False else m.group(2)):
                out.append((int(m.group(1), 16), m.group(2).strip()))
    return out


def nm_symbols(path, dynamic=False, arch="x86_64") -> dict[str, tuple[int, str]]:
    out = {}
    args = [tool("nm", arch)] + (["-D"] if dynamic else []) + ["--defined-only", path]
    for line in run(args).splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.setdefault(parts[2].split("@")[0], (int(parts[0], 16), parts[1]))
    return out


# -- fixtures --------------------------------------------------------------------------------
def build_lib(name: str, source: str, flags=("-Wl,-z,lazy",), compiler="gcc") -> Path:
    return compile_c(EXAMPLES / source, name=name, flags=["-shared", "-fPIC", *flags], compiler=compiler)


def build_demo(flags=("-Wl,-z,lazy",)) -> tuple[Path, Path, Path]:
    """(plt_demo, libpltlib.so, plugin.so) -- the demo linked against its library."""
    lib = build_lib("libpltlib.so", "pltlib.c")
    plugin = build_lib("plugin.so", "plugin.c")
    exe = compile_c(EXAMPLES / "plt_demo.c", name="plt_demo",
                    flags=[*flags, f"-L{lib.parent}", "-lpltlib", f"-Wl,-rpath,{lib.parent}"])
    return exe, lib, plugin


def build_hello(flags=("-Wl,-z,lazy",), compiler="gcc", name="hello_calls") -> Path:
    return compile_c(EXAMPLES / "hello_calls.c", name=name, flags=list(flags), compiler=compiler)


def stripped_copy(path: Path, arch="x86_64") -> Path:
    out = path.parent / (path.name + ".stripped")
    if not out.exists():
        subprocess.run([tool("strip", arch), "-o", str(out), str(path)], check=True)
    return out


def program_said(stdout: str) -> dict[str, int]:
    """``dlsym NAME=0x...`` and ``main=0x...`` lines printed by plt_demo."""
    out = {}
    for m in re.finditer(r"(?:dlsym )?(\w+)=(0x[0-9a-f]+)", stdout):
        out[m.group(1)] = int(m.group(2), 16)
    return out
