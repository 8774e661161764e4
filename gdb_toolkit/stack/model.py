"""The plain data stack-diagnose works on: facts in, a diagnosis out.  Pure (no gdb)."""
from dataclasses import dataclass, field

from gdb_toolkit.common.procfs import Mapping

SIGNAL_NAMES = {2: "SIGINT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
                9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
                17: "SIGCHLD", 19: "SIGSTOP", 20: "SIGTSTP"}
SEGV_CODES = {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR",
              0x80: "SI_KERNEL", 0: "SI_USER", -6: "SI_TKILL"}
BUS_CODES = {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 0x80: "SI_KERNEL", 0: "SI_USER",
             -6: "SI_TKILL"}


@dataclass
class SignalInfo:
    signo: int
    code: int
    addr: int | None            # si_addr (SIGSEGV/SIGBUS only)

    @property
    def name(self) -> str:
        return SIGNAL_NAMES.get(self.signo, f"signal {self.signo}")

    @property
    def code_name(self) -> str:
        table = BUS_CODES if self.signo == 7 else SEGV_CODES
        return table.get(self.code, str(self.code))

    @property
    def is_memory_fault(self) -> bool:
        return self.signo in (7, 11) and self.code > 0 and self.code != 0x80


@dataclass
class Frame:
    level: int
    pc: int
    sp: int                         # stack pointer in this frame
    function: str | None = None
    source: str | None = None       # "file.c:24" when debug info exists
    size: int | None = None         # caller's sp - this sp (CFA difference), None for the last
    signal_frame: bool = False      # gdb's <signal handler called> frame (SIGTRAMP_FRAME)


@dataclass
class Code:
    """Machine code of the culprit function, with its line table."""
    function: str
    start: int
    data: bytes = field(metadata={"json_skip": True})
    lines: list[tuple[int, str]] = field(default_factory=list)   # (address, "file.c:N") sorted


@dataclass
class StackFacts:
    arch: str                       # x86_64 | aarch64
    target: str                     # live | core
    pid: int | None
    tid: int | None
    thread_num: int | None
    is_main_thread: bool
    signal: SignalInfo | None       # None: not stopped by a signal
    pc: int
    sp: int
    maps: list[Mapping]
    maps_source: str                # where the memory map came from
    rlimit_soft: int | None         # RLIMIT_STACK bytes; None = unlimited
    rlimit_hard: int | None
    rlimit_known: bool              # False: a core file (the value is an assumption)
    rlimit_source: str
    guard_gap: int                  # the kernel's stack_guard_gap in bytes
    guard_gap_source: str
    page_size: int
    frames: list[Frame]             # the top frames, bounded
    frames_complete: bool           # True when the walk reached the outermost frame
    registers: dict[str, int] = field(default_factory=dict)   # frame 0's general registers
    code: Code | None = None        # the culprit frame's function code
    stack_words: bytes = field(default=b"", metadata={"json_skip": True})  # [sp, stack top)
    stack_words_base: int = 0


@dataclass
class StackRegion:
    start: int
    end: int
    label: str                      # "[stack]", "thread stack", ...
    how: str                        # how it was identified
    guard: Mapping | None = None    # a thread's PROT_NONE guard mapping just below


@dataclass
class SpMover:
    address: int
    text: str                       # "sub rsp, rax"
    dynamic: bool                   # by a register (VLA/alloca) rather than an immediate
    source: str | None = None


@dataclass
class ClashProbe:
    loop_start: int
    probe: str                      # the probing instruction text
    step: int                       # bytes per probe
    target_register: str | None
    target_sp: int | None           # the stack pointer the loop is heading for
    requested: int | None           # frame size being allocated (CFA - target_sp)


@dataclass
class Recursion:
    functions: list[str]            # the cycle, innermost first
    sampled_frames: int             # frames of it seen in the bounded walk
    avg_frame: int                  # bytes per cycle / len(cycle) (average frame size)
    depth: int                      # estimated total depth
    depth_method: str               # how the depth was obtained


@dataclass
class Culprit:
    function: str | None
    frame_level: int
    frame_size: int
    instruction: SpMover | None = None
    source: str | None = None


@dataclass
class Fix:
    kind: str                       # ulimit | pthread_attr_setstacksize | heap | code | none
    text: str
    needed: int | None = None       # bytes of stack the run needs (estimate)
    ulimit_kib: int | None = None
    stacksize: int | None = None


@dataclass
class Diagnosis:
    verdict: str                    # rlimit | guard-gap | thread-overflow | stack-clash-jump |
                                    # stack-other | not-stack | healthy
    headline: str
    cause: str | None               # huge-frame | deep-recursion | clash-probe | None
    explanation: list[str]
    fix: Fix
    thread: dict
    signal: dict | None
    sp: int
    pc: int
    fault_addr: int | None
    stack: StackRegion | None
    stack_used: int | None          # stack top - min(sp, fault)
    growth_requested: int | None    # main thread: stack top - page(fault)
    rlimit_soft: int | None
    rlimit_hard: int | None
    guard_gap: int
    below: dict | None              # the mapping below the stack: name, end, distance
    nearest: list[dict]             # mappings around the fault (not-stack)
    culprit: Culprit | None
    recursion: Recursion | None
    clash_probe: ClashProbe | None
    frames: list[Frame]
    frames_complete: bool
    assumptions: list[str]
    sources: dict[str, str]         # fact -> where it came from
    kernel: dict | None = None      # --kernel: the kernel's own view of the growth


@dataclass
class AllThreads:
    """stack-diagnose --all-threads: one diagnosis per thread."""
    diagnoses: list
