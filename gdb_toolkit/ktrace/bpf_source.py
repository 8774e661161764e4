"""Generate the bcc C program for one attach candidate.  Pure text generation.

Kernel structs are never dereferenced through headers: every field read is a
``bpf_probe_read_kernel`` at a BTF offset computed beforehand (see plan.py), so
the headers bcc compiles against only need to provide basic types.
"""

from gdb_toolkit.common.record import record
from gdb_toolkit.ktrace.plan import Candidate, ResolvedTerm, ResolvedValue

PREFIX = "gtk_kt_"           # every program/map name starts with this (bpftool shows it)
FLAG_RET = 1
FLAG_HAS_RET_SLOT = 2


@record
class Program:
    text: str
    entry: str                   # function name of the entry program
    exit: str | None             # function name of the return/exit program
    nvalues: int
    ret_from: str                # 'regs', 'kfunc', 'tp', '' (none)


_HEADER = """
struct gtk_kt_event {
    u64 time_ns;
    u64 task;
    u64 retval;
    u64 vals[NVALS];
    u32 pid;
    u32 tid;
    s32 stack_id;
    u32 flags;
    char comm[16];
};
BPF_PERF_OUTPUT(gtk_kt_events);
"""

_READ = """
static __always_inline u64 gtk_kt_rd(u64 addr, u32 size)
{
    if (size == 1) { u8 x = 0; bpf_probe_read_kernel(&x, 1, (void *)addr); return x; }
    if (size == 2) { u16 x = 0; bpf_probe_read_kernel(&x, 2, (void *)addr); return x; }
    if (size == 4) { u32 x = 0; bpf_probe_read_kernel(&x, 4, (void *)addr); return x; }
    u64 x = 0; bpf_probe_read_kernel(&x, 8, (void *)addr); return x;
}
"""

_KPROBE_ARGS = ["PT_REGS_PARM1(ctx)", "PT_REGS_PARM2(ctx)", "PT_REGS_PARM3(ctx)",
                "PT_REGS_PARM4(ctx)", "PT_REGS_PARM5(ctx)", "PT_REGS_PARM6(ctx)"]


def _sext(expr: str, size: int) -> str:
    bits = {1: "s8", 2: "s16", 4: "s32"}.get(size)
    return f"(u64)(s64)({bits})({expr})" if bits else expr


def _term_c(t: ResolvedTerm, method: str) -> str:
    if t.src == "const":
        base = f"(u64){t.value}ULL" if t.value >= 0 else f"(u64)({t.value}LL)"
    elif t.src == "task":
        base = "(u64)bpf_get_current_task()"
    elif t.src == "tp":
        base = f"gtk_kt_rd((u64)ctx + {t.index}, {t.size})"
        if t.signed:
            base = _sext(base, t.size)
    elif method == "kprobe":
        base = f"(u64){_KPROBE_ARGS[t.index]}"
    else:   # kfunc: ctx is an array of u64 arguments
        base = f"ctx[{t.index}]"
    expr = base
    for i, (off, size) in enumerate(t.reads):
        read = f"gtk_kt_rd({expr} + {off}, {size})"
        expr = _sext(read, size) if (t.signed and i == len(t.reads) - 1) else read
    return expr


def value_c(v: ResolvedValue, method: str) -> str:
    if not v.terms:
        return "0"
    pieces = []
    for t in v.terms:
        c = _term_c(t, method)
        if not pieces:
            pieces.append(c if t.sign > 0 else f"(u64)0 - {c}")
        else:
            pieces.append((" - " if t.sign < 0 else " + ") + c)
    return "".join(pieces)


def generate(cand: Candidate, values: list[ResolvedValue], pid: int | None, ret: bool, stack: bool,
             nparams: int | None = None, exit_ret_off: int = 16, exclude: tuple = (),
             pidns=None) -> Program:
    """*exclude*: process ids (tgids: every thread of them) never traced.  *pidns*: the
    caller's child pid namespace (pidns.PidNamespace): *pid*, *exclude* and the recorded
    pid/tid are that namespace's numbers (0: a task outside it), as bpf_codegen does."""
    nv = max(1, len(values))
    method = cand.method
    parts = [_HEADER.replace("NVALS", str(nv)), _READ]
    if method == "kprobe":      # struct pt_regs: the architecture's register ABI, not a kernel struct
        parts.insert(0, "#include <uapi/linux/ptrace.h>\n")
    if stack:
        parts.append("BPF_STACK_TRACE(gtk_kt_stacks, 1024);\n")
    exit_tp = cand.exit_tracepoint
    want_ret = ret and (method != "tracepoint" or exit_tp is not None)
    if want_ret:
        parts.append("BPF_HASH(gtk_kt_inflight, u32, struct gtk_kt_event, 10240);\n")
    if method == "kprobe":
        entry, exit_ = "gtk_kt_entry", "gtk_kt_exit"
        sig_entry = sig_exit = "struct pt_regs *ctx"
    elif method == "kfunc":
        entry, exit_ = f"kfunc__{cand.function}", f"kretfunc__{cand.function}"
        sig_entry = sig_exit = "u64 *ctx"
    else:
        entry, exit_ = "gtk_kt_tp", "gtk_kt_tpx"
        sig_entry = sig_exit = "void *ctx"
    filt = f"    if (pid != {int(pid)}) return 0;\n" if pid else ""
    filt += "".join(f"    if (pid == {int(x)}) return 0;\n" for x in exclude if x and x != pid)
    if pidns is None:
        ids = ("    u32 pid = pid_tgid >> 32;\n", "    u32 tid = (u32)pid_tgid;\n")
    else:   # the caller's namespace numbers, never the global ones (another process's)
        ids = ("    struct bpf_pidns_info ns = {};\n",
               f"    long ns_err = bpf_get_ns_current_pid_tgid({int(pidns.dev)}ULL, {int(pidns.ino)}ULL, "
               "&ns, sizeof(ns));\n", "    if (ns_err) return 0;\n" if pid else "",
               "    u32 pid = ns.tgid;\n", "    u32 tid = ns.pid;\n")
    body = [f"int {entry}({sig_entry})\n{{\n",
            "    u64 pid_tgid = bpf_get_current_pid_tgid();\n",
            "    u32 key = (u32)pid_tgid;\n", *ids, filt,
            "    struct gtk_kt_event e = {};\n",
            "    e.time_ns = bpf_ktime_get_ns();\n",
            "    e.pid = pid;\n    e.tid = tid;\n",
            "    e.task = (u64)bpf_get_current_task();\n",
            "    bpf_get_current_comm(&e.comm, sizeof(e.comm));\n"]
    for i, v in enumerate(values):
        body.append(f"    e.vals[{i}] = {value_c(v, method)};   /* {v.name} = {v.text} */\n")
    body.append("    e.stack_id = gtk_kt_stacks.get_stackid(ctx, 0);\n" if stack else "    e.stack_id = -1;\n")
    if want_ret:
        body.append("    gtk_kt_inflight.update(&key, &e);\n")
    else:
        body.append("    gtk_kt_events.perf_submit(ctx, &e, sizeof(e));\n")
    body.append("    return 0;\n}\n")
    parts.append("".join(body))
    ret_from = ""
    if want_ret:
        if method == "kprobe":
            rexpr, ret_from = "(u64)PT_REGS_RC(ctx)", "regs"
        elif method == "kfunc":
            rexpr, ret_from = f"ctx[{int(nparams or 0)}]", "kfunc"
        else:
            rexpr, ret_from = f"gtk_kt_rd((u64)ctx + {int(exit_ret_off)}, 8)", "tp"
        parts.append(
            f"int {exit_}({sig_exit})\n{{\n"
            "    u32 tid = (u32)bpf_get_current_pid_tgid();\n"
            "    struct gtk_kt_event *p = gtk_kt_inflight.lookup(&tid);\n"
            "    if (!p) return 0;\n"
            f"    p->retval = {rexpr};\n"
            f"    p->flags |= {FLAG_RET};\n"
            "    gtk_kt_events.perf_submit(ctx, p, sizeof(*p));\n"
            "    gtk_kt_inflight.delete(&tid);\n"
            "    return 0;\n}\n")
    return Program("".join(parts), entry, exit_ if want_ret else None, nv, ret_from)
