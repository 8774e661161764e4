"""The kernel's signal frame (``<signal handler called>`` in gdb) decoded.  Pure.

When a handler runs, the kernel has pushed an rt_sigframe holding the siginfo of the signal
and the ucontext of the interrupted code: its registers, the alternate signal stack settings
(``uc_stack``) and, on x86_64, the page-fault address (cr2), trap number and error code.  This
is how the original fault is recovered after the program's own handler ran (a handler that
aborts, Rust's overflow handler, a process attached while inside its handler).

gdb's sigtramp frame has sp = the address the handler returns to, which is:
  x86_64  &frame->uc   (struct rt_sigframe { char *pretcode; struct ucontext uc; siginfo info; })
  aarch64 &frame->info (struct rt_sigframe { siginfo info; struct ucontext uc; })
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.record import record

SIGINFO_SIZE = 128
READ_SIZE = {"x86_64": 304 + SIGINFO_SIZE, "aarch64": 304 + 8 * 35}
X86_TRAPS = {0: "#DE divide error", 6: "#UD invalid opcode", 12: "#SS stack-segment fault",
             13: "#GP general protection", 14: "#PF page fault", 17: "#AC alignment check"}
SS_ONSTACK, SS_DISABLE = 1, 2


@record
class SignalFrame:
    level: int                      # gdb frame level of <signal handler called>
    address: int                    # where the kernel put the frame
    signo: int | None               # None: not recorded (x86_64 handler without SA_SIGINFO)
    code: int | None
    addr: int | None                # si_addr (memory faults)
    sp: int                         # the interrupted code's registers
    pc: int
    altstack_sp: int | None         # uc_stack: the sigaltstack configured (None if disabled)
    altstack_size: int | None
    altstack_flags: int
    trapno: int | None = None       # x86_64 only
    error_code: int | None = None
    cr2: int | None = None          # x86_64 cr2 / aarch64 fault_address
    registers: dict = None          # the interrupted general registers
    signal_how: str = "siginfo"     # where signo/code/addr came from

    @property
    def trap_name(self) -> str | None:
        return None if self.trapno is None else X86_TRAPS.get(self.trapno, f"trap {self.trapno}")

    @property
    def on_altstack(self) -> bool:
        """The handler ran on the alternate signal stack (its frame was put there)."""
        return (self.altstack_sp is not None and bool(self.altstack_size)
                and self.altstack_sp <= self.address < self.altstack_sp + self.altstack_size)


def decode(arch: str, level: int, sp: int, data: bytes) -> SignalFrame | None:
    """The signal frame at gdb's sigtramp-frame *sp*, from *data* read there (READ_SIZE[arch]
    bytes); None when it does not look like one (bad signal number)."""
    if len(data) < READ_SIZE.get(arch, 1 << 30):
        return None
    if arch == "x86_64":
        uc, info, sc = 0, 304, 40
        ss_sp = struct.unpack_from("<Q", data, uc + 16)[0]
        ss_flags = struct.unpack_from("<i", data, uc + 24)[0]
        ss_size = struct.unpack_from("<Q", data, uc + 32)[0]
        rsp, rip = struct.unpack_from("<QQ", data, sc + 120)
        err, trapno, _oldmask, cr2 = struct.unpack_from("<QQQQ", data, sc + 152)
        signo, _errno, code = struct.unpack_from("<iii", data, info)
        addr = struct.unpack_from("<Q", data, info + 16)[0]
        frame = SignalFrame(level, sp, signo, code, addr if signo in (4, 7, 8, 11) else None,
                            rsp, rip, None, None, ss_flags, trapno, err, cr2)
        names = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp",
                 "rbx", "rdx", "rax", "rcx", "rsp", "rip"]
        frame.registers = dict(zip(names, struct.unpack_from("<17Q", data, sc)))
    elif arch == "aarch64":
        info, uc = 0, SIGINFO_SIZE
        signo, _errno, code = struct.unpack_from("<iii", data, info)
        addr = struct.unpack_from("<Q", data, info + 16)[0]
        ss_sp = struct.unpack_from("<Q", data, uc + 16)[0]
        ss_flags = struct.unpack_from("<i", data, uc + 24)[0]
        ss_size = struct.unpack_from("<Q", data, uc + 32)[0]
        sc = uc + 176
        fault = struct.unpack_from("<Q", data, sc)[0]
        xsp, pc = struct.unpack_from("<QQ", data, sc + 8 + 31 * 8)
        frame = SignalFrame(level, sp, signo, code, addr if signo in (4, 7, 8, 11) else None,
                            xsp, pc, None, None, ss_flags, None, None, fault)
        regs = struct.unpack_from("<31Q", data, sc + 8)
        frame.registers = {f"x{i}": v for i, v in enumerate(regs)}
        frame.registers.update(sp=xsp, pc=pc)
    else:
        return None
    if not 0 < signo < 65:
        if arch != "x86_64":
            return None
        # the kernel copies siginfo only for SA_SIGINFO handlers; the trap the kernel saved in
        # the sigcontext still says what faulted (a page fault: cr2 is the address)
        inferred = {14: (11, 2 if err & 1 else 1, cr2), 13: (11, 0x80, None), 12: (7, 0x80, None),
                    0: (8, None, frame.pc), 6: (4, None, frame.pc)}.get(trapno)
        if inferred is None:
            frame.signo = frame.code = frame.addr = None
            frame.signal_how = "not recorded (handler without SA_SIGINFO)"
        else:
            frame.signo, frame.code, frame.addr = inferred
            frame.signal_how = (f"inferred from the trap saved in the sigcontext ({X86_TRAPS.get(trapno)}"
                                f", cr2 0x{cr2:x}; the handler has no SA_SIGINFO, so no siginfo)")
    if not ss_flags & SS_DISABLE and ss_size:
        frame.altstack_sp, frame.altstack_size = ss_sp, ss_size
    return frame
