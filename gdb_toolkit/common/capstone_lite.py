"""A private ctypes binding (through _ctypes itself: see below) to the libcapstone the installed capstone package loads: what
``Cs(arch, mode).disasm_lite`` gives (address, size, mnemonic, op_str), without importing the
package.

Why: importing Debian's capstone 4 costs ~20 ms of a command's first call (its ``__init__``
imports ctypes.util with subprocess and shutil, distutils.sysconfig, platform, inspect and
twelve architecture modules of constants), and the toolkit uses none of it: common.disasm
decodes with detail off.  This module binds seven functions (cs_version, cs_support, cs_open,
cs_disasm, cs_free, cs_close, cs_errno) of the SAME library, so the text is the library's own.

Which library: the package's, found without importing it (deps.find_spec), the way
its own loader finds it, only for the loaders read and checked here:
  * Debian's python3-capstone names it literally: ``ctypes.cdll.LoadLibrary("libcapstone.so.4")``;
  * a PyPI wheel (4.x, 5.x) loads ``<package>/lib/libcapstone.so`` (or ``.so.<major>``) unless
    LIBCAPSTONE_PATH is set.
The library's cs_version must equal the binding's CS_API_MAJOR/MINOR (the package's own check
in ``Cs()``), the major must be one whose ``cs_insn`` layout is known (capstone.h: 4.0.x has
``bytes[16]``; 5.0.x ``bytes[24]``; 6 adds alias fields, not bound here), and the engine must
not be a "diet" build (no mnemonics).  Anything else -- no package, LIBCAPSTONE_PATH, another
loader, another version -- makes ``load()`` return None and common.disasm uses the
capstone package itself, errors included.

Resources: a handle is closed by ``close()`` (or when the engine is collected); every
cs_disasm result is released with cs_free in a ``finally``; cs_disasm runs on at most
``BATCH`` instructions at a time, so the library's allocation is bounded whatever the input
size (decoding is per instruction for x86 and AArch64 and ARM mode: the batches give the
same listing as one call; tests/unit/test_capstone_lite.py checks it against the package).
"""
import os
import re

import _ctypes
import _struct

from gdb_toolkit.common.closeable import Closeable

#: API major version -> length of cs_insn.bytes (include/capstone/capstone.h of that release)
INSN_BYTES = {4: 16, 5: 24}
#: capstone.h's enums, the same in 4.0.x and 5.0.x
ARCH_ARM, ARCH_ARM64, ARCH_X86 = 0, 1, 3
MODE_ARM, MODE_32, MODE_64 = 0, 1 << 2, 1 << 3
_SUPPORT_DIET = 0xFFFF + 1
_ERR_OK = 0
#: instructions per cs_disasm call (~240 bytes each inside the library)
BATCH = 4096
#: the largest input taken at once (common.disasm's own bound is the same)
MAX_CODE = 64 << 20
#: how much of the package's __init__.py is read to learn its loader and API version
_SOURCE_LIMIT = 1 << 20
MASK64 = (1 << 64) - 1



# -- the package's source, read line by line --------------------------------------------
# What these two answer is what re.search gives with the patterns below (re.M; the first
# also re.S), without compiling them on every disassembling command's first call (~0.2 ms):
#   rb"^CS_API_MAJOR = (\d+)\s*$.*?^CS_API_MINOR = (\d+)\s*$"
#   rb"""^_cs = ctypes\.cdll\.LoadLibrary\(["'](libcapstone\.so\.\d+)["']\)\s*$"""
# (tests/unit/test_capstone_lite.py checks them against re on variations of the source).
def _lines(src: bytes):
    return [ln.rstrip() for ln in src.split(b"\n")]      # \s*$: trailing whitespace, \r too


def _digits(b: bytes) -> bool:
    return bool(b) and all(48 <= c <= 57 for c in b)         # \d+ of a bytes pattern


def api_version(src: bytes) -> tuple[int, int] | None:
    """(CS_API_MAJOR, CS_API_MINOR): the first ``CS_API_MAJOR = N`` line and the first
    ``CS_API_MINOR = N`` line after it."""
    major = None
    for ln in _lines(src):
        if major is None:
            if ln.startswith(b"CS_API_MAJOR = ") and _digits(ln[15:]):
                major = int(ln[15:])
        elif ln.startswith(b"CS_API_MINOR = ") and _digits(ln[15:]):
            return major, int(ln[15:])
    return None


_LOAD = b"_cs = ctypes.cdll.LoadLibrary("


def debian_soname(src: bytes) -> str | None:
    """The soname of Debian's ``_cs = ctypes.cdll.LoadLibrary("libcapstone.so.N")`` line."""
    for ln in _lines(src):
        if not ln.startswith(_LOAD) or len(ln) < len(_LOAD) + 3:
            continue
        q1, name, q2, close = ln[len(_LOAD):len(_LOAD) + 1], ln[len(_LOAD) + 1:-2], ln[-2:-1], ln[-1:]
        if (q1 in (b'"', b"'") and q2 in (b'"', b"'") and close == b")"
                and name.startswith(b"libcapstone.so.") and _digits(name[15:])):
            return name.decode()
    return None


# -- the C types of the calls, straight from _ctypes ----------------------------------------
# ctypes' own module (ctypes/__init__.py, ctypes._endian, struct) defines ~40 types and
# checks their sizes at import: ~1.3 ms of every disassembling command's first call.  The
# binding needs six of them; they are the same _ctypes classes with the same type codes
# (ctypes/__init__.py: c_int "i", c_uint "I", c_bool "?", c_void_p "P", c_char_p "z",
# py_object "O"; c_size_t and c_uint64 the unsigned integer code of their size), and _Cdll is
# ctypes.CDLL(path)'s default: dlopen with RTLD_LOCAL (| RTLD_NOW, added by _ctypes), cdecl
# functions returning int until told.  The instructions cs_disasm returns are not described
# as a ctypes Structure (a class, its array and pointer types: ~0.3 ms): their bytes are
# copied out by ctypes.string_at's own C function and read with struct (``insn_struct``).
def _simple(name: str, code: str) -> type:
    return type(name, (_ctypes._SimpleCData,), {"_type_": code, "__module__": __name__})


def _unsigned_code(size: int) -> str:
    return next(c for c in "ILQ" if _struct.calcsize(c) == size)


c_int, c_uint, c_bool = _simple("c_int", "i"), _simple("c_uint", "I"), _simple("c_bool", "?")
c_void_p, c_char_p, py_object = _simple("c_void_p", "P"), _simple("c_char_p", "z"), _simple("py_object", "O")
c_size_t = _simple("c_size_t", _unsigned_code(_struct.calcsize("P")))
c_uint64 = c_size_t if c_size_t._type_ == _unsigned_code(8) else _simple("c_uint64", _unsigned_code(8))
byref = _ctypes.byref


class _StringAtFunction(_ctypes.CFuncPtr):
    """ctypes' ``PYFUNCTYPE(py_object, c_void_p, c_int)``: how ctypes.string_at calls it."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI
    _restype_ = py_object
    _argtypes_ = (c_void_p, c_int)


#: ctypes.string_at(address, size): a copy of *size* bytes of this process's memory
string_at = _StringAtFunction(_ctypes._string_at_addr)


def insn_struct(bytes_len: int) -> _struct.Struct:
    """capstone.h's cs_insn as struct reads it (native sizes and alignment, as the C compiler
    lays it out): id, address, size, bytes[bytes_len], mnemonic[32], op_str[160], detail."""
    return _struct.Struct(f"@IQH{bytes_len}s32s160sP")


class _Cdll:
    """``ctypes.CDLL(path)``: the library's functions as attributes (made once each)."""

    def __init__(self, path: str):
        self._name = path

        class _FuncPtr(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = c_int

        self._FuncPtr = _FuncPtr
        self._handle = _ctypes.dlopen(path, _ctypes.RTLD_LOCAL)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = self._FuncPtr((name, self))
        func.__name__ = name
        setattr(self, name, func)
        return func


class CsLiteError(Exception):
    """cs_open or cs_disasm failed: *errno* is capstone's cs_err."""

    def __init__(self, errno: int, what: str):
        super().__init__(f"capstone {what} failed (cs_err {errno})")
        self.errno = errno


class Library:
    """The loaded libcapstone with the prototypes of the calls used here."""

    def __init__(self, cdll, where: str, api: tuple[int, int]):
        self.where = where              # the path or soname it was loaded by
        self.api = api                  # (major, minor) reported by cs_version
        self.insn = insn_struct(INSN_BYTES[api[0]])
        c = self.cdll = cdll
        _proto(c.cs_open, c_int, c_uint, c_uint, c_void_p)
        _proto(c.cs_disasm, c_size_t, c_size_t, c_void_p, c_size_t, c_uint64, c_size_t, c_void_p)
        _proto(c.cs_free, None, c_void_p, c_size_t)
        _proto(c.cs_close, c_int, c_void_p)
        _proto(c.cs_errno, c_int, c_size_t)

    def open(self, arch: int, mode: int) -> "Engine":
        return Engine(self, arch, mode)


def _proto(fn, restype, *argtypes):
    fn.restype = restype
    fn.argtypes = argtypes


class Engine(Closeable):
    """One cs_open handle (detail off: capstone's default); ``with``, ``close()`` or
    collection gives it back (common.closeable)."""

    def __init__(self, lib: Library, arch: int, mode: int):
        self._lib = lib
        self._handle = None
        h = c_size_t()
        status = lib.cdll.cs_open(arch, mode, byref(h))
        if status != _ERR_OK:
            raise CsLiteError(status, "cs_open")
        self._handle = h

    def close(self) -> None:
        h, self._handle = self._handle, None
        if h is not None:
            self._lib.cdll.cs_close(byref(h))

    def disasm_lite(self, code: bytes, address: int, count: int = 0) -> list:
        """[(address, size, mnemonic, op_str)] as the package's ``Cs.disasm_lite`` yields
        them: from the start of *code* until the first undecodable byte or the end, at most
        *count* instructions (0: no limit)."""
        if self._handle is None:
            raise ValueError("capstone engine is closed")
        if len(code) > MAX_CODE:
            raise ValueError(f"{len(code)} bytes: more than {MAX_CODE} at once")
        code = bytes(code)
        lib = self._lib
        cdll = lib.cdll
        handle = self._handle.value
        # the address of code's bytes: ctypes.cast(c_char_p(code), c_void_p).value
        base = c_void_p.from_buffer(c_char_p(code)).value or 0
        insns = c_void_p()          # cs_insn *: the library's array, freed with cs_free
        out: list = []
        off = 0
        total = len(code)
        insn = lib.insn
        while off < total:
            want = BATCH if not count else min(BATCH, count - len(out))
            n = cdll.cs_disasm(handle, base + off, total - off, (address + off) & MASK64, want,
                               byref(insns))
            if n == 0:
                status = cdll.cs_errno(handle)
                if status != _ERR_OK:
                    raise CsLiteError(status, "cs_disasm")
                break
            try:
                if not 0 < n <= want:
                    raise CsLiteError(-1, f"cs_disasm (returned {n} instructions, asked {want})")
                for _, at, size, _, mnemonic, op_str, _ in insn.iter_unpack(
                        string_at(insns.value, n * insn.size)):
                    out.append((at, size, mnemonic.partition(b"\0")[0].decode("ascii"),
                                op_str.partition(b"\0")[0].decode("ascii")))
                    off += size
            finally:
                cdll.cs_free(insns, n)
            if n < want or (count and len(out) >= count):
                break
        return out


def package_source() -> tuple[str, bytes] | None:
    """(directory, first bytes of __init__.py) of the capstone package, not imported."""
    from gdb_toolkit.common.deps import find_spec

    try:
        spec = find_spec("capstone")
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith("__init__.py"):
        return None
    try:
        with open(origin, "rb") as f:
            return os.path.dirname(origin), f.read(_SOURCE_LIMIT)
    except OSError:
        return None


# compiled by package_version (the doctor), not by every disassembling command's first call
_VERSION = (rb"^CS_VERSION_MAJOR = CS_API_MAJOR\s*$.*?^CS_VERSION_MINOR = CS_API_MINOR\s*$"
            rb".*?^CS_VERSION_EXTRA = (\d+)\s*$")


def package_version() -> str | None:
    """The package's ``__version__`` read from its source (``"%u.%u.%u" % (CS_VERSION_MAJOR,
    CS_VERSION_MINOR, CS_VERSION_EXTRA)``, the first two being CS_API_*), or None when the
    source does not spell it that way."""
    found = package_source()
    if found is None:
        return None
    api, extra = api_version(found[1]), re.compile(_VERSION, re.M | re.S).search(found[1])
    if api is None or extra is None:
        return None
    return f"{api[0]}.{api[1]}.{int(extra.group(1))}"


def locate() -> tuple[str, tuple[int, int]] | None:
    """(library path or soname, the binding's (CS_API_MAJOR, CS_API_MINOR)) the installed
    package would load, or None when its loader is not one of those described above."""
    found = package_source()
    if found is None:
        return None
    pkgdir, src = found
    api = api_version(src)
    if api is None or api[0] not in INSN_BYTES:
        return None
    debian = debian_soname(src)
    if debian is not None:
        return debian, api
    if b"LIBCAPSTONE_PATH" not in src or os.environ.get("LIBCAPSTONE_PATH") is not None:
        return None
    for name in ("libcapstone.so", f"libcapstone.so.{api[0]}"):     # the wheel loader's order
        path = os.path.join(pkgdir, "lib", name)
        if os.path.exists(path):
            return path, api
    return None


def load() -> Library | None:
    """The package's libcapstone bound here, or None (use the package itself)."""
    where = locate()
    if where is None:
        return None
    path, api = where
    try:
        cdll = _Cdll(path)
        major, minor = c_int(), c_int()
        cdll.cs_version.restype = c_int
        cdll.cs_version.argtypes = (c_void_p, c_void_p)
        cdll.cs_version(byref(major), byref(minor))
        cdll.cs_support.restype = c_bool
        cdll.cs_support.argtypes = (c_int,)
        if (major.value, minor.value) != api or cdll.cs_support(_SUPPORT_DIET):
            return None
        return Library(cdll, path, api)
    except (OSError, AttributeError):
        return None
