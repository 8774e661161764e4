"""Capstone disassembly for x86_64 and aarch64 (and i386/arm for the PLT commands), loaded lazily.

The decoder is the capstone package's libcapstone, called through common.capstone_lite (no
import of the package: ~20 ms of a first call) when that binding knows the installed
package's library and version; otherwise through the package's ``Cs.disasm_lite``.  Both give
the same (address, size, mnemonic, op_str); ``engine_kind()`` says which one runs.
"""
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import record

#: the largest input decoded in one call (the listing is ~150 bytes of Python per instruction)
MAX_CODE = 64 << 20
ARCHES = ("x86_64", "aarch64")   # disassemble() also takes "i386" and "arm" (PLT commands)


@record
class Insn:
    address: int
    size: int
    raw: bytes
    mnemonic: str
    op_str: str

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}".strip()

    def __str__(self) -> str:
        return f"0x{self.address:x}: {self.raw.hex(' '):<24} {self.text}"


_engines: dict = {}
_lite: list = []            # [capstone_lite.Library or None] once decided for this process


def normalize_arch(name: str) -> str:
    """Map gdb/ELF/uname spellings (i386:x86-64, EM_X86_64, arm64, aarch64) to ours."""
    n = name.lower().replace("-", "_")
    if "x86_64" in n or n in ("amd64", "em_x86_64", "i386:x86_64"):
        return "x86_64"
    if "aarch64" in n or "arm64" in n:
        return "aarch64"
    raise ToolkitError(f"architecture {name!r} is not supported",
                       "gdb_toolkit supports x86_64 and aarch64")


def _import_capstone():
    """Import capstone without its 0.3 s detour: Debian's capstone 4 imports distutils, which
    setuptools' _distutils_hack turns into importing all of setuptools/pkg_resources.  The
    hook is set aside for that one import (the standard library's distutils serves)."""
    import sys
    import warnings

    from gdb_toolkit.common.deps import require

    if "capstone" in sys.modules or "distutils" in sys.modules:
        return require("capstone")
    hooks = [f for f in sys.meta_path if type(f).__module__ == "_distutils_hack"]
    for h in hooks:
        sys.meta_path.remove(h)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return require("capstone")
    finally:
        sys.meta_path[:0] = hooks


#: our architecture name -> (capstone arch, mode): the values of capstone.h (4.0.x and 5.0.x)
_ARCH_MODE = {"x86_64": ("CS_ARCH_X86", "CS_MODE_64"), "i386": ("CS_ARCH_X86", "CS_MODE_32"),
              "arm": ("CS_ARCH_ARM", "CS_MODE_ARM"), "aarch64": ("CS_ARCH_ARM64", "CS_MODE_ARM")}


def lite_library():
    """common.capstone_lite's binding of the package's libcapstone, or None (decided once)."""
    if not _lite:
        import os

        from gdb_toolkit.common import capstone_lite

        forced = os.environ.get("GDB_TOOLKIT_CAPSTONE") == "package"   # tests, comparisons
        _lite.append(None if forced else capstone_lite.load())
    return _lite[0]


def engine_kind() -> str:
    """'lite' (libcapstone through common.capstone_lite) or 'package' (the capstone package)."""
    return "package" if lite_library() is None else "lite"


def available() -> bool:
    """Whether anything can disassemble here (the binding, else the capstone package)."""
    if lite_library() is not None:
        return True
    try:
        _import_capstone()
        return True
    except (ToolkitError, ImportError):
        return False


def _engine(arch: str):
    """An object with ``disasm_lite(code, address)`` for *arch*, made once per process."""
    if arch not in ("i386", "arm"):      # 32-bit user space: the PLT commands only
        arch = normalize_arch(arch)
    if arch not in _engines:
        lib = lite_library()
        cs_arch, cs_mode = _ARCH_MODE[arch]
        if lib is not None:
            from gdb_toolkit.common import capstone_lite as L

            _engines[arch] = lib.open(getattr(L, cs_arch[3:]), getattr(L, cs_mode[3:]))
        else:
            cs = _import_capstone()
            md = cs.Cs(getattr(cs, cs_arch), getattr(cs, cs_mode))
            md.detail = False
            _engines[arch] = md
    return _engines[arch]


def disassemble(code: bytes, address: int, arch: str = "x86_64", count: int = 0) -> list[Insn]:
    """Decode *code* loaded at *address*; stop after *count* instructions (0: all).

    Undecodable bytes end the listing with a ``(bad)`` pseudo-instruction so
    callers always see where decoding stopped.  At most MAX_CODE bytes at once (every caller
    reads a bounded range: a section, a function, N instructions).
    """
    if len(code) > MAX_CODE:
        raise ToolkitError(f"{len(code)} bytes is more than the disassembler takes at once "
                           f"({MAX_CODE >> 20} MiB)", "disassemble a smaller range")
    md = _engine(arch)
    a64 = arch in ("aarch64", "arm64")
    if a64:             # imported for aarch64 code only
        from gdb_toolkit.common.arm64_names import decode_pac
        from gdb_toolkit.common.arm64_names import rename as rename_a64
    out: list[Insn] = []
    end = address
    code = bytes(code)
    while True:
        for ins in md.disasm_lite(code[end - address:], end):
            a, size, mnem, ops = ins
            raw = code[a - address:a - address + size]
            if a64:         # hint #0x19 -> paciasp, bti c, ...
                mnem, ops = rename_a64(int.from_bytes(raw, "little"), mnem, ops)
            out.append(Insn(a, size, raw, mnem, ops))
            end = a + size
            if count and len(out) >= count:
                return out
        # capstone 4 stops at ARMv8.3 PAC instructions (retaa, blraa, pacia...): name and go on
        off = end - address
        known = decode_pac(int.from_bytes(code[off:off + 4], "little")) \
            if a64 and off + 4 <= len(code) else None
        if known is None:
            break
        out.append(Insn(end, 4, code[off:off + 4], known[0], known[1]))
        end += 4
        if count and len(out) >= count:
            return out
    if end < address + len(code) and (not count or len(out) < count):
        off = end - address
        step = 4 if arch == "arm" or (arch != "i386" and normalize_arch(arch) == "aarch64") else 1
        out.append(Insn(end, step, bytes(code[off:off + step]), "(bad)", ""))
    return out
