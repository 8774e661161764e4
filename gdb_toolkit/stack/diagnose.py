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
SIGSTOP, SI_KERNEL = 19, 0x80    # Linux: SIGSTOP on x86_64, i386, aarch64; si_code of a kernel-sent signal
SIGFRAME_MAX = 64 << 10   # a signal frame on the same stack (siginfo + ucontext + xsave) is smaller
CANONICAL = {"x86_64": 47, "aarch64": 48}


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
        return _health(f, d, ctx, region)
    if (ctx.fault is None and ctx.signal.is_memory_fault and region is not None
            and canonical(ctx.sp, f.arch) and ctx.sp < region.start):
        # no address recorded nor decoded, but sp itself is below its stack: the access that
        # faulted is the frame's own, at sp or just above it
        ctx.fault, ctx.fault_how = ctx.sp, "taken as sp (no address recorded; sp is below the stack)"
        d.fault_addr = ctx.sp
        d.sources["fault address"] = ctx.fault_how
        d.notes.append(f"fault address unknown: {ctx.fault_how}")
    if ctx.fault is None:
        d = _no_address(f, d, ctx, region)
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

def _no_address(f: StackFacts, d: Diagnosis, ctx: Context, region) -> Diagnosis:
    sig = ctx.signal
    trap = ctx.trap
    if not canonical(ctx.sp, f.arch) or (region is not None and not _sp_plausible(f, ctx, region)):
        return _corrupt_sp(f, d, ctx, region, why=("sp is not a canonical address"
                                                   if not canonical(ctx.sp, f.arch) else None))
    pushed = _signal_frame_refused(f, d, ctx, region)
    if pushed is not None:
        return pushed
    d.verdict = "not-stack"
    victim = fixes.damaged_by(f, ctx)
    if sig.is_kernel_trap and f.arch == "x86_64":
        ss = sig.signo == 7 or (trap is not None and trap == 12)
        if ss:
            d.headline = (f"{sig.name} ({sig.code_name}): a stack-segment fault (#SS) -- a stack "
                          "access (push, pop, call, or through rsp/rbp) used a non-canonical "
                          "address; no page was missing")
            d.explanation.append("On x86_64 the kernel turns #SS into SIGBUS with SI_KERNEL and "
                                 "no address; sp is canonical here, so the base register of an "
                                 "rbp- or rsp-relative access held the bad value.")
        else:
            d.headline = (f"{sig.name} ({sig.code_name}): a general-protection fault (#GP) -- a "
                          "non-canonical pointer, a misaligned SSE access or a privileged "
                          "instruction, not a missing page")
            if not canonical(ctx.pc, f.arch):
                d.headline = (f"{sig.name} ({sig.code_name}): the program jumped to the "
                              f"non-canonical address 0x{ctx.pc:x} -- a smashed return address "
                              "or function pointer")
        d.explanation.append("The kernel reported no fault address, so this is not a failure "
                             "to grow the stack.")
        if victim:
            return fixes.victim_verdict(f, d, ctx, victim)
        d.fix = Fix("code", "inspect the faulting instruction's operands (x/i $pc, info registers)")
        return d
    d.headline = (f"{sig.name} ({sig.code_name}): the fault address is not recorded "
                  + ("(the core has no NT_SIGINFO and the faulting instruction could not be "
                     "decoded)" if f.target == "core" else ""))
    d.explanation.append("Without the address the stack cannot be judged; x/i $pc and info "
                         "registers show what the instruction accessed.")
    d.fix = Fix("code", "inspect the faulting instruction's operands (x/i $pc, info registers)")
    return d


# -- a signal frame the kernel could not push ----------------------------------------------

SIGFRAME_GUESS = {"x86_64": 4096, "aarch64": 4608}   # without auxv's AT_MINSIGSTKSZ
REDZONE = {"x86_64": 128}                             # the ABI's red zone below sp, skipped
GROWTH_VERDICTS = ("rlimit", "rlimit-as", "guard-gap", "stack-blocked", "stack-clash-jump",
                   "thread-overflow", "thread-clash", "altstack-overflow")


def _signal_frame_refused(f: StackFacts, d: Diagnosis, ctx: Context, region) -> Diagnosis | None:
    """SIGSEGV with SI_KERNEL and no address while sp sits at the bottom of its stack: to run
    a handler the kernel writes a signal frame below sp (red zone, then AT_MINSIGSTKSZ
    bytes); when that memory cannot be had -- the stack may not grow there -- setting up the
    frame fails and the kernel kills the task with force_sigsegv(): SIGSEGV, SI_KERNEL, no
    address.  A program with a crash handler but no sigaltstack dies so on every stack
    overflow; so does a recursion through signal handlers.  The would-be frame is diagnosed
    as the fault, provided the kernel's rules refuse that growth."""
    sig = ctx.signal
    if region is None or sig.signo != 11 or sig.code != 0x80 or ctx.altstack is not None:
        return None
    size = f.sigframe_size or SIGFRAME_GUESS.get(f.arch, 4096)
    sp = ctx.sp
    if not region.start - NEAR_SP <= sp < region.end:
        return None
    low = (sp - REDZONE.get(f.arch, 0) - size) & ~63
    if low >= region.start:
        return None                                  # the frame fits in what is mapped
    from gdb_toolkit.common.record import replace

    trial = replace(d, explanation=list(d.explanation), notes=list(d.notes),
                    sources=dict(d.sources), nearest=list(d.nearest), fix=replace(d.fix))
    tctx = replace(ctx, notes=list(ctx.notes))
    tctx.fault = low
    trial.fault_addr = low
    how = (f"estimated: where the signal frame the kernel could not push would start (sp - "
           f"{REDZONE.get(f.arch, 0)} - {size} B"
           + (", auxv AT_MINSIGSTKSZ" if f.sigframe_size else ", a typical frame size") + ")")
    trial.sources["fault address"] = how
    trial = _classify(f, trial, tctx, region)
    if trial.verdict not in GROWTH_VERDICTS:
        return None
    trial.explanation.insert(0, (
        f"{sig.name} with SI_KERNEL and no address, sp 0x{sp:x} at the bottom of the stack: "
        f"to run a signal handler the kernel must write a {size} B signal frame below sp, there "
        "was no room for it there (the stack may not grow so far), so setting up the frame failed and the kernel killed the "
        "process with force_sigsegv() -- this is a stack overflow, not a #GP. The handler never "
        "ran (were it the program's SIGSEGV handler, the kernel has reset it to SIG_DFL: a crash "
        "handler needs SA_ONSTACK and a sigaltstack to run on a stack overflow, one larger than "
        f"the {size} B signal frame plus the handler's own frames -- MINSIGSTKSZ (2048) is "
        "not, on CPUs with large vector registers)."))
    trial.notes.append(f"fault address {how}")
    if trial.fix.kind != "none":
        trial.fix.text += ("; for a SIGSEGV handler to run on a stack overflow, install it with "
                           "SA_ONSTACK on a sigaltstack(2) of at least "
                           f"{max(size * 4, 65536)} bytes (sysconf(_SC_MINSIGSTKSZ), {size} "
                           "here, is the bare minimum)")
    return trial


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
        return _corrupt_sp(f, d, ctx, region, why="sp is not a canonical address")
    if f.capstone and abs(fault - sp) <= NEAR_SP and causes.negative_allocation(f, ctx):
        return _corrupt_sp(f, d, ctx, region)            # sp moved up by a negative size
    if fault == ctx.pc and _chain_broken(f, ctx):
        return _corrupt_sp(f, d, ctx, region, why=(
            f"The program jumped to 0x{fault:x} and no frame leads from sp 0x{sp:x} back to its "
            "callers: it returned (ret) through a stack pointer that points at junk."))
    if region is None:
        return _not_stack(f, d, ctx, region, inside, below, above)
    if ctx.altstack is not None:
        return _altstack(f, d, ctx, region, inside, below, above)

    if region.start <= fault < region.end and _regrown(f, ctx, region):
        region = d.stack = _as_at_fault(f, d, region, fault)
    c = causes.analyse(f, d, ctx, region)
    if (c.pivot is not None or c.unexplained) and not _sp_in(region, sp):
        return _corrupt_sp(f, d, ctx, region, why=c.pivot_text)
    if not _sp_plausible(f, ctx, region) and not c.linked and not region.overrun:
        return _corrupt_sp(f, d, ctx, region)

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
        return _not_stack(f, d, ctx, region, inside, below, above)

    clash = fixes.clash(f, ctx, region)
    phrase = causes.decide(f, d, ctx, region, c)
    final_sp = min(x for x in (sp, fault, c.final_sp) if x is not None)
    if clash:
        return fixes.clash_verdict(f, d, ctx, region, clash, phrase, final_sp)
    if region.allocated and f.vm_flags is not None:
        m = find_mapping(f.maps, region.start)
        flags = f.vm_flags(region.start) if m is not None else None
        if flags is not None and "gd" in flags:
            return _growsdown(f, d, ctx, m, region, fault, phrase, final_sp, inside)
    if region.allocated:
        return fixes.allocated_overflow(f, d, ctx, region, fault, phrase, final_sp, inside)
    if not f.is_main_thread:
        return fixes.thread_overflow(f, d, ctx, region, fault, phrase, final_sp, inside)
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
        return fixes.fixed_main_stack(f, d, ctx, region, fault, phrase, final_sp)
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
        return _not_stack(f, d, ctx, region, inside, below, above)
    phrase = causes.decide(f, d, ctx, alt, c)
    final_sp = min(x for x in (sp, fault, c.final_sp) if x is not None)
    return fixes.altstack_overflow(f, d, ctx, region, fault, phrase, final_sp, inside)


def _corrupt_sp(f: StackFacts, d: Diagnosis, ctx: Context, region, why: str | None = None) -> Diagnosis:
    """sp was loaded with a bad value: nothing grew the stack to where it points."""
    sig = ctx.signal
    causes.drop(d)
    d.verdict = "corrupt-sp"
    sp = ctx.sp
    if region is not None and canonical(sp, f.arch):
        where_m = find_mapping(f.maps, sp)
        if region.start <= sp < region.end:
            where = f"{hs(region.end - sp)} below the top of {region.label}, with no frame above it"
        elif where_m is not None:
            where = f"inside {label(where_m)} ({where_m.perms})"
        elif sp < NULL_PAGE:
            where = "in the NULL page"
        elif sp < region.start:
            where = f"{hs(region.start - sp)} below {region.label}"
        else:
            where = f"{hs(sp - region.end)} above {region.label}"
    elif not canonical(sp, f.arch):
        where = "a non-canonical address"
    else:
        where = "in no mapping"
    fault_txt = (f"; the fault at 0x{ctx.fault:x} ({sig.name}, {sig.code_name}) is sp's own "
                 "access" if ctx.fault is not None and abs(ctx.fault - sp) <= NEAR_SP else
                 f"; {sig.name} ({sig.code_name})"
                 + (f" at 0x{ctx.fault:x}" if ctx.fault is not None else ""))
    d.headline = (f"the stack pointer itself is corrupt: sp 0x{sp:x} is {where}{fault_txt} -- "
                  "not a stack growth failure")
    d.stack_used = None
    neg = causes.negative_allocation(f, ctx) if f.capstone else None
    if neg is not None:
        ins, fp, above = neg
        fn = causes._name(ctx.frames[0])
        at = f"{ins.text} at 0x{ins.address:x}" + (f", {ins.source}" if ins.source else "")
        d.headline = (f"a negative run-time stack allocation: {fn} moved sp up, not down "
                      f"({at}), to 0x{sp:x} -- {hs(above)} above its own frame pointer "
                      f"0x{fp:x} -- not a stack growth failure")
        d.explanation.append(
            f"{fn} subtracts a run-time size from sp ({at}: a variable-length array or "
            f"alloca); sp now lies {hs(above)} above the frame pointer the same function set "
            "up, which only a negative size (a huge unsigned one) can do: the length went "
            "negative (a signed overflow, an unchecked subtraction, a bad input).")
        if sig.is_kernel_trap and f.arch == "x86_64":
            d.explanation.append("SI_KERNEL with no address: the CPU refused the non-canonical "
                                 "stack address itself (#SS for SIGBUS, #GP for SIGSEGV).")
        d.fix = Fix("code", f"check the length given to the allocation in {fn} ({at}): it was "
                    "negative; reject it before allocating (and cap it: a large positive one "
                    "overflows the stack instead); -fsanitize=undefined reports a non-positive "
                    "VLA bound at run time (vla-bound)")
        return d
    if why:
        d.explanation.append(why)
    d.explanation.append("No function grew the stack to there frame by frame: sp was loaded with "
                         "a bad value (a stack pivot, longjmp/setcontext with a bad jmp_buf or "
                         "ucontext, or a smashed saved frame pointer restored by 'leave').")
    if sig.is_kernel_trap and f.arch == "x86_64":
        d.explanation.append("SI_KERNEL with no address: the CPU refused the non-canonical stack "
                             "address itself (#SS for SIGBUS, #GP for SIGSEGV).")
    d.fix = Fix("code", "find where sp was set: the instructions before pc (x/8i $pc-24) and any "
                "buffer overflow of a local that could overwrite the saved rbp/return address")
    return d


def _not_stack(f: StackFacts, d: Diagnosis, ctx: Context, region, inside, below, above) -> Diagnosis:
    sig, fault, sp = ctx.signal, ctx.fault, ctx.sp
    causes.drop(d)
    d.verdict = "not-stack"
    sp_on = region is not None and region.start <= sp < region.end
    d.stack_used = (region.end - sp) if sp_on else None
    if fault == ctx.pc:
        kind = (f"a jump to 0x{fault:x} (executing unmapped memory): a call through a NULL or bad "
                "function pointer, or a smashed return address")
        fix = ("look at the caller (frame 1, x/i of its return address - 5) for the call and the "
               "pointer it used")
    elif fault < NULL_PAGE:
        kind = f"a NULL pointer dereference (offset {fault:#x})" if fault else "a NULL pointer dereference"
        fix = "check the pointer for NULL before use (x/i $pc shows which register held it)"
    elif inside is not None and sig.signo == 7 and sig.code == 2 and inside.path.startswith("/"):
        kind = (f"an access to {label(inside)} past the end of the file (the mapping is larger "
                "than the file: truncated after mmap, or mapped beyond its size)")
        fix = (f"check the size of {label(inside)} against the mapping (ftruncate/fallocate it "
               "before mapping, or map only what exists)")
    elif inside is not None and not is_accessible(inside.perms):
        over = find_mapping(f.maps, inside.end)
        owner = next((t for t in f.threads if t.sp is not None and over is not None
                      and over.start == inside.end and over.contains(t.sp)
                      and t.tid != f.tid), None)
        whose = (f"thread {owner.num} (LWP {owner.tid})'s stack guard page (the PROT_NONE page "
                 "right below its stack)" if owner is not None else None)
        kind = (f"an access to {whose}, from another thread" if whose else
                f"an access to {label(inside)} ({inside.perms}), which allows no access at all")
        fix = (f"find where this thread got a pointer below thread {owner.num}'s stack (a "
               "pointer past the start of a buffer on that stack, or one kept after its frame "
               "returned): valgrind or -fsanitize=address" if owner is not None else
               f"find why the code accessed {label(inside)} (PROT_NONE): a bad pointer, or "
               "memory the program protected itself (mprotect)")
    elif inside is not None:
        kind = f"an access to {label(inside)} ({inside.perms}) that its protection forbids"
        fix = f"the code {'wrote to' if 'w' not in inside.perms else 'used'} {label(inside)} wrongly"
    elif region is not None and fault < region.start and not any(
            fault < m.start < region.start for m in f.maps if not _is_guard(region, m)):
        kind = (f"a wild pointer {hs(region.start - fault)} below {region.label} (sp is "
                f"{hs(abs(sp - fault))} away, so no frame reached there)")
        fix = "find where the pointer came from (valgrind or -fsanitize=address)"
    elif (below is not None and below.path == "[heap]") or (above is not None and above.path == "[heap]"):
        heap = below if below is not None and below.path == "[heap]" else above
        kind = (f"a wild heap pointer: {hs(abs(fault - (heap.end if heap is below else heap.start)))}"
                f" {'past the end of' if heap is below else 'before'} [heap]")
        fix = "run it under valgrind or -fsanitize=address to find the bad heap pointer"
    else:
        kind = "a wild pointer into unmapped memory"
        fix = "find where the pointer came from (valgrind or -fsanitize=address)"
    near = inside or min((m for m in (below, above) if m is not None),
                         key=lambda m: abs(fault - (m.end if m.end <= fault else m.start)),
                         default=None)
    ntxt = ""
    if near is not None:
        dist = 0 if near is inside else (fault - near.end if near.end <= fault else near.start - fault)
        ntxt = (f"; nearest mapping {label(near)} ({near.perms}) "
                + ("contains it" if near is inside else f"{hs(dist)} {'below' if near.end <= fault else 'above'}"))
    d.headline = f"not a stack problem: {sig.name} ({sig.code_name}) at 0x{fault:x} is {kind}{ntxt}"
    where = (f"sp is 0x{sp:x}, {hs(abs(sp - fault))} away"
             + (f", inside {region.label}" if sp_on else ""))
    d.explanation.append(f"The fault address is not next to the stack pointer ({where}) and not "
                         "just below a stack, so the stack did not need to grow.")
    victim = fixes.damaged_by(f, ctx)
    if victim:
        return fixes.victim_verdict(f, d, ctx, victim)
    d.fix = Fix("code", fix)
    return d


def _health(f: StackFacts, d: Diagnosis, ctx: Context, region) -> Diagnosis:
    sig = ctx.signal
    d.verdict = "healthy"
    stop = (f"stopped by {sig.name}" + (" (a breakpoint or step)" if sig.signo == 5 else "")
            if sig else "stopped (no signal)")
    if (sig and sig.signo == SIGSTOP and sig.code == SI_KERNEL and f.target == "live"
            and not f.started_by_gdb):
        # PTRACE_ATTACH stops every thread with a SIGSTOP the kernel sends (SI_KERNEL): gdb -p's
        # own stop, not one the program got (kill -STOP is SI_USER, raise() SI_TKILL)
        stop = f"stopped by {sig.name} (gdb's attach: PTRACE_ATTACH sends it)"
    if region is None:
        d.headline = f"{stop}; sp 0x{ctx.sp:x} is in no known mapping -- the stack pointer is corrupt"
        d.verdict = "corrupt-sp"
        return d
    causes.health(f, d, ctx, region)
    sp = ctx.sp
    if not region.start - NEAR_SP <= sp < region.end:
        # a handler on an alternate signal stack: measure the stack it interrupted
        for inner, outer in zip(ctx.frames, ctx.frames[1:]):
            if inner.signal_frame and region.start - NEAR_SP <= outer.sp < region.end:
                sp = outer.sp
                alt = find_mapping(f.maps, ctx.sp)
                d.explanation.append(
                    f"sp 0x{ctx.sp:x} is on an alternate signal stack ("
                    + (f"{label(alt)}, " if alt else "") + "sigaltstack); the figures are for the "
                    f"interrupted stack, from its innermost frame (sp 0x{sp:x}).")
                break
    used = region.end - sp if region.start - NEAR_SP <= sp < region.end else None
    d.stack_used = used
    if f.is_main_thread:
        cap = f.rlimit_soft
        captxt = f"RLIMIT_STACK {hs(cap)}" if cap is not None else "RLIMIT_STACK unlimited"
    else:
        cap = region.end - region.start
        captxt = f"thread stack {hs(cap)}"
    pct = f" ({100 * used / cap:.1f}%)" if cap and used is not None else ""
    d.headline = f"{stop}: stack healthy -- {hs(used)} used of {captxt}{pct}"
    victim = fixes.damaged_by(f, ctx)
    if victim:
        return fixes.victim_verdict(f, d, ctx, victim)
    if d.recursion and cap and used is not None:
        r = d.recursion
        d.explanation.append(f"at that rate {max(0, (cap - used) // max(r.avg_frame, 1)):,} more "
                             "levels fit.")
    if cap and used is not None and used * 10 >= cap * 9:
        d.headline = d.headline.replace("stack healthy", "stack nearly full")
    if f.runtime is not None and f.runtime.kind == "rust":
        d.notes.append(f"a Rust program ({f.runtime.evidence})")
    return d
