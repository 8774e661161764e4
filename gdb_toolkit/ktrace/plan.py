"""Choose how to attach (kprobe -> kfunc -> fallbacks -> tracepoint) and resolve
``--args``/capture fields to BPF reads at BTF offsets.  Pure: the kernel's
capabilities and types come in as plain callables/data so tests can fake them.
"""
from collections.abc import Callable

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, record
from gdb_toolkit.ktrace.argexpr import ArgExpr, Term, parse_args_spec
from gdb_toolkit.ktrace.fallbacks import Fallback

METHODS = ("kprobe", "kfunc", "tracepoint")
MAX_VALUES = 16


class TypeOracle:
    """What plan needs from BTF (btf_types.BtfOracle; tests pass a stand-in)."""

    def func_params(self, function: str) -> list[tuple[str, str | None]] | None:
        """[(param name, struct name if it points to a struct)] or None when unknown."""

    def field_reads(self, struct: str, path: str) -> tuple[list[tuple[int, int]], bool]:
        """Chain of (offset, size) loads for *path* from a struct pointer, and signedness."""


@record
class KernelCaps:
    kprobes: str | None = None          # None = usable, else why not
    kfunc: str | None = None
    tracefs: str | None = None
    has_symbol: Callable[[str], bool] = lambda name: True
    in_btf: Callable[[str], bool] = lambda name: True
    tracepoint_exists: Callable[[str, str], bool] = lambda cat, name: True


@record
class Candidate:
    function: str                 # kernel function, or 'CAT:NAME' for a tracepoint
    method: str                   # kprobe | kfunc | tracepoint
    requested: str
    why: str = ""                 # empty when it is the requested function itself
    arg_map: dict[str, str] = field(default_factory=dict)
    ret_note: str = ""

    @property
    def is_fallback(self) -> bool:
        return bool(self.why)

    @property
    def exit_tracepoint(self) -> str | None:
        cat, _, name = self.function.partition(":")
        if self.method == "tracepoint" and cat == "syscalls" and name.startswith("sys_enter_"):
            return f"syscalls:sys_exit_{name[len('sys_enter_'):]}"
        return None


@record
class Plan:
    candidates: list[Candidate]
    skipped: list[str]            # 'what: why' for every option ruled out before compiling


def split_target(target: str) -> tuple[str, str | None]:
    """'tracepoint:CAT:NAME' / 't:CAT:NAME' -> ('tracepoint', 'CAT:NAME'); 'FUNC' -> ('function', FUNC)."""
    for prefix in ("tracepoint:", "t:"):
        if target.startswith(prefix):
            rest = target[len(prefix):]
            if rest.count(":") != 1 or not all(rest.split(":")):
                raise ToolkitError(f"bad tracepoint {target!r}", "write tracepoint:CATEGORY:NAME, "
                                   "e.g. tracepoint:syscalls:sys_enter_mmap")
            return "tracepoint", rest
    if target.startswith(("kprobe:", "kfunc:", "fentry:", "k:")):
        target = target.split(":", 1)[1]
    if not target or not all(c.isalnum() or c in "_." for c in target):
        raise ToolkitError(f"bad kernel function name {target!r}",
                           "give a function from /proc/kallsyms or tracepoint:CAT:NAME")
    return "function", target


def make_plan(target: str, fallbacks: list[Fallback], caps: KernelCaps,
              method: str | None = None) -> Plan:
    kind, name = split_target(target)
    if method is not None and method not in METHODS:
        raise ToolkitError(f"unknown attach method {method!r}", f"use one of {', '.join(METHODS)}")
    requested = name if kind == "function" else f"tracepoint:{name}"
    targets = [(requested, Fallback(requested, ""))] + [(f.function, f) for f in fallbacks]
    cands, skipped = [], []
    for tgt, fb in targets:
        tkind, tname = split_target(tgt)
        common = dict(requested=requested, why=fb.why, arg_map=dict(fb.arg_map), ret_note=fb.ret_note)
        if tkind == "tracepoint":
            if method not in (None, "tracepoint") and tgt != requested:
                continue
            if caps.tracefs:
                skipped.append(f"tracepoint:{tname}: {caps.tracefs}")
            elif not caps.tracepoint_exists(*tname.split(":")):
                skipped.append(f"tracepoint:{tname}: no such tracepoint in this kernel")
            else:
                cands.append(Candidate(tname, "tracepoint", **common))
            continue
        if not caps.has_symbol(tname):
            skipped.append(f"{tname}: not in /proc/kallsyms (inlined, optimized away or not built "
                           "in on this kernel)")
            continue
        for m in ("kprobe", "kfunc"):
            if method not in (None, m):
                continue
            if m == "kprobe" and caps.kprobes:
                skipped.append(f"kprobe:{tname}: {caps.kprobes}")
            elif m == "kfunc" and caps.kfunc:
                skipped.append(f"kfunc:{tname}: {caps.kfunc}")
            elif m == "kfunc" and not caps.in_btf(tname):
                skipped.append(f"kfunc:{tname}: no BTF description of {tname} (fentry needs one)")
            else:
                cands.append(Candidate(tname, m, **common))
    return Plan(cands, skipped)


def failure_error(target: str, skipped: list[str]) -> ToolkitError:
    """One error naming what the kernel lacks for every way we tried."""
    text = " ".join(skipped).lower()
    fixes = []
    if "config_kprobes" in text or "no kprobe" in text:
        fixes.append("boot a kernel with CONFIG_KPROBES=y (Debian's linux-image-amd64 has it)")
    if "tracefs" in text:
        fixes.append("mount -t tracefs nodev /sys/kernel/tracing (as root)")
    if "kallsyms" in text:
        fixes.append("pick a traceable caller (grep it in /proc/kallsyms) or a tracepoint:CAT:NAME")
    if "permission" in text or "eperm" in text or "not permitted" in text:
        fixes.append("run gdb as root (BPF needs CAP_BPF/CAP_PERFMON)")
    if "no such tracepoint" in text:
        fixes.append("pick one listed in /sys/kernel/tracing/available_events (written CAT:NAME)")
    if not fixes:
        fixes.append("toolkit doctor shows what this kernel supports")
    return ToolkitError(f"cannot trace {target}: " + "; ".join(skipped), "; ".join(fixes))


# -- argument resolution -------------------------------------------------------------------------
@record
class ResolvedTerm:
    sign: int
    src: str                      # 'arg' | 'task' | 'tp' | 'const'
    index: int = 0                # arg index, or tracepoint field offset
    size: int = 8                 # tracepoint field size
    signed: bool = False
    value: int = 0                # const
    reads: list[tuple[int, int]] = field(default_factory=list)


@record
class ResolvedValue:
    name: str
    text: str
    terms: list[ResolvedTerm] = field(default_factory=list)
    signed: bool = False
    unavailable: str = ""         # why this value cannot be read with this candidate
    kind: str = "arg"             # 'arg' or 'field' (capture)


def _resolve_term(term: Term, cand: Candidate, params, oracle, tp_fields, depth=0,
                  max_reg_args: int | None = 6) -> list[ResolvedTerm]:
    if term.base is None:
        return [ResolvedTerm(term.sign, "const", value=term.const)]
    base = term.base
    struct = None
    if base == "task":
        rt = ResolvedTerm(term.sign, "task")
        struct = "task_struct"
    elif cand.method == "tracepoint":
        fields = tp_fields or {}
        names = [n for n in fields if not n.startswith("common_")]
        if base.startswith("arg") and base[3:].isdigit() and int(base[3:]) < len(names):
            base = names[int(base[3:])]
        if base not in fields:
            return _mapped(term, cand, params, oracle, tp_fields, depth,
                           f"tracepoint {cand.function} has no field {term.base!r} "
                           f"(fields: {', '.join(names) or 'none'})")
        off, size, signed = fields[base]
        if size not in (1, 2, 4, 8):
            raise ToolkitError(f"--args: tracepoint field {base} is {size} bytes; ktrace reads numbers "
                               "and pointers (1, 2, 4 or 8 bytes)", "name a scalar field")
        if term.path:
            raise ToolkitError(f"--args: {term.base}->{term.path}: tracepoint fields have no BTF type here",
                               "read plain tracepoint fields, or task->FIELD")
        return [ResolvedTerm(term.sign, "tp", index=off, size=size, signed=signed)]
    else:
        index = None
        if base.startswith("arg") and base[3:].isdigit():
            index = int(base[3:])
        elif params is not None:
            for i, (pname, pstruct) in enumerate(params):
                if pname == base:
                    index, struct = i, pstruct
        if index is None:
            why = (f"{cand.function} has no parameter {base!r}"
                   + (f" (parameters: {', '.join(p for p, _ in params)})" if params else
                      " (no BTF for its parameters: use argN)"))
            return _mapped(term, cand, params, oracle, tp_fields, depth, why, max_reg_args)
        if cand.method == "kprobe" and max_reg_args is not None and index >= max_reg_args:
            raise ToolkitError(f"--args: {term.base}: only the first {max_reg_args} arguments are in "
                               "registers", f"use arg0..arg{max_reg_args - 1}")
        if params is not None and struct is None and index < len(params):
            struct = params[index][1]
        rt = ResolvedTerm(term.sign, "arg", index=index)
    if term.path:
        if oracle is None:
            raise ToolkitError(f"--args: {term.base}->{term.path} needs the kernel's BTF",
                               "boot a kernel with CONFIG_DEBUG_INFO_BTF=y (/sys/kernel/btf/vmlinux)")
        if not struct:
            raise ToolkitError(f"--args: {term.base} is not a pointer to a struct, cannot follow "
                               f"{term.path!r}", "give a struct pointer parameter")
        rt.reads, rt.signed = oracle.field_reads(struct, term.path)
    return [rt]


def _mapped(term, cand, params, oracle, tp_fields, depth, why, max_reg_args=6):
    if term.base in cand.arg_map and depth < 3 and not term.path:
        out = []
        for sub in parse_args_spec(f"x={cand.arg_map[term.base]}")[0].terms:
            for r in _resolve_term(sub, cand, params, oracle, tp_fields, depth + 1, max_reg_args):
                r.sign *= term.sign
                out.append(r)
        return out
    raise _Unavailable(why)


class _Unavailable(Exception):
    pass


def resolve_values(args: list[ArgExpr], capture: list[str], cand: Candidate, params,
                   oracle, tp_fields=None, max_reg_args: int | None = 6) -> list[ResolvedValue]:
    """Resolve --args and capture fields for *cand*.  A requested function's unknown
    name is an error; on a fallback it becomes 'unavailable' with the reason."""
    values = []
    exprs = [(a, "arg") for a in args] + [(ArgExpr(p, f"task->{p}", [Term(1, "task", p)]), "field")
                                           for p in capture]
    if len(exprs) > MAX_VALUES:
        raise ToolkitError(f"too many values ({len(exprs)})", f"ask for at most {MAX_VALUES}")
    for expr, kind in exprs:
        rv = ResolvedValue(expr.name, expr.text, kind=kind)
        try:
            for t in expr.terms:
                rv.terms.extend(_resolve_term(t, cand, params, oracle, tp_fields, 0, max_reg_args))
        except _Unavailable as exc:
            if not cand.is_fallback:
                raise ToolkitError(f"--args: {exc}", "use a parameter name or argN") from None
            rv.terms, rv.unavailable = [], str(exc)
        except ToolkitError as exc:
            if kind == "field" and exc.cause.startswith("--args: "):    # say the option asked
                raise ToolkitError("--capture: " + exc.cause[len("--args: "):], exc.fix) from None
            raise
        rv.signed = any(t.signed for t in rv.terms) or len(rv.terms) > 1
        values.append(rv)
    return values
