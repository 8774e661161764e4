"""Which fault to diagnose, and from which frames.  Pure.

The stop itself when it is a memory fault.  Otherwise, when the program's own handler has
already run -- a SIGSEGV handler that aborts, Rust's "has overflowed its stack" handler, a
process attached while it sits in its handler -- the original fault is in the kernel's signal
frame (``<signal handler called>``): its siginfo says what faulted where, its ucontext holds
the interrupted sp and pc, and the frames beyond it are the code that faulted.
"""

from gdb_toolkit.common.record import field, record
from gdb_toolkit.stack.model import MEMORY_SIGNALS, Frame, SignalInfo, StackFacts

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


def choose(f: StackFacts) -> Context:
    stop = f.signal
    sfs = f.signal_frames
    if stop is not None and (stop.is_memory_fault or stop.is_kernel_trap):
        ctx = Context(stop, f.sp, f.pc, f.frames, stop.addr if stop.is_memory_fault else None,
                      f.signal_source)
        if sfs:
            sf = sfs[0]
            ctx.sigframe_level = sf.level
            handler = f.frames[sf.level - 1] if sf.level > 0 else None
            ctx.handler = {"symbol": _frame_name(handler), "signo": sf.signo,
                           "frame": sf.level, "on_altstack": sf.on_altstack,
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
        handler = f.frames[sf.level - 1] if sf.level > 0 else None
        ctx = Context(sig, sf.sp, sf.pc, after, sf.addr if sig.is_memory_fault else None,
                      f"the kernel's signal frame at frame #{sf.level} (<signal handler "
                      "called>): the " + ("siginfo" if sf.signal_how == "siginfo" else
                                          f"signal {sf.signal_how}")
                      + " and registers it saved for the handler",
                      trap=sf.trapno, sigframe_level=sf.level)
        ctx.handler = {"symbol": _frame_name(handler), "signo": sf.signo, "frame": sf.level,
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
