"""The plain data stack-diagnose works on: facts in, a diagnosis out.  Pure (no gdb)."""
from gdb_toolkit.common.procfs import Mapping
from gdb_toolkit.common.record import field, json_keys, json_names, record


def file_and_line(source: str | None) -> tuple[str | None, int | None]:
    """"dir/file.c:24" -> ("dir/file.c", 24); (None, None) when there is no line."""
    if not source:
        return None, None
    path, sep, line = source.rpartition(":")
    return (path, int(line)) if sep and path and line.isdigit() else (None, None)


def with_file_and_line(cls):
    """JSON of a record holding ``source`` ("file.c:24"): also ``file`` and ``line``, the
    common vocabulary's keys for a source position (docs/json.md), right after ``source``."""
    names = list(json_names(cls))
    at = names.index("source") + 1
    cls.__record_json__ = tuple(names[:at] + ["file", "line"] + names[at:])
    cls.file = property(lambda self: file_and_line(self.source)[0])
    cls.line = property(lambda self: file_and_line(self.source)[1])
    return cls

SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
                7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV",
                12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT",
                17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN",
                22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM",
                27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS"}
SI_CODES = {0x80: "SI_KERNEL", 0: "SI_USER", -1: "SI_QUEUE", -2: "SI_TIMER", -3: "SI_MESGQ",
            -4: "SI_ASYNCIO", -5: "SI_SIGIO", -6: "SI_TKILL"}
SEGV_CODES = {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR",
              5: "SEGV_ACCADI", 6: "SEGV_ADIDERR", 7: "SEGV_ADIPERR", 8: "SEGV_MTEAERR",
              9: "SEGV_MTESERR", 10: "SEGV_CPERR"}
BUS_CODES = {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR",
             5: "BUS_MCEERR_AO"}
MEMORY_SIGNALS = (7, 11)


@record
class SignalInfo:
    signo: int
    code: int | None            # si_code; None when only pr_cursig recorded the signal
    addr: int | None            # si_addr (SIGSEGV/SIGBUS only)

    @property
    def name(self) -> str:
        return SIGNAL_NAMES.get(self.signo, f"signal {self.signo}")

    @property
    def code_name(self) -> str:
        if self.code is None:
            return "si_code not recorded"
        if self.code in SI_CODES:
            return SI_CODES[self.code]
        table = BUS_CODES if self.signo == 7 else SEGV_CODES if self.signo == 11 else {}
        return table.get(self.code, str(self.code))

    @property
    def is_memory_fault(self) -> bool:
        """A fault on an address (SIGSEGV/SIGBUS raised by the MMU), not sent by kill()."""
        return self.signo in MEMORY_SIGNALS and (self.code is None
                                                  or (self.code > 0 and self.code != 0x80))

    @property
    def is_kernel_trap(self) -> bool:
        """SIGSEGV/SIGBUS with SI_KERNEL: x86 #GP / #SS (non-canonical address), no address."""
        return self.signo in MEMORY_SIGNALS and self.code == 0x80


@with_file_and_line
@record
class Frame:
    level: int
    pc_address: int
    sp_address: int                 # stack pointer in this frame
    symbol: str | None = None       # the function's name
    source: str | None = None       # "file.c:24" when debug info exists
    size: int | None = None         # caller's sp - this sp (CFA difference), None for the last
    signal_frame: bool = False      # gdb's <signal handler called> frame (SIGTRAMP_FRAME)
    start_address: int | None = None    # the function's entry (also for a stripped function)
    virtual: bool = False           # a frame gdb shows with no stack frame of its own (a
                                    # function inlined into the next outer one, or one that
                                    # tail-called the next inner one): the outer frame's sp
    caller_sp: int | None = field(default=None, metadata={"json_skip": True})
                                    # the outermost frame's CFA, when gdb stops the walk there

    # short names for the code (the long ones are the JSON vocabulary, docs/json.md)
    pc = property(lambda self: self.pc_address)
    sp = property(lambda self: self.sp_address)
    function = property(lambda self: self.symbol)
    function_start = property(lambda self: self.start_address,
                              lambda self, v: setattr(self, "start_address", v))


@record
class Code:
    """Machine code of the culprit function, with its line table."""
    function: str
    start: int
    data: bytes = field(metadata={"json_skip": True})
    lines: list[tuple[int, str]] = field(default_factory=list)   # (address, "file.c:N") sorted


@record
class ThreadSummary:
    """Another thread of the process, as far as a clash between stacks needs it."""
    num: int
    tid: int | None
    name: str | None
    sp: int | None
    tp: int | None                  # thread pointer (fs_base / tpidr_el0): glibc puts the
                                    # thread's TCB at the top of its stack block
    fault_addr: int | None = None   # its own memory fault, if it stopped with one
    main: bool = False


@record
class Runtime:
    kind: str                       # rust | go
    evidence: str                   # what told us (a symbol, a frame)
    details: dict = field(default_factory=dict)


@record
class Overcommit:
    """What __vm_enough_memory() checks every growth against (vm.overcommit_memory and
    /proc/meminfo of this machine)."""
    mode: int                       # 0 heuristic, 1 always, 2 strict
    ram_swap: int                   # MemTotal + SwapTotal, bytes
    commit_limit: int | None = None     # CommitLimit (mode 2)
    committed: int | None = None        # Committed_AS

    def refuses(self, grow: int) -> bool:
        """Would the kernel refuse to commit *grow* more bytes at once?"""
        if self.mode == 0:
            return grow > self.ram_swap
        if self.mode == 2 and self.commit_limit is not None and self.committed is not None:
            return self.committed + grow > self.commit_limit
        return False

    def sentence(self, grow: int) -> str:
        from gdb_toolkit.common.render import human_size as hs

        if self.mode == 0:
            return (f"the kernel's overcommit heuristic (vm.overcommit_memory = 0) refuses any "
                    f"single allocation larger than RAM + swap ({hs(self.ram_swap)}), and this "
                    f"one is {hs(grow)}")
        return (f"strict overcommit (vm.overcommit_memory = 2): {hs(self.committed or 0)} "
                f"committed + {hs(grow)} exceeds CommitLimit {hs(self.commit_limit or 0)}")


@record
class StackFacts:
    arch: str                       # x86_64 | aarch64
    target: str                     # live | core
    pid: int | None
    tid: int | None
    thread_num: int | None
    is_main_thread: bool
    signal: SignalInfo | None       # the stop signal; None: not stopped by a signal
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
    code: Code | None = None        # the culprit frame's function code (see ``codes``)
    codes: dict[int, Code] = field(default_factory=dict)      # frame level -> its function
    signal_source: str = "$_siginfo"
    rlimit_given: bool = False      # --rlimit N
    as_soft: int | None = None      # RLIMIT_AS soft (live only)
    exec_rlimit: int | None = None  # RLIMIT_STACK the program was started with
    exec_rlimit_known: bool = False
    exec_rlimit_source: str = ""
    aslr: bool | None = None        # address randomisation in the diagnosed process
    aslr_source: str = ""
    signal_frames: list = field(default_factory=list)        # sigframe.SignalFrame, outward
    threads: list[ThreadSummary] = field(default_factory=list)
    thread_name: str | None = None
    runtime: Runtime | None = None
    insn_at_pc: bytes = field(default=b"", metadata={"json_skip": True})
    capstone: bool = True           # False: no disassembler, no culprit instruction
    core_writer: str | None = None  # who wrote the core (qemu-user cores lack NT_SIGINFO)
    read_memory: object = field(default=None, metadata={"json_skip": True})  # (addr, n) -> bytes
    function_of: object = field(default=None, metadata={"json_skip": True})  # addr -> key
    # live: addr -> its mapping's VmFlags (/proc/PID/smaps)
    vm_flags: object = field(default=None, metadata={"json_skip": True})
    # level -> Frame past the bounded walk (a far handler)
    far_frames: dict = field(default_factory=dict, metadata={"json_skip": True})
    stack_hint: int | None = None   # an address in the initial stack (auxv AT_EXECFN)
    started_by_gdb: bool = False    # gdb ran it (it inherited gdb's limits)
    sigframe_size: int | None = None    # auxv AT_MINSIGSTKSZ: the kernel's signal frame size
    overcommit: "Overcommit | None" = None   # the kernel's commit accounting (live only)
    absent: list = field(default_factory=list)  # core: (start, end, why) ranges it maps but
                                    # holds no bytes of (core_notes.CoreInfo.absent)
    frames_stopped: str | None = None   # why gdb's walk ended early: its unwind error
                                    # ("memory error while unwinding"); None: it ended normally
    program_mismatch: str | None = None  # core: the program file is not the one that ran
                                    # (its build-id differs from the core's), as a sentence


@record
class StackRegion:
    start_address: int
    end_address: int
    label: str                      # "[stack]", "thread stack", ...
    how: str                        # how it was identified
    guard: Mapping | None = field(default=None, metadata={"json_skip": True})
    guard_range: dict | None = None   # the guard for JSON: start/end address, size, perms
    allocated: bool = field(default=False, metadata={"json_skip": True})
                                    # a stack the program allocated and switched to (a
                                    # coroutine: makecontext), not the kernel's [stack]
    raw_clone: bool = field(default=False, metadata={"json_skip": True})
                                    # a thread made by clone() itself (no CLONE_SETTLS: it
                                    # shares another thread's thread pointer), not pthread_create
    overrun: bool = field(default=False, metadata={"json_skip": True})
                                    # a thread's own block (where its thread pointer is), its
                                    # frames below it in another thread's block: it ran past

    start = property(lambda self: self.start_address)
    end = property(lambda self: self.end_address)

    def __post_init__(self):
        g = self.guard
        if g is not None:
            self.guard_range = {"start_address": g.start, "end_address": g.end, "size": g.size,
                                "perms": g.perms}


@with_file_and_line
@record
class SpMover:
    address: int
    text: str                       # "sub rsp, rax"
    dynamic: bool                   # by a register (VLA/alloca) rather than an immediate
    source: str | None = None
    in_loop: bool = False           # inside a loop of its function: alloca() in a loop grows
                                    # the frame at every iteration


@record
class ClashProbe:
    loop_address: int
    probe: str                      # the probing instruction text
    step: int                       # bytes per probe
    target_register: str | None
    target_sp_address: int | None   # the stack pointer the loop is heading for
    requested: int | None           # frame size being allocated (CFA - target_sp)
    step_address: int | None = None # the loop's sp decrement
    step_text: str | None = None

    loop_start = property(lambda self: self.loop_address)
    target_sp = property(lambda self: self.target_sp_address)


@record
class Recursion:
    functions: list[str]            # the cycle in call order (the outermost call first)
    keys: list[str]                 # the same, as frame keys (name or start address)
    sampled_frames: int             # frames of it seen in the bounded walk
    avg_frame: int                  # bytes per frame, averaged over the sampled cycle
    depth: int                      # frames of the recursion counted
    depth_exact: bool               # False: depth is a lower bound ("at least")
    depth_method: str               # how the depth was obtained
    estimate: int | None = None     # stack used / average frame, when depth is only a bound
    first_level: int = 0            # the innermost frame of the recursion
    rounds: int | None = None       # times round the cycle (depth / its length), for a cycle
                                    # of several functions
    own: str | None = field(default=None, metadata={"json_skip": True})
                                    # the cycle's first function in the program itself (not a
                                    # shared library): qsort's callback, not msort_with_tmp
    caller_sp: int | None = field(default=None, metadata={"json_skip": True})
                                    # sp of the frame that made the outermost call (the chain
                                    # walk left the cycle there), when found in memory
    caller_pc: int | None = field(default=None, metadata={"json_skip": True})
                                    # the return address into that frame

    @property
    def focus(self) -> str:
        """The function to look at: the program's own one in the cycle."""
        return self.own or self.functions[0]


def call_form(name: str | None) -> str:
    """How a function is named in a sentence: 'rec()'; code without a symbol keeps its label
    ('function at 0x401136 (no symbol)', not '... (no symbol)()')."""
    if not name:
        return "??()"
    return name if name.endswith("(no symbol)") else name + "()"


# JSON key (contract v4, docs/json.md): counts end in `_count`; v6: byte amounts end in `_bytes`
json_keys(Recursion, {"rounds": "round_count", "sampled_frames": "sampled_frame_count",
                      "avg_frame": "avg_frame_bytes", "estimate": "depth_estimate"})


@with_file_and_line
@record
class Culprit:
    symbol: str | None              # the function's name
    level: int                      # its frame's number (gdb's #N, MI's level)
    size: int                       # its frame size
    instruction: SpMover | None = None
    source: str | None = None

    function = property(lambda self: self.symbol)
    frame_size = property(lambda self: self.size)
    frame_level = property(lambda self: self.level)     # the name before contract v4


@record
class Fix:
    kind: str                       # ulimit | pthread_attr_setstacksize | heap | code | none
    text: str
    needed: int | None = None       # bytes of stack the run needs (estimate)
    ulimit_kib: int | None = None
    stacksize: int | None = None


@record
class Diagnosis:
    verdict: str                    # see VERDICTS
    headline: str
    cause: str | None               # huge-frame | big-frames | deep-recursion | clash-probe |
                                    # many-frames | None
    explanation: list[str]
    fix: Fix
    thread: dict
    signal: dict | None             # the signal diagnosed (the original fault when a handler ran)
    sp_address: int
    pc_address: int
    fault_address: int | None
    stack: StackRegion | None
    stack_used: int | None          # stack top - min(sp, fault), when sp is on that stack
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
    notes: list[str]                # assumptions and caveats, as sentences
    sources: dict[str, str]         # fact -> where it came from
    stopped_by: dict | None = None  # the current stop when it differs from the signal diagnosed
    handler: dict | None = None     # the program's handler that caught the fault, if one ran
    damaged_threads: list[dict] = field(default_factory=list)   # thread-clash victims
    layout: dict | None = None      # ASLR, exec-time limit, whether ulimit -s moves the obstacle
    runtime: Runtime | None = None
    clash_protection: bool | None = None   # the culprit's code probes the stack
    kernel: dict | None = None      # --kernel: the kernel's own view of the growth
    frames_stopped: str | None = field(default=None, metadata={"json_skip": True})
                                    # gdb's unwind error that ended the walk (notes say it)

    sp = property(lambda self: self.sp_address)
    pc = property(lambda self: self.pc_address)
    fault_addr = property(lambda self: self.fault_address,
                          lambda self, v: setattr(self, "fault_address", v))
    # JSON names (contract v2, docs/json.md): `fix` is a sentence in every other command and
    # `stack` a list of frames, so the plan object and the stack mapping get their own keys
    fix_plan = property(lambda self: self.fix)
    stack_mapping = property(lambda self: self.stack)
    signal_handler = property(lambda self: self.handler)    # `handler` is a symbol in kprobe-*
    fact_sources = property(lambda self: self.sources)      # `sources` is a list in kprobe-list


def _json_renamed(cls, renames: dict):
    """Give a record's JSON other key names than its attributes (properties hold them)."""
    cls.__record_json__ = tuple(renames.get(n, n) for n in json_names(cls))
    return cls


# v6: a byte amount says its unit (`_bytes`)
json_keys(Diagnosis, {"fix": "fix_plan", "stack": "stack_mapping", "handler": "signal_handler",
                      "sources": "fact_sources", "stack_used": "stack_used_bytes",
                      "growth_requested": "growth_requested_bytes", "rlimit_soft": "rlimit_soft_bytes",
                      "rlimit_hard": "rlimit_hard_bytes", "guard_gap": "guard_gap_bytes"})
# `step` is a sentence in plt-walk and `requested` a probe spec in ktrace: these are byte sizes
ClashProbe.step_size = property(lambda self: self.step)
ClashProbe.requested_size = property(lambda self: self.requested)
_json_renamed(ClashProbe, {"step": "step_size", "requested": "requested_size"})


VERDICTS = {
    "rlimit": "stack growth refused by RLIMIT_STACK",
    "rlimit-as": "stack growth refused by RLIMIT_AS (the address-space limit)",
    "guard-gap": "stack growth refused: an accessible mapping below is within the guard gap",
    "stack-blocked": "the stack grew down to an inaccessible (PROT_NONE) mapping right below it",
    "stack-clash-jump": "a frame jumped over the guard gap into or past another mapping",
    "thread-overflow": "a thread overflowed its fixed-size stack",
    "thread-clash": "a thread's stack overflowed into another thread's stack",
    "altstack-overflow": "a signal handler overflowed its alternate signal stack",
    "stack-other": "a stack growth the limits allow was refused (cgroup, overcommit, ...)",
    "corrupt-sp": "the stack pointer itself is corrupt (pivot, bad longjmp, smashed frame)",
    "not-stack": "the fault is not a stack problem (NULL, wild pointer, protection)",
    "go-runtime": "a Go program: goroutine stacks are managed by the Go runtime",
    "healthy": "not a memory fault: a stack-health report",
}


@record
class AllThreads:
    """stack-diagnose --all-threads: one diagnosis per thread."""
    diagnoses: list
    notes: list = field(default_factory=list)    # each diagnosis has its own; docs/json.md: every result has them


# JSON keys (contract v6, docs/json.md): a byte amount says its unit (`_bytes`)
json_keys(Fix, {"needed": "needed_bytes", "stacksize": "stacksize_bytes"})
