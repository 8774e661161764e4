"""Which fault to diagnose, and from which frames.  Pure.

The stop itself when it is a memory fault.  Otherwise, when the program's own handler has
already run -- a SIGSEGV handler that aborts, Rust's "has overflowed its stack" handler, a
process attached while it sits in its handler -- the original fault is in the kernel's signal
frame (``<signal handler called>``): its siginfo says what faulted where, its ucontext holds
the interrupted sp and pc, and the frames beyond it are the code that faulted.

And which memory is the faulting thread's stack (``find_stack_region``; one module with
the choice above: a first stack-diagnose needs both).

The main stack is ``[stack]`` in /proc/PID/maps; a core does not name it, so it is the
mapping the frames' stack pointers (or auxv's AT_EXECFN, which points into the initial stack)
lie in.  A glibc thread stack is an mmap'd block: its guard (PROT_NONE) at the bottom, its
thread control block -- where the thread pointer (fs_base / tpidr_el0) points -- at the top.
Blocks of threads created with a zero guard size merge into one mapping, so the thread
pointers are what separates them.
"""

from gdb_toolkit.common.procfs import Mapping, find_mapping
from gdb_toolkit.common.record import field, record
from gdb_toolkit.stack.kernel_rules import is_accessible
from gdb_toolkit.stack.model import MEMORY_SIGNALS, Frame, SignalInfo, StackFacts, StackRegion

FAULT_SIGNALS = MEMORY_SIGNALS + (4, 8)       # SIGILL and SIGFPE carry an address too


@record
class Context:
    signal: SignalInfo | None
    sp: int
    pc: int
    frames: list[Frame]             # innermost first; frames[0] is the faulting frame
    fault: int | None
    signal_source: str
    fault_how: str = ""
    handler: dict | None = None     # the program's handler that ran for this fault
    stopped_by: dict | None = None  # the stop, when it is not the fault diagnosed
    altstack: tuple[int, int] | None = None   # the handler's sigaltstack we are running on
    trap: int | None = None         # x86_64 trap number from the signal frame
    sigframe_level: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_fault(self) -> bool:
        s = self.signal
        return s is not None and (s.is_memory_fault or s.is_kernel_trap)


def _frame_name(f: Frame | None) -> str:
    from gdb_toolkit.stack.recursion import frame_label

    return frame_label(f) if f is not None else "??"


def _frame_at(f: StackFacts, level: int) -> Frame | None:
    """The frame at *level*: in the bounded walk, or one found past it (a far handler)."""
    if level < 0:
        return None
    fr = next((x for x in f.frames if x.level == level), None)
    return fr if fr is not None else f.far_frames.get(level)


def choose(f: StackFacts) -> Context:
    stop = f.signal
    sfs = f.signal_frames
    if stop is not None and (stop.is_memory_fault or stop.is_kernel_trap):
        ctx = Context(stop, f.sp, f.pc, f.frames, stop.addr if stop.is_memory_fault else None,
                      f.signal_source)
        if sfs:
            sf = sfs[0]
            ctx.sigframe_level = sf.level
            handler = _frame_at(f, sf.level - 1)
            ctx.handler = {"symbol": _frame_name(handler), "signo": sf.signo,
                           "level": sf.level, "on_altstack": sf.on_altstack,
                           "altstack": ({"start_address": sf.altstack_sp, "size": sf.altstack_size}
                                        if sf.altstack_sp is not None else None),
                           "interrupted_pc_address": sf.pc, "interrupted_sp_address": sf.sp}
            if sf.on_altstack:
                ctx.altstack = (sf.altstack_sp, sf.altstack_sp + sf.altstack_size)
        if stop.is_memory_fault and stop.addr is None:
            _derive_fault(f, ctx)
        return ctx
    for sf in sfs:
        if sf.signo not in FAULT_SIGNALS:
            continue
        after = [fr for fr in f.frames if fr.level > sf.level]
        if not after or after[0].pc != sf.pc:
            after = [Frame(sf.level + 1, sf.pc, sf.sp, after[0].function if after else None,
                           after[0].source if after else None)] + after[1:]
        sig = SignalInfo(sf.signo, sf.code, sf.addr)
        handler = _frame_at(f, sf.level - 1)
        ctx = Context(sig, sf.sp, sf.pc, after, sf.addr if sig.is_memory_fault else None,
                      f"the kernel's signal frame at frame #{sf.level} (<signal handler "
                      "called>): the " + ("siginfo" if sf.signal_how == "siginfo" else
                                          f"signal {sf.signal_how}")
                      + " and registers it saved for the handler",
                      trap=sf.trapno, sigframe_level=sf.level)
        ctx.handler = {"symbol": _frame_name(handler), "signo": sf.signo, "level": sf.level,
                       "on_altstack": sf.on_altstack,
                       "altstack": ({"start_address": sf.altstack_sp, "size": sf.altstack_size}
                                    if sf.altstack_sp is not None else None),
                       "interrupted_pc_address": sf.pc, "interrupted_sp_address": sf.sp}
        ctx.stopped_by = {"signal_name": stop.name if stop else None,
                          "si_code_name": stop.code_name if stop else None,
                          "symbol": _frame_name(f.frames[0] if f.frames else None),
                          "sp_address": f.sp, "pc_address": f.pc}
        return ctx
    return Context(stop, f.sp, f.pc, f.frames, None, f.signal_source)


def _derive_fault(f: StackFacts, ctx: Context) -> None:
    """No si_addr recorded (a core with only pr_cursig): the address the faulting
    instruction accessed, from its operands and the registers."""
    if not f.capstone or not f.insn_at_pc:
        ctx.notes.append("the fault address was not recorded and cannot be derived without "
                         "the faulting instruction")
        return
    from gdb_toolkit.stack.fault_insn import faulting_access

    try:
        acc = faulting_access(f.insn_at_pc, f.pc, f.arch, f.registers)
    except Exception:                                 # a disassembler failure: no address
        acc = None
    if acc is None:
        return
    ctx.fault = acc.address
    ctx.fault_how = (f"computed from the faulting instruction '{acc.text}' and its registers "
                     f"({ctx.signal_source} recorded no address)")
    ctx.notes.append(f"fault address 0x{acc.address:x} {ctx.fault_how}")


# -- whose stack ----------------------------------------------------------------------------

# a block whose mapping reaches further above the thread pointer holds more than one block:
# on x86_64 glibc puts struct pthread (and tp) in the last page of the block, static TLS below
# it; on aarch64 the static TLS lies above tp
TCB_SLACK = {"aarch64": 64 << 10}


def mapping_below(maps: list[Mapping], addr: int) -> Mapping | None:
    below = [m for m in maps if m.end <= addr]
    return max(below, key=lambda m: m.end) if below else None


def mapping_above(maps: list[Mapping], addr: int) -> Mapping | None:
    above = [m for m in maps if m.start > addr]
    return min(above, key=lambda m: m.start) if above else None


def _page_up(x: int, page: int) -> int:
    return -(-x // page) * page


def thread_block_top(f: StackFacts, tp: int | None, mapping: Mapping) -> int:
    """The top of a thread's own stack block: the page holding its TCB, when the mapping
    reaches further up (merged with the block of a thread created before it)."""
    if tp is None or not mapping.start < tp < mapping.end:
        return mapping.end
    top = _page_up(tp + 1, f.page_size)
    return top if mapping.end - top > TCB_SLACK.get(f.arch, 0) else mapping.end


def _switched_stack(f: StackFacts, ctx, named: Mapping | None) -> StackRegion | None:
    """The main thread running on a stack the program allocated (makecontext/swapcontext, a
    fiber or green-thread library): its frames' sp chain lies in another writable mapping,
    none of them in [stack], and no signal frame leads there (that is a sigaltstack)."""
    if named is None or any(fr.signal_frame for fr in ctx.frames):
        return None
    outer = [fr for fr in ctx.frames[1:] if not fr.virtual]
    if len(outer) < 2 or any(named.contains(fr.sp) for fr in outer):
        return None
    votes: dict[int, list] = {}
    for fr in outer:
        hit = find_mapping(f.maps, fr.sp)
        if hit is not None:
            votes.setdefault(hit.start, [hit, 0])[1] += 1
    if not votes:
        return None
    m = max(votes.values(), key=lambda v: v[1])[0]     # the overflow may have run into the
                                                       # mapping below: most frames tell
    if "w" not in m.perms[:3] or m.path == "[stack]" or m.start == named.start:
        return None
    # an outermost frame with nothing pushed yet has sp at the block's very end (makecontext's
    # top frame on a mapping that did not merge with the one above it, as a MAP_GROWSDOWN
    # mapping never does): it still belongs to that block
    inside = [fr for fr in outer if m.start <= fr.sp <= m.end]
    if len(inside) * 4 < len(outer) * 3 or any(b.sp <= a.sp for a, b in zip(inside, inside[1:])):
        return None
    top = m.end
    if f.frames_complete:
        # the outermost frame (the context's entry, __start_context) sits at the top of the
        # block the program allocated; the mapping may hold more (malloc's heap, a merge)
        last = inside[-1]
        high = last.caller_sp if last.caller_sp and m.contains(last.caller_sp) else last.sp
        top = min(m.end, _page_up(high + 64, f.page_size))
    guard = next((g for g in f.maps if g.end == m.start and not is_accessible(g.perms)), None)
    where = f"in {m.label}" if m.path else "in an anonymous mapping"
    return StackRegion(m.start, top, "stack the program allocated",
                       f"the mapping holding the frames' stack pointers ({where} "
                       f"0x{m.start:x}-0x{m.end:x}), not [stack]: a stack the program switched "
                       "to (makecontext/swapcontext, a fiber library, -fsplit-stack segments)"
                       + ("; its top from the outermost frame" if top != m.end else ""),
                       guard, allocated=True)


def find_stack_region(f: StackFacts, ctx) -> StackRegion | None:
    """The stack the context's frames run on (their outer frames' sp), with its guard."""
    frames = ctx.frames
    anchors = [fr.sp for fr in frames[1:]] + [ctx.sp]
    if f.is_main_thread and f.stack_hint is not None:
        anchors.append(f.stack_hint)
    votes: dict[int, list] = {}
    for a in anchors:
        m = find_mapping(f.maps, a)
        if m is not None and is_accessible(m.perms):
            votes.setdefault(m.start, [m, 0, a])[1] += 1
    named = next((m for m in f.maps if m.path == "[stack]"), None) if f.is_main_thread else None
    region, how = None, ""
    initial = named
    if initial is None and f.is_main_thread and f.stack_hint is not None:
        initial = find_mapping(f.maps, f.stack_hint)      # a core: the initial stack (auxv)
    switched = _switched_stack(f, ctx, initial)
    if switched is not None:
        return switched
    if named is not None:
        region, how = named, "the [stack] mapping of " + f.maps_source
    elif votes:
        hint = f.stack_hint if f.is_main_thread else None
        best = max(votes.values(),
                   key=lambda v: (hint is not None and v[0].contains(hint), v[1], v[0].end))
        region = best[0]
        if hint is not None and region.contains(hint):
            how = f"the mapping holding auxv's AT_EXECFN 0x{hint:x} (the initial stack)"
        else:
            lvl = next((fr.level for fr in frames if fr.sp == best[2]), None)
            how = (f"the mapping holding frame #{lvl}'s stack pointer 0x{best[2]:x}"
                   if lvl is not None else f"the mapping holding sp 0x{best[2]:x}")
    if region is None:
        return None
    start, end = region.start, region.end
    if f.is_main_thread:
        label = "[stack]" if region.path == "[stack]" else "main stack (unnamed in a core file)"
        guard = None
        if f.core_writer:
            # qemu-user gives the guest a fixed stack with a PROT_NONE page below it
            guard = next((m for m in f.maps if m.end == start and not is_accessible(m.perms)), None)
            if guard is not None:
                label = "main stack (a fixed mapping)"
        return StackRegion(start, end, label, how, guard)
    me = next((t for t in f.threads if t.tid == f.tid), None)
    twin = next((t for t in f.threads if me is not None and me.tp is not None
                 and t.tid != f.tid and t.tp == me.tp), None)
    if twin is not None:
        # glibc gives every pthread its own TCB; a thread sharing another's thread pointer was
        # made by clone() without CLONE_SETTLS, on a stack the program passed it: its thread
        # pointer says nothing about where that stack ends
        how += (f"; it shares its thread pointer 0x{me.tp:x} with thread {twin.num}: made by "
                "clone() itself (no CLONE_SETTLS), not pthread_create(), on the stack the "
                "program passed to clone()")
        guard = next((m for m in f.maps if m.end == start and not is_accessible(m.perms)), None)
        top = end
        if f.frames_complete and frames:
            # the outermost frame (clone's own) sits at the top of the block it was given
            last = frames[-1]
            high = last.caller_sp if last.caller_sp and region.contains(last.caller_sp) else last.sp
            if region.contains(high):
                top = min(end, _page_up(high + 64, f.page_size))
                how += "; its top from the outermost frame"
        return StackRegion(start, top, "stack passed to clone()", how, guard, raw_clone=True)
    overrun = False
    own = _own_block(f, me, region)
    if own is not None:
        # the frames' stack pointers lie in another thread's block, below this thread's own
        # (where its thread pointer is): it ran past the bottom of its block -- a block with
        # no guard (pthread_attr_setstack, setguardsize 0) -- on into the next one down
        region, overrun = own, True
        start, end = region.start, region.end
        how = (f"the mapping holding its thread pointer 0x{me.tp:x} (its own block); its "
               f"frames' stack pointers lie below it, in another thread's block ({how})")
    top = thread_block_top(f, me.tp if me else None, region)
    if top != end:
        how += f"; its block ends at its thread control block (thread pointer 0x{me.tp:x})"
    ref = max((fr.sp for fr in frames if start <= fr.sp < top), default=ctx.sp)
    others = [thread_block_top(f, t.tp, region) for t in f.threads
              if t.tid != f.tid and not t.main and t.tp is not None and start < t.tp < end]
    lower = [t for t in others if t <= ref and t < top]
    if lower and max(lower) > start:
        start = max(lower)
        how += "; below it begins the block of another thread"
    guard = next((m for m in f.maps if m.end == start and not is_accessible(m.perms)), None)
    if guard is None and f.target == "core":
        # gdb's gcore writes PROT_NONE guard pages as readable segments: take a small anonymous
        # mapping right below a thread stack for its guard
        guard = next((m for m in f.maps if m.end == start and not m.path
                      and m.size <= (1 << 20)), None)
        if guard is not None:
            how += ("; the small anonymous mapping just below is taken as its guard (a core "
                    "file may not record PROT_NONE)")
    return StackRegion(start, top, "thread stack", how, guard, overrun=overrun)


def _own_block(f: StackFacts, me, voted: Mapping) -> Mapping | None:
    """The mapping of this thread's own block when *voted* (where its frames are) is not:
    its thread pointer lies in an accessible mapping above, and *voted* holds the thread
    control block of another (non-main) thread, so it is that thread's block.  None otherwise
    (a thread running on a stack it switched to holds no other thread's TCB there)."""
    if me is None or me.tp is None or voted.contains(me.tp):
        return None
    own = find_mapping(f.maps, me.tp)
    if own is None or not is_accessible(own.perms) or own.start < voted.end:
        return None
    if not any(t.tid != f.tid and not t.main and t.tp is not None and voted.contains(t.tp)
               for t in f.threads):
        return None
    return own
