"""ktrace's BPF programs as instructions (pure): the same programs bpf_source.py writes in C
for bcc, emitted directly so that arming needs no compiler and no kernel headers.

One record per event (``struct gtk_kt_event`` of bpf_source.py, same layout)::

    u64 time_ns; u64 task; u64 retval; u64 vals[N]; u32 pid; u32 tid; s32 stack_id;
    u32 flags; char comm[16];

Entry program: filter by tgid (the traced process, or everything but the excluded processes),
fill the record (ktime, current task, comm, each value: registers / tracepoint fields / the
task, pointer chains through ``bpf_probe_read_kernel`` at BTF offsets, sums), then either
submit it to the perf ring or, with a return value wanted, park it in a hash keyed by thread
id for the exit program (kretprobe or the syscall's sys_exit tracepoint), which adds the
return value and submits.  Register offsets in ``struct pt_regs`` are the architecture's ABI
(x86_64 and arm64 below).
"""

from gdb_toolkit.common.record import field, record
from gdb_toolkit.ktrace import bpf_insn as I
from gdb_toolkit.ktrace.record import Layout
from gdb_toolkit.ktrace.plan import Candidate, ResolvedTerm, ResolvedValue

EVENTS, STACKS, INFLIGHT = "gtk_kt_events", "gtk_kt_stacks", "gtk_kt_inflight"
PROG_KPROBE, PROG_TRACEPOINT = 2, 5                      # enum bpf_prog_type
MAP_HASH, MAP_PERF_EVENT_ARRAY, MAP_STACK_TRACE = 1, 4, 7
MAX_STACK_DEPTH = 127                                    # PERF_MAX_STACK_DEPTH
INFLIGHT_ENTRIES, STACK_ENTRIES = 10240, 1024
FLAG_RET = 1
CURRENT_CPU = 0xFFFFFFFF                                 # BPF_F_CURRENT_CPU


@record(frozen=True)
class RegisterAbi:
    """Where a kprobe finds the arguments and the return value in ``struct pt_regs``."""
    arch: str
    args: tuple[int, ...]         # byte offsets of the argument registers, in order
    ret: int                      # byte offset of the return-value register


# x86_64: struct pt_regs {r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip ...};
# arguments di si dx cx r8 r9, return ax.  arm64: struct pt_regs starts with user_pt_regs
# {u64 regs[31]; ...}; arguments x0..x7, return x0.
ABIS = {
    "x86_64": RegisterAbi("x86_64", (112, 104, 96, 88, 72, 64), 80),
    "aarch64": RegisterAbi("aarch64", tuple(8 * i for i in range(8)), 0),
}
ABIS["arm64"] = ABIS["aarch64"]
ABIS["amd64"] = ABIS["x86_64"]


def register_abi(machine: str) -> RegisterAbi | None:
    return ABIS.get(machine)


@record
class MapSpec:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int              # 0 for the perf array: the worker uses its CPU count


@record
class ProgSpec:
    name: str
    type: int
    insns: list
    attach: str                   # 'kprobe' | 'kretprobe' | 'tracepoint'
    target: str                   # function, or CAT:NAME


@record
class BpfObject:
    maps: list[MapSpec]
    progs: list[ProgSpec]
    nvalues: int
    event_size: int

    def to_wire(self) -> dict:
        return {"maps": [vars(m) for m in self.maps],
                "progs": [{"name": p.name, "type": p.type, "attach": p.attach, "target": p.target,
                           "insns": I.to_wire(p.insns)} for p in self.progs],
                "nvalues": self.nvalues, "event_size": self.event_size}


class _Gen:
    def __init__(self, layout: Layout, method: str, abi: RegisterAbi | None, read_helper: int):
        self.a = I.Asm()
        self.l = layout
        self.ev = -layout.size                 # the record on the stack: [r10 + ev, r10)
        self.scratch = self.ev - 8             # one u64 for probe reads
        self.key = self.ev - 16                # the thread's global id (u32): in-flight key
        self.nsinfo = self.ev - 24             # struct bpf_pidns_info {u32 pid; u32 tgid}
        self.method = method
        self.abi = abi
        self.read_helper = read_helper
        self._n = 0

    def fresh(self, what: str) -> str:
        self._n += 1
        return f"{what}{self._n}"

    def probe_read(self, size: int, addr_reg: int) -> None:
        """r0 = *(uSIZE *)addr_reg, read with the probe helper (0 if the address faults)."""
        a = self.a
        a.mov(I.R3, addr_reg)
        a.st(8, I.FP, self.scratch, 0)
        a.mov(I.R1, I.FP).alui(I.ADD, I.R1, self.scratch)
        a.movi(I.R2, size)
        a.call(self.read_helper)
        a.ldx(size, I.R0, I.FP, self.scratch)

    def sign_extend(self, size: int) -> None:
        if size < 8:
            shift = 64 - 8 * size
            self.a.alui(I.LSH, I.R0, shift).alui(I.ARSH, I.R0, shift)

    def term(self, t: ResolvedTerm) -> None:
        """r0 = the term's value (without its sign)."""
        a = self.a
        if t.src == "const":
            a.movi(I.R0, t.value)
            return
        if t.src == "task":
            a.call(I.GET_CURRENT_TASK)
        elif t.src == "tp":
            a.mov(I.R4, I.R6).alui(I.ADD, I.R4, t.index)
            self.probe_read(t.size, I.R4)
            if t.signed:
                self.sign_extend(t.size)
        elif t.src == "arg":
            if self.abi is None or t.index >= len(self.abi.args):
                raise ValueError(f"argument {t.index} is not in a register here")
            a.ldx(8, I.R0, I.R6, self.abi.args[t.index])
        else:
            raise ValueError(f"unknown term source {t.src!r}")
        for i, (off, size) in enumerate(t.reads):
            a.alui(I.ADD, I.R0, off) if off else None
            self.probe_read(size, I.R0)
            if t.signed and i == len(t.reads) - 1:
                self.sign_extend(size)

    def value(self, v: ResolvedValue, slot: int) -> None:
        a = self.a
        a.movi(I.R9, 0)
        for t in v.terms:
            self.term(t)
            a.alu(I.ADD if t.sign > 0 else I.SUB, I.R9, I.R0)
        a.stx(8, I.FP, self.ev + self.l.vals + 8 * slot, I.R9)


def _filter(g: _Gen, pid: int | None, exclude: tuple, pidns=None) -> None:
    """r7 = tgid, r8 = tid; leave unless the process is wanted.  The thread's global id is
    kept at g.key (the in-flight hash's key: the exit program looks it up by global id).
    With *pidns* (the caller's child pid namespace) r7/r8 are that namespace's numbers
    (bpf_get_ns_current_pid_tgid), 0 for a task outside it: never a global pid compared with
    the caller's number."""
    a = g.a
    a.call(I.GET_CURRENT_PID_TGID)
    a.stx(4, I.FP, g.key, I.R0)
    if pidns is None:
        a.mov(I.R7, I.R0).alui(I.RSH, I.R7, 32)
        a.mov(I.R8, I.R0).alui(I.LSH, I.R8, 32).alui(I.RSH, I.R8, 32)
    else:
        a.ld_imm64(I.R1, pidns.dev).ld_imm64(I.R2, pidns.ino)
        a.mov(I.R3, I.FP).alui(I.ADD, I.R3, g.nsinfo).movi(I.R4, 8)
        a.call(I.GET_NS_CURRENT_PID_TGID)        # zeroes the pair when not in that namespace
        if pid:
            a.jcci(I.JNE, I.R0, 0, "out")
        a.ldx(4, I.R8, I.FP, g.nsinfo).ldx(4, I.R7, I.FP, g.nsinfo + 4)   # {u32 pid; u32 tgid}
    if pid:
        a.jcci(I.JNE, I.R7, int(pid), "out")
    for x in exclude:
        if x and x != pid:
            a.jcci(I.JEQ, I.R7, int(x), "out")


def entry_program(layout: Layout, cand: Candidate, values: list[ResolvedValue], pid: int | None,
                  exclude: tuple, ret: bool, stack: bool, abi, read_helper: int, pidns=None) -> list:
    g = _Gen(layout, cand.method, abi, read_helper)
    a, l, ev = g.a, layout, g.ev
    a.mov(I.R6, I.R1)
    _filter(g, pid, exclude, pidns)
    for off in range(0, l.size, 8):
        a.st(8, I.FP, ev + off, 0)
    a.stx(4, I.FP, ev + l.pid, I.R7).stx(4, I.FP, ev + l.tid, I.R8)
    a.call(I.KTIME_GET_NS).stx(8, I.FP, ev + l.time, I.R0)
    a.call(I.GET_CURRENT_TASK).stx(8, I.FP, ev + l.task, I.R0)
    a.mov(I.R1, I.FP).alui(I.ADD, I.R1, ev + l.comm).movi(I.R2, 16).call(I.GET_CURRENT_COMM)
    for i, v in enumerate(values):
        if v.terms:
            g.value(v, i)
    if stack:
        a.mov(I.R1, I.R6).ld_map(I.R2, STACKS).movi(I.R3, 0).call(I.GET_STACKID)
        a.stx(4, I.FP, ev + l.stack_id, I.R0)
    else:
        a.st(4, I.FP, ev + l.stack_id, -1)
    if ret:
        a.ld_map(I.R1, INFLIGHT)
        a.mov(I.R2, I.FP).alui(I.ADD, I.R2, g.key)
        a.mov(I.R3, I.FP).alui(I.ADD, I.R3, ev)
        a.movi(I.R4, 0).call(I.MAP_UPDATE_ELEM)
    else:
        a.mov(I.R1, I.R6).ld_map(I.R2, EVENTS).ld_imm64(I.R3, CURRENT_CPU)
        a.mov(I.R4, I.FP).alui(I.ADD, I.R4, ev).movi(I.R5, l.size).call(I.PERF_EVENT_OUTPUT)
    a.label("out")
    a.movi(I.R0, 0).exit()
    return a.assemble()


def exit_program(layout: Layout, method: str, abi, read_helper: int, exit_ret_off: int) -> list:
    """kretprobe / sys_exit: find the parked record, add the return value, submit, forget."""
    g = _Gen(layout, method, abi, read_helper)
    a, l = g.a, layout
    key = -8
    g.scratch = -16
    a.mov(I.R6, I.R1)
    a.call(I.GET_CURRENT_PID_TGID).stx(4, I.FP, key, I.R0)
    a.ld_map(I.R1, INFLIGHT).mov(I.R2, I.FP).alui(I.ADD, I.R2, key).call(I.MAP_LOOKUP_ELEM)
    a.jcci(I.JEQ, I.R0, 0, "out")
    a.mov(I.R7, I.R0)
    if method == "kprobe":
        a.ldx(8, I.R1, I.R6, abi.ret)
    else:
        a.mov(I.R4, I.R6).alui(I.ADD, I.R4, exit_ret_off)
        g.probe_read(8, I.R4)
        a.mov(I.R1, I.R0)
    a.stx(8, I.R7, l.retval, I.R1)
    a.ldx(4, I.R1, I.R7, l.flags).alui(I.OR, I.R1, FLAG_RET).stx(4, I.R7, l.flags, I.R1)
    a.mov(I.R1, I.R6).ld_map(I.R2, EVENTS).ld_imm64(I.R3, CURRENT_CPU)
    a.mov(I.R4, I.R7).movi(I.R5, l.size).call(I.PERF_EVENT_OUTPUT)
    a.ld_map(I.R1, INFLIGHT).mov(I.R2, I.FP).alui(I.ADD, I.R2, key).call(I.MAP_DELETE_ELEM)
    a.label("out")
    a.movi(I.R0, 0).exit()
    return a.assemble()


def generate(cand: Candidate, values: list[ResolvedValue], pid: int | None, ret: bool, stack: bool,
             machine: str, exit_ret_off: int = 16, exclude: tuple = (),
             read_helper: int = I.PROBE_READ_KERNEL, pidns=None) -> BpfObject:
    """The BPF object for a kprobe or tracepoint candidate (fentry programs go through bcc)."""
    if cand.method not in ("kprobe", "tracepoint"):
        raise ValueError(f"no assembled programs for {cand.method}")
    abi = register_abi(machine)
    if cand.method == "kprobe" and abi is None:
        raise ValueError(f"no register ABI known for {machine}")
    layout = Layout(max(1, len(values)))
    exit_tp = cand.exit_tracepoint
    want_ret = ret and (cand.method == "kprobe" or exit_tp is not None)
    maps = [MapSpec(EVENTS, MAP_PERF_EVENT_ARRAY, 4, 4, 0)]
    if stack:
        maps.append(MapSpec(STACKS, MAP_STACK_TRACE, 4, 8 * MAX_STACK_DEPTH, STACK_ENTRIES))
    if want_ret:
        maps.append(MapSpec(INFLIGHT, MAP_HASH, 4, layout.size, INFLIGHT_ENTRIES))
    entry = entry_program(layout, cand, values, pid, exclude, want_ret, stack, abi, read_helper, pidns)
    if cand.method == "kprobe":
        progs = [ProgSpec("gtk_kt_entry", PROG_KPROBE, entry, "kprobe", cand.function)]
        if want_ret:
            progs.append(ProgSpec("gtk_kt_exit", PROG_KPROBE,
                                  exit_program(layout, "kprobe", abi, read_helper, 0),
                                  "kretprobe", cand.function))
    else:
        progs = [ProgSpec("gtk_kt_tp", PROG_TRACEPOINT, entry, "tracepoint", cand.function)]
        if want_ret:
            progs.append(ProgSpec("gtk_kt_tpx", PROG_TRACEPOINT,
                                  exit_program(layout, "tracepoint", abi, read_helper, exit_ret_off),
                                  "tracepoint", exit_tp))
    return BpfObject(maps, progs, layout.nvalues, layout.size)
