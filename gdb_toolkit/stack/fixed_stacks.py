"""The verdicts of stacks that never grow, each with its fix: a thread's fixed-size stack
(``thread_overflow``), a block the program allocated and switched to -- a coroutine, a
fiber (``allocated_overflow``) --, the alternate signal stack (``altstack_overflow``) and
qemu-user's fixed main stack (``fixed_main_stack``).  Pure.

The main thread's [stack], which grows until a limit or a mapping stops it, is fixes.py; this
module uses its helpers and is imported only when the stack is one of these (the main
stack's first call loads ~16 KB less bytecode, issue 14).
"""
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack.fixes import (_exec_limit, _growing, _label, _loop_fix, _needed,
                                     _outer_frame_fix, _recursing_below, _unknown_use_fix,
                                     ulimit_fix)
from gdb_toolkit.stack.kernel_rules import (is_accessible, round_up, thread_stacksize_for,
                                            ulimit_kib_for)
from gdb_toolkit.stack.model import Diagnosis, Fix, StackFacts, StackRegion, call_form


UNLIMITED_THREAD_DEFAULT = 2 << 20    # glibc's ARCH_STACK_DEFAULT_SIZE (x86_64, aarch64)


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
