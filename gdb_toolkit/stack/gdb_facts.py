"""Gather StackFacts from gdb: signals (the stop's, the signal frames', a core's notes),
registers, memory map, limits, layout facts, a bounded frame walk, the other threads."""
import os

import gdb

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import escape_name
from gdb_toolkit.gdbsupport import facts as gfacts
from gdb_toolkit.stack.model import (Code, Frame, Runtime, SignalInfo, StackFacts,
                                     ThreadSummary)

FRAME_CAP = 128                 # frames walked through gdb's unwinder, at most
CODE_CAP = 64 << 10             # bytes of a function read for disassembly
CODE_FRAMES = 6                 # functions read for disassembly, at most
THREAD_CAP = 4096               # threads summarised for stack clashes, at most
REGS = {"x86_64": ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
                   "r11", "r12", "r13", "r14", "r15", "rip", "fs_base", "gs_base"],
        "aarch64": [f"x{i}" for i in range(31)] + ["sp", "pc"],
        "i386": ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip"]}
TP_REG = {"x86_64": "fs_base", "aarch64": "tpidr"}
AT_EXECFN, AT_PAGESZ, AT_MINSIGSTKSZ = 31, 6, 51
ADDR_NO_RANDOMIZE = 0x0040000
TASK_TOP = {"x86_64": (1 << 47) - 4096, "aarch64": 1 << 48, "i386": 0xFFFFE000}

_core_cache: dict = {}


def _read(addr: int, n: int) -> bytes | None:
    """Target memory, or None where it is not readable (bounded by the caller)."""
    if addr < 0 or n <= 0 or addr + n > 1 << 64:
        return None
    try:
        buf = gdb.selected_inferior().read_memory(addr, n)
    except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
        return None
    return bytes(buf) if n <= 65536 else memoryview(buf).cast("B")


def stop_signal() -> SignalInfo | None:
    try:
        si = gdb.parse_and_eval("$_siginfo")
        signo, code = int(si["si_signo"]), int(si["si_code"])
    except (gdb.error, RuntimeError):
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
    from gdb_toolkit.gdbsupport.safe_gdb import symtab_filename

    from gdb_toolkit.common.names import escape_name

    name = symtab_filename(sal.symtab)           # any bytes (surrogateescape)
    if not name:
        return None
    return f"{escape_name(os.path.basename(name))}:{sal.line}"      # printed once, here


def _block_function(pc: int):
    if pc <= 0:
        return None
    try:
        block = gdb.block_for_pc(pc)
    except (RuntimeError, gdb.error, OverflowError):
        return None
    while block is not None and block.function is None:
        block = block.superblock
    return block


def _direct_call_target(return_pc: int | None, arch: str) -> int | None:
    """The target of the x86_64 ``call rel32`` just before *return_pc*, or of the aarch64
    ``bl`` there: the start of the called function even when no symbol names it."""
    if return_pc is None or return_pc < 8:
        return None
    if arch in ("x86_64", "i386"):
        raw = _read(return_pc - 5, 5)
        if raw is None or raw[0] != 0xE8:
            return None
        return (return_pc + int.from_bytes(raw[1:], "little", signed=True)) & (
            2**32 - 1 if arch == "i386" else 2**64 - 1)
    raw = _read(return_pc - 4, 4)
    if raw is None:
        return None
    word = int.from_bytes(raw, "little")
    if word >> 26 != 0b100101:                       # bl imm26
        return None
    imm = word & ((1 << 26) - 1)
    if imm >> 25:
        imm -= 1 << 26
    return (return_pc - 4 + 4 * imm) & (2**64 - 1)


def stack_arch() -> str:
    """x86_64 / aarch64 as the toolkit names them, or i386: a 32-bit x86 program (on an
    x86_64 kernel) has the same stack growth rules, which stack-diagnose applies to it."""
    try:
        return gfacts.target_arch()
    except ToolkitError:
        try:
            name = gdb.selected_frame().architecture().name()
        except gdb.error:
            name = gdb.selected_inferior().architecture().name()
        if name.startswith("i386") and "64" not in name:
            return "i386"
        raise


def walk_frames(arch: str, cap: int = FRAME_CAP) -> tuple[list[Frame], bool, str | None]:
    """The innermost *cap* frames (pc, sp, function, start, source); True if the walk ended
    at the outermost frame; gdb's reason when it ended at an unwind error instead (a frame
    whose code has neither symbols nor unwind tables, in a core of a deleted program)."""
    frames: list[Frame] = []
    frame = gdb.newest_frame()
    level = 0
    while frame is not None and level < cap:
        try:
            sp = int(frame.read_register("sp")) & (2**64 - 1)
            pc = frame.pc()
        except (gdb.error, ValueError):
            break
        try:
            name = frame.name()
            name = escape_name(name) if name else name       # any bytes: printed once, here
        except (gdb.error, UnicodeDecodeError):
            name = None
        try:
            src = _source(frame.find_sal())
        except gdb.error:
            src = None
        try:
            ftype = frame.type()
        except gdb.error:
            ftype = None
        sig = ftype == gdb.SIGTRAMP_FRAME
        look = pc - 1 if (level > 0 and not frames[-1].signal_frame and pc > 0) else pc
        block = _block_function(look)
        start = block.start if block is not None else None
        frames.append(Frame(level, pc, sp, name, src, signal_frame=sig, start_address=start,
                            virtual=ftype in (gdb.INLINE_FRAME, gdb.TAILCALL_FRAME)))
        last = frame
        try:
            frame = frame.older()
        except gdb.error:
            frame = None
        level += 1
    stopped = None
    if frame is None and frames:
        try:
            reason = last.unwind_stop_reason()
            # FRAME_UNWIND_FIRST_ERROR is UNAVAILABLE's value (gdb 13 exports no name for it)
            if reason >= getattr(gdb, "FRAME_UNWIND_FIRST_ERROR", gdb.FRAME_UNWIND_UNAVAILABLE):
                stopped = gdb.frame_stop_reason_string(reason)
        except gdb.error:
            pass
    if frame is None and frames and not frames[-1].signal_frame and stopped is None:
        # the walk ended at the outermost frame gdb shows (main, with 'backtrace past-main'
        # off): its size still comes from its CFA, which is its caller's sp
        frames[-1].caller_sp = _frame_cfa(last, frames[-1].level)
    # a stripped function's start: its caller's direct call
    for inner, outer in zip(frames, frames[1:]):
        if inner.function_start is None and not inner.signal_frame and not outer.signal_frame:
            inner.function_start = _direct_call_target(outer.pc, arch)
    return frames, frame is None and stopped is None, stopped


FAR_CAP = 1024      # frames walked at most looking for a signal frame past the bounded walk
                    # (gdb unwinds ~3 frames per ms: a deeper coroutine recursion pays 0.3 s)


def far_signal_frame(start: int, cap: int = FAR_CAP) -> tuple[Frame, Frame | None] | None:
    """The first signal frame (<signal handler called>) at or past level *start*, and the
    handler's frame just inside it: a handler that recursed deeper than the bounded walk on
    its sigaltstack.  Frame types only (no names, no lines) up to *cap* levels."""
    frame, level, inner = gdb.newest_frame(), 0, None
    try:
        while frame is not None and level < cap:
            if level >= start and frame.type() == gdb.SIGTRAMP_FRAME:
                sp = int(frame.read_register("sp")) & (2**64 - 1)
                handler = None
                if inner is not None:
                    try:
                        name = inner.name()
                        name = escape_name(name) if name else name
                    except UnicodeDecodeError:
                        name = None
                    handler = Frame(level - 1, inner.pc(),
                                    int(inner.read_register("sp")) & (2**64 - 1), name)
                return Frame(level, frame.pc(), sp, None, signal_frame=True), handler
            inner, frame = frame, frame.older()
            level += 1
    except (gdb.error, ValueError):
        return None
    return None


def _frame_cfa(frame, level: int) -> int | None:
    """The frame's CFA ("frame at ..." of info frame): the caller's sp at the call."""
    import re

    try:
        if frame.type() == gdb.INLINE_FRAME:
            return None
        from gdb_toolkit.gdbsupport.safe_gdb import execute_to_string

        text = execute_to_string(f"info frame level {int(level)}")   # names the source: any bytes
    except (gdb.error, RuntimeError, UnicodeDecodeError):
        return None
    m = re.search(r"frame at (0x[0-9a-f]+)", text)
    return int(m.group(1), 16) if m else None


def registers(arch: str) -> dict[str, int]:
    out = {}
    frame = gdb.newest_frame()
    for r in REGS.get(arch, []) + [TP_REG.get(arch, "")]:
        if not r or r in out:
            continue
        try:
            out[r] = int(frame.read_register(r)) & (2**32 - 1 if arch == "i386" else 2**64 - 1)
        except (gdb.error, ValueError):
            pass
    return out


def function_code(frame: Frame, caller: Frame | None, arch: str) -> Code | None:
    """Code of the function holding the frame's pc, from its start to a little past pc, and
    its lines; without a symbol (stripped), the start comes from the caller's direct call."""
    pc = frame.pc
    look = pc - 1 if frame.level > 0 and pc > 0 else pc
    block = _block_function(look)
    name, start, end = None, None, None
    if block is not None:
        try:
            name = block.function.print_name
        except UnicodeDecodeError:
            name = None
        start, end = block.start, block.end
    else:
        start = frame.function_start
        if start is None or not 0 <= pc - start < CODE_CAP:
            # no start, or the caller's direct call went to a PLT stub (a library function
            # without debug info): the ELF symbol holding pc
            start = _minsym_start(look) or start
    if start is None or not 0 <= pc - start < CODE_CAP:
        return None
    # to the function's end (a loop's back edge may lie well past pc), within CODE_CAP
    stop = min(max(end or 0, pc + 64), start + CODE_CAP)
    data = _read(start, stop - start)
    if data is None:
        return None
    lines: list[tuple[int, str]] = []
    try:
        sal = gdb.find_pc_line(start)
        if sal.symtab is not None:
            from gdb_toolkit.gdbsupport.safe_gdb import symtab_filename

            base = os.path.basename(symtab_filename(sal.symtab) or "?")
            for item in sal.symtab.linetable():
                if start <= item.pc < stop and item.line:
                    lines.append((item.pc, f"{base}:{item.line}"))
    except (RuntimeError, gdb.error, UnicodeDecodeError):
        pass
    lines.sort()
    return Code(name, start, data, lines)


def _minsym_start(addr: int) -> int | None:
    """The start of the ELF symbol (a minimal symbol: no debug info needed) holding *addr*."""
    import re

    if addr <= 0:
        return None
    try:
        from gdb_toolkit.gdbsupport.safe_gdb import execute_to_string

        text = execute_to_string(f"info symbol {addr:#x}")      # names the object: any bytes
    except (gdb.error, UnicodeDecodeError):
        return None
    m = re.match(r"\S+(?: \+ (\d+))? in section", text)
    return addr - int(m.group(1) or 0) if m else None


def _core_info():
    path = gfacts.core_file_path()
    if not path:
        raise ToolkitError("cannot find the core file's name in 'info target'",
                           "load the core with: gdb PROGRAM CORE")
    from gdb_toolkit.common.safe_open import parsed_once
    from gdb_toolkit.stack.core_notes import read_core

    return parsed_once(_core_cache, path, read_core), path


def _program_mismatch(maps, absent) -> str | None:
    """A sentence when gdb's program file is not the one that dumped the core."""
    from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename

    prog = progspace_filename()
    if not prog:
        return None
    from gdb_toolkit.stack import program_match

    found = program_match.mismatch(prog, maps, _read, absent)
    return program_match.sentence(prog, found) if found else None


def memory_map(kind: str, pid: int | None):
    from gdb_toolkit.common import procfs

    if kind == "live":
        return procfs.read_maps(pid), f"/proc/{pid}/maps"
    info, path = _core_info()
    from gdb_toolkit.common.names import escape_name

    return info.mappings, f"the core file's PT_LOAD segments and NT_FILE note ({escape_name(path)})"


def stack_limits(kind: str, pid: int | None, given: int | None | str):
    """(soft, hard, known, given, source, as_soft) for RLIMIT_STACK (and RLIMIT_AS)."""
    if given is not None:
        soft = None if given == "unlimited" else given
        return soft, None, False, True, "given with --rlimit", None
    if kind == "live":
        from gdb_toolkit.common import procfs

        lims = procfs.read_limits(pid)
        lim = lims.get("Max stack size")
        asl = lims.get("Max address space")
        if lim is not None:
            return (lim.soft, lim.hard, True, False, f"/proc/{pid}/limits",
                    asl.soft if asl is not None else None)
    from gdb_toolkit.common.procfs import own_stack_limit

    soft, hard = own_stack_limit()          # gdb's own (resource.getrlimit's answer)
    s = "unlimited" if soft is None else f"{soft // 1024} KiB"
    return (soft, hard, False, False,
            f"not recorded in a core file (this gdb's own limit is {s}; give --rlimit KIB if "
            "you know the program's)", None)


def exec_limit(kind: str, inf) -> tuple[int | None, bool, str, bool]:
    """(RLIMIT_STACK at exec, known, source, started by gdb)."""
    if kind != "live" or getattr(inf, "was_attached", True):
        return None, False, "", False
    from gdb_toolkit.common.procfs import own_stack_limit

    soft, _hard = own_stack_limit()         # gdb's own (resource.getrlimit's answer)
    return (soft, True,
            "gdb's own RLIMIT_STACK: gdb started the program, which inherited it", True)


def aslr_state(kind: str, pid: int | None, maps, arch: str) -> tuple[bool | None, str]:
    if kind == "live" and pid:
        try:
            with open(f"/proc/{pid}/personality") as fh:
                pers = int(fh.read().strip(), 16)
            if pers & ADDR_NO_RANDOMIZE:
                return False, f"/proc/{pid}/personality has ADDR_NO_RANDOMIZE (gdb's disable-randomization)"
        except (OSError, ValueError):
            pass
        try:
            with open("/proc/sys/kernel/randomize_va_space") as fh:
                if fh.read().strip() == "0":
                    return False, "kernel.randomize_va_space = 0"
        except OSError:
            pass
        return True, f"/proc/{pid}/personality and kernel.randomize_va_space"
    top = TASK_TOP.get(arch)
    stack = max((m for m in maps if m.perms.startswith("rw")), key=lambda m: m.end, default=None)
    if stack is not None and top is not None and stack.end == top:
        return False, "the stack ends exactly at the top of the address space (no randomisation)"
    if stack is not None and top is not None and top - (64 << 30) <= stack.end < top:
        return True, "the stack top is randomised"
    return None, ""


def overcommit(kind: str):
    """vm.overcommit_memory and the memory it counts, for a live process (a core may come
    from another machine)."""
    from gdb_toolkit.stack.model import Overcommit

    if kind != "live":
        return None
    try:
        with open("/proc/sys/vm/overcommit_memory") as fh:
            mode = int(fh.read(16).strip())
        info = {}
        with open("/proc/meminfo") as fh:
            for line in fh.read(65536).splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    info[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except (OSError, ValueError):
        return None
    if "MemTotal" not in info:
        return None
    return Overcommit(mode, info["MemTotal"] + info.get("SwapTotal", 0), info.get("CommitLimit"),
                      info.get("Committed_AS"))


def guard_gap(page: int):
    from gdb_toolkit.stack.kernel_rules import guard_gap_from_cmdline

    try:
        with open("/proc/cmdline") as fh:
            cmdline = fh.read()
    except OSError:
        cmdline = None
    return guard_gap_from_cmdline(cmdline, page)


def vm_flags_reader(pid: int):
    """addr -> the VmFlags of the mapping holding it in /proc/PID/smaps (a set of two-letter
    flags: "gd" is VM_GROWSDOWN), or None; smaps is read on the first call only, since the
    pure core asks only about a stack the program allocated itself."""
    cache: list = []

    def flags(addr: int):
        if not cache:
            from gdb_toolkit.common.procfs import read_smaps_vmflags

            try:
                cache.append(read_smaps_vmflags(pid))
            except ToolkitError:        # gone, unreadable, or not what the kernel writes
                cache.append([])
        return next((fl for lo, hi, fl in cache[0] if lo <= addr < hi), None)
    return flags


def _auxv_live(pid: int, arch: str) -> dict[int, int]:
    from gdb_toolkit.common.procfs import auxv_entries, read_auxv

    return auxv_entries(read_auxv(pid), 4 if arch == "i386" else 8)


def signal_frames(frames: list[Frame], arch: str) -> list:
    out = []
    for fr in frames:
        if fr.signal_frame:
            from gdb_toolkit.stack.sigframe import READ_SIZE, decode     # when there is one

            if arch not in READ_SIZE:                 # i386: no decoder
                continue
            data = _read(fr.sp, READ_SIZE[arch])
            sf = decode(arch, fr.level, fr.sp, data) if data else None
            if sf is not None:
                out.append(sf)
    return out


def thread_name(t) -> str | None:
    """gdb's thread name (a name that is not UTF-8, which gdb raises on, from /proc) rendered
    once here by common.names.escape_name, as every name the toolkit shows: the JSON and the
    text say ``my\\x41worker`` for a literal backslash and ``caf\xe9`` for a byte, never the
    same string for both."""
    from gdb_toolkit.common.names import escape_name

    try:
        name = t.name
        return escape_name(name) if name is not None else None
    except UnicodeDecodeError:
        pass
    pid, tid = t.ptid[0], t.ptid[1]
    try:
        with open(f"/proc/{pid}/task/{tid}/comm", "rb") as fh:
            return escape_name(fh.read(64).rstrip(b"\n"))
    except OSError:
        return None


def summarise_threads(arch: str, inf, cap: int = THREAD_CAP) -> list[ThreadSummary]:
    """sp, thread pointer and fault of every thread (switching to each; the caller restores
    the selected thread)."""
    out = []
    pid = inf.pid
    for t in sorted(inf.threads(), key=lambda t: t.num)[:cap]:
        if not t.is_valid() or t.is_running():
            continue
        try:
            t.switch()
            fr = gdb.newest_frame()
            sp = int(fr.read_register("sp")) & (2**64 - 1)
        except (gdb.error, ValueError):
            continue
        try:
            tp = int(fr.read_register(TP_REG[arch])) & (2**64 - 1) or None
        except (gdb.error, ValueError, KeyError):
            tp = None
        sig = stop_signal()
        fault = sig.addr if sig is not None and sig.is_memory_fault else None
        tid = t.ptid[1] or None
        out.append(ThreadSummary(t.num, tid, thread_name(t), sp, tp, fault, tid == pid or tid is None))
    return out


def _capstone() -> bool:
    from gdb_toolkit.common.disasm import available

    return available()


def _function_of(addr: int) -> str | None:
    block = _block_function(addr)
    if block is None:
        return None
    try:
        return block.function.print_name
    except UnicodeDecodeError:
        return None


def _code_levels(frames: list[Frame]) -> list[int]:
    """Frames whose function the core may disassemble: the faulting one, the biggest ones,
    and the one a signal frame interrupted."""
    levels = [0] if frames else []
    for i, fr in enumerate(frames):
        if fr.signal_frame and i + 1 < len(frames):
            levels.append(frames[i + 1].level)
    after = next((i for i, fr in enumerate(frames) if fr.signal_frame), None)
    for part in (frames, frames[after + 1:] if after is not None else []):
        sized = [fr for fr in part if fr.size is not None and fr.size > 0]
        for fr in sorted(sized, key=lambda x: (-x.size, x.level))[:2]:
            levels.append(fr.level)
    seen = []
    for lv in levels:
        if lv not in seen:
            seen.append(lv)
    return seen[:CODE_FRAMES]


def runtime_info(frames: list[Frame], arch: str, regs: dict[str, int]) -> Runtime | None:
    names = [fr.function or "" for fr in frames]
    rust = next((n for n in names if "stack_overflow::imp::signal_handler" in n), None)
    if rust:
        return Runtime("rust", f"Rust's stack-overflow handler {rust} is on the stack")
    try:
        go_main = gdb.lookup_global_symbol("runtime.main") or gdb.lookup_static_symbol("runtime.main")
    except gdb.error:
        go_main = None
    if go_main is None:
        try:
            ms = gdb.lookup_static_symbol("runtime.morestack")
        except gdb.error:
            ms = None
        if ms is None and not any(n.startswith("runtime.") for n in names):
            if any(n.startswith(("std::", "core::", "alloc::")) for n in names):
                return Runtime("rust", "Rust standard-library frames on the stack")
            return None
    return Runtime("go", "the Go runtime (runtime.main) is linked in", _go_details(arch, regs))


def _go_details(arch: str, regs: dict[str, int]) -> dict:
    out: dict = {}
    try:
        sym = gdb.lookup_global_symbol("runtime.maxstacksize") or gdb.lookup_static_symbol(
            "runtime.maxstacksize")
        if sym is not None:
            out["max_stack_bytes"] = int(sym.value())
    except (gdb.error, RuntimeError):
        pass
    gaddr = None
    if arch == "x86_64" and regs.get("fs_base"):
        raw = _read(regs["fs_base"] - 8, 8)
        gaddr = int.from_bytes(raw, "little") if raw else None
    elif arch == "aarch64":
        gaddr = regs.get("x28")
    if not gaddr:
        return out
    try:
        gtype = gdb.lookup_type("runtime.g").pointer()
        g = gdb.Value(gaddr).cast(gtype).dereference()
        cur = g
        try:
            m = g["m"].dereference()
            if int(m["g0"]) == gaddr and int(m["curg"]):
                cur = m["curg"].dereference()      # on g0 (the system stack): the goroutine
        except gdb.error:
            pass
        out["goroutine"] = {"id": int(cur["goid"]), "lo_address": int(cur["stack"]["lo"]),
                            "hi_address": int(cur["stack"]["hi"]),
                            "sp_address": int(cur["sched"]["sp"])}
    except (gdb.error, RuntimeError):
        pass
    return out


def gather(kind: str, rlimit_arg=None, thread_summaries=None, shared: dict | None = None) -> StackFacts:
    """Facts for the selected thread (which the caller has stopped and selected).

    *shared*: a dict the caller keeps across the threads of one stop (--all-threads): the
    process's facts (memory map, limits, auxv, guard gap, randomisation, overcommit) are read
    once into it, not once per thread -- all threads are stopped, none of them can change
    (a server's 500 threads re-parsed its 1,300-line /proc/PID/maps 500 times: 11 s of 17)."""
    from gdb_toolkit.stack.diagnose import frame_sizes

    if shared is None:
        shared = {}

    def once(key, fn, *a):
        if key not in shared:
            shared[key] = fn(*a)
        return shared[key]

    inf = gdb.selected_inferior()
    thread = gdb.selected_thread()
    arch = stack_arch()
    pid = inf.pid or None
    tid = thread.ptid[1] or None
    frames, complete, stopped = walk_frames(arch)
    if not frames:
        raise ToolkitError("cannot read the selected thread's registers",
                           "select a stopped thread (thread N)")
    sp, pc = frames[0].sp, frames[0].pc
    maps, maps_source = once("maps", memory_map, kind, pid)
    soft, hard, known, given, lsrc, as_soft = once("limits", stack_limits, kind, pid, rlimit_arg)
    ex, ex_known, ex_src, by_gdb = once("exec_limit", exec_limit, kind, inf)
    regs = registers(arch)
    sig, sig_src = stop_signal(), "$_siginfo"
    writer, hint, absent = None, None, []
    auxv = _core_info()[0].auxv if kind == "core" else (once("auxv", _auxv_live, pid, arch) if pid else {})
    page = auxv.get(AT_PAGESZ) or os.sysconf("SC_PAGE_SIZE")
    gap, gsrc = once("guard_gap", guard_gap, page)
    if kind == "core":
        info, _ = _core_info()
        core_thread = next((t for t in info.threads if t.pid == tid), None)
        if sig is None and core_thread is not None and core_thread.cursig:
            sig, sig_src = SignalInfo(core_thread.cursig, None, None), \
                "the core's NT_PRSTATUS pr_cursig (it has no NT_SIGINFO)"
        elif sig is not None:
            sig_src = "the core's NT_SIGINFO (gdb's $_siginfo)"
        if info.writer != "the kernel or gdb":
            writer = info.writer
        hint = info.auxv.get(AT_EXECFN)
        absent = info.absent
    else:
        hint = auxv.get(AT_EXECFN)
    aslr, aslr_src = once("aslr", aslr_state, kind, pid, maps, arch)
    if writer:
        aslr, aslr_src = None, ""
    f = StackFacts(arch=arch, target=kind, pid=pid, tid=tid, thread_num=thread.num,
                   is_main_thread=(tid == pid or tid is None), signal=sig, pc=pc, sp=sp,
                   maps=maps, maps_source=maps_source, rlimit_soft=soft, rlimit_hard=hard,
                   rlimit_known=known, rlimit_source=lsrc, guard_gap=gap, guard_gap_source=gsrc,
                   page_size=page, frames=frames, frames_complete=complete, registers=regs,
                   signal_source=sig_src, rlimit_given=given, as_soft=as_soft, exec_rlimit=ex,
                   exec_rlimit_known=ex_known, exec_rlimit_source=ex_src, aslr=aslr,
                   aslr_source=aslr_src, thread_name=thread_name(thread), core_writer=writer,
                   stack_hint=hint, started_by_gdb=by_gdb,
                   sigframe_size=auxv.get(AT_MINSIGSTKSZ), overcommit=once("overcommit", overcommit, kind),
                   absent=absent, frames_stopped=stopped)
    f.signal_frames = signal_frames(frames, arch)
    if (not complete and stopped is None and not f.signal_frames and f.is_main_thread
            and sig is not None and sig.is_memory_fault):
        home = next((m for m in maps if m.path == "[stack]"), None) or (
            next((m for m in maps if m.contains(hint)), None) if hint else None)
        # sp on the initial stack or in the guard gap just below it (the usual overflow: the
        # growth was refused there) cannot be a handler's on its sigaltstack; anywhere else, a
        # handler may lie past the bounded walk, and only then are up to FAR_CAP frames walked
        # (gdb unwinds ~3 a ms: 0.05-0.3 s that every deep recursion would pay)
        if home is None or not home.start - max(gap or 0, page) <= sp < home.end:
            far = far_signal_frame(len(frames))
            if far is not None:
                f.signal_frames = signal_frames([far[0]], arch)
                if far[1] is not None:
                    f.far_frames[far[1].level] = far[1]
    frame_sizes(frames)
    f.capstone = _capstone()
    if f.capstone:
        by_level = {fr.level: fr for fr in frames}
        for lv in _code_levels(frames):
            code = function_code(by_level[lv], by_level.get(lv + 1), arch)
            if code is not None:
                f.codes[lv] = code
        f.code = f.codes.get(0)
    f.insn_at_pc = _read(pc, 16) or b""
    f.read_memory = _read
    if kind == "live" and pid:
        f.vm_flags = vm_flags_reader(pid)
    f.function_of = _function_of
    if kind == "core":
        f.program_mismatch = _program_mismatch(maps, absent)
    f.runtime = runtime_info(frames, arch, regs)
    f.threads = thread_summaries if thread_summaries is not None else []
    return f
