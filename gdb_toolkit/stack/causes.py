"""Who asked for the stack: one huge frame, a few big ones, a recursion, a probing loop --
and whether the faulting frame's own code could have moved sp there at all.  Pure."""
import functools
import re

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import record
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack.model import (ClashProbe, Culprit, Diagnosis, Fix, Frame, SpMover,
                                     StackFacts, call_form)

HUGE_FRAME = 64 << 10     # a frame at least this big (and half the stack) is "one huge frame"
BIG_FRAME = 16 << 10      # frames this big may together be "a few big frames"
UNEXPLAINED_MIN = 1 << 20 # a frame this much bigger than its code allows: sp was loaded


@record
class CauseFacts:
    culprit: Frame | None
    mover: SpMover | None
    probe: ClashProbe | None
    pivot: object | None            # the instruction that loaded sp (a stack switch)
    pivot_text: str | None
    unexplained: bool               # frame 0 is far bigger than its code can make it
    linked: bool                    # an outer frame's sp lies in the stack
    final_sp: int | None            # where sp was heading (a probing loop's target)
    protected: bool | None          # the culprit's code probes the stack


@functools.cache
def _i386_reg():
    """i386's register names (eax...), compiled when an i386 program is diagnosed."""
    return re.compile(r"\be(ax|bx|cx|dx|si|di|bp|sp|ip)\b")


def shown(text: str, arch: str) -> str:
    """An instruction as the program's own architecture spells it (i386: esp, dword ptr)."""
    if arch != "i386":
        return text
    return re.sub(r"\br(ax|bx|cx|dx|si|di|bp|sp|ip)\b", r"e\1", text).replace("qword ptr",
                                                                             "dword ptr")


def code_arch(arch: str) -> str:
    """The architecture the sp analysis reads: i386 code is read as x86_64 once its
    registers are renamed (esp -> rsp, dword ptr -> qword ptr; see ``_insns``)."""
    return "x86_64" if arch == "i386" else arch


def _insns(f: StackFacts, level: int):
    code = f.codes.get(level) if f.codes else None
    if code is None and f.code is not None and level == (f.frames[0].level if f.frames else 0):
        code = f.code
    if code is None or not f.capstone:
        return None, None
    from gdb_toolkit.common.disasm import Insn, disassemble

    try:
        insns = disassemble(code.data, code.start, f.arch)
    except ToolkitError:
        return None, code
    if f.arch == "i386":
        insns = [Insn(x.address, x.size, x.raw, x.mnemonic,
                      _i386_reg().sub(r"r\1", x.op_str).replace("dword ptr", "qword ptr"))
                 for x in insns]
    return insns, code


def analyse(f: StackFacts, d: Diagnosis, ctx, region) -> CauseFacts:
    from gdb_toolkit.stack.diagnose import culprit_frame
    from gdb_toolkit.stack.sp_insn import (detect_clash_probe, find_sp_mover, frame_explained,
                                           in_loop, source_of, stack_switch,
                                           static_probe_evidence)

    frames = ctx.frames
    first = frames[0] if frames else None
    top = culprit_frame(frames)
    mover = probe = pivot = None
    unexplained, protected = False, None
    if top is not None:
        insns, code = _insns(f, top.level)
        if insns:
            mover = find_sp_mover(insns, top.pc, code_arch(f.arch))
            if mover is not None:
                mover.source = source_of(mover.address, code.lines)
                mover.text = shown(mover.text, f.arch)
                if mover.dynamic:
                    protected = static_probe_evidence(insns, code_arch(f.arch))
                    mover.in_loop = in_loop(insns, mover.address, code_arch(f.arch))
    if first is not None:
        insns0, _ = _insns(f, first.level)
        if insns0:
            cfa = frames[1].sp if len(frames) > 1 else first.caller_sp
            regs = ctx_registers(f, ctx)
            probe = detect_clash_probe(insns0, first.pc, code_arch(f.arch), regs, cfa)
            pivot = stack_switch(insns0, first.pc, code_arch(f.arch))
            if probe is not None and f.arch == "i386":
                probe.probe = shown(probe.probe, f.arch)
                probe.step_text = probe.step_text and shown(probe.step_text, f.arch)
                probe.target_register = probe.target_register and shown(probe.target_register,
                                                                        f.arch)
            if first.size is not None and first.size >= UNEXPLAINED_MIN:
                unexplained = not frame_explained(insns0, first.pc, code_arch(f.arch), first.size)
    linked = region is not None and (
        any(region.start <= fr.sp < region.end for fr in frames[1:])
        or (bool(frames) and frames[-1].caller_sp is not None
            and region.start <= frames[-1].caller_sp <= region.end))
    pivot_text = None
    if pivot is not None:
        pivot_text = (f"{shown(pivot.text, f.arch)} at 0x{pivot.address:x} in {_name(first)} "
                      "loaded the stack "
                      "pointer with a value not computed from sp (a stack switch)")
    elif unexplained:
        pivot_text = (f"{_name(first)}'s code lowers sp by a few bytes at most (no run-time "
                      f"sized allocation, no probing loop), yet its frame would be "
                      f"{hs(first.size)}: sp did not get there through this function's frame")
    final = probe.target_sp if probe and probe.target_sp else None
    return CauseFacts(top, mover, probe, pivot, pivot_text, unexplained, linked, final, protected)


FRAME_POINTER = {"x86_64": "rbp", "i386": "rbp", "aarch64": "x29"}


def negative_allocation(f: StackFacts, ctx) -> tuple[SpMover, int, int] | None:
    """Frame 0 lowered sp by a register (a VLA or alloca) and sp now lies *above* its own
    frame pointer: the run-time size was negative, and ``sub rsp, REG`` moved sp up.
    (the instruction, the frame pointer, sp - frame pointer)."""
    from gdb_toolkit.common.procfs import find_mapping
    from gdb_toolkit.stack.kernel_rules import is_accessible
    from gdb_toolkit.stack.sp_insn import find_sp_mover, source_of

    first = ctx.frames[0] if ctx.frames else None
    fp = ctx_registers(f, ctx).get(FRAME_POINTER.get(f.arch, ""))
    if first is None or fp is None or not fp < ctx.sp:
        return None
    home = find_mapping(f.maps, fp)
    if home is None or not is_accessible(home.perms):
        return None
    insns, code = _insns(f, first.level)
    if not insns:
        return None
    mover = find_sp_mover(insns, first.pc, code_arch(f.arch))
    if mover is None or not mover.dynamic:
        return None
    mover.source = source_of(mover.address, code.lines)
    mover.text = shown(mover.text, f.arch)
    return mover, fp, ctx.sp - fp


def ctx_registers(f: StackFacts, ctx) -> dict[str, int]:
    """Registers of the context's frame 0 (the thread's, or those the signal frame saved)."""
    if ctx.sigframe_level is not None and ctx.frames and ctx.frames[0].level > 0:
        sf = next((s for s in f.signal_frames if s.level == ctx.sigframe_level), None)
        if sf is not None and sf.registers:
            return sf.registers
        return {}
    if f.arch == "i386":                              # named as the renamed code reads them
        return {_i386_reg().sub(r"r\1", k): v for k, v in f.registers.items()}
    return f.registers


def _name(fr: Frame | None) -> str:
    from gdb_toolkit.stack.recursion import frame_label

    return call_form(frame_label(fr)) if fr is not None else "??()"


def drop(d: Diagnosis) -> None:
    """Not a growth problem: no culprit, no probe, no cause."""
    d.culprit, d.clash_probe, d.cause = None, None, None


def _recursion(f: StackFacts, ctx, region):
    from gdb_toolkit.stack.recursion import detect_recursion

    top = region.end if region is not None else None
    r = detect_recursion(ctx.frames, f.frames_complete, f.read_memory, top, f.arch,
                         f.function_of)
    if r is not None:
        r.own = _own_function(f, r, ctx.frames)
    return r


def shared_lib(name: str) -> bool:
    r"""re.search(r"\.so(\.[0-9.]+)?$", name) without compiling it (a first call's ~0.1 ms):
    only the last ".so" can be followed by nothing but digits and dots."""
    i = name.rfind(".so")
    if i < 0:
        return False
    rest = name[i + 3:]
    if rest.endswith("\n"):              # $ also matches before a final newline
        rest = rest[:-1]
    return rest == "" or (rest[0] == "." and len(rest) > 1
                          and all(c in "0123456789." for c in rest[1:]))


def _own_function(f: StackFacts, r, frames: list[Frame]) -> str | None:
    """The cycle's first function (call order) whose code lies in the program rather than in
    a shared library -- the one the user can change: a recursion through qsort() is the
    comparison callback's, not msort_with_tmp()'s."""
    from gdb_toolkit.common.procfs import find_mapping
    from gdb_toolkit.stack.recursion import frame_label

    where = {}
    for fr in frames:
        where.setdefault(frame_label(fr), fr.pc)
    libs = []
    for name in r.functions:
        pc = where.get(name)
        m = find_mapping(f.maps, pc) if pc is not None else None
        if m is None or not m.path:
            continue
        if not shared_lib(m.path.rsplit("/", 1)[-1]):
            return name
        libs.append(name)
    return None


def decide(f: StackFacts, d: Diagnosis, ctx, region, c: CauseFacts) -> str:
    """Pick the cause; add its explanation; return the headline phrase."""
    frames = ctx.frames
    d.clash_probe = c.probe
    d.recursion = _recursion(f, ctx, region)
    d.clash_protection = True if c.probe is not None else c.protected
    final_sp = min(x for x in (ctx.sp, ctx.fault, c.final_sp) if x is not None)
    used = (region.end - final_sp) if region is not None else None
    if f.program_mismatch and used is not None:
        # gdb's symbols and unwind tables are another build's: its frames past #0 are junk,
        # and so would be any recursion or frame size read from them
        d.recursion, d.cause = None, None
        return (f"who used {hs(used)} of stack is unknown: the program file is not the one "
                "that ran (see the note)")
    if region is not None:
        from gdb_toolkit.stack.fixes import absent_in

        if absent_in(f, region, ctx.sp):
            # the frames above frame 0 were read from memory the core does not hold (gdb reads
            # zeros there): no recursion can be told from them.  Frame 0's own size stands
            # (its CFA comes from the registers and its unwind rule, not from memory): one
            # huge frame there is still named
            d.recursion = None
            top0 = c.culprit
            if not (top0 is not None and frames and top0.level == frames[0].level
                    and top0.size >= HUGE_FRAME and (used is None or top0.size * 2 >= used)):
                d.cause = None
                return f"who used {hs(used)} of stack is unknown: the core does not hold the stack"
    reserved = _thread_reserved(f, ctx, region)
    tls_phrase = ""
    if reserved and used:
        # the frames had the block minus what glibc keeps at its top: judge them by that
        size = region.end - region.start
        d.explanation.append(
            f"Above its outermost frame this thread's block holds {hs(reserved)} that no frame "
            f"used: its thread control block and static thread-local storage (__thread "
            f"variables: glibc carves them out of the stack size the thread was created with), "
            f"leaving {hs(max(0, size - reserved))} of the {hs(size)} for frames.")
        tls_phrase = f"{hs(reserved)} of the block is its TLS and TCB; "
        used -= reserved
    top = c.culprit
    if top is not None:
        d.culprit = Culprit(_label(top), top.level, top.size, c.mover, top.source)
    r, p = d.recursion, c.probe
    if p is not None:
        d.cause = "clash-probe"
        req = hs(p.requested) if p.requested else "a large frame"
        if d.culprit is not None and p.step_address is not None and (
                d.culprit.instruction is None or not d.culprit.instruction.dynamic):
            from gdb_toolkit.stack.sp_insn import source_of

            code = f.codes.get(d.culprit.level)
            d.culprit.instruction = SpMover(p.step_address, p.step_text, True,
                                            source_of(p.step_address, code.lines) if code else None)
            c.mover = d.culprit.instruction
        if d.culprit is not None and d.culprit.instruction is not None:
            d.culprit.instruction.text += " (in the probing loop)"
        d.explanation.append(
            f"-fstack-clash-protection probing loop at 0x{p.loop_start:x} ({p.probe}): it lowers "
            f"sp {hs(p.step)} at a time and touches each page so the stack can never jump over "
            f"the guard gap; it faulted part-way while allocating {req}"
            + (f" (loop target sp = {p.target_register} = 0x{p.target_sp:x})" if p.target_sp else "")
            + ".")
    huge = top is not None and top.size >= HUGE_FRAME and (used is None or top.size * 2 >= used)
    rec_bytes = r.depth * r.avg_frame if r else 0
    if r is not None and not p and not huge and used and rec_bytes * 2 < used:
        outer = _outer_frame(f, r, region, used)
        if outer is not None:
            return tls_phrase + _outer_verdict(d, r, outer, rec_bytes)
    if r is not None and not p and (not huge or rec_bytes * 2 >= (used or 0)):
        d.cause = "deep-recursion"
        cyc = " -> ".join(call_form(x) for x in r.functions + r.functions[:1])
        where = (f", {r.first_level} frame{'s' if r.first_level > 1 else ''} above the fault"
                 if r.first_level else "")
        rounds = (f" -- {r.rounds:,} times round the {len(r.functions)}-function cycle"
                  if r.rounds else "")
        d.explanation.append(
            f"deep recursion: {cyc} repeats{where}; {_depth(r, ' frames')}{rounds} "
            f"({r.depth_method}), average frame {r.avg_frame} B.")
        return tls_phrase + f"deep recursion in {call_form(r.focus)} ({_depth(r)}, {r.avg_frame} B/frame)"
    if (huge or p) and top is not None:
        d.cause = d.cause or "huge-frame"
        size = p.requested if (p and p.requested) else top.size
        ins = c.mover
        where = f" ({ins.text} at 0x{ins.address:x}{', ' + ins.source if ins.source else ''})" if ins else ""
        d.explanation.append(
            f"one huge frame: {call_form(_label(top))} (frame #{top.level}) takes {hs(size)} of "
            f"stack{where}" + (" -- an alloca() (or a VLA) inside a loop: the frame grows by "
                               "its size at every iteration and is only freed when the "
                               "function returns, so how much it would take in the end is "
                               "not known" if ins and ins.in_loop else
                               " -- a variable-length array or alloca sized at run time"
                               if ins and ins.dynamic else "") + ".")
        _hints(d, top, c)
        return tls_phrase + f"one huge frame in {call_form(_label(top))} ({hs(size)})"
    big = sorted((fr for fr in frames if fr.size and fr.size >= BIG_FRAME),
                 key=lambda fr: -fr.size)[:4]
    if big and used and sum(fr.size for fr in big) * 10 >= used * 8:
        d.cause = "big-frames"
        listed = ", ".join(f"{call_form(_label(fr))} {hs(fr.size)}" for fr in sorted(big, key=lambda x: -x.level))
        d.explanation.append(f"{len(big)} big frame{'s' if len(big) > 1 else ''} take{'' if len(big) > 1 else 's'} {hs(sum(fr.size for fr in big))} of "
                             f"the {hs(used)} used: {listed}.")
        return tls_phrase + f"{len(big)} big frame{'s' if len(big) > 1 else ''} ({listed})"
    first = frames[0] if frames else None
    if (f.frames_stopped and first is not None and first.size is None and region is not None
            and region.start - first.sp >= HUGE_FRAME and first.sp < region.start):
        # gdb could not find frame 0's caller; but every frame pushes its return address, so
        # the stack's pages reach down to the lowest frame that ever ran: frame 0's sp far
        # below them was moved there in one step, touching nothing in between
        jump = region.start - first.sp
        name = _label(first) + ("()" if first.function else "")
        d.cause = "huge-frame"
        d.culprit = Culprit(_label(first), first.level, jump, c.mover, first.source)
        d.explanation.append(
            f"one huge frame: {name} (frame #{first.level}) put sp 0x{first.sp:x} "
            f"{hs(jump)} below the lowest page the stack had ever reached (0x{region.start:x}); "
            "every call writes its return address, so the stack's pages reach down to the "
            "innermost frame that ever ran -- this frame moved sp past all of that in one "
            "step (a variable-length array, an alloca or a huge local array; a corrupted sp "
            "would look the same, and the code that would tell is not at hand).")
        return tls_phrase + f"one huge frame in {name} (at least {hs(jump)})"
    if f.frames_stopped and first is not None and used and region is not None:
        last = frames[-1]
        walked = (last.caller_sp or last.sp) - ctx.sp
        if walked * 2 < used:
            # gdb's unwinder gave up (no unwind table for the code: a program file that is
            # not the one that ran, a JIT, a corrupt return address): the frames it found
            # cover a small part of the stack in use, so who used the rest is not known
            d.cause = None
            return tls_phrase + (f"who used {hs(used)} of stack is unknown: gdb's walk stopped at frame "
                    f"#{last.level} ({f.frames_stopped})")
    d.cause = "many-frames"
    if top is not None:
        d.explanation.append(f"no single frame or recursion dominates: the largest of the "
                             f"{len(frames)}{'' if f.frames_complete else '+'} frames is "
                             f"{call_form(_label(top))} {hs(top.size)} (frame #{top.level}).")
    return tls_phrase + (f"{len(frames)}{'' if f.frames_complete else '+'} frame{'s' if len(frames) != 1 else ''}"
            ", none dominating")


@record
class OuterFrame:
    """The frame that made a recursion's outermost call, found past the bounded walk."""
    name: str
    level: int
    size: int
    exact: bool                     # its own frame (saved frame pointers); else the span from
                                    # its sp to the stack top (its callers, argv, environment)
    span: int                       # stack top - its sp


def _outer_frame(f: StackFacts, r, region, used: int) -> OuterFrame | None:
    """When the chain walk left the recursion (exact depth) far below the stack top: the
    frames outside it hold most of the stack -- a huge frame further out than the bounded
    walk reaches (main()'s 6 MB array under a 600-deep recursion).  Its own size from the
    frame pointer the recursion's outermost frame saved (x86: its caller's rbp at the CFA - 2
    words), when that leads to a return address into code; else the span up to the top."""
    sp = r.caller_sp
    if not r.depth_exact or sp is None or region is None or not region.start < sp <= region.end:
        return None
    span = region.end - sp
    if span < HUGE_FRAME or span * 2 < used:
        return None
    find = f.function_of if callable(f.function_of) else (lambda _a: None)
    name = find(r.caller_pc) if r.caller_pc is not None else None
    label = name or f"code at 0x{r.caller_pc:x} (no symbol)"
    size, exact = span, False
    if f.arch == "x86_64" and f.read_memory is not None:
        raw = f.read_memory(sp - 16, 8)             # the caller's rbp, pushed by the callee
        if raw is not None and len(raw) == 8:
            cfa = int.from_bytes(bytes(raw), "little") + 16
            if sp < cfa <= region.end:
                ra = f.read_memory(cfa - 8, 8)
                if ra is not None and len(ra) == 8 and find(
                        int.from_bytes(bytes(ra), "little")) is not None:
                    size, exact = cfa - sp, True
    return OuterFrame(label, r.first_level + r.depth, size, exact, span)


def _outer_verdict(d: Diagnosis, r, o: OuterFrame, rec_bytes: int) -> str:
    d.cause = "huge-frame"
    d.culprit = Culprit(o.name, o.level, o.size, None, None)
    name = call_form(o.name)
    held = (f"its own frame takes {hs(o.size)} (from the frame pointer saved below it)"
            if o.exact else f"it and the frames above it (its callers, argv and the "
                            f"environment) hold {hs(o.size)}")
    d.explanation.append(
        f"one huge frame outside the recursion: {name} (frame #{o.level:,}, past the bounded "
        f"walk) made the outermost {call_form(r.focus)} call {hs(o.span)} below the stack top; {held}. "
        f"The recursion below it, {_depth(r, ' frames')} of {r.avg_frame} B, took "
        f"{hs(rec_bytes)}, and was still going when the stack ran out.")
    return (f"one huge frame in {name} ({'' if o.exact else 'at most '}{hs(o.size)}), outside "
            f"the recursion in {call_form(r.focus)} ({_depth(r)}) that ran out of what it left")


#: what glibc keeps at the top of a thread's block (struct pthread, a small static TLS, the
#: alignment) stays under this; more is the program's own __thread data
TLS_NOTABLE = 16 << 10


def _thread_reserved(f: StackFacts, ctx, region) -> int | None:
    """Bytes at the top of a pthread's block above its outermost frame (the TCB and static
    TLS), when the walk is complete and they are notably many (big __thread arrays)."""
    if (region is None or f.is_main_thread or region.raw_clone or region.allocated
            or region.overrun or not f.frames_complete or not ctx.frames
            or ctx.sigframe_level is not None):
        return None
    last = ctx.frames[-1]
    outer = last.caller_sp or last.sp
    if not region.start < outer < region.end:
        return None
    reserved = region.end - outer
    return reserved if reserved >= TLS_NOTABLE else None


def _label(fr: Frame) -> str:
    from gdb_toolkit.stack.recursion import frame_label

    return frame_label(fr)


def _depth(r, unit: str = "") -> str:
    """"depth 55,174" (+ *unit*), or a bound and the estimate after it (the unit stays with
    the count: "depth at least 128 frames, about 3,918 by ...")."""
    if r.depth_exact:
        return f"depth {r.depth:,}{unit}"
    est = f", about {r.estimate:,} by stack used / average frame" if r.estimate and r.estimate > r.depth else ""
    return f"depth at least {r.depth:,}{unit}{est}"


def _hints(d: Diagnosis, top: Frame, c: CauseFacts) -> None:
    if c.mover is None or not c.mover.dynamic:
        return
    name = _label(top)
    if d.clash_protection is False:
        d.explanation.append(
            f"{call_form(name)} has no stack probes (built without -fstack-clash-protection): an "
            "allocation bigger than the guard gap can jump over it into another mapping "
            "silently. -fstack-usage reports this frame as 'dynamic'; -Wvla-larger-than=N and "
            "-Walloca-larger-than=N flag such allocations at compile time.")
    elif d.clash_protection:
        d.explanation.append(
            f"{call_form(name)} probes the stack (-fstack-clash-protection), so the allocation faults "
            "cleanly at the limit instead of jumping over the guard gap; -Wvla-larger-than=N / "
            "-Walloca-larger-than=N flag it at compile time.")


def health(f: StackFacts, d: Diagnosis, ctx, region) -> None:
    from gdb_toolkit.stack.diagnose import culprit_frame

    d.recursion = _recursion(f, ctx, region)
    top = culprit_frame(ctx.frames)
    if d.recursion:
        r = d.recursion
        d.explanation.append(f"recursion in progress: {' -> '.join(r.functions)}, {_depth(r)} "
                             f"({r.depth_method}), {r.avg_frame} B/frame.")
    if top is not None and top.size >= HUGE_FRAME:
        d.culprit = Culprit(_label(top), top.level, top.size, None, top.source)
        d.explanation.append(f"largest frame: {call_form(_label(top))} {hs(top.size)}.")
    elif d.recursion is not None and d.stack_used:
        o = _outer_frame(f, d.recursion, region, d.stack_used)
        if o is not None:                # past the walk: the frame that called the recursion
            d.culprit = Culprit(o.name, o.level, o.size, None, None)
            d.explanation.append(f"largest frame: {call_form(o.name)} {'' if o.exact else 'at most '}"
                                 f"{hs(o.size)} (frame #{o.level:,}, which called the "
                                 "recursion).")


def go_runtime(f: StackFacts, d: Diagnosis, ctx) -> Diagnosis:
    """A Go program: the OS thread's stack is not where goroutines run."""
    rt = f.runtime.details
    d.verdict = "go-runtime"
    drop(d)
    g = rt.get("goroutine")
    limit = rt.get("max_stack_bytes")
    if g and g.get("lo_address") is not None:
        size = g["hi_address"] - g["lo_address"]
        over = limit is not None and size * 2 > limit
        d.headline = (f"a Go program: goroutine {g.get('id', '?')} runs on a {hs(size)} stack "
                      f"[0x{g['lo_address']:x}, 0x{g['hi_address']:x}) the Go runtime allocated"
                      + (f"; doubling it would pass runtime.maxstacksize ({hs(limit)}): "
                         "'goroutine stack exceeds' -- a stack overflow" if over else ""))
    else:
        d.headline = "a Go program: goroutine stacks are managed by the Go runtime"
    d.explanation.append(
        "Go manages goroutine stacks itself: they live on the Go heap, start small and grow by "
        "copying (runtime.morestack) up to runtime/debug.SetMaxStack (1 GB on 64-bit); "
        "RLIMIT_STACK and the kernel's stack growth do not apply, and the OS thread stack seen "
        "here (g0) is not the goroutine's.")
    if rt.get("frames"):
        d.explanation.append("goroutine frames: " + ", ".join(rt["frames"][:6]) + ".")
    if rt.get("recursion"):
        d.explanation.append(f"the goroutine's frames repeat: {rt['recursion']}.")
    d.fix = Fix("code", "a 'goroutine stack exceeds' fatal error is unbounded recursion: see the "
                "goroutine trace (GOTRACEBACK=all) and bound it; if the depth is legitimate, raise "
                "the limit with runtime/debug.SetMaxStack")
    d.stack_used = None
    return d
