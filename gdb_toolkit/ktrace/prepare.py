"""Everything ktrace decides before the (root) worker is involved: the kernel's facts, the
attach plan, every value resolved against BTF and tracepoint formats, and the programs.

Runs in the caller (gdb).  A bad argument is therefore an error before any worker starts, and
the facts (kallsyms names, BTF, tracepoint formats) stay cached in the caller for the next
ktrace of the session.  The worker only loads, attaches and streams.
"""
import os
import platform

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, record
from gdb_toolkit.ktrace import bpf_insn
from gdb_toolkit.ktrace.bpf_codegen import register_abi
from gdb_toolkit.ktrace.plan import Candidate, KernelCaps, ResolvedValue

TRACEFS = "/sys/kernel/tracing"
BTF_PATH = "/sys/kernel/btf/vmlinux"


class LazyOracle:
    """The BTF type oracle, loaded on first use (plain `ktrace FUNC` needs no BTF at all)."""

    def __init__(self, path: str = BTF_PATH):
        self.path = path
        self._oracle = None
        self.error: str | None = None

    def get(self):
        if self._oracle is None and self.error is None:
            try:
                from gdb_toolkit.ktrace.btf_types import load_oracle

                self._oracle = load_oracle(self.path)
            except ToolkitError as exc:
                self.error = f"no BTF type information: {exc.cause}"   # its fix is ours
        return self._oracle

    def func_params(self, function: str):
        o = self.get()
        return o.func_params(function) if o else None

    def func_ret(self, function: str):
        o = self.get()
        try:
            return o.func_ret(function) if o else None
        except Exception:
            return None

    def field_reads(self, struct: str, path: str):
        o = self.get()
        if o is None:
            raise ToolkitError(f"--args: {struct}->{path} needs the kernel's BTF ({self.error})",
                               "boot a kernel with CONFIG_DEBUG_INFO_BTF=y (/sys/kernel/btf/vmlinux)")
        return o.field_reads(struct, path)

    def __bool__(self) -> bool:
        return os.path.exists(self.path)


class KernelFacts:
    """What the running kernel offers ktrace, read once per process (cached by ``kernel_facts``)."""

    def __init__(self, root: str = "/"):
        self.machine = platform.machine()
        self.release = platform.release()
        self.notes: list[str] = []
        self.oracle = LazyOracle()
        self._tracefs: str | None = None
        self._formats: dict[str, dict] = {}
        self._symbols: dict[str, bool] = {}
        self._kallsyms_raw: bytes | None = None

    # -- capabilities -------------------------------------------------------------------------
    def tracefs(self) -> str | None:
        """A mounted tracefs, mounting it when we are root."""
        if self._tracefs:
            return self._tracefs
        from gdb_toolkit.kernel.kprobe_text import TRACEFS_DIRS

        for d in TRACEFS_DIRS:
            if os.path.exists(os.path.join(d, "events")):
                self._tracefs = d
                return d
        if os.geteuid() != 0:
            return None
        from gdb_toolkit.common.helper_process import run_helper

        proc = run_helper(["mount", "-t", "tracefs", "nodev", TRACEFS], timeout=30)
        if proc.ok and os.path.exists(os.path.join(TRACEFS, "events")):
            self.notes.append(f"tracefs was not mounted: mounted it at {TRACEFS} "
                              f"(mount -t tracefs nodev {TRACEFS})")
            self._tracefs = TRACEFS
        return self._tracefs

    def has_symbol(self, name: str) -> bool:
        """Is *name* a text symbol in /proc/kallsyms?  Answered from kern's name index when
        the session built it already (completion does), else by searching the raw file for
        just the names asked (answers are kept for the session)."""
        if name not in self._symbols:
            from gdb_toolkit.kernel import kallsyms

            cached = kallsyms._NAMES.get(("/proc/kallsyms", "tTwW", True))
            if cached is not None:
                import bisect

                i = bisect.bisect_left(cached, name)
                self._symbols[name] = i < len(cached) and cached[i] == name
            else:
                import re

                if self._kallsyms_raw is None:
                    try:
                        with open("/proc/kallsyms", "rb") as f:
                            self._kallsyms_raw = f.read(64 << 20)
                    except OSError:
                        self._kallsyms_raw = b""
                if not self._kallsyms_raw:
                    return True                  # unknown: let the attach say
                pat = rb"^[0-9a-f]+ [tTwW] " + re.escape(name.encode()) + rb"(?:\t|$)"
                self._symbols[name] = re.search(pat, self._kallsyms_raw, re.M) is not None
        return self._symbols[name]

    def forget_raw(self) -> None:
        self._kallsyms_raw = None

    def has_kprobes(self) -> str | None:
        tf = self.tracefs()
        if os.path.exists("/sys/bus/event_source/devices/kprobe") or (
                tf and os.path.exists(os.path.join(tf, "kprobe_events"))):
            return None
        from gdb_toolkit.doctor.host_facts import probe_kernel_config

        try:
            cfg = probe_kernel_config("CONFIG_KPROBES")
        except Exception:
            cfg = None
        return ("no kprobes in this kernel (CONFIG_KPROBES is not set)" if cfg == "n" else
                "no kprobe PMU and no kprobe_events in tracefs")

    def caps(self, functions: bool = True, btf_needed: bool = True) -> KernelCaps:
        """The capabilities; *functions* False (a tracepoint target) skips kprobe/kfunc checks.
        *btf_needed* False (no names, captures or return value asked for) and kprobes usable:
        the fentry fallback is planned without loading BTF to check the function is described
        there (bcc says so if it is not, in the rare case that fallback is reached)."""
        tf = self.tracefs()
        kfunc = kprobes = "not needed for a tracepoint"
        if functions:
            kprobes = self.has_kprobes()
            kfunc = None
            if not os.path.exists(BTF_PATH) or not self.has_symbol("bpf_trampoline_link_prog"):
                kfunc = ("no kfunc/fentry support (needs BTF and BPF trampolines: "
                         "bpf_trampoline_link_prog not in kallsyms)")
        lazy = functions and not btf_needed and kprobes is None
        return KernelCaps(
            kprobes=kprobes, kfunc=kfunc,
            tracefs=None if tf else "tracefs is not mounted and cannot be mounted (not root)",
            has_symbol=self.has_symbol,
            in_btf=(lambda n: True) if lazy else (lambda n: self.oracle.func_params(n) is not None),
            tracepoint_exists=lambda cat, name: bool(tf) and os.path.isdir(
                os.path.join(tf, "events", cat, name)))

    def tp_format(self, tp: str) -> dict:
        if tp not in self._formats:
            from gdb_toolkit.ktrace.tp_format import parse_format

            cat, name = tp.split(":")
            path = os.path.join(self.tracefs() or TRACEFS, "events", cat, name, "format")
            try:
                with open(path) as f:
                    self._formats[tp] = parse_format(f.read(1 << 20))
            except OSError as exc:
                raise ToolkitError(f"cannot read the format of tracepoint {tp} ({exc.strerror})",
                                   "run gdb as root (tracefs is readable by root only)") from None
        return self._formats[tp]

    def read_helper(self) -> int:
        """bpf_probe_read_kernel (5.5+), else the older bpf_probe_read."""
        from gdb_toolkit.ktrace.kversion import kernel_version_code

        code = kernel_version_code(self.release)
        return bpf_insn.PROBE_READ_KERNEL if code >= (5 << 16) + (5 << 8) or code == 0 else bpf_insn.PROBE_READ

    def require_privileges(self) -> None:
        """BPF tracing needs root, or CAP_BPF + CAP_PERFMON (5.8+), or CAP_SYS_ADMIN."""
        if os.geteuid() == 0:
            return
        cap = 0
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("CapEff:"):
                        cap = int(line.split()[1], 16)
        except OSError:
            pass
        if cap & (1 << 21) or (cap & (1 << 38) and cap & (1 << 39)):
            return
        raise ToolkitError("ktrace needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs",
                           "run gdb as root (sudo gdb PROGRAM)")


_FACTS: KernelFacts | None = None


def kernel_facts() -> KernelFacts:
    """The process's KernelFacts (kallsyms, BTF and formats are read once per session)."""
    global _FACTS
    if _FACTS is None:
        _FACTS = KernelFacts()
    return _FACTS


def method_label(method: str, ret: bool, exit_tp: str | None) -> str:
    if method == "kprobe":
        return "kprobe+kretprobe" if ret else "kprobe"
    if method == "kfunc":
        return "kfunc+kretfunc" if ret else "kfunc"
    return "tracepoint+sys_exit" if (ret and exit_tp) else "tracepoint"


@record
class Attempt:
    """One way to trace, resolved; ``wire(exclude)`` builds its programs for the worker."""
    cand: Candidate
    values: list[ResolvedValue]
    pid: int | None
    ret: bool
    stack: bool
    nparams: int | None
    exit_off: int
    ret_info: tuple | None
    machine: str
    read_helper: int
    notes: list[str] = field(default_factory=list)

    @property
    def want_ret(self) -> bool:
        return self.ret and (self.cand.method != "tracepoint" or self.cand.exit_tracepoint is not None)

    def wire(self, exclude: tuple = (), pidns=None) -> dict:
        """*pidns*: the caller's pidns.PidNamespace when it is not the init one (pids in
        *exclude* and self.pid are numbered there)."""
        from gdb_toolkit.ktrace import bpf_codegen, bpf_source

        c = self.cand
        note = c.why
        if c.is_fallback and c.ret_note and self.ret:
            note += f"; {c.ret_note}"
        notes = list(self.notes)
        if self.ret and not self.want_ret:
            notes.append(f"--ret: tracepoint {c.function} has no return value")
        asm = None
        if c.method in ("kprobe", "tracepoint") and bpf_codegen.register_abi(self.machine or "") is not None:
            asm = bpf_codegen.generate(c, self.values, self.pid, self.ret, self.stack, self.machine,
                                       self.exit_off, exclude, self.read_helper, pidns).to_wire()
        prog = bpf_source.generate(c, self.values, self.pid, self.ret, self.stack, self.nparams,
                                   self.exit_off, exclude, pidns)
        return {"method": c.method, "function": c.function, "requested": c.requested,
                "exit_tracepoint": c.exit_tracepoint if self.want_ret else None,
                "label": method_label(c.method, self.want_ret, c.exit_tracepoint), "note": note,
                "notes": notes, "asm": asm,
                "c": {"text": prog.text, "entry": prog.entry, "exit": prog.exit, "nvalues": prog.nvalues},
                "values": [{"name": v.name, "kind": v.kind, "signed": v.signed,
                            "unavailable": v.unavailable} for v in self.values],
                "ret_info": list(self.ret_info) if self.ret_info else None}


@record
class Prepared:
    attempts: list[Attempt]
    skipped: list[str]
    notes: list[str]
    tracefs: str | None


def prepare(spec, facts: KernelFacts | None = None) -> Prepared:
    """Plan *spec* (an api.TraceSpec) and resolve every value; raises on any bad argument."""
    from gdb_toolkit.ktrace.argexpr import parse_args_spec
    from gdb_toolkit.ktrace.fallbacks import Fallback, fallback_from_text, fallbacks_for
    from gdb_toolkit.ktrace.plan import failure_error, make_plan, resolve_values

    facts = facts or kernel_facts()
    facts.require_privileges()
    notes = list(facts.notes)
    fbs = spec.fallbacks
    if fbs is None:
        fbs = fallbacks_for(spec.function.split(":", 1)[-1])
    else:
        fbs = [Fallback(**f) if isinstance(f, dict) else fallback_from_text(f) for f in fbs]
    from gdb_toolkit.ktrace.plan import split_target

    functions = split_target(spec.function)[0] == "function" or any(
        not f.function.startswith("tracepoint:") for f in fbs)
    args = parse_args_spec(spec.args)
    # BTF (seconds to index on a slow machine) only when something needs it: a value named
    # by a parameter (also through a fallback's mapping), a task member, the return type
    named = any(t.base is not None and not (t.base.startswith("arg") and t.base[3:].isdigit())
                for a in args for t in a.terms)
    btf_needed = bool(named or spec.capture or spec.ret)
    try:
        plan = make_plan(spec.function, fbs, facts.caps(functions, btf_needed), spec.method)
    finally:
        facts.forget_raw()                   # the raw kallsyms text is not kept between traces
    skipped = list(plan.skipped)
    attempts = []
    abi = register_abi(facts.machine)
    abi_args = len(abi.args) if abi else 6
    for cand in plan.candidates:
        try:
            params = (facts.oracle.func_params(cand.function)
                      if cand.method != "tracepoint" and btf_needed else None)
            tp_fields = facts.tp_format(cand.function) if cand.method == "tracepoint" else None
            values = resolve_values(args, spec.capture, cand, params, facts.oracle, tp_fields,
                                    max_reg_args=abi_args if cand.method == "kprobe" else None)
            if cand.method == "kfunc" and spec.ret and params is None:
                raise _Skip("kretfunc needs the parameter count from BTF")
            exit_off = 16
            if cand.exit_tracepoint and spec.ret:
                exit_off = facts.tp_format(cand.exit_tracepoint).get("ret", (16, 8, True))[0]
        except _Skip as exc:
            skipped.append(f"{cand.method}:{cand.function}: {exc}")
            continue
        except ToolkitError as exc:
            if cand.is_fallback and "tracepoint" in exc.cause and "format" in exc.cause:
                skipped.append(f"{cand.method}:{cand.function}: {exc.cause}")
                continue
            raise
        ret_info = (facts.oracle.func_ret(cand.function) if cand.method != "tracepoint" and spec.ret
                    else (8, True))
        attempts.append(Attempt(cand, values, spec.pid, spec.ret, spec.stack,
                                len(params) if params is not None else None, exit_off, ret_info,
                                facts.machine, facts.read_helper()))
    if facts.oracle.error and (args or spec.capture):
        notes.append(facts.oracle.error)
    if not attempts:
        raise failure_error(spec.function, skipped)
    return Prepared(attempts, skipped, notes, facts.tracefs())


class _Skip(Exception):
    pass
