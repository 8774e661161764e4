"""A data symbol's address read from the code that uses it, checked against memory.

Without CONFIG_KALLSYMS_ALL (Debian's arm64) kallsyms has no data symbols, and Debian's
/boot/System.map is a placeholder.  But the functions that use a variable are in kallsyms,
and their instructions hold its address: ``get_kprobe`` indexes ``kprobe_table`` (x86_64:
``mov rax, [rax*8 + disp32]``; arm64: ``adrp x1, page; add x1, x1, #lo12``).  Each candidate
address a function references is kept only if the memory there has the variable's shape
(every non-empty ``kprobe_table`` bucket's first probe points back at its bucket).

Pure: ``read(addr, n)``, the symbol table and the architecture come in.
"""
import re
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.errors import ToolkitError

MASK64 = (1 << 64) - 1


def _canonical(p: int) -> bool:
    return 0xFF00000000000000 <= p < 0xFFFFFFFFFFFFF000


def data_refs(code: bytes, addr: int, arch: str, limit: int = 400) -> list[int]:
    """Addresses *code* (at *addr*) refers to as data, in instruction order."""
    from gdb_toolkit.common.disasm import disassemble

    out = []
    if arch == "aarch64":
        pages: dict[str, int] = {}
        for ins in disassemble(code, addr, arch, count=limit):
            ops = [o.strip() for o in ins.op_str.split(",")]
            if ins.mnemonic == "adrp" and len(ops) == 2:
                m = re.match(r"#?(0x[0-9a-f]+)", ops[1])
                if m:
                    pages[ops[0]] = int(m.group(1), 16)
            elif ins.mnemonic == "add" and len(ops) == 3 and ops[1] in pages:
                m = re.match(r"#(0x[0-9a-f]+|\d+)", ops[2])
                if m:
                    out.append((pages[ops[1]] + int(m.group(1), 0)) & MASK64)
            elif ins.mnemonic.startswith("ldr") and len(ops) >= 2:
                m = re.match(r"\[(x\d+)(?:, #(0x[0-9a-f]+|\d+))?\]", ",".join(ops[1:]).replace(" ", "")
                             .replace(",#", ", #"))
                if m and m.group(1) in pages:
                    out.append((pages[m.group(1)] + int(m.group(2) or "0", 0)) & MASK64)
        return out
    for ins in disassemble(code, addr, arch, count=limit):
        if ins.mnemonic == "(bad)":
            break
        m = re.search(r"\[rip ([+-]) (0x[0-9a-f]+)\]", ins.op_str)
        if m:
            d = int(m.group(2), 16)
            out.append((ins.address + ins.size + (d if m.group(1) == "+" else -d)) & MASK64)
            continue
        m = re.search(r"\[[^\]]*?([+-]) (0x[0-9a-f]{7,8})\]", ins.op_str)
        if m:
            d = int(m.group(2), 16)
            if d >= 0x40000000:                     # a kernel address as sign-extended disp32
                out.append((-d if m.group(1) == "-" else d) & MASK64)
            continue
        m = re.search(r"\b(0xffff[0-9a-f]{12})\b", ins.op_str)
        if m:
            out.append(int(m.group(1), 16))
    return out


def looks_like_kprobe_table(read, cand: int, buckets: int = 64) -> bool | None:
    """True: every non-empty bucket's first node has pprev == &bucket; None: all empty (the
    shape cannot be checked); False: not a kprobe table."""
    try:
        heads = struct.unpack(f"<{buckets}Q", read(cand, 8 * buckets))
    except (ToolkitError, struct.error):
        return False
    used = 0
    for i, node in enumerate(heads):
        if not node:
            continue
        if not _canonical(node):
            return False
        try:
            pprev = struct.unpack("<Q", read(node + 8, 8))[0]
        except ToolkitError:
            return False
        if pprev != cand + 8 * i:
            return False
        used += 1
    return True if used else None


def looks_like_init_task(read, cand: int, btf=None) -> bool:
    """init_task: BTF's task_struct at *cand* has pid 0, the idle task's comm ("swapper" or
    "swapper/0") and a tasks list whose first entry points back at it."""
    if btf is None:
        return False
    try:
        comm = btf.resolve("task_struct", "comm")
        pid = btf.resolve("task_struct", "pid")
        tasks = btf.resolve("task_struct", "tasks")
        name = read(cand + comm.offset, comm.size or 16).split(b"\0")[0]
        if not name.startswith(b"swapper") or read(cand + pid.offset, 4) != b"\0\0\0\0":
            return False
        nxt = struct.unpack("<Q", read(cand + tasks.offset, 8))[0]
        back = struct.unpack("<Q", read(nxt + 8, 8))[0]          # next->prev
        return back == cand + tasks.offset
    except (ToolkitError, struct.error):
        return False


def _member_bases(type_name: str, members: tuple):
    """A code reference may point at a member of the variable (``&init_task.tasks``): the
    candidate bases are the reference minus each member's offset."""
    def bases(ref: int, btf) -> list[int]:
        out = [ref]
        for m in members:
            try:
                out.append((ref - btf.resolve(type_name, m).offset) & MASK64)
            except (ToolkitError, AttributeError):
                pass
        return out
    return bases


# data symbol -> (functions using it, candidate bases(ref, btf), shape check(read, candidate, btf))
RECIPES = {
    "kprobe_table": (("get_kprobe",), lambda ref, btf: [ref],
                     lambda read, cand, btf: looks_like_kprobe_table(read, cand)),
    # for_each_process() starts at &init_task (the compiler may keep &init_task.tasks)
    "init_task": (("normalize_rt_tasks", "__do_sys_setpriority", "__arm64_sys_setpriority",
                   "__x64_sys_setpriority", "__do_sys_getpriority", "__arm64_sys_getpriority",
                   "__x64_sys_getpriority"), _member_bases("task_struct", ("tasks",)),
                  looks_like_init_task),
}


def candidates(name: str, refs: list[int], btf=None) -> list[int]:
    """The addresses *name* may have, given a user's data references."""
    _funcs, bases, _check = RECIPES[name]
    out = []
    for r in refs:
        out += [c for c in bases(r, btf) if c not in out]
    return out


def resolve(name: str, read, symbols, arch: str, btf=None):
    """(address, how it was found) of data symbol *name* from its users' code, or None."""
    recipe = RECIPES.get(name)
    if recipe is None:
        return None
    funcs, _bases, check = recipe
    weak = None
    for fn in funcs:
        s = symbols.lookup(fn)
        if s is None:
            continue
        end = symbols.next_symbol_after(s.address) or s.address + 512
        try:
            code = read(s.address, max(16, min(end - s.address, 4096)))
        except ToolkitError:
            continue
        for cand in candidates(name, data_refs(code, s.address, arch), btf):
            verdict = check(read, cand, btf)
            if verdict:
                return cand, f"from {fn}'s code (0x{cand:x}; its shape checked in memory)"
            if verdict is None and weak is None:
                weak = (cand, f"from {fn}'s code (0x{cand:x}; empty, so its shape is unchecked)")
    return weak
