"""The verdicts of a stack that could not grow, each with a fix that works when the program
is re-run.  Pure.

A fix is only offered where it provably changes the outcome: ``ulimit -s N`` when nothing
fixed sits closer than N below the stack (RLIMIT_STACK at exec moves the libraries, see
``kernel_rules``) and N is within the hard limit; ``pthread_attr_setstacksize`` for a thread;
the sigaltstack size for a handler; otherwise moving the buffer to the heap or the code.

Stacks that never grow (a thread's, a coroutine's, the sigaltstack, qemu-user's main stack)
are stack/fixed_stacks.py, which uses this module's helpers; one thread's stack overflowing
into another's is stack/thread_clash.py.
"""
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack.kernel_rules import (CALLEE_MARGIN, aslr_sentence, is_accessible,
                                            moves_with_limit, round_up, ulimit_kib_for)
from gdb_toolkit.stack.model import Diagnosis, Fix, StackFacts, StackRegion, call_form

MIB = 1 << 20


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


