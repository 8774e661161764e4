"""Write kallsyms tables the way scripts/kallsyms.c lays them out (6.1), for tests and fuzz
seeds: offsets, relative_base, num_syms, names, markers, token_table, token_index.

Tokens: index c holds chr(c) for every character the names use (as kallsyms leaves them),
the other indexes hold two-character pairs that the names are compressed with.
"""
import struct

BASE = 0xFFFFFFFF81000000


def _align(buf: bytearray, n: int = 8):
    while len(buf) % n:
        buf.append(0)


def build(symbols: list[tuple[int, str, str]], base: int = BASE, seqs: bool = False,
          absolute_percpu: bool = True):
    """(image bytes, {label: address}) for [(address, type, name)] sorted by address; the
    image starts at *base*.  *seqs*: add kallsyms_seqs_of_names before the token table
    (6.2+, and Debian's 6.1 backport).  *absolute_percpu*: x86_64's encoding (offsets
    stored as relative_base - 1 - address)."""
    texts = [t + n for _a, t, n in symbols]
    used = sorted({c for s in texts for c in s.encode()})
    tokens = [b""] * 256
    for c in used:
        tokens[c] = bytes([c])
    free = [i for i in range(256) if not tokens[i]]
    pairs = {}
    for s in texts:
        b = s.encode()
        for i in range(len(b) - 1):
            pairs[b[i:i + 2]] = pairs.get(b[i:i + 2], 0) + 1
    for i, (pair, _n) in zip(free, sorted(pairs.items(), key=lambda kv: -kv[1])):
        tokens[i] = pair
    for i in range(256):
        if not tokens[i]:
            tokens[i] = b"~" + bytes([0x30 + i % 10])     # unused, but every token is non-empty
    lookup = {t: i for i, t in enumerate(tokens) if len(t) == 2}

    def compress(b: bytes) -> bytes:
        out, i = bytearray(), 0
        while i < len(b):
            if b[i:i + 2] in lookup:
                out.append(lookup[b[i:i + 2]])
                i += 2
            else:
                out.append(b[i])
                i += 1
        return bytes(out)

    img = bytearray()
    labels = {}
    labels["kallsyms_offsets"] = base + len(img)
    rel = min(a for a, _t, _n in symbols)
    for a, _t, _n in symbols:
        img += struct.pack("<i", (rel - 1 - a) if absolute_percpu else a - rel)
    _align(img)
    labels["kallsyms_relative_base"] = base + len(img)
    img += struct.pack("<Q", rel)
    labels["kallsyms_num_syms"] = base + len(img)
    img += struct.pack("<I", len(symbols))
    _align(img)
    labels["kallsyms_names"] = base + len(img)
    markers, off = [], 0
    start = len(img)
    for i, s in enumerate(texts):
        if i % 256 == 0:
            markers.append(len(img) - start)
        c = compress(s.encode())
        img += bytes([len(c)]) + c
    _align(img)
    labels["kallsyms_markers"] = base + len(img)
    for m in markers:
        img += struct.pack("<I", m)
    _align(img)
    if seqs:
        labels["kallsyms_seqs_of_names"] = base + len(img)
        order = sorted(range(len(texts)), key=lambda i: texts[i][1:])
        for i in order:
            img += bytes([(i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
        _align(img)
    labels["kallsyms_token_table"] = base + len(img)
    index = []
    tstart = len(img)
    for t in tokens:
        index.append(len(img) - tstart)
        img += t + b"\0"
    _align(img)
    labels["kallsyms_token_index"] = base + len(img)
    img += struct.pack("<256H", *index)
    _align(img, 4096)
    return bytes(img), labels


def sample_symbols(n: int = 600, base: int = BASE) -> list[tuple[int, str, str]]:
    """A plausible symbol list: text then data, sorted by address."""
    out = [(base, "T", "_text"), (base, "T", "_stext")]
    for i in range(n):
        out.append((base + 0x1000 + 0x40 * i, "t" if i % 3 else "T", f"func_{i}_do_thing"))
    out.append((base + 0x1000 + 0x40 * n, "T", "_etext"))
    out.append((base + 0x200000, "D", "linux_banner"))
    out.append((base + 0x201000, "b", "kprobe_table"))
    return out
