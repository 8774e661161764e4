"""StackFacts -> Diagnosis: one verdict, the numbers behind it, and the fix.  Pure.

1. Which fault: the stop itself, or -- when the program's own handler already ran (it
   aborted, Rust's overflow handler, a process attached inside its handler) -- the original
   fault read from the kernel's signal frame (``context.choose``).
2. Whose stack: the mapping the frames' stack pointers live in; a thread's own block (its
   thread pointer marks the top); a handler's alternate signal stack (``context``).
3. What the kernel did: the fault address against the stack, the mapping the kernel's
   find_vma() meets, the guard gap, RLIMIT_AS and RLIMIT_STACK, in the order
   expand_downwards()/acct_stack_growth() check them (``_classify``).
4. Who asked (``causes``) and what fixes it when re-run (``fixes``), with the address-space
   layout the limit at exec decides (``kernel_rules``).
"""
from gdb_toolkit.common.procfs import Mapping, find_mapping
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack import causes, fixes
from gdb_toolkit.stack.context import (Context, choose, find_stack_region, mapping_above,
                                       mapping_below)
from gdb_toolkit.stack.kernel_rules import is_accessible, page_down
from gdb_toolkit.stack.model import Diagnosis, Fix, Frame, StackFacts, StackRegion

NEAR_SP = 64 << 10        # a fault this close below sp is the stack's own access (push, call, probe)
NULL_PAGE = 64 << 10      # vm.mmap_min_addr default: nothing is ever mapped below it
SIGFRAME_MAX = 64 << 10   # a signal frame on the same stack (siginfo + ucontext + xsave) is smaller
CANONICAL = {"x86_64": 47, "aarch64": 48}


def _other():
    """stack/other_faults.py: the verdicts that are not a refused growth, loaded when needed."""
    from gdb_toolkit.stack import other_faults

    return other_faults


def _fixed_stacks():
    """stack/fixed_stacks.py: a stack that never grows (a thread's, a coroutine's, sigaltstack)."""
    from gdb_toolkit.stack import fixed_stacks

    return fixed_stacks


def _thread_clash():
    """stack/thread_clash.py: one thread's stack run into another's (threads other than main)."""
    from gdb_toolkit.stack import thread_clash

    return thread_clash


def damaged_by(f: StackFacts, ctx: Context) -> dict | None:
    """The thread whose overflow reached into this (non-main) thread's stack, or None."""
    if f.is_main_thread:
        return None         # only a thread's block has another thread's block above it
    return _thread_clash().damaged_by(f, ctx)


def frame_sizes(frames: list[Frame]) -> list[Frame]:
    """Each frame's size = the caller's sp - its sp (the CFA difference); None where that is
    not a frame on one stack (a signal frame leading to another stack, a corrupt link)."""
    for inner, outer in zip(frames, frames[1:]):
        size = outer.sp - inner.sp
        inner.size = size
        if inner.signal_frame and not 0 <= size <= SIGFRAME_MAX:
            inner.size = None       # the handler ran on another stack (sigaltstack)
    if frames:
        last = frames[-1]
        cfa = last.caller_sp
        last.size = (cfa - last.sp) if cfa is not None and 0 <= cfa - last.sp < (1 << 40) else None
    return frames


def culprit_frame(frames: list[Frame]) -> Frame | None:
    """The biggest frame among the sampled ones (ties: the innermost)."""
    sized = [f for f in frames if f.size is not None and f.size > 0]
    return max(sized, key=lambda f: (f.size, -f.level)) if sized else None


def canonical(addr: int, arch: str) -> bool:
    """A user-space address the CPU accepts (x86_64: bits 47..63 equal; aarch64: top byte
    may carry a tag, the rest must be below 2^48)."""
    bits = CANONICAL.get(arch, 47)
    if arch == "aarch64":
        return (addr & ((1 << 56) - 1)) < (1 << bits)
    top = addr >> bits
    return top == 0 or top == (1 << (64 - bits)) - 1


def _mapdict(m: Mapping, addr: int | None) -> dict:
    from gdb_toolkit.common.names import escape_name

    d = {"name": escape_name(m.label), "start_address": m.start, "end_address": m.end,
         "perms": m.perms}
    if addr is not None:
        d["distance_bytes"] = (addr - m.end) if m.end <= addr else (m.start - addr) if m.start > addr else 0
        d["where"] = "below" if m.end <= addr else "above" if m.start > addr else "contains"
    return d


def label(m: Mapping) -> str:
    from gdb_toolkit.common.names import escape_name

    return escape_name(m.label)


def diagnose(f: StackFacts) -> Diagnosis:
    frame_sizes(f.frames)
    ctx = choose(f)
    region = find_stack_region(f, ctx)
    d = _new_diagnosis(f, ctx, region)
    if f.runtime is not None and f.runtime.kind == "go" and not ctx.is_fault:
        return causes.go_runtime(f, d, ctx)
    if not ctx.is_fault:
        from gdb_toolkit.stack import aborts

        ab = aborts.detect(ctx.frames)
        if ab is not None:
            aborts.explain(d, ab, ctx.frames)
            return d
        return _other().health(f, d, ctx, region)
    if (ctx.fault is None and ctx.signal.is_memory_fault and region is not None
            and canonical(ctx.sp, f.arch) and ctx.sp < region.start):
        # no address recorded nor decoded, but sp itself is below its stack: the access that
        # faulted is the frame's own, at sp or just above it
        ctx.fault, ctx.fault_how = ctx.sp, "taken as sp (no address recorded; sp is below the stack)"
        d.fault_addr = ctx.sp
        d.sources["fault address"] = ctx.fault_how
        d.notes.append(f"fault address unknown: {ctx.fault_how}")
    if ctx.fault is None:
        d = _other().no_address(f, d, ctx, region)
    else:
        d = _classify(f, d, ctx, region)
    _after_handler(f, d, ctx)
    return d


def _after_handler(f: StackFacts, d: Diagnosis, ctx: Context) -> None:
    """Say what the program's own handler did with the fault."""
    if ctx.stopped_by is None or ctx.handler is None:
        return
    h, sb = ctx.handler, ctx.stopped_by
    if f.runtime is not None and f.runtime.kind == "rust" and "stack_overflow" in h["symbol"]:
        who = f"thread '{f.thread_name}'" if f.thread_name else "the thread"
        d.explanation.append(
            f"Rust's stack-overflow handler ({h['symbol']}) saw this fault in {who}'s guard "
            f"range, printed \"{who} has overflowed its stack\" and aborted: the {sb['signal_name']} "
            "is its doing; the fault above is the overflow itself.")
    else:
        d.explanation.append(
            f"The program's handler {h['symbol']}() ran for this fault "
            + ("on its alternate signal stack " if h.get("on_altstack") else "")
            + f"and the process is now stopped by {sb['signal_name'] or 'gdb'} in {sb['symbol']}(): "
            "the fault above was read from the kernel's signal frame.")


def _new_diagnosis(f: StackFacts, ctx: Context, region: StackRegion | None) -> Diagnosis:
    sig = ctx.signal
    notes = list(ctx.notes)
    sources = {"memory map": f.maps_source, "RLIMIT_STACK": f.rlimit_source,
               "guard gap": f.guard_gap_source, "signal info": ctx.signal_source}
    if ctx.fault_how:
        sources["fault address"] = ctx.fault_how
    if f.exec_rlimit_source:
        sources["RLIMIT_STACK at exec"] = f.exec_rlimit_source
    if f.aslr_source:
        sources["address randomisation"] = f.aslr_source
    if f.program_mismatch:
        notes.append(f.program_mismatch)
    if f.frames_stopped and f.frames:
        last = f.frames[-1]
        notes.append(f"frames: gdb's walk stopped at frame #{last.level} ({f.frames_stopped}), "
                     "so the frames outer to it are not known"
                     + ("" if last.function or last.function_start is not None else
                        f" -- no symbol or unwind table covers its code at 0x{last.pc:x}: give "
                        "gdb the program file (and its libraries) the process ran"))
    elif not f.frames_complete:
        notes.append(f"frames: only the innermost {len(f.frames)} were walked (a bounded walk); "
                     "the table shows those, deeper frames are summarised")
    gone = fixes.absent_in(f, region, ctx.sp) if region is not None else []
    if gone:
        notes.append(fixes.stack_absent_note(gone))
    if not f.capstone:
        notes.append("capstone is not installed: no disassembly, so no culprit instruction, "
                     "no probe-loop or stack-pivot recognition (install python3-capstone)")
    used = None
    if region is not None:
        lows = [x for x in (ctx.sp, ctx.fault) if x is not None and region.start - (1 << 40) < x]
        on = ctx.sp < region.end and canonical(ctx.sp, f.arch)
        if on and lows:
            used = region.end - min(lows) if min(lows) < region.end else None
    return Diagnosis(
        verdict="healthy", headline="", cause=None, explanation=[], fix=Fix("none", "nothing to fix"),
        thread={"num": f.thread_num, "tid": f.tid, "main": f.is_main_thread, "pid": f.pid,
                "target": f.target, "arch": f.arch, "name": f.thread_name},
        signal=({"signo": sig.signo, "signal_name": sig.name, "si_code": sig.code,
                 "si_code_name": sig.code_name, "address": sig.addr} if sig else None),
        sp_address=ctx.sp, pc_address=ctx.pc, fault_address=ctx.fault, stack=region, stack_used=used,
        growth_requested=None, rlimit_soft=f.rlimit_soft, rlimit_hard=f.rlimit_hard,
        guard_gap=f.guard_gap, below=None, nearest=[], culprit=None, recursion=None,
        clash_probe=None, frames=f.frames, frames_complete=f.frames_complete, notes=notes,
        sources=sources, stopped_by=ctx.stopped_by, handler=ctx.handler, runtime=f.runtime,
        frames_stopped=f.frames_stopped)


# -- no fault address: x86 #GP/#SS, or a core that recorded only the signal number ----------


# -- a signal frame the kernel could not push ----------------------------------------------


# -- the classification of a fault at an address ------------------------------------------

def _sp_plausible(f: StackFacts, ctx: Context, region: StackRegion) -> bool:
    """sp is on its stack, or in the free space right below it where growth would put it."""
    sp = ctx.sp
    if region.start <= sp < region.end:
        return True
    if sp >= region.end or not canonical(sp, f.arch):
        return False
    return not any(m.end > sp and m.start < region.start and not _is_guard(region, m)
                   for m in f.maps if m.start <= sp or m.end <= region.start)


def _is_guard(region: StackRegion, m: Mapping) -> bool:
    return region.guard is not None and m.start == region.guard.start


def _classify(f: StackFacts, d: Diagnosis, ctx: Context, region: StackRegion | None) -> Diagnosis:
    fault, sp = ctx.fault, ctx.sp
    inside = find_mapping(f.maps, fault)
    below, above = mapping_below(f.maps, fault), mapping_above(f.maps, fault)
    d.nearest = [_mapdict(m, fault) for m in (inside, below, above) if m is not None]
    if not canonical(sp, f.arch):
        return _other().corrupt_sp(f, d, ctx, region, why="sp is not a canonical address")
    if f.capstone and abs(fault - sp) <= NEAR_SP and causes.negative_allocation(f, ctx):
        return _other().corrupt_sp(f, d, ctx, region)            # sp moved up by a negative size
    if fault == ctx.pc and _chain_broken(f, ctx):
        return _other().corrupt_sp(f, d, ctx, region, why=(
            f"The program jumped to 0x{fault:x} and no frame leads from sp 0x{sp:x} back to its "
            "callers: it returned (ret) through a stack pointer that points at junk."))
    if region is None:
        return _other().not_stack(f, d, ctx, region, inside, below, above)
    if ctx.altstack is not None:
        return _altstack(f, d, ctx, region, inside, below, above)

    if region.start <= fault < region.end and _regrown(f, ctx, region):
        region = d.stack = _as_at_fault(f, d, region, fault)
    c = causes.analyse(f, d, ctx, region)
    if (c.pivot is not None or c.unexplained) and not _sp_in(region, sp):
        return _other().corrupt_sp(f, d, ctx, region, why=c.pivot_text)
    if not _sp_plausible(f, ctx, region) and not c.linked and not region.overrun:
        return _other().corrupt_sp(f, d, ctx, region)

    if region.start <= fault < region.end:
        d.verdict = "not-stack"
        d.headline = (f"{ctx.signal.name} ({ctx.signal.code_name}) at 0x{fault:x} inside the stack "
                      "mapping itself: a permission problem, not a failure to grow")
        d.explanation.append("The page is mapped; the access was not allowed (e.g. executing "
                             "or writing a protected page).")
        d.fix = Fix("code", "check what protected that page (mprotect) or why code runs from "
                    "the stack")
        causes.drop(d)
        return d
    in_guard = region.guard is not None and region.guard.contains(fault)
    stack_access = fault < region.start and (fault >= sp - NEAR_SP or in_guard
                                             or (c.final_sp is not None and fault >= c.final_sp - NEAR_SP))
    if not stack_access:
        return _other().not_stack(f, d, ctx, region, inside, below, above)

    clash = _thread_clash().clash(f, ctx, region) if not f.is_main_thread else []
    phrase = causes.decide(f, d, ctx, region, c)
    final_sp = min(x for x in (sp, fault, c.final_sp) if x is not None)
    if clash:
        return _thread_clash().clash_verdict(f, d, ctx, region, clash, phrase, final_sp)
    if region.allocated and f.vm_flags is not None:
        m = find_mapping(f.maps, region.start)
        flags = f.vm_flags(region.start) if m is not None else None
        if flags is not None and "gd" in flags:
            return _growsdown(f, d, ctx, m, region, fault, phrase, final_sp, inside)
    if region.allocated:
        return _fixed_stacks().allocated_overflow(f, d, ctx, region, fault, phrase, final_sp, inside)
    if not f.is_main_thread:
        return _fixed_stacks().thread_overflow(f, d, ctx, region, fault, phrase, final_sp, inside)
    return _main_growth(f, d, ctx, region, fault, phrase, final_sp, inside)


def _regrown(f: StackFacts, ctx: Context, region: StackRegion) -> bool:
    """SEGV_MAPERR at an address the main stack now maps: at the fault no mapping held it.
    A live process under gdb: gdb's own reads of the stopped stack (ptrace) may grow it by a
    page or so, checked against gdb's RLIMIT_STACK, not the program's."""
    sig = ctx.signal
    return (f.target == "live" and f.is_main_thread and region.label == "[stack]"
            and sig is not None and sig.signo == 11 and sig.code == 1)


def _as_at_fault(f: StackFacts, d: Diagnosis, region: StackRegion, fault: int) -> StackRegion:
    """The stack as it was at the fault: it began above the faulting page."""
    start = page_down(fault, f.page_size) + f.page_size
    d.notes.append(
        f"stack mapping: it now begins at 0x{region.start:x}, below the fault, yet the kernel "
        f"reported SEGV_MAPERR (nothing mapped there): it was grown after the fault, by gdb's "
        f"own reads of the stopped stack (ptrace), which the kernel checks against gdb's "
        f"RLIMIT_STACK, not the program's; at the fault it began at 0x{start:x} or above")
    return StackRegion(start, region.end, region.label,
                       region.how + f"; as at the fault: above the faulting page (0x{start:x})",
                       region.guard)


def _grows_down(f: StackFacts, m: Mapping) -> bool:
    """Was *m* mapped with MAP_GROWSDOWN (VmFlags "gd"; known for a live process only)?"""
    if f.vm_flags is None or m.path == "[stack]":
        return False
    flags = f.vm_flags(m.start)
    return flags is not None and "gd" in flags


def _growsdown(f: StackFacts, d: Diagnosis, ctx: Context, m: Mapping, region: StackRegion,
               fault: int, phrase: str, final_sp: int, inside) -> Diagnosis:
    """A stack the program mapped with MAP_GROWSDOWN: the kernel grows it on a fault below,
    as it grows [stack] -- the guard gap and RLIMIT_STACK (acct_stack_growth counts this
    mapping's own size) decide, not the size the program asked for."""
    grows = StackRegion(m.start, m.end, "stack the program mapped with MAP_GROWSDOWN",
                        region.how + "; VmFlags 'gd' in /proc/PID/smaps: mapped with "
                        "MAP_GROWSDOWN, so the kernel grows it like [stack]", None)
    d.stack = grows
    d = _main_growth(f, d, ctx, grows, fault, phrase, final_sp, inside)
    d.explanation.insert(
        1, "The program mapped this stack with MAP_GROWSDOWN: a fault below it grows it the way "
        "[stack] grows (expand_downwards()), so it is not a fixed block -- growth stops at "
        "RLIMIT_STACK (counted for this mapping alone: its vm_end - the fault) or at the guard "
        "gap above the mapping below it, whatever size the program first mapped.")
    return d


def _chain_broken(f: StackFacts, ctx: Context) -> bool:
    """The walk ended, but not in any function: the frames lead nowhere."""
    frames = ctx.frames
    if not frames or not f.frames_complete:
        return False
    last = frames[-1]
    return last.function is None and last.function_start is None


def _sp_in(region: StackRegion, sp: int) -> bool:
    return region.start <= sp < region.end


def _main_growth(f: StackFacts, d: Diagnosis, ctx: Context, region: StackRegion, fault: int,
                 phrase: str, final_sp: int, inside: Mapping | None) -> Diagnosis:
    """The main stack: what the kernel's fault path met below it (find_vma), then the rules of
    expand_downwards() and acct_stack_growth()."""
    between = sorted((m for m in f.maps if m.end > fault and m.end <= region.start
                      and not _is_guard(region, m)), key=lambda m: m.start)
    hit = between[0] if between else None            # what find_vma(fault) returns
    if region.guard is not None:                     # a main stack with a guard: a fixed one
        return _fixed_stacks().fixed_main_stack(f, d, ctx, region, fault, phrase, final_sp)
    if hit is not None and _grows_down(f, hit) and is_accessible(hit.perms):
        # find_vma(fault) returns a MAP_GROWSDOWN mapping: the kernel grows that one (under
        # the same rules), not the stack above it
        grows = StackRegion(hit.start, hit.end, "MAP_GROWSDOWN mapping below the stack",
                            f"the mapping the kernel found above the fault (find_vma): "
                            f"{label(hit)}, VmFlags 'gd' in /proc/PID/smaps", None)
        d = _main_growth(f, d, ctx, grows, fault, phrase, final_sp, inside)
        d.explanation.insert(
            1, f"The fault lies below {label(hit)} (0x{hit.start:x}-0x{hit.end:x}, "
            f"{hs(region.start - hit.end)} below {region.label}), which the program mapped with "
            "MAP_GROWSDOWN: find_vma() returns that mapping, and the kernel grows it -- not "
            f"{region.label} -- by the rules of a stack: its own size (vm_end - the fault) "
            "against RLIMIT_STACK, the guard gap above a mapping below it. (The stack above "
            "may grow right down to a MAP_GROWSDOWN mapping: the guard gap does not apply "
            "to one.)")
        return d
    if hit is not None:
        blocker = between[-1]                        # the mapping right below the stack
        if not is_accessible(blocker.perms) and (blocker is hit or fault < blocker.start):
            return fixes.stack_blocked(f, d, ctx, region, fault, phrase, final_sp, blocker, hit)
        return fixes.clash_jump(f, d, ctx, region, fault, phrase, final_sp, hit, inside)

    growth = region.end - page_down(fault, f.page_size)
    d.growth_requested = growth
    prev = mapping_below(f.maps, fault)
    if prev is not None:
        d.below = _mapdict(prev, fault)
    gap_dist = page_down(fault, f.page_size) - prev.end if prev else None
    if (prev is not None and is_accessible(prev.perms) and gap_dist < f.guard_gap
            and not _grows_down(f, prev)):          # expand_downwards() exempts VM_GROWSDOWN
        return fixes.guard_gap(f, d, ctx, region, fault, phrase, final_sp, prev, gap_dist, growth)
    grow_bytes = region.start - page_down(fault, f.page_size)
    if f.as_soft is not None:
        total = sum(m.size for m in f.maps)
        if total + grow_bytes > f.as_soft:
            return fixes.rlimit_as(f, d, ctx, region, fault, phrase, final_sp, total, grow_bytes)
    return fixes.rlimit(f, d, ctx, region, fault, phrase, final_sp, growth, prev)


def _altstack(f, d, ctx: Context, region: StackRegion, inside, below, above) -> Diagnosis:
    """The fault happened while a handler ran on its alternate signal stack."""
    fault, sp = ctx.fault, ctx.sp
    lo, hi = ctx.altstack
    alt = StackRegion(lo, hi, "alternate signal stack", "uc_stack saved in the signal frame")
    c = causes.analyse(f, d, ctx, alt)
    stack_access = fault < lo and (fault >= sp - NEAR_SP or (c.final_sp is not None
                                                             and fault >= c.final_sp - NEAR_SP))
    if not stack_access:
        return _other().not_stack(f, d, ctx, region, inside, below, above)
    phrase = causes.decide(f, d, ctx, alt, c)
    final_sp = min(x for x in (sp, fault, c.final_sp) if x is not None)
    return _fixed_stacks().altstack_overflow(f, d, ctx, region, fault, phrase, final_sp, inside)


