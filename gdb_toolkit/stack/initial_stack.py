"""The command line and environment a process was started with, read back from the initial
stack in its memory (a core file).  Pure.

exec lays out, from the initial sp upward: argc, argv[argc], NULL, envp[], NULL, the auxv
pairs, then the strings.  A core records the auxv in NT_AUXV, so its bytes are found in the
stack memory; walking back from there over envp and argv gives the exact strings -- not the
80-byte, space-joined (unquotable) ``pr_psargs`` -- whatever quotes or bytes they contain.
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.names import decode_name
from gdb_toolkit.common.record import record

SEARCH = 1 << 20                # bytes below the strings searched for the auxv
MAX_STRING = 128 << 10          # MAX_ARG_STRLEN
MAX_ITEMS = 1 << 16             # argv + envp entries at most
MAX_TOTAL = 8 << 20             # bytes of strings read at most


@record
class InitialStack:
    argv: list[str]
    env: dict[str, str]
    address: int                    # where argc was found


def _cstring(read, addr: int, top: int) -> bytes | None:
    out = b""
    while len(out) < MAX_STRING:
        n = min(256, top - addr - len(out))
        if n <= 0:
            return None
        chunk = read(addr + len(out), n)
        if not chunk:
            return None
        i = bytes(chunk).find(b"\0")
        if i >= 0:
            return out + bytes(chunk[:i])
        out += bytes(chunk)
    return None


def find(read, auxv_raw: bytes, top: int, bottom: int = 0) -> InitialStack | None:
    """argv and env from the memory in [*bottom*, *top*) (the initial stack mapping) given the
    raw auxv (key/value pairs).  None when they cannot be found consistently."""
    if len(auxv_raw) < 32 or top <= 0:
        return None
    lo = max(top - SEARCH, bottom, 0)
    data = read(lo, top - lo)
    if not data:
        return None
    data = bytes(data)
    probe = auxv_raw[:min(len(auxv_raw), 64)]
    at = data.rfind(probe)
    while at >= 0 and (at % 8):
        at = data.rfind(probe, 0, at)
    if at < 0:
        return None
    words = lambda i: struct.unpack_from("<Q", data, i)[0]  # noqa: E731
    i = at - 8
    if i < 0 or words(i) != 0:
        return None                              # envp's NULL terminator
    env_ptrs = []
    i -= 8
    while i >= 0 and words(i) != 0 and len(env_ptrs) < MAX_ITEMS:
        env_ptrs.append(words(i))
        i -= 8
    if i < 0:
        return None
    argv_ptrs = []                               # i: argv's NULL terminator
    i -= 8
    while i >= 0 and len(argv_ptrs) < MAX_ITEMS:
        w = words(i)
        if w == len(argv_ptrs):                  # argc
            break
        argv_ptrs.append(w)
        i -= 8
    else:
        return None
    if not argv_ptrs or i < 0:
        return None
    total = 0
    argv, env = [], {}
    for p in reversed(argv_ptrs):
        s = _cstring(read, p, top)
        if s is None:
            return None
        total += len(s)
        argv.append(decode_name(s))
    for p in reversed(env_ptrs):
        s = _cstring(read, p, top)
        if s is None or total > MAX_TOTAL:
            return None
        total += len(s)
        k, sep, v = decode_name(s).partition("=")
        if sep:
            env.setdefault(k, v)
    return InitialStack(argv, env, lo + i)
