"""StackFacts -> Diagnosis: one verdict, the numbers behind it, and the fix.  Pure."""

from gdb_toolkit.common.procfs import Mapping, find_mapping
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack.kernel_rules import (CALLEE_MARGIN, is_accessible, page_down,
                                            thread_stacksize_for, ulimit_kib_for)
from gdb_toolkit.stack.model import (ClashProbe, Culprit, Diagnosis, Fix, Frame, StackFacts,
                                     StackRegion)
from gdb_toolkit.stack.recursion import detect_recursion

NEAR_SP = 64 << 10        # a fault this close to sp is the stack's own access (push, call, probe)
HUGE_FRAME = 64 << 10     # a frame at least this big (and most of the stack) is "one huge frame"
NULL_PAGE = 64 << 10      # vm.mmap_min_addr default: nothing is ever mapped below it
SIGFRAME_MAX = 64 << 10   # a signal frame on the same stack (siginfo + ucontext + xsave) is smaller


def frame_sizes(frames: list[Frame]) -> list[Frame]:
    """Each frame's size = the caller's sp - its sp (the CFA difference)."""
    for inner, outer in zip(frames, frames[1:]):
        inner.size = outer.sp - inner.sp
        if inner.signal_frame and not 0 <= inner.size <= SIGFRAME_MAX:
            inner.size = None       # the handler ran on another stack (sigaltstack)
    if frames:
        frames[-1].size = None
    return frames


def culprit_frame(frames: list[Frame]) -> Frame | None:
    """The biggest frame among the sampled ones (ties: the innermost)."""
    sized = [f for f in frames if f.size is not None and f.size > 0]
    return max(sized, key=lambda f: (f.size, -f.level)) if sized else None


def find_stack_region(f: StackFacts) -> StackRegion | None:
    """The faulting thread's stack mapping, found from the frames' stack pointers."""
    anchors = sorted({fr.sp for fr in f.frames if fr.level > 0}, reverse=True) + [f.sp]
    region, how = None, ""
    for a in anchors:
        region = find_mapping(f.maps, a)
        if region:
            lvl = next((fr.level for fr in f.frames if fr.sp == a), 0)
            how = f"the mapping holding frame #{lvl}'s stack pointer 0x{a:x}"
            break
    if f.is_main_thread:
        named = next((m for m in f.maps if m.path == "[stack]"), None)
        if named and (region is None or region is named or region.start == named.start):
            region, how = named, "the [stack] mapping of " + f.maps_source
    if region is None:
        return None
    if f.is_main_thread:
        label = "[stack]" if region.path == "[stack]" else "main stack (unnamed in a core file)"
    else:
        label = "thread stack"
    guard = next((m for m in f.maps if m.end == region.start and not is_accessible(m.perms)), None)
    if guard is None and f.target == "core" and not f.is_main_thread:
        # gdb's gcore writes PROT_NONE guard pages as readable segments: take a small anonymous
        # mapping right below a thread stack for its guard
        guard = next((m for m in f.maps if m.end == region.start and not m.path
                      and m.size <= (1 << 20)), None)
        if guard is not None:
            how += ("; the small anonymous mapping just below is taken as its guard (a core "
                    "file may not record PROT_NONE)")
    return StackRegion(region.start, region.end, label, how,
                       guard if not f.is_main_thread else None)


def interrupted_sp(f: StackFacts, region: StackRegion | None) -> int | None:
    """On an alternate signal stack (sigaltstack): sp is outside the thread's stack and a
    signal frame leads back into it; the sp of the interrupted frame there, else None."""
    if region is None or region.start <= f.sp < region.end:
        return None
    for inner, outer in zip(f.frames, f.frames[1:]):
        if inner.signal_frame:
            # (the interrupted frame may sit just below the mapping: it faulted growing it)
            return outer.sp if region.start - NEAR_SP <= outer.sp < region.end else None
    return None


def mapping_below(maps: list[Mapping], addr: int) -> Mapping | None:
    below = [m for m in maps if m.end <= addr]
    return max(below, key=lambda m: m.end) if below else None


def mapping_above(maps: list[Mapping], addr: int) -> Mapping | None:
    above = [m for m in maps if m.start > addr]
    return min(above, key=lambda m: m.start) if above else None


def _mapdict(m: Mapping, addr: int | None) -> dict:
    d = {"name": m.label, "start": m.start, "end": m.end, "perms": m.perms}
    if addr is not None:
        d["distance"] = (addr - m.end) if m.end <= addr else (m.start - addr) if m.start > addr else 0
        d["where"] = "below" if m.end <= addr else "above" if m.start > addr else "contains"
    return d


def _analyse_code(f: StackFacts, culprit: Frame | None) -> tuple[object, ClashProbe | None]:
    """(SpMover, ClashProbe) from the culprit function's code, when we have it."""
    if f.code is None or culprit is None:
        return None, None
    from gdb_toolkit.common.disasm import disassemble
    from gdb_toolkit.stack.sp_insn import detect_clash_probe, find_sp_mover, source_of

    insns = disassemble(f.code.data, f.code.start, f.arch)
    mover = find_sp_mover(insns, culprit.pc, f.arch)
    if mover is not None:
        mover.source = source_of(mover.address, f.code.lines)
    probe = None
    if culprit.level == 0:
        caller_sp = f.frames[1].sp if len(f.frames) > 1 else None
        probe = detect_clash_probe(insns, culprit.pc, f.arch, f.registers, caller_sp)
    return mover, probe


def diagnose(f: StackFacts) -> Diagnosis:
    frame_sizes(f.frames)
    region = find_stack_region(f)
    sig = f.signal
    fault = sig.addr if (sig is not None and sig.is_memory_fault) else None
    expl: list[str] = []
    assumptions: list[str] = []
    sources = {"memory map": f.maps_source, "RLIMIT_STACK": f.rlimit_source,
               "guard gap": f.guard_gap_source}
    if not f.rlimit_known:
        assumptions.append(f"RLIMIT_STACK: {f.rlimit_source}")
    if not f.frames_complete:
        assumptions.append(f"frames: only the innermost {len(f.frames)} were walked (a bounded "
                           "walk); the table shows those, deeper frames are summarised")
    top = region.end if region else None
    alt_sp = interrupted_sp(f, region)
    if alt_sp is not None:
        alt = find_mapping(f.maps, f.sp)
        expl.append(f"sp 0x{f.sp:x} is on an alternate signal stack ("
                    + (f"{alt.label}, " if alt else "") + "sigaltstack); the figures are for the "
                    f"interrupted stack, from its innermost frame (sp 0x{alt_sp:x}).")
    lowest = min(x for x in (alt_sp or f.sp, fault) if x is not None)
    used = (top - lowest) if top is not None and lowest < top else (top - f.sp if top else None)

    d = Diagnosis(verdict="healthy", headline="", cause=None, explanation=expl,
                  fix=Fix("none", "nothing to fix"), thread={
                      "num": f.thread_num, "tid": f.tid, "main": f.is_main_thread,
                      "pid": f.pid, "target": f.target, "arch": f.arch},
                  signal=({"signo": sig.signo, "name": sig.name, "code": sig.code,
                           "code_name": sig.code_name, "addr": sig.addr} if sig else None),
                  sp=f.sp, pc=f.pc, fault_addr=fault, stack=region, stack_used=used,
                  growth_requested=None, rlimit_soft=f.rlimit_soft, rlimit_hard=f.rlimit_hard,
                  guard_gap=f.guard_gap, below=None, nearest=[], culprit=None, recursion=None,
                  clash_probe=None, frames=f.frames, frames_complete=f.frames_complete,
                  assumptions=assumptions, sources=sources)

    top_frame = culprit_frame(f.frames)
    d.recursion = detect_recursion(f.frames, f.frames_complete, f.stack_words, top, alt_sp or f.sp)
    mover, probe = _analyse_code(f, top_frame)
    d.clash_probe = probe
    if top_frame is not None:
        d.culprit = Culprit(top_frame.function, top_frame.level, top_frame.size, mover,
                            top_frame.source)

    if sig is None or sig.signo not in (7, 11):
        return _health(f, d, region, sig, alt_sp)
    if fault is None:
        d.verdict = "not-stack"
        d.headline = (f"{sig.name} with si_code {sig.code_name}: the kernel reported no fault "
                      "address -- not a stack growth failure")
        expl.append("SI_KERNEL on x86_64 is a general-protection fault: a non-canonical pointer, "
                    "a misaligned SSE access or a privileged instruction, not a missing page.")
        if region and not (region.start - NEAR_SP <= f.sp < region.end):
            expl.append(f"but sp 0x{f.sp:x} is outside the stack mapping: the stack pointer "
                        "itself is corrupt.")
        d.fix = Fix("code", "inspect the faulting instruction's operands (x/i $pc, info registers)")
        d.culprit = None
        return d
    return _fault(f, d, region, sig, fault, used)


def _cause(f: StackFacts, d: Diagnosis, used: int | None) -> str:
    """Decide huge frame / clash probe / deep recursion; returns a phrase for the headline."""
    c, r, p = d.culprit, d.recursion, d.clash_probe
    if p is not None:
        d.cause = "clash-probe"
        req = f"{hs(p.requested)}" if p.requested else "a large frame"
        if c is not None and c.instruction is not None:
            c.instruction.text += " (in the probing loop)"
        d.explanation.append(
            f"-fstack-clash-protection probing loop at 0x{p.loop_start:x} ({p.probe}): it lowers "
            f"sp {hs(p.step)} at a time and touches each page so the stack can never jump over "
            f"the guard gap; it faulted part-way while allocating {req}"
            + (f" (loop target sp = {p.target_register} = 0x{p.target_sp:x})" if p.target_sp else "")
            + ".")
    huge = c is not None and c.frame_size >= HUGE_FRAME and (used is None or c.frame_size * 2 >= used)
    if p is not None:
        huge = True
    if huge and c is not None:
        d.cause = d.cause or "huge-frame"
        size = p.requested if (p and p.requested) else c.frame_size
        ins = c.instruction
        where = f" ({ins.text} at 0x{ins.address:x}{', ' + ins.source if ins.source else ''})" if ins else ""
        d.explanation.append(
            f"one huge frame: {c.function or '??'}() (frame #{c.frame_level}) takes {hs(size)} of "
            f"stack{where}" + (" -- a variable-length array or alloca sized at run time"
                               if ins and ins.dynamic else "") + ".")
        return f"one huge frame in {c.function or '??'}() ({hs(size)})"
    if r is not None:
        d.cause = "deep-recursion"
        cyc = " -> ".join(f"{x}()" for x in r.functions)
        d.explanation.append(
            f"deep recursion: {cyc} repeats; depth {r.depth:,} ({r.depth_method}), average frame "
            f"{r.avg_frame} B.")
        return f"deep recursion in {r.functions[0]}() (depth {r.depth:,}, {r.avg_frame} B/frame)"
    if c is not None:
        d.explanation.append(f"largest frame seen: {c.function or '??'}() {hs(c.frame_size)} "
                             f"(frame #{c.frame_level}); no recursion in the sampled frames.")
    return "many frames"


def _final_sp(f: StackFacts, d: Diagnosis, fault: int) -> int:
    low = min(f.sp, fault)
    if d.clash_probe and d.clash_probe.target_sp:
        low = min(low, d.clash_probe.target_sp)
    return low


def _fault(f: StackFacts, d: Diagnosis, region: StackRegion | None, sig, fault: int,
           used: int | None) -> Diagnosis:
    expl = d.explanation
    inside = find_mapping(f.maps, fault)
    below, above = mapping_below(f.maps, fault), mapping_above(f.maps, fault)
    d.nearest = [_mapdict(m, fault) for m in (inside, below, above) if m is not None]
    near_sp = f.sp - NEAR_SP <= fault <= f.sp + NEAR_SP
    in_guard = region is not None and region.guard is not None and region.guard.contains(fault)
    stackish = region is not None and fault < region.start and (near_sp or in_guard)

    if region is not None and region.start <= fault < region.end:
        d.verdict = "not-stack"
        d.headline = (f"{sig.name} ({sig.code_name}) at 0x{fault:x} inside the stack mapping "
                      "itself: a permission problem, not a failure to grow")
        expl.append("The page is mapped; the access was not allowed (e.g. executing or writing a "
                    "protected page).")
        d.fix = Fix("code", "check what protected that page (mprotect) or why code runs from the stack")
        d.culprit = None
        return d
    if not stackish:
        d.stack_used = (region.end - f.sp) if region and region.start <= f.sp < region.end else None
        return _not_stack(f, d, region, sig, fault, inside, below, above)

    phrase = _cause(f, d, used)
    final_sp = _final_sp(f, d, fault)
    needed = region.end - final_sp + CALLEE_MARGIN

    between = [m for m in f.maps if fault < m.start and m.end <= region.start
               and not (region.guard is not None and m.start == region.guard.start)]
    linked = any(fr.level > 0 and region.start <= fr.sp < region.end for fr in f.frames)
    if ((inside is not None and not in_guard) or between) and not linked and f.sp < region.start:
        return _corrupt_sp(f, d, region, sig, fault)
    if (inside is not None and not in_guard) or between:
        d.verdict = "stack-clash-jump"
        hit = inside if (inside is not None and not in_guard) else max(between, key=lambda m: m.end)
        how = "into" if hit is inside else "past"
        d.headline = (f"the stack pointer jumped {hs(region.start - fault)} below the stack, "
                      f"{how} {hit.label} ({hit.perms}) at 0x{hit.start:x}-0x{hit.end:x} -- {phrase}")
        d.below = _mapdict(hit, fault)
        expl.insert(0, "The stack can only grow into free space directly below it; a frame bigger "
                    "than the gap jumped over " + (f"the guard gap into {hit.label}, which this "
                    "access may not use" if hit is inside else f"{hit.label}, so the kernel found "
                    "no stack to grow at the fault address") + ". Build with "
                    "-fstack-clash-protection to turn such jumps into a clean overflow.")
        d.fix = Fix("heap", f"move the buffer to the heap (malloc) -- {hs(needed)} cannot live "
                    "on this stack", needed)
        return d

    if not f.is_main_thread:
        return _thread(f, d, region, fault, phrase, needed)

    growth = region.end - page_down(fault, f.page_size)
    d.growth_requested = growth
    gap_dist = page_down(fault, f.page_size) - below.end if below else None
    if below is not None:
        d.below = _mapdict(below, fault)
    gap_hit = (below is not None and is_accessible(below.perms) and "[stack]" not in below.path
               and gap_dist < f.guard_gap)
    limit = f.rlimit_soft
    rl_hit = limit is not None and growth > limit
    limtxt = hs(limit) if limit is not None else "unlimited"
    assumed = "" if f.rlimit_known else " (assumed)"
    room_below = (region.end - (below.end + f.guard_gap)) if below is not None else None

    if gap_hit:
        d.verdict = "guard-gap"
        d.headline = (f"stack growth refused: the fault at 0x{fault:x} is {hs(gap_dist)} above "
                      f"{below.label} ({below.perms}), inside the {hs(f.guard_gap)} guard gap -- "
                      f"{phrase}")
        expl.insert(0, f"expand_downwards() keeps stack_guard_gap ({hs(f.guard_gap)}, "
                    f"{f.guard_gap_source}) free above any accessible mapping below the stack; "
                    f"{below.label} ends at 0x{below.end:x}, so the stack may not grow below "
                    f"0x{below.end + f.guard_gap:x}"
                    + (f" -- above its current bottom 0x{region.start:x}, so it cannot grow at all"
                       if below.end + f.guard_gap >= region.start else f" ({_room(room_below)})")
                    + f", whatever RLIMIT_STACK ({limtxt}{assumed}) says.")
        if rl_hit:
            expl.append(f"The growth ({hs(growth)}) would also exceed RLIMIT_STACK ({limtxt}).")
        d.fix = Fix("heap", f"move the buffer to the heap (malloc), or map {below.label} further "
                    f"away: {_room(room_below)} with that mapping there "
                    f"(the run needs about {hs(needed)})", needed)
        return d
    if rl_hit:
        d.verdict = "rlimit"
        d.headline = (f"stack growth refused by RLIMIT_STACK: growing to {hs(growth)} "
                      f"(stack top 0x{region.end:x} - fault 0x{fault:x}) exceeds the "
                      f"{limtxt} soft limit{assumed} -- {phrase}")
        expl.insert(0, f"acct_stack_growth(): vm_end - address = {growth} > rlimit(RLIMIT_STACK) = "
                    f"{limit} -> -ENOMEM, so the page fault became {sig.name} ({sig.code_name}).")
        d.fix = _rlimit_fix(f, d, needed, room_below)
        return d
    d.verdict = "stack-other"
    d.headline = (f"stack fault at 0x{fault:x} ({hs(growth)} below the stack top) although "
                  f"RLIMIT_STACK ({limtxt}{assumed}) and the guard gap allow it -- {phrase}")
    expl.insert(0, "Other reasons the kernel refuses growth: RLIMIT_AS / overcommit or a memory "
                "cgroup out of memory, or the address is below vm.mmap_min_addr.")
    d.fix = Fix("code", "check RLIMIT_AS (ulimit -v), memory cgroup limits and dmesg", needed)
    return d


def _room(room: int) -> str:
    return (f"the stack can be {hs(room)} at most" if room > 0
            else "the stack cannot grow below where it already is")


def _rlimit_fix(f: StackFacts, d: Diagnosis, needed: int, room_below: int | None) -> Fix:
    if d.cause == "deep-recursion":
        r = d.recursion
        return Fix("code", f"find why {r.functions[0]}() recursed {r.depth:,} deep (its "
                   "termination condition); if that depth is legitimate, make it a loop with a "
                   "heap-allocated work stack -- raising ulimit -s only moves the crash if the "
                   "recursion is unbounded")
    kib = ulimit_kib_for(needed)
    hard = f.rlimit_hard
    if hard is not None and needed > hard:
        return Fix("heap", f"move the buffer to the heap (malloc): the run needs about "
                   f"{hs(needed)} of stack but the hard limit is {hs(hard)}", needed)
    if room_below is not None and needed > room_below:
        return Fix("heap", f"move the buffer to the heap (malloc): the run needs about "
                   f"{hs(needed)} but the next mapping below leaves only {hs(room_below)}", needed)
    return Fix("ulimit", f"ulimit -s {kib}   (or setrlimit(RLIMIT_STACK, {kib * 1024}) before "
               f"exec) -- the run needs about {hs(needed)}; better, move the buffer to the heap",
               needed, ulimit_kib=kib)


def _thread(f: StackFacts, d: Diagnosis, region: StackRegion, fault: int, phrase: str,
            needed: int) -> Diagnosis:
    d.verdict = "thread-overflow"
    size = region.end - region.start
    past = region.start - fault
    guard = region.guard
    gtxt = (f"its {hs(guard.size)} guard page{'s' if guard.size > f.page_size else ''} at "
            f"0x{guard.start:x}" if guard else "the memory below it")
    d.headline = (f"thread stack overflow: thread {f.thread_num} (LWP {f.tid}) has a "
                  f"{hs(size)} stack and the fault is {hs(past)} below it, "
                  f"{'in ' + gtxt if guard and guard.contains(fault) else 'past ' + gtxt} -- {phrase}")
    d.explanation.insert(0, "A thread's stack is a fixed mmap (pthread_attr_setstacksize, default "
                         "RLIMIT_STACK) with a PROT_NONE guard below; it never grows, so any "
                         "access below it faults.")
    size_needed = thread_stacksize_for(needed)
    if d.cause == "deep-recursion":
        d.fix = Fix("code", f"bound the recursion in {d.recursion.functions[0]}(), or give the "
                    f"thread a bigger stack (pthread_attr_setstacksize) if the depth is legitimate",
                    needed, stacksize=size_needed)
    else:
        d.fix = Fix("pthread_attr_setstacksize",
                    f"pthread_attr_setstacksize(&attr, {size_needed})   /* {hs(size_needed)}; the "
                    f"thread needs about {hs(needed)} */ -- or move the buffer to the heap",
                    needed, stacksize=size_needed)
    return d


def _corrupt_sp(f: StackFacts, d: Diagnosis, region: StackRegion, sig, fault: int) -> Diagnosis:
    """sp is far below the stack, past other mappings, and no caller frame sits on the stack:
    nothing moved sp there frame by frame -- it was loaded with a bad value."""
    d.verdict = "not-stack"
    d.cause = None
    d.culprit = None
    d.clash_probe = None
    d.headline = (f"the stack pointer itself is corrupt: sp 0x{f.sp:x} is {hs(region.start - f.sp)} "
                  f"below {region.label} and no frame links it back to the stack; the fault at "
                  f"0x{fault:x} ({sig.name}, {sig.code_name}) is sp's own access -- not a stack "
                  "growth failure")
    d.explanation.append("No caller frame's stack pointer lies in the stack mapping, so no frame "
                         "grew the stack this far: sp was loaded with a bad value (a stack pivot, "
                         "longjmp/setcontext with a bad jmp_buf or ucontext, or a smashed saved "
                         "frame pointer restored by 'leave').")
    d.fix = Fix("code", "find where sp was set: the instructions before pc (x/8i $pc-24) and any "
                "buffer overflow of a local that could overwrite the saved rbp/return address")
    return d


def _not_stack(f: StackFacts, d: Diagnosis, region, sig, fault, inside, below, above) -> Diagnosis:
    d.verdict = "not-stack"
    d.culprit = None
    d.clash_probe = None
    expl = d.explanation
    where = (f"sp is 0x{f.sp:x}, {hs(abs(f.sp - fault))} away"
             + (f", inside {region.label}" if region and region.start <= f.sp < region.end else ""))
    if fault < NULL_PAGE:
        kind = f"a NULL pointer dereference (offset {fault:#x})" if fault else "a NULL pointer dereference"
        fix = "check the pointer for NULL before use (x/i $pc shows which register held it)"
    elif inside is not None and sig.signo == 7 and sig.code == 2 and inside.path.startswith("/"):
        # BUS_ADRERR inside a file mapping: the page lies past the end of the file
        kind = (f"an access to {inside.label} past the end of the file (the mapping is larger "
                "than the file: truncated after mmap, or mapped beyond its size)")
        fix = (f"check the size of {inside.label} against the mapping (ftruncate/fallocate it "
               "before mapping, or map only what exists)")
    elif inside is not None:
        kind = f"an access to {inside.label} ({inside.perms}) that its protection forbids"
        fix = f"the code {'wrote to' if 'w' not in inside.perms else 'used'} {inside.label} wrongly"
    elif below is not None and below.path == "[heap]" or (above is not None and above.path == "[heap]"):
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
        ntxt = (f"; nearest mapping {near.label} ({near.perms}) "
                + ("contains it" if near is inside else f"{hs(dist)} {'below' if near.end <= fault else 'above'}"))
    d.headline = f"not a stack problem: {sig.name} ({sig.code_name}) at 0x{fault:x} is {kind}{ntxt}"
    expl.append(f"The fault address is not next to the stack pointer ({where}) and not just "
                "below a stack, so the stack did not need to grow.")
    d.fix = Fix("code", fix)
    return d


def _health(f: StackFacts, d: Diagnosis, region, sig, alt_sp: int | None = None) -> Diagnosis:
    d.verdict = "healthy"
    d.culprit = d.culprit if d.culprit and d.culprit.frame_size >= HUGE_FRAME else None
    d.clash_probe = None
    stop = (f"stopped by {sig.name}" + (" (a breakpoint or step)" if sig.signo == 5 else "")
            if sig else "stopped (no signal)")
    if region is None:
        d.headline = f"{stop}; sp 0x{f.sp:x} is in no known mapping -- the stack pointer is corrupt"
        d.verdict = "not-stack"
        return d
    used = region.end - (alt_sp or f.sp)
    if f.is_main_thread:
        limit = f.rlimit_soft
        cap = limit
        captxt = f"RLIMIT_STACK {hs(limit)}" if limit is not None else "RLIMIT_STACK unlimited"
    else:
        cap = region.end - region.start
        captxt = f"thread stack {hs(cap)}"
    pct = f" ({100 * used / cap:.1f}%)" if cap else ""
    d.headline = f"{stop}: stack healthy -- {hs(used)} used of {captxt}{pct}"
    if d.recursion:
        r = d.recursion
        d.explanation.append(f"recursion in progress: {' -> '.join(r.functions)}, depth {r.depth:,} "
                             f"({r.depth_method}), {r.avg_frame} B/frame.")
        if cap:
            d.explanation.append(f"at that rate {max(0, (cap - used) // max(r.avg_frame, 1)):,} more "
                                 "levels fit.")
    if d.culprit:
        d.explanation.append(f"largest frame: {d.culprit.function or '??'}() {hs(d.culprit.frame_size)}.")
    if cap and used * 10 >= cap * 9:
        d.headline = d.headline.replace("stack healthy", "stack nearly full")
    return d
