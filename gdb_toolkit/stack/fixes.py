"""The verdicts of a stack that could not grow, each with a fix that works when the program
is re-run.  Pure.

A fix is only offered where it provably changes the outcome: ``ulimit -s N`` when nothing
fixed sits closer than N below the stack (RLIMIT_STACK at exec moves the libraries, see
``kernel_rules``) and N is within the hard limit; ``pthread_attr_setstacksize`` for a thread;
the sigaltstack size for a handler; otherwise moving the buffer to the heap or the code.

One thread's stack overflowing into another's is stack/thread_clash.py.
"""
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack.kernel_rules import (CALLEE_MARGIN, aslr_sentence, is_accessible,
                                            moves_with_limit, round_up, thread_stacksize_for,
                                            ulimit_kib_for)
from gdb_toolkit.stack.model import Diagnosis, Fix, StackFacts, StackRegion, call_form

MIB = 1 << 20
UNLIMITED_THREAD_DEFAULT = 2 << 20    # glibc's ARCH_STACK_DEFAULT_SIZE (x86_64, aarch64)


def _label(m) -> str:
    from gdb_toolkit.stack.diagnose import label

    return label(m)


def _mapdict(m, addr):
    from gdb_toolkit.stack.diagnose import _mapdict as md

    return md(m, addr)


def _exec_limit(f: StackFacts) -> int | None:
    return f.exec_rlimit if f.exec_rlimit_known else f.rlimit_soft


def _layout(f: StackFacts, d: Diagnosis, region: StackRegion, obstacle) -> bool:
    """Record what the exec-time layout says about *obstacle*; True when ``ulimit -s``
    moves it."""
    moving = obstacle is not None and moves_with_limit(obstacle, region.end, _exec_limit(f),
                                                      f.guard_gap, f.aslr, f.page_size)
    d.layout = {"aslr": f.aslr, "aslr_source": f.aslr_source,
                "exec_rlimit_bytes": f.exec_rlimit if f.exec_rlimit_known else None,
                "exec_rlimit_source": f.exec_rlimit_source or None,
                "obstacle": _mapdict(obstacle, region.end) if obstacle is not None else None,
                "obstacle_moves_with_rlimit": moving}
    return moving


def _aslr(f: StackFacts, d: Diagnosis, region: StackRegion, obstacle) -> None:
    from gdb_toolkit.stack.kernel_rules import Layout

    lay = Layout(f.aslr, f.aslr_source, _exec_limit(f), f.exec_rlimit_source)
    text = aslr_sentence(lay, obstacle, region.end, f.guard_gap, f.arch)
    if text:
        d.explanation.append(text)


def _runtime_changes(f: StackFacts, d: Diagnosis) -> str | None:
    """'raised' / 'lowered' when the program changed RLIMIT_STACK after it was started."""
    if not f.exec_rlimit_known or f.rlimit_soft == f.exec_rlimit:
        return None
    inf = float("inf")
    now = inf if f.rlimit_soft is None else f.rlimit_soft
    then = inf if f.exec_rlimit is None else f.exec_rlimit
    how = "lowered" if now < then else "raised"
    d.notes.append(f"RLIMIT_STACK was {how} at run time: the program was started with "
                   f"{_lim(f.exec_rlimit)} ({f.exec_rlimit_source}) and has {_lim(f.rlimit_soft)} "
                   "now (a setrlimit()/prlimit() after exec)")
    return how


def _lim(v: int | None) -> str:
    return "unlimited" if v is None else f"{hs(v)} ({v // 1024} KiB)"


def absent_in(f: StackFacts, region: StackRegion, sp: int) -> list[tuple[int, int, str]]:
    """The parts of the stack in use -- from sp (or the stack's start) to its top -- whose
    bytes the core does not hold: its frames, return addresses and recursion are unknown."""
    lo = max(region.start, min(sp, region.end))
    return [(max(a, lo), min(b, region.end), why) for a, b, why in f.absent
            if a < region.end and lo < b]


def stack_absent_note(gone: list[tuple[int, int, str]]) -> str:
    size = sum(b - a for a, b, _ in gone)
    whys = {why for _a, _b, why in gone}
    how = " and ".join(
        ("not dumped (its PT_LOAD segment has no bytes in the file: the process's "
         "/proc/PID/coredump_filter left anonymous memory out)") if w == "not dumped" else
        ("cut off (the file ends before the segment does: RLIMIT_CORE (ulimit -c) stopped "
         "the dump, or the disk filled up)")
        for w in sorted(whys, reverse=True))
    return (f"stack contents: {hs(size)} of the stack in use (0x{gone[0][0]:x}-0x{gone[-1][1]:x}) "
            f"is not in the core -- {how}; the frames above frame #0, their return addresses "
            "and any recursion there cannot be read (gdb shows zeros), only frame #0's own size "
            "(from its registers)")


def _unknown_use_fix(f: StackFacts, d: Diagnosis, region: StackRegion, needed: int,
                     bigger: str) -> Fix | None:
    """The core holds no bytes of the stack in use, or gdb's walk stopped short of them: who
    used it (a recursion that no size ends, or a bounded need) is unknown, so no size is
    offered as the fix."""
    if d.cause is not None:
        return None
    if not absent_in(f, region, d.sp):
        if not (f.frames_stopped or f.program_mismatch):
            return None
        return Fix("code", "give gdb the program file the process ran and its libraries"
                   + (" (the one given is not it: see the note)" if f.program_mismatch else "")
                   + f", so that its walk of the frames shows who used "
                   f"{hs(region.end - min(d.sp, region.end))} of the stack; " + bigger
                   + " only once the stack use is known to be bounded (a runaway recursion "
                   "fails at any size)", needed)
    return Fix("code", f"make a core that holds the stack, or run the program under gdb, to "
               f"see who used {hs(region.end - min(d.sp, region.end))} of it: in the shell that "
               "starts the program, ulimit -c unlimited and echo 0x33 > /proc/self/coredump_filter "
               "(bit 0: anonymous private memory, where stacks live); " + bigger + " only once "
               "the stack use is known to be bounded (a runaway recursion fails at any size)",
               needed)


def _recursion_fix(d: Diagnosis, needed: int) -> Fix:
    r = d.recursion
    deep = (f"{r.rounds:,} times through {' -> '.join(call_form(x) for x in r.functions)}"
            if r.rounds else f"{r.depth:,} deep")
    return Fix("code", f"find why {call_form(r.focus)} recursed {'at least ' if not r.depth_exact else ''}"
               f"{deep} (its termination condition); if that depth is legitimate, make "
               "it a loop with a heap-allocated work stack -- raising the stack limit only moves "
               "the crash if the recursion is unbounded", needed)


def _recursing_below(d: Diagnosis) -> bool:
    """The huge frame is outer to a recursion that was still going at the fault (it called
    the recursion): how deep that would have gone, so how much stack the run needs, is not
    known."""
    c, r = d.culprit, d.recursion
    return (d.cause == "huge-frame" and c is not None and r is not None
            and c.level >= r.first_level + r.depth)


def _outer_frame_fix(d: Diagnosis, needed: int) -> Fix:
    c, r = d.culprit, d.recursion
    name = call_form(c.symbol)
    return Fix("heap", f"move the big locals of {name} (frame #{c.level:,}: {hs(c.size)}) to the "
               f"heap (malloc), leaving the stack to the recursion in {call_form(r.focus)} it calls; that "
               f"recursion was {r.depth:,}{'' if r.depth_exact else '+'} deep and still going "
               "when the stack ran out, so no stack size is known to suffice -- if its depth "
               "is not bounded, bound it", needed)


def _growing(d: Diagnosis) -> bool:
    """The culprit is an alloca() in a loop: its frame had not stopped growing."""
    ins = d.culprit.instruction if d.culprit is not None else None
    return d.cause == "huge-frame" and ins is not None and ins.in_loop


def _loop_fix(d: Diagnosis, needed: int) -> Fix:
    c = d.culprit
    return Fix("code", f"take the alloca() at {c.instruction.source or hex(c.instruction.address)} "
               f"out of the loop in {call_form(c.symbol)} (or use malloc/free per iteration): every "
               f"iteration adds to the frame until {call_form(c.symbol)} returns; it had taken "
               f"{hs(c.size)} and was still growing, so no stack size is known to suffice",
               needed)


def _too_big_fix(f: StackFacts, d: Diagnosis, needed: int) -> Fix:
    c = d.culprit
    what = (f"the allocation in {call_form(c.symbol)} ({c.instruction.text}"
            + (f", {c.instruction.source}" if c.instruction.source else "") + ")"
            if c is not None and c.instruction is not None else "what asks for it")
    return Fix("code", f"no stack limit makes this work: the run asks for about {hs(needed)} of "
               f"stack, more than this machine will commit at once "
               f"({f.overcommit.sentence(needed)}) -- check the size computed for {what} "
               "(a negative or garbage length?) and put a large buffer on the heap", needed)


def ulimit_fix(f: StackFacts, d: Diagnosis, region: StackRegion, needed: int, obstacle) -> Fix:
    """``ulimit -s`` for *needed* bytes, unless the hard limit, a fixed mapping or the
    kernel's memory commit check forbids it."""
    unknown = _unknown_use_fix(f, d, region, needed,
                               f"a bigger limit (ulimit -s {ulimit_kib_for(needed)}) helps")
    if unknown is not None:
        return unknown
    if d.cause == "deep-recursion":
        return _recursion_fix(d, needed)
    if _recursing_below(d):
        return _outer_frame_fix(d, needed)
    if _growing(d):
        return _loop_fix(d, needed)
    if f.overcommit is not None and f.overcommit.refuses(needed - (region.end - region.start)):
        return _too_big_fix(f, d, needed)
    kib = ulimit_kib_for(needed)
    hard = f.rlimit_hard if (f.rlimit_known or f.rlimit_given) else None
    if hard is not None and kib * 1024 > hard:
        return Fix("heap", f"move the buffer to the heap (malloc): the run needs about "
                   f"{hs(needed)} of stack but the hard limit is {hs(hard)} (only root can raise "
                   "it: ulimit -Hs, /etc/security/limits.conf)", needed)
    if obstacle is not None and not moves_with_limit(obstacle, region.end, _exec_limit(f),
                                                     f.guard_gap, f.aslr, f.page_size):
        room = region.end - obstacle.end - (f.guard_gap if is_accessible(obstacle.perms) else 0)
        if needed > room:
            size = region.end - region.start
            leaves = (f"which leaves the stack {hs(room)}" if room > size else
                      f"which lets the stack grow no further than the {hs(size)} it has")
            return Fix("heap", f"move the buffer to the heap (malloc), or map {_label(obstacle)} "
                       f"elsewhere: the program placed it {hs(region.end - obstacle.end)} below "
                       f"the stack top, {leaves} whatever the limit, and the run needs about "
                       f"{hs(needed)}", needed)
    raised = (f.exec_rlimit_known and f.rlimit_soft is not None and f.exec_rlimit is not None
              and f.rlimit_soft > f.exec_rlimit)
    extra = ""
    if raised and f.rlimit_soft // 1024 > kib:
        kib = -(-f.rlimit_soft // 1024)
        extra = (f" -- at least the {hs(f.rlimit_soft)} the program sets itself, or its own "
                 "setrlimit() fails against the new hard limit")
    text = (f"ulimit -s {kib}   (in the shell that starts the program, or setrlimit(RLIMIT_STACK, "
            f"{kib * 1024}) before exec) -- the run needs about {hs(needed)}{extra}; better, move "
            "the buffer to the heap")
    if f.started_by_gdb:
        text += f" (under gdb: start gdb from a shell with ulimit -s {kib}; the program inherits it)"
    if f.core_writer:
        text = text.replace("the shell that starts the program", "the shell that starts qemu")
    return Fix("ulimit", text, needed, ulimit_kib=kib)


def _needed(region: StackRegion, final_sp: int) -> int:
    return region.end - final_sp + CALLEE_MARGIN


def rlimit(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int, phrase: str,
           final_sp: int, growth: int, prev) -> Diagnosis:
    sig = ctx.signal
    limit = f.rlimit_soft
    needed = _needed(region, final_sp)
    how = _runtime_changes(f, d)
    limtxt = "unlimited" if limit is None else hs(limit)
    if not f.rlimit_known and not f.rlimit_given:
        # a core: the limit is not recorded, but the refusal itself bounds it
        grown = region.end - region.start
        d.verdict = "rlimit"
        d.rlimit_soft = d.rlimit_hard = None
        d.headline = (f"stack growth refused: growing to {hs(growth)} (stack top 0x{region.end:x} - "
                      f"fault 0x{fault:x}) was refused, so RLIMIT_STACK was below {hs(growth)} "
                      f"(at least {hs(grown)}: the stack had grown that far) -- {phrase}")
        d.explanation.insert(0, f"The core records no limits. Nothing else refuses this growth "
                             f"(no mapping within the guard gap below): acct_stack_growth() "
                             f"found vm_end - address = {growth} > rlimit(RLIMIT_STACK), so the "
                             f"limit the program ran with was under {growth // 1024} KiB; give "
                             "--rlimit KIB to state it.")
        d.notes.append(f"RLIMIT_STACK inferred from the core: between {grown} and {growth} bytes "
                       f"(this gdb's own limit, {_lim(f.rlimit_soft)}, is not the program's)")
        d.fix = ulimit_fix(f, d, region, needed, prev)
        return d
    if limit is not None and growth > limit:
        d.verdict = "rlimit"
        given = " (given with --rlimit)" if f.rlimit_given else ""
        d.headline = (f"stack growth refused by RLIMIT_STACK: growing to {hs(growth)} "
                      f"(stack top 0x{region.end:x} - fault 0x{fault:x}) exceeds the "
                      f"{limtxt} soft limit{given} -- {phrase}")
        d.explanation.insert(0, f"acct_stack_growth(): vm_end - address = {growth} > "
                             f"rlimit(RLIMIT_STACK) = {limit} -> -ENOMEM, so the page fault became "
                             f"{sig.name} ({sig.code_name}).")
        if how == "lowered":
            kib = ulimit_kib_for(needed)
            d.explanation.append(f"The program itself lowered its RLIMIT_STACK to {limtxt} after "
                                 f"it started (with {_lim(f.exec_rlimit)}): raising the shell's "
                                 "limit does not help.")
            d.fix = (_recursion_fix(d, needed) if d.cause == "deep-recursion" else
                     Fix("code", f"find the setrlimit(RLIMIT_STACK)/prlimit() call that lowers the "
                         f"limit to {limit // 1024} KiB and let it allow at least {kib} KiB (the "
                         f"run needs about {hs(needed)}); or move the buffer to the heap", needed,
                         ulimit_kib=kib))
            return d
        d.fix = ulimit_fix(f, d, region, needed, prev)
        return d
    d.verdict = "stack-other"
    grow = region.start - (fault & ~(f.page_size - 1))
    if f.overcommit is not None and f.overcommit.refuses(grow):
        d.growth_requested = growth
        d.headline = (f"stack growth of {hs(grow)} refused by the kernel's memory commit check, "
                      f"not by a limit: RLIMIT_STACK ({limtxt}) and the guard gap allow it -- "
                      f"{phrase}")
        d.explanation.insert(0, f"acct_stack_growth() -> security_vm_enough_memory_mm(): "
                             f"{f.overcommit.sentence(grow)} -> -ENOMEM, so the page fault "
                             f"became {sig.name} ({sig.code_name}).")
        d.fix = _too_big_fix(f, d, needed)
        return d
    d.headline = (f"stack fault at 0x{fault:x} ({hs(growth)} below the stack top) although "
                  f"RLIMIT_STACK ({limtxt}{' given with --rlimit' if f.rlimit_given else ''}) "
                  f"and the guard gap allow it -- {phrase}")
    if f.rlimit_given:
        d.explanation.insert(0, f"With RLIMIT_STACK = {limtxt} the kernel would have granted "
                             f"this growth ({growth} B): the limit given is not the one the "
                             "program ran with, or something else refused it.")
    d.explanation.append("Other reasons the kernel refuses growth: RLIMIT_AS / overcommit "
                         "(vm.overcommit_memory=2) or a memory cgroup out of memory, or the "
                         "address is below vm.mmap_min_addr.")
    d.fix = Fix("code", "check RLIMIT_AS (ulimit -v), the memory cgroup (memory.max, "
                "memory.events) and dmesg", needed)
    return d


def rlimit_as(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int, phrase: str,
              final_sp: int, total: int, grow: int) -> Diagnosis:
    d.verdict = "rlimit-as"
    needed = _needed(region, final_sp)
    growth = region.end - (fault & ~(f.page_size - 1))
    d.growth_requested = growth
    d.headline = (f"stack growth refused by RLIMIT_AS: the process maps {hs(total)} and growing "
                  f"the stack by {hs(grow)} would exceed the {hs(f.as_soft)} address-space limit "
                  f"-- {phrase}")
    d.explanation.insert(0, f"acct_stack_growth() -> may_expand_vm(): total_vm {total} + "
                         f"{grow} > rlimit(RLIMIT_AS) = {f.as_soft} -> -ENOMEM (checked before "
                         "RLIMIT_STACK).")
    extra = max(0, needed - (region.end - region.start))
    as_kib = round_up(total + extra + 16 * MIB, MIB) // 1024
    parts = [f"ulimit -v {as_kib}"]
    if f.rlimit_soft is not None and needed > f.rlimit_soft:
        parts.append(f"ulimit -s {ulimit_kib_for(needed)}")
    if d.cause == "deep-recursion":
        d.fix = _recursion_fix(d, needed)
    else:
        d.fix = Fix("ulimit", f"{'; '.join(parts)}   (the address space the run needs: about "
                    f"{hs(total + extra)}); better, move the buffer to the heap", needed,
                    ulimit_kib=ulimit_kib_for(needed) if len(parts) > 1 else None)
    return d


def guard_gap(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int, phrase: str,
              final_sp: int, prev, gap_dist: int, growth: int) -> Diagnosis:
    d.verdict = "guard-gap"
    needed = _needed(region, final_sp)
    moving = _layout(f, d, region, prev)
    limit = f.rlimit_soft
    d.headline = (f"stack growth refused: the fault at 0x{fault:x} is {hs(gap_dist)} above "
                  f"{_label(prev)} ({prev.perms}), inside the {hs(f.guard_gap)} guard gap -- {phrase}")
    floor = prev.end + f.guard_gap
    stop = (f"so the stack may not grow below 0x{floor:x} ({_room(region.end - floor)})"
            if floor < region.start else
            f"so the stack may not grow at all: its lowest page 0x{region.start:x} is already "
            f"within the gap ({hs(region.start - prev.end)} above it; the mapping was placed "
            "there after the stack had stopped growing)")
    d.explanation.insert(0, f"expand_downwards() keeps stack_guard_gap ({hs(f.guard_gap)}, "
                         f"{f.guard_gap_source}) free above any accessible mapping below the "
                         f"stack; {_label(prev)} ends at 0x{prev.end:x}, {stop}, whatever "
                         f"RLIMIT_STACK ({'unlimited' if limit is None else hs(limit)}) says.")
    how = _runtime_changes(f, d)
    if limit is not None and growth > limit:
        d.explanation.append(f"The growth ({hs(growth)}) would also exceed RLIMIT_STACK "
                             f"({hs(limit)}): the guard gap refused it first.")
    if moving:
        d.explanation.append(f"{_label(prev)} was placed by the kernel's mmap allocator, below "
                             f"mmap_base, which the RLIMIT_STACK the program was started with "
                             f"({_lim(_exec_limit(f))}) put there: started with a bigger limit, "
                             "the libraries go further down.")
        if how == "raised":
            d.explanation.append("The program raised its own limit at run time, but exec had "
                                 "already placed the libraries: the limit must be raised before "
                                 "the program starts.")
        _aslr(f, d, region, prev)
    d.fix = ulimit_fix(f, d, region, needed, prev)
    return d


def _room(room: int) -> str:
    return f"the stack can be {hs(room)} at most"


def clash_jump(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int, phrase: str,
               final_sp: int, hit, inside) -> Diagnosis:
    d.verdict = "stack-clash-jump"
    needed = _needed(region, final_sp)
    how = "into" if inside is not None and inside.start == hit.start else "past"
    jumped = sorted((m for m in f.maps if fault < m.end <= region.start
                     and not (region.guard is not None and m.start == region.guard.start)),
                    key=lambda m: -m.end)
    if how == "past" and len(jumped) > 1:
        what = (f"{len(jumped)} mappings from {_label(jumped[0])} (ends 0x{jumped[0].end:x}) down "
                f"to {_label(hit)} ({hit.perms}) at 0x{hit.start:x}")
    else:
        what = f"{_label(hit)} ({hit.perms}) at 0x{hit.start:x}-0x{hit.end:x}"
    d.headline = (f"the stack pointer jumped {hs(region.start - fault)} below the stack, {how} "
                  f"{what} -- {phrase}")
    d.below = _mapdict(hit, fault)
    d.explanation.insert(0, "The stack can only grow into free space directly below it; a frame "
                         "bigger than the guard gap jumped over " + (
                             f"the guard gap into {_label(hit)}, which this access may not use"
                             if how == "into" else f"{_label(hit)}, so the kernel found no stack "
                             "to grow at the fault address") + ". Built with "
                         "-fstack-clash-protection, such a frame would fault cleanly at the limit.")
    obstacle = jumped[0] if jumped else hit
    moving = _layout(f, d, region, obstacle)
    if moving:
        d.explanation.append(f"{_label(obstacle)} was placed by the kernel below mmap_base, which the "
                             f"RLIMIT_STACK at exec ({_lim(_exec_limit(f))}) decides: started with "
                             "a limit that covers the frame, the libraries go below it.")
        _aslr(f, d, region, obstacle)
    if _runtime_changes(f, d) == "raised" and moving:
        d.explanation.append("The program raised its own limit at run time, but exec had "
                             "already placed the libraries: the limit must be raised before "
                             "the program starts.")
    if f.rlimit_soft is not None and region.end - fault > f.rlimit_soft:
        d.explanation.append(f"Had nothing been in the way, the growth ({hs(region.end - fault)}) "
                             f"would have exceeded RLIMIT_STACK ({hs(f.rlimit_soft)}) anyway.")
    d.fix = ulimit_fix(f, d, region, needed, obstacle)
    return d


def stack_blocked(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int, phrase: str,
                  final_sp: int, blocker, hit) -> Diagnosis:
    d.verdict = "stack-blocked"
    needed = _needed(region, final_sp)
    room = region.end - blocker.end
    d.below = _mapdict(blocker, fault)
    where = "inside" if blocker.contains(fault) else f"{hs(blocker.start - fault)} below"
    d.headline = (f"the stack ran into the inaccessible mapping {_label(blocker)} ({blocker.perms}) "
                  f"at 0x{blocker.start:x}-0x{blocker.end:x} right below it: the fault at "
                  f"0x{fault:x} is {where} it -- {phrase}")
    d.explanation.insert(0, "The guard gap applies to accessible mappings only, so the stack may "
                         f"grow right down to a PROT_NONE mapping -- here {hs(room)} below the "
                         "stack top -- but never into or past it (the kernel finds that mapping, "
                         "not the stack, at the fault address).")
    _layout(f, d, region, blocker)
    d.fix = ulimit_fix(f, d, region, needed, blocker)
    return d


def thread_overflow(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int,
                    phrase: str, final_sp: int, inside) -> Diagnosis:
    d.verdict = "thread-overflow"
    size = region.end - region.start
    past = region.start - fault
    guard = region.guard
    gtxt = (f"its {hs(guard.size)} guard page{'s' if guard.size > f.page_size else ''} at "
            f"0x{guard.start:x}" if guard else "the memory below it (no guard page)")
    if guard and guard.contains(fault):
        pos = "in " + gtxt
    elif inside is not None:
        pos = f"past {gtxt}, inside {_label(inside)} ({inside.perms})"
    else:
        pos = "past " + gtxt
    if guard is None:
        pos += _overrun(f, region, fault, ctx.frames)
    d.headline = (f"thread stack overflow: thread {f.thread_num} (LWP {f.tid}) has a "
                  f"{hs(size)} stack and the fault is {hs(past)} below it, {pos} -- {phrase}")
    if region.raw_clone:
        d.explanation.insert(0, "A thread made by clone() runs on the memory the program passed "
                             "as clone()'s stack argument: a fixed block that never grows"
                             + (", with a guard page below." if guard else
                                " and has no guard page unless the program made one, so an "
                                "overflow runs into whatever lies below it.")
                             + " pthread_attr_* do not apply to it.")
    else:
        d.explanation.insert(0, "A thread's stack is a fixed mmap (pthread_attr_setstacksize, default "
                         "RLIMIT_STACK at start) with a PROT_NONE guard below; it never grows, so "
                         "any access below it faults." + (
                             "" if guard else " This one has no guard page: created with "
                             "pthread_attr_setguardsize(0), or on memory the program allocated "
                             "and passed with pthread_attr_setstack()" + (
                                 " (it lies in [heap]: malloc'd memory)"
                                 if getattr(_mapping_of(f, region), "path", "") == "[heap]"
                                 else "") + "."))
    needed = _needed(region, final_sp)
    size_needed = thread_stacksize_for(needed)
    default = _exec_limit(f)
    is_default = default is not None and abs(size - default) <= 64 << 10
    unlimited = (f.rlimit_known or f.exec_rlimit_known) and default is None
    if unlimited and abs(size - UNLIMITED_THREAD_DEFAULT) <= 64 << 10:
        d.explanation.append(
            f"RLIMIT_STACK is unlimited, and then glibc gives a thread created without a size "
            f"{hs(UNLIMITED_THREAD_DEFAULT)} (ARCH_STACK_DEFAULT_SIZE) instead of the soft "
            "limit a finite RLIMIT_STACK gives it (8 MiB by default): 'ulimit -s unlimited' "
            "shrinks thread stacks.")
    unknown = _unknown_use_fix(f, d, region, needed, f"a bigger thread stack "
                               f"(pthread_attr_setstacksize(&attr, {size_needed})) helps")
    if unknown is not None:
        d.fix = unknown
        return d
    if region.raw_clone and not _growing(d):
        stk = (f"pass clone() a stack of at least {size_needed} bytes ({hs(size_needed)}; it "
               f"needs about {hs(needed)}) -- the size of the block whose end is clone()'s stack "
               "argument -- with a PROT_NONE guard page below it (mmap it, then mprotect the "
               "lowest page)")
        if d.cause == "deep-recursion":
            d.fix = Fix("code", f"bound the recursion in {call_form(d.recursion.focus)}, or, if the depth "
                        f"is legitimate, {stk}", needed, stacksize=size_needed)
        else:
            d.fix = Fix("stack_size", stk + " -- or move the buffer to the heap", needed,
                        stacksize=size_needed)
        return d
    if d.cause == "deep-recursion":
        r = d.recursion
        d.fix = Fix("code", f"bound the recursion in {call_form(r.focus)}, or give the thread a "
                    "bigger stack (pthread_attr_setstacksize" + (
                        ", or a bigger block for pthread_attr_setstack" if guard is None else "")
                    + ") if the depth is legitimate", needed, stacksize=size_needed)
        return d
    if _recursing_below(d):
        d.fix = _outer_frame_fix(d, needed)
        return d
    if _growing(d):
        d.fix = _loop_fix(d, needed)
        return d
    text = (f"pthread_attr_setstacksize(&attr, {size_needed})   /* {hs(size_needed)}; the thread "
            f"needs about {hs(needed)} */ -- or move the buffer to the heap")
    if guard is None:
        text += (f"; a stack given with pthread_attr_setstack() must itself be that big, with a "
                 "PROT_NONE guard page below it")
    if is_default:
        text += (f"; this thread has the default size (RLIMIT_STACK at start, "
                 f"{hs(default)}), so ulimit -s {ulimit_kib_for(needed)} also does it")
    d.fix = Fix("pthread_attr_setstacksize", text, needed, stacksize=size_needed,
                ulimit_kib=ulimit_kib_for(needed) if is_default else None)
    return d


def _overrun(f: StackFacts, region: StackRegion, fault: int, frames) -> str:
    """The mappings between the fault and the stack's bottom: what an overflow without a guard
    page wrote over before it faulted (frames were placed there), or jumped past (one frame
    spans them: nothing was written)."""
    hit = [m for m in f.maps if m.end > fault and m.start < region.start and not m.contains(fault)
           and is_accessible(m.perms) and (region.guard is None or m.start != region.guard.start)]
    if not hit:
        return ""
    names: dict[str, list[str]] = {}
    for m in sorted(hit, key=lambda m: -m.end):
        names.setdefault(_label(m), []).append(m.perms)
    listed = ", ".join(f"{name} ({', '.join(perms)})" for name, perms in list(names.items())[:3])
    # a frame below the stack's bottom placed there: the mapping holding the stack itself (a
    # sigaltstack inside [heap]) is no evidence
    written = any(m.contains(fr.sp) for fr in frames if fr.sp < region.start for m in hit)
    if written:
        return f"; on its way its frames wrote over {listed} -- silent corruption before the fault"
    return f"; one frame jumped past {listed} (nothing was written there)"


def _mapping_of(f: StackFacts, region: StackRegion):
    from gdb_toolkit.common.procfs import find_mapping

    return find_mapping(f.maps, region.start)


def allocated_overflow(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int,
                       phrase: str, final_sp: int, inside) -> Diagnosis:
    """The program switched to a stack it allocated itself (a coroutine, a fiber) and ran off
    its bottom: RLIMIT_STACK has nothing to do with it."""
    d.verdict = "user-stack-overflow"
    size = region.end - region.start
    past = region.start - fault
    guard = region.guard
    if guard is not None and guard.contains(fault):
        pos = f"in the guard page below it (0x{guard.start:x})"
    elif inside is not None:
        pos = f"inside {_label(inside)} ({inside.perms}), no guard page below it"
    else:
        pos = "in unmapped memory below it (no guard page)"
    pos += _overrun(f, region, fault, ctx.frames)
    d.headline = (f"overflow of a stack the program allocated itself (not [stack]: a coroutine "
                  f"or fiber, makecontext/swapcontext): it is about {hs(size)} at "
                  f"0x{region.start:x}-0x{region.end:x} and the fault is {hs(past)} below it, "
                  f"{pos} -- {phrase}")
    d.explanation.insert(0, "The frames run on memory the program allocated (malloc or mmap) "
                         "and switched sp to: a fixed block that never grows, with no guard page "
                         "unless the program put one there. RLIMIT_STACK does not apply to it"
                         + (" -- unless it was mapped with MAP_GROWSDOWN, which a core does not "
                            "record (the kernel grows such a mapping like [stack], up to "
                            "RLIMIT_STACK)." if f.target == "core" else "."))
    needed = _needed(region, final_sp)
    new = thread_stacksize_for(needed)
    unknown = _unknown_use_fix(f, d, region, needed, f"a bigger block for this stack (at least "
                               f"{new} bytes) helps")
    if unknown is not None:
        d.fix = unknown
        return d
    if d.cause == "deep-recursion":
        r = d.recursion
        d.fix = Fix("code", f"bound the recursion in {call_form(r.focus)}, or give this context a bigger "
                    f"stack (at least {new} bytes) if the depth is legitimate", needed,
                    stacksize=new)
        return d
    if _growing(d):
        d.fix = _loop_fix(d, needed)
        return d
    d.fix = Fix("stack_size", f"allocate at least {new} bytes ({hs(new)}; it needs about "
                f"{hs(needed)}) for this stack (makecontext: uc_stack.ss_size; a fiber "
                "library: its stack-size option), with a PROT_NONE guard page below it "
                "(mmap + mprotect) so an overflow faults at once -- or move the buffer to the "
                "heap", needed, stacksize=new)
    return d


def fixed_main_stack(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int,
                     phrase: str, final_sp: int) -> Diagnosis:
    """A main stack that does not grow: a fixed mapping with a guard page below (qemu-user
    allocates the guest's stack so, sized by RLIMIT_STACK when qemu starts)."""
    d.verdict = "rlimit"
    size = region.end - region.start
    needed = _needed(region, final_sp)
    d.growth_requested = region.end - (fault & ~(f.page_size - 1))
    d.headline = (f"stack overflow: the main stack is a fixed {hs(size)} mapping with a "
                  f"PROT_NONE page below it and the fault is {hs(region.start - fault)} below it "
                  f"-- {phrase}")
    d.explanation.insert(0, f"This core was written by {f.core_writer}: qemu-user gives the "
                         "guest a fixed stack of RLIMIT_STACK (at least 8 MiB) when qemu starts, "
                         "with a guard page below; it never grows, so the stack size is the "
                         "limit.")
    d.fix = ulimit_fix(f, d, region, needed, None)
    return d


def altstack_overflow(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, fault: int,
                      phrase: str, final_sp: int, inside) -> Diagnosis:
    lo, hi = ctx.altstack
    size = hi - lo
    d.verdict = "altstack-overflow"
    h = ctx.handler or {}
    needed = hi - final_sp + (16 << 10)
    new = round_up(needed, 64 << 10)
    past = lo - fault
    into = f", inside {_label(inside)} ({inside.perms})" if inside is not None else ""
    # a sigaltstack has no guard: what lay between it and the fault was run over first
    into += _overrun(f, StackRegion(lo, hi, "alternate signal stack", ""), fault, ctx.frames)
    d.headline = (f"the signal handler {h.get('symbol', '??')}() overflowed its {hs(size)} "
                  f"alternate signal stack [0x{lo:x}, 0x{hi:x}): the fault is {hs(past)} below "
                  f"it{into} -- {phrase}")
    d.explanation.insert(0, "A handler installed with SA_ONSTACK runs on the sigaltstack the "
                         "program registered; that memory is a fixed buffer (often malloc'd "
                         "SIGSTKSZ, 8 KiB) with no guard: whatever lies below it is hit.")
    signo = h.get("signo")
    d.explanation.append(f"The handler was entered for "
                         + (f"signal {signo}" if signo is not None else "a signal")
                         + f" interrupting pc 0x{h.get('interrupted_pc_address') or 0:x} "
                         f"(frame #{h.get('level')} is <signal handler called>).")
    d.stack = StackRegion(lo, hi, "alternate signal stack",
                          f"uc_stack saved in the signal frame at frame #{h.get('level')}")
    d.stack_used = hi - min(final_sp, fault)
    if d.cause == "deep-recursion":
        # RLIMIT_STACK does not apply to a sigaltstack: its size is the program's own
        d.fix = Fix("code", f"bound the recursion in {call_form(d.recursion.focus)} (it runs in the "
                    f"signal handler), or, if the depth is legitimate, give the alternate signal "
                    f"stack at least {new} bytes (stack_t.ss_size = {new}; {hs(new)}, the "
                    f"handler used about {hs(needed)} when it faulted)", needed, stacksize=new)
        return d
    d.fix = Fix("sigaltstack", f"give the alternate signal stack at least {new} bytes "
                f"(stack_t.ss_size = {new}; {hs(new)}, the handler needs about {hs(needed)}), or "
                "keep big buffers out of the signal handler", needed, stacksize=new)
    return d
