"""Gather StackFacts from gdb: siginfo, registers, memory map, limits, a bounded frame walk."""
import os
import re

import gdb

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.gdbsupport import facts as gfacts
from gdb_toolkit.stack.model import Code, Frame, SignalInfo, StackFacts

FRAME_CAP = 128                 # frames walked through gdb's unwinder, at most
STACK_READ_CAP = 256 << 20      # bytes of stack memory read to count recursion
CODE_CAP = 64 << 10             # bytes of the culprit function read for disassembly
REGS = {"x86_64": ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11",
                   "r12", "r13", "r14", "r15"],
        "aarch64": [f"x{i}" for i in range(31)]}


def signal_info() -> SignalInfo | None:
    try:
        si = gdb.parse_and_eval("$_siginfo")
        signo, code = int(si["si_signo"]), int(si["si_code"])
    except gdb.error:
        return None
    if signo == 0:
        return None
    addr = None
    if signo in (4, 7, 8, 11):
        try:
            addr = int(si["_sifields"]["_sigfault"]["si_addr"])
        except gdb.error:
            addr = None
    return SignalInfo(signo, code, addr)


def _source(sal) -> str | None:
    if sal is None or sal.symtab is None or not sal.line:
        return None
    return f"{os.path.basename(sal.symtab.filename)}:{sal.line}"


def walk_frames(cap: int = FRAME_CAP) -> tuple[list[Frame], bool]:
    """The innermost *cap* frames (pc, sp, function, source); True if the walk completed."""
    frames: list[Frame] = []
    frame = gdb.newest_frame()
    level = 0
    while frame is not None and level < cap:
        try:
            sp = int(frame.read_register("sp"))
            pc = frame.pc()
        except gdb.error:
            break
        try:
            name = frame.name()
        except gdb.error:
            name = None
        try:
            src = _source(frame.find_sal())
        except gdb.error:
            src = None
        try:
            sig = frame.type() == gdb.SIGTRAMP_FRAME
        except gdb.error:
            sig = False
        frames.append(Frame(level, pc, sp, name, src, signal_frame=sig))
        try:
            frame = frame.older()
        except gdb.error:
            frame = None
        level += 1
    return frames, frame is None


def registers(arch: str) -> dict[str, int]:
    out = {}
    frame = gdb.newest_frame()
    for r in REGS.get(arch, []):
        try:
            out[r] = int(frame.read_register(r)) & (2**64 - 1)
        except (gdb.error, ValueError):
            pass
    return out


def _direct_call_target(return_pc: int | None, arch: str) -> int | None:
    """The target of the x86_64 ``call rel32`` just before *return_pc* (the caller's frame):
    the start of the called function even when no symbol names it (stripped binary)."""
    if return_pc is None or arch != "x86_64":
        return None
    try:
        raw = gfacts.read_memory(return_pc - 5, 5)
    except ToolkitError:
        return None
    if raw[0] != 0xE8:
        return None
    return (return_pc + int.from_bytes(raw[1:], "little", signed=True)) & (2**64 - 1)


def function_code(pc: int, level: int, caller_pc: int | None = None, arch: str = "x86_64") -> Code | None:
    """Code of the function holding *pc*, from its start to a little past *pc*, and its lines;
    without a symbol (stripped), the start comes from the caller's direct call."""
    name, start, end = None, None, None
    block = None
    try:
        block = gdb.block_for_pc(pc - 1 if level > 0 else pc)
    except RuntimeError:
        block = None
    while block is not None and block.function is None:
        block = block.superblock
    if block is not None:
        name, start, end = block.function.print_name, block.start, block.end
    else:
        try:
            text = gdb.execute(f"info symbol {pc:#x}", to_string=True)
        except gdb.error:
            text = ""
        m = re.match(r"(\S+)(?: \+ (\d+))? in section", text)
        if m:
            name, start = m.group(1), pc - int(m.group(2) or 0)
        else:
            start = _direct_call_target(caller_pc, arch)
            if start is None or not 0 <= pc - start < CODE_CAP:
                return None
    stop = min(end if end else pc + 64, pc + 64, start + CODE_CAP)
    try:
        data = gfacts.read_memory(start, stop - start)
    except ToolkitError:
        return None
    lines: list[tuple[int, str]] = []
    sal = gdb.find_pc_line(start)
    if sal.symtab is not None:
        base = os.path.basename(sal.symtab.filename)
        try:
            for item in sal.symtab.linetable():
                if start <= item.pc < stop and item.line:
                    lines.append((item.pc, f"{base}:{item.line}"))
        except (RuntimeError, gdb.error):
            pass
    lines.sort()
    return Code(name, start, data, lines)


def memory_map(kind: str, pid: int | None):
    from gdb_toolkit.common import procfs

    if kind == "live":
        return procfs.read_maps(pid), f"/proc/{pid}/maps"
    path = gfacts.core_file_path()
    if not path:
        raise ToolkitError("cannot find the core file's name in 'info target'",
                           "load the core with: gdb PROGRAM CORE")
    from gdb_toolkit.stack.core_maps import core_mappings

    return core_mappings(path), f"the core file's PT_LOAD segments and NT_FILE note ({path})"


def stack_limit(kind: str, pid: int | None):
    """(soft, hard, known, source) for RLIMIT_STACK."""
    if kind == "live":
        from gdb_toolkit.common import procfs

        lim = procfs.read_limits(pid).get("Max stack size")
        if lim is not None:
            return lim.soft, lim.hard, True, f"/proc/{pid}/limits"
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    conv = lambda v: None if v == resource.RLIM_INFINITY else v  # noqa: E731
    s = "unlimited" if conv(soft) is None else f"{soft // 1024} KiB"
    return (conv(soft), conv(hard), False,
            f"a core file does not record limits; assumed gdb's own soft limit ({s}) -- "
            "run gdb from the shell that ran the program")


def guard_gap(page: int):
    from gdb_toolkit.stack.kernel_rules import guard_gap_from_cmdline

    try:
        with open("/proc/cmdline") as fh:
            cmdline = fh.read()
    except OSError:
        cmdline = None
    return guard_gap_from_cmdline(cmdline, page)


def gather(kind: str) -> StackFacts:
    """Facts for the selected thread (which the caller has stopped and selected)."""
    from gdb_toolkit.stack.diagnose import find_stack_region, frame_sizes
    from gdb_toolkit.stack.recursion import find_cycle

    inf = gdb.selected_inferior()
    thread = gdb.selected_thread()
    arch = gfacts.target_arch()
    pid = inf.pid or None
    tid = thread.ptid[1] or None
    frames, complete = walk_frames()
    if not frames:
        raise ToolkitError("cannot read the selected thread's registers",
                           "select a stopped thread (thread N)")
    sp, pc = frames[0].sp, frames[0].pc
    maps, maps_source = memory_map(kind, pid)
    soft, hard, known, lsrc = stack_limit(kind, pid)
    page = gfacts.auxv().get("AT_PAGESZ") or os.sysconf("SC_PAGE_SIZE")
    gap, gsrc = guard_gap(page)
    f = StackFacts(arch=arch, target=kind, pid=pid, tid=tid, thread_num=thread.num,
                   is_main_thread=(tid == pid or tid is None), signal=signal_info(), pc=pc, sp=sp,
                   maps=maps, maps_source=maps_source, rlimit_soft=soft, rlimit_hard=hard,
                   rlimit_known=known, rlimit_source=lsrc, guard_gap=gap, guard_gap_source=gsrc,
                   page_size=page, frames=frames, frames_complete=complete,
                   registers=registers(arch))
    frame_sizes(frames)
    from gdb_toolkit.stack.diagnose import culprit_frame

    culprit = culprit_frame(frames)
    if culprit is not None:
        caller = next((fr.pc for fr in frames if fr.level == culprit.level + 1), None)
        f.code = function_code(culprit.pc, culprit.level, caller, arch)
    if not complete and find_cycle(frames):
        region = find_stack_region(f)
        if region is not None:
            lo = max(sp, region.start)
            hi = min(region.end, lo + STACK_READ_CAP)
            try:
                f.stack_words = bytes(inf.read_memory(lo, hi - lo))
                f.stack_words_base = lo
            except gdb.MemoryError:
                pass
    return f
