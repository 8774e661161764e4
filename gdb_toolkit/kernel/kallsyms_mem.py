"""The kernel's own symbol table, read from its memory: ``kallsyms_*`` and the module list.

/proc/kallsyms is the kernel printing these tables; a dump or a halted kernel has the tables
but nobody to print them.  ``scripts/kallsyms.c`` writes, into .rodata:

- ``kallsyms_names``: per symbol a length byte (two bytes, 7 bits each, when the first has
  bit 7: 6.1+) and that many token indexes; expanding the tokens gives the type letter
  followed by the name;
- ``kallsyms_token_table`` (256 NUL-terminated strings) and ``kallsyms_token_index`` (256
  u16 offsets into it);
- ``kallsyms_markers``: the names offset of every 256th symbol;
- ``kallsyms_offsets`` + ``kallsyms_relative_base`` (CONFIG_KALLSYMS_BASE_RELATIVE; with
  KALLSYMS_ABSOLUTE_PERCPU, x86_64, a non-negative offset is an absolute per-cpu address)
  or ``kallsyms_addresses``; ``kallsyms_num_syms``.

VMCOREINFO carries their addresses since 6.0.  Without it (an older dump, a halted kernel
behind gdb) ``find_tables`` looks for them: the token table holds "0".."9" as consecutive
one-character tokens (digits are never merged away), the index must agree with it byte for
byte, the markers precede it, and the names decode to exactly the marker offsets.

Module symbols are not in these tables: ``module_symbols`` walks the ``modules`` list with
BTF layouts (each module's ``kallsyms`` symtab/strtab/typetab), as /proc/kallsyms does.
Pure: a memory object with ``read(addr, n)`` comes in; every count is bounded.
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import record
from gdb_toolkit.kernel.memory import PAGE_SIZE, vmcoreinfo_hex

MAX_SYMS = 1 << 22
MAX_NAMES_BYTES = 64 << 20
DIGITS = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00"


@record
class Tables:
    names: int
    num_syms: int                 # the symbol count itself (not its address)
    token_table: int
    token_index: int
    offsets: int | None = None
    relative_base: int | None = None
    addresses: int | None = None
    absolute_percpu: bool = False
    how: str = ""                 # "VMCOREINFO" | "found by searching memory near 0x..."


def tables_from_vmcoreinfo(mem, info: dict, arch: str) -> Tables | None:
    """The tables VMCOREINFO names (6.0+), or None."""
    names = vmcoreinfo_hex(info, "SYMBOL(kallsyms_names)")
    num_addr = vmcoreinfo_hex(info, "SYMBOL(kallsyms_num_syms)")
    table = vmcoreinfo_hex(info, "SYMBOL(kallsyms_token_table)")
    index = vmcoreinfo_hex(info, "SYMBOL(kallsyms_token_index)")
    if None in (names, num_addr, table, index):
        return None
    num = mem.read_u32(num_addr)
    if not 0 < num <= MAX_SYMS:
        raise ToolkitError(f"kallsyms_num_syms reads {num} in {mem.description}",
                           "the dump is damaged or its VMCOREINFO does not match it")
    return Tables(names, num, table, index, vmcoreinfo_hex(info, "SYMBOL(kallsyms_offsets)"),
                  vmcoreinfo_hex(info, "SYMBOL(kallsyms_relative_base)"),
                  vmcoreinfo_hex(info, "SYMBOL(kallsyms_addresses)"), arch == "x86_64", "VMCOREINFO")


def _read_upto(mem, addr: int, n: int) -> bytes:
    """The bytes of [addr, addr+n) up to the first that cannot be read (the end of what
    memory holds may come first).  After a failure pages are read whole, so the end of what
    is mapped (a module allocation's guard page) ends it exactly."""
    try:
        return mem.read(addr, n)
    except ToolkitError:
        pass
    out, cur, end = [], addr, addr + n
    while cur < end:
        step = min(end, (cur | (PAGE_SIZE - 1)) + 1) - cur
        try:
            out.append(mem.read(cur, step))
        except ToolkitError:
            break
        cur += step
    return b"".join(out)


def _read_back(mem, end: int, n: int, step: int = 256) -> bytes:
    """Up to *n* bytes ending at *end* (fewer when the memory before is not there)."""
    while n > 0:
        try:
            return mem.read(end - n, n)
        except ToolkitError:
            n -= step
    return b""


def read_tokens(mem, table: int, index: int) -> list[bytes]:
    raw = _read_upto(mem, table, 4096)
    while raw.count(b"\0") < 256 and len(raw) < 1 << 16:
        more = _read_upto(mem, table + len(raw), 4096)
        if not more:
            break
        raw += more
    offs = struct.unpack("<256H", mem.read(index, 512))
    tokens = []
    for o in offs:
        end = raw.find(b"\0", o)
        if o >= len(raw) or end < 0:
            raise ToolkitError(f"kallsyms_token_index points outside the token table in {mem.description}",
                               "the memory does not hold a kallsyms table there")
        tokens.append(raw[o:end])
    return tokens


def decode_names(blob: bytes, num: int, tokens: list[bytes], start: int = 0) -> tuple[list[bytes], int]:
    """*num* expanded entries (type letter + name) from *blob* at *start*, and the end offset."""
    out = []
    pos = start
    join = b"".join
    tk = tokens.__getitem__
    for _ in range(num):
        if pos >= len(blob):
            raise ToolkitError("kallsyms_names ends early", "the table is damaged or misplaced")
        n = blob[pos]
        pos += 1
        if n & 0x80:
            n = (n & 0x7F) | (blob[pos] << 7)
            pos += 1
        out.append(join(map(tk, blob[pos:pos + n])))
        pos += n
    return out, pos


def read_addresses(mem, t: Tables) -> list[int]:
    n = t.num_syms
    if t.offsets is not None and t.relative_base is not None:
        offs = struct.unpack(f"<{n}i", mem.read(t.offsets, 4 * n))
        base = mem.read_u64(t.relative_base)
        if t.absolute_percpu:
            return [o if o >= 0 else (base - 1 - o) & (2 ** 64 - 1) for o in offs]
        return [(base + (o & 0xFFFFFFFF)) & (2 ** 64 - 1) for o in offs]
    if t.addresses is not None:
        return list(struct.unpack(f"<{n}Q", mem.read(t.addresses, 8 * n)))
    raise ToolkitError("kallsyms has neither offsets nor addresses", None)


def _read_names_blob(mem, t: Tables) -> bytes:
    """The names table: up to the token table when that follows it (6.1 and most layouts),
    else as far as the memory reads (at most an average of 64 bytes a name)."""
    size = min(t.num_syms * 64, MAX_NAMES_BYTES)
    if t.token_table > t.names:
        size = min(size, t.token_table - t.names)
    out, cur = [], t.names
    while cur < t.names + size:
        n = min(1 << 20, t.names + size - cur)
        try:
            out.append(mem.read(cur, n))
        except ToolkitError:
            if not out:
                raise
            break
        cur += n
    return b"".join(out)


def read_symbols(mem, t: Tables) -> list[tuple[int, str, str]]:
    """[(address, type letter, name)] in table order (sorted by address)."""
    tokens = read_tokens(mem, t.token_table, t.token_index)
    names, _ = decode_names(_read_names_blob(mem, t), t.num_syms, tokens)
    addrs = read_addresses(mem, t)
    out = []
    for a, raw in zip(addrs, names):
        s = raw.decode("utf-8", "replace")
        if len(s) >= 2:
            out.append((a, s[0], s[1:]))
    return out


# -- finding the tables without VMCOREINFO ---------------------------------------------------

def _scan(mem, start: int, length: int, needle: bytes, chunk: int = 1 << 20) -> int | None:
    """Address of the first *needle* in [start, start+length), reading in chunks; unreadable
    chunks are skipped."""
    cur, end, carry = start, start + length, b""
    while cur < end:
        n = min(chunk, end - cur)
        try:
            blk = mem.read(cur, n)
        except ToolkitError:
            cur += n
            carry = b""
            continue
        data = carry + blk
        i = data.find(needle)
        if i >= 0:
            return cur - len(carry) + i
        carry = data[-len(needle):]
        cur += n
    return None


def find_tables(mem, start: int, length: int, arch: str) -> Tables:
    """Locate kallsyms in [start, start+length) (the kernel image) by its structure."""
    cur, end, why = start, start + length, None
    while cur < end:
        hit = _scan(mem, cur, end - cur, DIGITS)
        if hit is None:
            break
        try:
            return _tables_at(mem, hit, arch, start)
        except (ToolkitError, struct.error, IndexError) as exc:
            why = exc                          # another table of digits: look further
            cur = hit + len(DIGITS)
    raise ToolkitError(f"no kallsyms tables in 0x{start:x}..0x{end:x} of {mem.description}"
                       + (f" ({why.cause if isinstance(why, ToolkitError) else why})" if why else ""),
                       "give the symbols: --kallsyms FILE (a saved /proc/kallsyms of this boot) "
                       "or --system-map FILE")


def _tables_at(mem, hit: int, arch: str, start: int) -> Tables:
    """The tables around a token "0" found at *hit*, every part checked against the others."""
    # tokens 0..47 precede the token "0" (index 48): walk back over 48 strings
    back = _read_back(mem, hit, 4096)
    pieces = back.split(b"\0")[:-1]
    if len(pieces) < 48 or not all(0 < len(p) < 64 and p.isascii() for p in pieces[-48:]):
        raise ToolkitError("not a token table before '0'", None)
    table = hit - sum(len(p) + 1 for p in pieces[-48:])
    raw = _read_upto(mem, table, 8192)
    offs, pos = [], 0
    for _ in range(256):
        offs.append(pos)
        e = raw.find(b"\0", pos)
        if e < 0 or e == pos:
            raise ToolkitError("kallsyms token table runs on", None)
        pos = e + 1
    table_end = table + pos
    index = None
    for align in range(0, 16):
        cand = table_end + align
        try:
            got = struct.unpack("<256H", mem.read(cand, 512))
        except ToolkitError:
            break
        if list(got) == offs:
            index = cand
            break
    if index is None:
        raise ToolkitError("a token table but no index that agrees with it", None)
    markers, mstart = _markers_before(mem, table)
    m = len(markers)
    # kallsyms_num_syms (u32/u64) sits before kallsyms_names: find a count with
    # ceil(n/256) == m whose names decode to exactly the markers
    tokens = [raw[o:raw.find(b"\0", o)] for o in offs]
    span = markers[-1] + 256 * 256 + 64
    window = _read_back(mem, mstart, span + 64, 4096)
    window_start = mstart - len(window)
    for lead in range(len(window) - 8, -1, -4):
        num = struct.unpack_from("<I", window, lead)[0]
        if not (m - 1) * 256 < num <= m * 256:
            continue
        for gap in (4, 8):
            names_off = lead + gap
            if names_off + markers[-1] >= len(window):
                continue
            try:
                _, e = decode_names(window, min(num, 256), tokens, names_off)
                if m > 1 and e - names_off != markers[1]:
                    continue
                _, e = decode_names(window, num - 256 * (m - 1), tokens, names_off + markers[-1])
            except (ToolkitError, IndexError):
                continue
            if 0 <= mstart - (window_start + e) < 16:
                names = window_start + names_off
                return _addresses_for(mem, Tables(names, num, table, index, how=(
                    f"found by searching memory from 0x{start:x}")), window_start + lead, arch)
    raise ToolkitError("kallsyms tokens and markers but no names table that decodes to them", None)


def _markers_before(mem, table: int) -> tuple[list[int], int]:
    """kallsyms_markers: u32 (u64 on old kernels) increasing from 0 by the size of 256 names,
    ending right before the token table -- or before ``kallsyms_seqs_of_names`` (3 bytes a
    symbol, 6.2+ and backports) that ends right before it."""
    for want in (1 << 16, 1 << 20, 4 << 20):
        blk = _read_back(mem, table, want, 4096)
        window = len(blk) & ~7
        blk = blk[len(blk) - window:]
        if not window:
            continue
        for size, fmt in ((4, "I"), (8, "Q")):
            vals = struct.unpack(f"<{window // size}{fmt}", blk)
            best = None
            i = len(vals) - 1
            while i >= 0:
                if vals[i] != 0:
                    i -= 1
                    continue
                j = i + 1                          # a run 0 < v1 < v2 ... with sane steps
                while j < len(vals) and vals[j - 1] < vals[j] <= vals[j - 1] + 256 * 600:
                    j += 1
                run = list(vals[i:j])
                end = table - window + j * size      # where the run stops
                gap = table - end
                m = len(run)
                if m >= 2:
                    lo, hi = (m - 1) * 256 + 1, m * 256
                    if gap < 16 or 3 * lo <= gap < 3 * hi + 16:
                        best = (run, table - window + i * size)
                        break
                i -= 1
            if best:
                return best
    raise ToolkitError("no kallsyms_markers before the token table", None)


def _addresses_for(mem, t: Tables, num_at: int, arch: str) -> Tables:
    """Where the addresses are: 6.1 and older keep offsets + relative_base just before
    kallsyms_num_syms; newer kernels after the token index.  Kept if sorted."""
    n = t.num_syms
    cands = []
    base_at = num_at - 8
    cands.append((base_at - 4 * n, base_at))
    cands.append(((base_at - 4 * n) & ~7, base_at))
    after = (t.token_index + 512 + 7) & ~7
    cands.append((after, (after + 4 * n + 7) & ~7))
    for offs, base in cands:
        for absolute in ((True, False) if arch == "x86_64" else (False,)):
            trial = Tables(t.names, n, t.token_table, t.token_index, offs, base, None, absolute, t.how)
            try:
                addrs = read_addresses(mem, trial)
            except ToolkitError:
                continue
            # per-cpu symbols (small absolute values) lead; the rest are kernel addresses
            # in order -- a table shifted by one entry ends on a padding zero and fails this
            lead = 0
            while lead < n and addrs[lead] < 1 << 47:
                lead += 1
            body = addrs[lead:]
            if len(body) > n // 2 and body[0] >= 1 << 47 and \
                    all(x <= y for x, y in zip(body, body[1:])):
                return trial
    raise ToolkitError("found the kallsyms names but not their addresses", None)


# -- module symbols -----------------------------------------------------------------------------

# Bounds of what a module's kallsyms can hold (a bad pointer or count reads as garbage):
MODULE_NAME_LEN = 56            # MODULE_NAME_LEN: 64 - sizeof(unsigned long)
KSYM_NAME_LEN = 512             # the longest symbol name the kernel keeps (6.1+; 128 before)
MAX_MODULE_SYMS = 1 << 20       # one module's num_symtab (ext4: ~3,000; amdgpu: ~40,000)
MAX_ALL_MODULE_SYMS = 1 << 22   # all modules together
MAX_MODULE_STRTAB = 16 << 20    # one module's string table
MODULE_STATE_UNFORMED = 3       # enum module_state, when the BTF has no such enum


@record
class ModuleLayout:
    list_off: int
    name_off: int
    name_len: int
    kallsyms_off: int
    base_off: int | None
    size_off: int | None
    ks_symtab: int
    ks_num: int
    ks_strtab: int
    ks_typetab: int | None
    # the module's exports (mod->syms, num_syms: struct kernel_symbol), which decide the case
    # of its symbols' letters in /proc/kallsyms
    syms_off: int | None = None
    num_syms_off: int | None = None
    ksym_size: int = 0
    ksym_prel32: bool = True          # CONFIG_HAVE_ARCH_PREL32_RELOCATIONS: int value_offset
    ksym_value: int | None = None
    ksym_name: int | None = None
    # 6.4+: every mem[] region's size field; /proc/modules' size is their sum
    mem_sizes: tuple = ()

    @classmethod
    def from_btf(cls, btf) -> "ModuleLayout":
        def off(t, p):
            try:
                return btf.resolve(t, p).offset
            except ToolkitError:
                return None
        name = btf.resolve("module", "name")
        base = off("module", "core_layout.base")
        size = off("module", "core_layout.size")
        mem_sizes = []
        if base is None:                          # 6.4+: struct module_memory mem[]
            base, size = off("module", "mem[0].base"), off("module", "mem[0].size")
            for k in range(16):                   # MOD_MEM_NUM_TYPES: 7 in 6.4-6.12
                o = off("module", f"mem[{k}].size")
                if o is None:
                    break
                mem_sizes.append(o)
        lay = cls(off("module", "list"), name.offset, name.size or MODULE_NAME_LEN,
                  off("module", "kallsyms"), base, size, off("mod_kallsyms", "symtab"),
                  off("mod_kallsyms", "num_symtab"), off("mod_kallsyms", "strtab"),
                  off("mod_kallsyms", "typetab"), off("module", "syms"), off("module", "num_syms"))
        prel = off("kernel_symbol", "value_offset")
        lay.mem_sizes = tuple(mem_sizes)
        lay.ksym_prel32 = prel is not None
        lay.ksym_value = prel if prel is not None else off("kernel_symbol", "value")
        lay.ksym_name = off("kernel_symbol", "name_offset" if prel is not None else "name")
        try:
            lay.ksym_size = btf.type_size("kernel_symbol")
        except ToolkitError:
            lay.ksym_size = 0
        return lay


def find_module(mem, modules_head: int, btf, name: str, max_modules: int = 4096) -> int | None:
    """The address of the struct module called *name* on the ``modules`` list, or None (a
    module whose name cannot be read is passed over, as in ``module_symbols``)."""
    lay = ModuleLayout.from_btf(btf)
    for mod in _module_structs(mem, modules_head, lay, max_modules, []):
        try:
            if _module_name(mem.read(mod + lay.name_off, max(1, min(lay.name_len, 256)))) == name:
                return mod
        except ToolkitError:
            continue
    return None


def module_btf_bytes(mem, module: int, btf, btf_modules: int | None = None,
                     limit: int = 64 << 20) -> bytes | None:
    """A module's own (split) BTF, as /sys/kernel/btf/MODULE serves it: the ``btf_modules``
    entry whose ``module`` is this one -> ``struct btf``'s data/data_size (the module's own
    btf_data is freed once it is loaded)."""
    def off(t, p):
        try:
            return btf.resolve(t, p).offset
        except ToolkitError:
            return None
    lst, bmod, bbtf = off("btf_module", "list"), off("btf_module", "module"), off("btf_module", "btf")
    data, size = off("btf", "data"), off("btf", "data_size")
    if btf_modules is not None and None not in (lst, bmod, bbtf, data, size):
        for node in _list(mem, btf_modules):
            entry = node - lst
            if mem.read_u64(entry + bmod) == module:
                b = mem.read_u64(entry + bbtf)
                ptr, n = mem.read_u64(b + data), mem.read_u32(b + size)
                if ptr and 24 <= n <= limit:
                    return mem.read(ptr, n)
                return None
    d, s = off("module", "btf_data"), off("module", "btf_data_size")
    if d is None or s is None:
        return None
    ptr, n = mem.read_u64(module + d), mem.read_u32(module + s)
    return mem.read(ptr, n) if ptr and 24 <= n <= limit else None


@record
class ModuleWalk:
    """What the ``modules`` list gave: symbols [(address, type, name, module)], each module's
    extent {name: (start, end)}, the modules in list order with their state, and notes on
    what could not be read (a module skipped, the list cut).  *keys* identifies each module's
    tables as read ((struct module, name, state, kallsyms pointers, count)): equal keys, equal
    symbols, so a later walk can reuse them (``module_symbols(cache=...)``)."""
    symbols: list
    extents: dict
    modules: list          # [(name, state name)]
    notes: list
    keys: tuple = ()


def _module_states(btf) -> dict[int, str]:
    """enum module_state's values -> "LIVE" / "COMING" / "GOING" / "UNFORMED"."""
    t = None
    try:
        t = btf.find("module_state", "enum")
    except ToolkitError:
        pass
    names = {0: "LIVE", 1: "COMING", 2: "GOING", 3: "UNFORMED"}
    if t is not None:
        got = {v: n[len("MODULE_STATE_"):] for n, v in t.members
               if isinstance(n, str) and n.startswith("MODULE_STATE_")}
        if got:
            names = got
    return names


def _kernel_pointer(p: int) -> bool:
    """A pointer into the kernel's part of the address space (x86_64 0xffff8..., 5-level
    0xff..., arm64 0xfff.../0xffff..., top-byte tags 0xf0-0xff): anything else in a struct
    module the walk follows is garbage, a user address it must not read, or a list poison
    (0xdead000000000100: a module unlinked from the list)."""
    return p >> 60 == 0xF


def _module_name(raw: bytes) -> str | None:
    """A module name as /proc/modules prints it, or None when it is not one (no NUL within
    MODULE_NAME_LEN, empty, or bytes a module name never has: a kallsyms line could not
    carry it)."""
    end = raw.find(b"\0")
    if end <= 0:
        return None
    name = raw[:end]
    if any(c <= 0x20 or c == 0x7F or c in b"[]" for c in name):
        return None
    from gdb_toolkit.common.names import decode_name

    return decode_name(name)


def _module_structs(mem, head: int, lay: ModuleLayout, max_modules: int, notes: list):
    """The struct module addresses on the ``modules`` list at *head*, walked forward (the
    direction RCU readers use: a dump taken while a module is being added or removed still
    reads) until the head comes back; bounded by *max_modules*, cycle-checked.  A pointer
    that cannot be followed ends the walk with a note in *notes*."""
    seen = {head}
    try:
        node = mem.read_u64(head)
    except ToolkitError as exc:
        raise ToolkitError(f"the module list head 0x{head:x} cannot be read: {exc.cause}",
                           None) from None
    count = 0
    while node != head:
        why = None
        if node in seen:
            why = f"loops back to 0x{node:x}"
        elif count >= max_modules:
            why = f"is longer than {max_modules} modules"
        elif not _kernel_pointer(node):
            why = f"points to 0x{node:x}, not a kernel address"
        else:
            try:
                nxt = mem.read_u64(node)
            except ToolkitError as exc:
                why = f"cannot be followed at 0x{node:x} ({exc.cause})"
        if why is not None:
            notes.append(f"the module list {why} after {count} modules: the rest is not read")
            return
        seen.add(node)
        count += 1
        yield node - lay.list_off
        node = nxt


def module_symbols(mem, modules_head: int, btf, max_modules: int = 4096,
                   max_syms: int = MAX_ALL_MODULE_SYMS, cache: dict | None = None) -> ModuleWalk:
    """Every module's symbols and extent from the ``modules`` list, as /proc/kallsyms lists
    them: the list walked forward from *modules_head* (the direction RCU readers use, so a
    dump taken while a module is added or removed still reads), bounded by *max_modules*
    and checked for cycles; modules in MODULE_STATE_UNFORMED skipped (the kernel skips them
    too: their tables are not set up, or already torn down); a COMING module's ``kallsyms``
    is its init-time table (all its symbols), read as it is.

    A module whose tables cannot be read (a pointer into nothing, a count out of bounds) is
    skipped with a note and the walk goes on: one bad module never hides the others.  Only
    a list pointer that cannot be followed ends the walk (with a note).  *cache*, a dict
    kept by the caller, maps each module's key to its symbols across walks."""
    lay = ModuleLayout.from_btf(btf)
    if None in (lay.list_off, lay.kallsyms_off, lay.ks_symtab, lay.ks_num, lay.ks_strtab):
        raise ToolkitError("this kernel's BTF lacks struct module's kallsyms fields", None)
    try:
        state_off = btf.resolve("module", "state").offset
    except ToolkitError:
        state_off = None
    states = _module_states(btf)
    unformed = next((v for v, n in states.items() if n == "UNFORMED"), MODULE_STATE_UNFORMED)
    walk = ModuleWalk([], {}, [], [])
    keys = []
    total = 0
    for mod in _module_structs(mem, modules_head, lay, max_modules, walk.notes):
        try:
            name = _module_name(mem.read(mod + lay.name_off, max(1, min(lay.name_len, 256))))
        except ToolkitError as exc:
            walk.notes.append(f"the module at 0x{mod:x} is skipped: {exc.cause}")
            continue
        if name is None:
            walk.notes.append(f"the module at 0x{mod:x} is skipped: its name is not a module "
                              "name (not a struct module?)")
            continue
        try:
            total += _one_module(mem, mod, name, lay, state_off, states, unformed, walk, keys,
                                 cache, max_syms - total)
        except ToolkitError as exc:
            walk.notes.append(f"module {name} is skipped: {exc.cause}")
    walk.keys = tuple(keys)
    return walk


def _one_module(mem, mod: int, name: str, lay: ModuleLayout, state_off, states, unformed,
                walk: ModuleWalk, keys: list, cache: dict | None, budget: int) -> int:
    """One struct module into *walk*; returns how many symbols it added."""
    state = mem.read_u32(mod + state_off) if state_off is not None else 0
    sname = states.get(state, f"state {state}")
    walk.modules.append((name, sname))
    if state == unformed:           # /proc/kallsyms skips it: set up not finished, or torn down
        return 0
    if sname != "LIVE":
        doing = {"COMING": " (being loaded)", "GOING": " (being removed)"}.get(sname, "")
        walk.notes.append(f"module {name} is {sname}{doing}")
    if lay.base_off is not None and lay.size_off is not None:
        # the extent /proc/modules gives: 6.1 core_layout's base and size; 6.4+ mem[MOD_TEXT]'s
        # base and module_total_size(), the sum of every mem[] region (init ones are 0 once
        # loaded).  mem[0]'s size alone is the text only: the live and the dump answers differed.
        base = mem.read_u64(mod + lay.base_off)
        if lay.mem_sizes:
            size = sum(mem.read_u32(mod + o) for o in lay.mem_sizes)
        else:
            size = mem.read_u32(mod + lay.size_off)
        if base and _kernel_pointer(base) and 0 < size <= 1 << 30:
            walk.extents[name] = (base, base + size)
    ks = mem.read_u64(mod + lay.kallsyms_off)
    if not ks:
        keys.append((mod, name, state, 0))
        return 0
    if not _kernel_pointer(ks):
        raise ToolkitError(f"its kallsyms pointer 0x{ks:x} is not a kernel address", None)
    symtab = mem.read_u64(ks + lay.ks_symtab)
    num = mem.read_u32(ks + lay.ks_num)
    strtab = mem.read_u64(ks + lay.ks_strtab)
    typetab = mem.read_u64(ks + lay.ks_typetab) if lay.ks_typetab is not None else 0
    exports = (mem.read_u64(mod + lay.syms_off), mem.read_u32(mod + lay.num_syms_off)) \
        if _has_exports(lay) else None
    key = (mod, name, state, ks, symtab, num, strtab, typetab, exports)
    keys.append(key)
    if num == 0:
        return 0
    if num > min(MAX_MODULE_SYMS, budget):
        raise ToolkitError(f"num_symtab reads {num} (more than "
                           f"{min(MAX_MODULE_SYMS, budget)} can be)", None)
    if not (_kernel_pointer(symtab) and _kernel_pointer(strtab)
            and (not typetab or _kernel_pointer(typetab))):
        raise ToolkitError("its symtab/strtab/typetab pointers are not kernel addresses", None)
    got = cache.get(key) if cache is not None else None
    if got is None:
        syms, cut = _module_syms(mem, name, symtab, num, strtab, typetab)
        if exports is not None:
            syms = _export_case(syms, _exported(mem, lay, *exports), walk.notes, name)
        got = (syms, cut)
        if cache is not None:
            cache[key] = got
    syms, cut = got
    if cut:
        walk.notes.append(f"module {name}: {cut} symbol names could not be read")
    walk.symbols += syms
    return len(syms)


MAX_MODULE_EXPORTS = 1 << 16


def _has_exports(lay: ModuleLayout) -> bool:
    return None not in (lay.syms_off, lay.num_syms_off, lay.ksym_value, lay.ksym_name) \
        and lay.ksym_size > 0


def _exported(mem, lay: ModuleLayout, syms: int, num: int) -> set | None:
    """{(name, address)} of a module's exports (mod->syms), or None when they cannot be
    read.  /proc/kallsyms prints a module symbol's letter upper-case when it is exported
    there (is_exported(): name and value match an entry of mod->syms; EXPORT_SYMBOL_GPL's
    gpl_syms do not count), lower-case otherwise."""
    if not num:
        return set()
    if num > MAX_MODULE_EXPORTS or not _kernel_pointer(syms):
        return None
    try:
        raw = mem.read(syms, lay.ksym_size * num)
    except ToolkitError:
        return None
    out = set()
    for i in range(num):
        at = syms + i * lay.ksym_size
        if lay.ksym_prel32:          # place-relative: the field's own address + the offset
            v, nm = (struct.unpack_from("<i", raw, i * lay.ksym_size + o)[0] for o in
                     (lay.ksym_value, lay.ksym_name))
            value, name_at = at + lay.ksym_value + v, at + lay.ksym_name + nm
        else:
            value, name_at = (struct.unpack_from("<Q", raw, i * lay.ksym_size + o)[0] for o in
                              (lay.ksym_value, lay.ksym_name))
        try:
            raw_name = _read_upto(mem, name_at & ((1 << 64) - 1), KSYM_NAME_LEN)
        except ToolkitError:
            continue
        end = raw_name.find(b"\0")
        if end > 0:
            from gdb_toolkit.common.names import decode_name

            out.add((decode_name(raw_name[:end]), value & ((1 << 64) - 1)))
    return out


def _export_case(syms: list, exported: set | None, notes: list, mod: str) -> list:
    """*syms* with their letters cased as /proc/kallsyms prints a module's symbols."""
    if exported is None:
        notes.append(f"module {mod}: its exports could not be read (symbol letters keep "
                     "their binding's case)")
        return syms
    return [(a, t.upper() if (n, a) in exported else t.lower(), n, m) for a, t, n, m in syms]


def _module_syms(mem, mod: str, symtab: int, num: int, strtab: int,
                 typetab: int) -> tuple[list, int]:
    """([(address, type, name, mod)], how many names could not be read) from one
    mod_kallsyms.  The string table's size is not recorded anywhere: it is read up to the
    last name's end (the largest st_name + KSYM_NAME_LEN), but never past the end of
    readable memory -- a module's strtab and typetab can end a few bytes before the
    unmapped guard page that follows its allocation."""
    from gdb_toolkit.common.names import decode_name

    raw = mem.read(symtab, 24 * num)
    types = mem.read(typetab, num) if typetab else b"t" * num
    entries = list(struct.iter_unpack("<IBBHQQ", raw))
    top = max((e[0] for e in entries if e[0] < MAX_MODULE_STRTAB), default=0)
    strs = _read_upto(mem, strtab, top + KSYM_NAME_LEN) if top else b""
    out, cut = [], 0
    for i, (st_name, _info, _o, shndx, value, _size) in enumerate(entries):
        t = chr(types[i]) if 0x21 <= types[i] < 0x7F else "?"
        if not st_name or not value or shndx == 0 or t == "U":
            continue
        end = strs.find(b"\0", st_name, st_name + KSYM_NAME_LEN)
        if end < 0:                     # past the readable strtab (or an unterminated name)
            cut += 1
            continue
        bname = strs[st_name:end]
        if not bname or bname.startswith(b"$") or any(c <= 0x20 or c == 0x7F for c in bname):
            continue                    # mapping symbols; names a kallsyms line cannot carry
        out.append((value, t, decode_name(bname), mod))
    return out, cut


def kallsyms_text(symbols: list[tuple[int, str, str]],
                  modules: list[tuple[int, str, str, str]] = ()) -> str:
    """/proc/kallsyms-format text: vmlinux symbols (in address order), then modules'."""
    lines = [f"{a:016x} {t} {n}" for a, t, n in symbols]
    lines += [f"{a:016x} {t} {n}\t[{m}]" for a, t, n, m in modules]
    return "\n".join(lines) + "\n"


def kallsyms_text_join(vmlinux_text: str, modules: list[tuple[int, str, str, str]]) -> str:
    """*vmlinux_text* (``kallsyms_text(symbols)``) followed by the lines of *modules*."""
    if not modules:
        return vmlinux_text
    return vmlinux_text + "".join(f"{a:016x} {t} {n}\t[{m}]\n" for a, t, n, m in modules)


# -- the kernel's pseudo-modules: what /proc/kallsyms adds from its own lists --------------------

def _list(mem, head: int, limit: int = 4096):
    """The nodes of a list_head ring starting at *head* (bounded, cycle-checked)."""
    seen = {head}
    node = mem.read_u64(head)
    while node not in seen and len(seen) <= limit:
        seen.add(node)
        yield node
        node = mem.read_u64(node)


def builtin_symbols(mem, address_of, btf) -> list[tuple[int, str, str, str]]:
    """The symbols kallsyms makes up from kernel lists: kprobe instruction pages
    ([__builtin__kprobes]: the optimized probes' detour buffers), ftrace trampolines
    ([__builtin__ftrace]) and JIT-compiled BPF programs ([bpf]).  Without them a call into a
    trampoline or a jump into a detour buffer reads as plain code."""
    out = []

    def off(t, p):
        try:
            return btf.resolve(t, p).offset
        except ToolkitError:
            return None

    # kprobe_insn_slots / kprobe_optinsn_slots: struct kprobe_insn_cache { ... pages; sym }
    pages_off, sym_off = off("kprobe_insn_cache", "pages"), off("kprobe_insn_cache", "sym")
    insns_off, list_off = off("kprobe_insn_page", "insns"), off("kprobe_insn_page", "list")
    for cache_name in ("kprobe_insn_slots", "kprobe_optinsn_slots"):
        cache = address_of(cache_name)
        if None in (cache, pages_off, sym_off, insns_off, list_off):
            continue
        try:
            name = mem.read_cstring(mem.read_u64(cache + sym_off), 64)
            for node in _list(mem, cache + pages_off):
                out.append((mem.read_u64(node - list_off + insns_off), "t", name, "__builtin__kprobes"))
        except ToolkitError:
            continue
    # ftrace_ops_trampoline_list: struct ftrace_ops linked by ->list, ->trampoline
    head = address_of("ftrace_ops_trampoline_list")
    ops_list, tramp = off("ftrace_ops", "list"), off("ftrace_ops", "trampoline")
    if None not in (head, ops_list, tramp):
        try:
            for node in _list(mem, head):
                t = mem.read_u64(node - ops_list + tramp)
                if t:
                    out.append((t, "t", "ftrace_trampoline", "__builtin__ftrace"))
        except ToolkitError:
            pass
    # bpf_kallsyms: struct bpf_ksym linked by ->lnode: start, name
    head = address_of("bpf_kallsyms")
    lnode, start, name_off = off("bpf_ksym", "lnode"), off("bpf_ksym", "start"), off("bpf_ksym", "name")
    if None not in (head, lnode, start, name_off):
        try:
            for node in _list(mem, head, 1 << 16):
                ksym = node - lnode
                name = mem.read_cstring(ksym + name_off, 512)
                out.append((mem.read_u64(ksym + start), "t", name, "bpf"))
        except ToolkitError:
            pass
    return out
