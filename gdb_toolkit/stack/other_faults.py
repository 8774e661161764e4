"""The verdicts of a stop that is not a stack refused to grow: no fault address (a #GP or
#SS), a signal frame the kernel could not push, a corrupt stack pointer, a fault away from
the stack, and the health report of a stop without a fault.  Pure.

Split from diagnose.py, which imports this module only when one of them is the answer: a
stack that could not grow -- the case stack-diagnose exists for -- loads ~25 KB less
bytecode on its first call (issue 14).
"""
from gdb_toolkit.common.procfs import find_mapping
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack import causes, thread_clash
from gdb_toolkit.stack.context import Context
from gdb_toolkit.stack.diagnose import (NEAR_SP, NULL_PAGE, _classify, _is_guard, _sp_plausible,
                                        canonical, damaged_by, label)
from gdb_toolkit.stack.kernel_rules import is_accessible
from gdb_toolkit.stack.model import Diagnosis, Fix, StackFacts

SIGSTOP, SI_KERNEL = 19, 0x80    # Linux: SIGSTOP on x86_64, i386, aarch64; si_code of a kernel-sent signal


def no_address(f: StackFacts, d: Diagnosis, ctx: Context, region) -> Diagnosis:
    sig = ctx.signal
    trap = ctx.trap
    if not canonical(ctx.sp, f.arch) or (region is not None and not _sp_plausible(f, ctx, region)):
        return corrupt_sp(f, d, ctx, region, why=("sp is not a canonical address"
                                                  if not canonical(ctx.sp, f.arch) else None))
    pushed = signal_frame_refused(f, d, ctx, region)
    if pushed is not None:
        return pushed
    d.verdict = "not-stack"
    victim = damaged_by(f, ctx)
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
            return thread_clash.victim_verdict(f, d, ctx, victim)
        d.fix = Fix("code", "inspect the faulting instruction's operands (x/i $pc, info registers)")
        return d
    d.headline = (f"{sig.name} ({sig.code_name}): the fault address is not recorded "
                  + ("(the core has no NT_SIGINFO and the faulting instruction could not be "
                     "decoded)" if f.target == "core" else ""))
    d.explanation.append("Without the address the stack cannot be judged; x/i $pc and info "
                         "registers show what the instruction accessed.")
    d.fix = Fix("code", "inspect the faulting instruction's operands (x/i $pc, info registers)")
    return d


SIGFRAME_GUESS = {"x86_64": 4096, "aarch64": 4608}   # without auxv's AT_MINSIGSTKSZ


REDZONE = {"x86_64": 128}                             # the ABI's red zone below sp, skipped


GROWTH_VERDICTS = ("rlimit", "rlimit-as", "guard-gap", "stack-blocked", "stack-clash-jump",
                   "thread-overflow", "thread-clash", "altstack-overflow")


def signal_frame_refused(f: StackFacts, d: Diagnosis, ctx: Context, region) -> Diagnosis | None:
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


def corrupt_sp(f: StackFacts, d: Diagnosis, ctx: Context, region, why: str | None = None) -> Diagnosis:
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


def not_stack(f: StackFacts, d: Diagnosis, ctx: Context, region, inside, below, above) -> Diagnosis:
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
    victim = damaged_by(f, ctx)
    if victim:
        return thread_clash.victim_verdict(f, d, ctx, victim)
    d.fix = Fix("code", fix)
    return d


def health(f: StackFacts, d: Diagnosis, ctx: Context, region) -> Diagnosis:
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
    victim = damaged_by(f, ctx)
    if victim:
        return thread_clash.victim_verdict(f, d, ctx, victim)
    if d.recursion and cap and used is not None:
        r = d.recursion
        d.explanation.append(f"at that rate {max(0, (cap - used) // max(r.avg_frame, 1)):,} more "
                             "levels fit.")
    if cap and used is not None and used * 10 >= cap * 9:
        d.headline = d.headline.replace("stack healthy", "stack nearly full")
    if f.runtime is not None and f.runtime.kind == "rust":
        d.notes.append(f"a Rust program ({f.runtime.evidence})")
    return d
