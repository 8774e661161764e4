"""gdb commands over the running kernel: kcore, kprobe-list, kprobe-show, kdis, kx, ksym,
ftrace-site, and the $ksym / $kprobe convenience functions.

They read /proc/kcore, /proc/kallsyms and BTF themselves (gdb_toolkit.kernel), so they
work with or without a vmlinux loaded in gdb, and without gdb's core target.
"""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


def _source_options(p):
    g = p.add_argument_group("sources")
    g.add_argument("--kcore", metavar="PATH", help="kernel memory: /proc/kcore (default) or a vmcore")
    g.add_argument("--kallsyms", metavar="PATH", help="symbols (default /proc/kallsyms)")
    g.add_argument("--system-map", metavar="PATH",
                   help="symbols from a System.map or vmlinux ELF (slid by the KASLR offset)")
    g.add_argument("--vmlinux", metavar="PATH", help="a vmlinux: kprobe-show adds its as-built bytes")
    g.add_argument("--btf", metavar="PATH", help="BTF (default /sys/kernel/btf/vmlinux)")
    return p


def _session_defaults() -> dict:
    """Sources for commands given none (the live kernel for now)."""
    return {}


def _session(args):
    from gdb_toolkit.kernel.session import KernelSession

    return KernelSession(kcore=args.kcore, kallsyms=args.kallsyms, btf=args.btf,
                         system_map=args.system_map, vmlinux=args.vmlinux)


def _address(session, text: str) -> int:
    """A kernel address from kallsyms (sym, sym+off, 0x...) or, failing that, a gdb expression."""
    from gdb_toolkit.common.errors import ToolkitError

    try:
        return session.parse_address(text)
    except ToolkitError:
        if text.strip()[:1] in "$&*(":
            from gdb_toolkit.gdbsupport.facts import eval_address
            return eval_address(text, bits=64)
        raise


def _hex(v):
    return "-" if v is None else f"0x{v:x}"



def _event_text(p, short: bool = False) -> str:
    if not p.event:
        return "-"
    if p.event_tracefs is False:
        return f"{p.event} (perf)" if short else \
            f"{p.event} (a perf/BPF probe's own event: not in tracefs kprobe_events)"
    return p.event


class _KernelSymbolCompleter:
    """Complete kernel symbol names from /proc/kallsyms (first 200 matches); split the
    command line keeping quotes inside a word, so ``kx $ksym("vfs_write")+5 8`` reaches
    gdb's evaluator as written."""

    def split_argv(self, argument):
        from gdb_toolkit.common.args import split_expression_words

        return split_expression_words(argument)

    def complete_values(self, word):
        if len(word) < 2:
            return gdb.COMPLETE_NONE
        import bisect

        from gdb_toolkit.kernel.kallsyms import symbol_names

        names = symbol_names()
        i = bisect.bisect_left(names, word)
        out = []
        while i < len(names) and names[i].startswith(word) and len(out) < 200:
            out.append(names[i])
            i += 1
        return out


class Kcore(ToolkitCommand):
    """Open /proc/kcore (or a vmcore) and show its segments, kernel release and KASLR offset.

Usage: kcore [PATH] [--json]

Reads the ELF program headers (one PT_LOAD per kernel memory region, p_vaddr = kernel
virtual address) and the VMCOREINFO note.  Needs root (CAP_SYS_RAWIO) and a kernel
with CONFIG_PROC_KCORE and no lockdown; each failure says which.

Example:
  (gdb) kcore
  (gdb) kcore /var/crash/vmcore --json"""

    name = "kcore"
    value_completer = gdb.COMPLETE_FILENAME

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "kcore segments and VMCOREINFO")
        p.add_argument("path", nargs="?", help="default /proc/kcore")
        p.add_argument("--kallsyms", metavar="PATH", help="symbols for segment labels")
        p.add_argument("--all-info", action="store_true", help="print every VMCOREINFO line")
        return p

    def run(self, args):
        from gdb_toolkit.kernel.memory_views import kcore_report
        from gdb_toolkit.kernel.session import KernelSession

        with KernelSession(kcore=args.path, kallsyms=args.kallsyms) as s:
            rep = kcore_report(s)
        if not args.all_info and not args.json:
            rep.vmcoreinfo = {}
        return rep

    def render(self, r, ctx):
        from gdb_toolkit.common.render import human_size, key_values, table

        head = key_values([
            ("kcore", r.path), ("arch", r.arch), ("release", r.release or "-"),
            ("build-id", r.build_id or "-"), ("page size", r.page_size),
            ("KASLR offset", f"{_hex(r.kaslr_offset)} ({r.kaslr_source})" if r.kaslr_offset is not None
             else "unknown"),
        ])
        rows = [[_hex(s.vaddr), _hex(s.end), human_size(s.size), _hex(s.offset), s.label]
                for s in r.segments]
        out = head + "\n" + table(["start", "end", "size", "file offset", "what"], rows, ctx.width)
        for k, v in r.vmcoreinfo.items():
            out += f"  {k}={v}\n"
        return out + "".join(f"note: {n}\n" for n in r.notes)


class KprobeList(ToolkitCommand):
    """List every kprobe: where, kernel flags, what the live bytes show, original bytes, handler.

Usage: kprobe-list [--json] [--no-memory] [--kcore PATH] [--kallsyms PATH] [--btf PATH]

Joins the kernel's /sys/kernel/debug/kprobes/list with the struct kprobes found by
walking kprobe_table[64] through /proc/kcore (layouts from BTF), the live bytes at
each address (int3, optimized jmp to a detour buffer, ftrace call, disarmed), the
original instruction (p->opcode, optinsn.copied_insn, or the ftrace NOP), handlers,
tracefs events and kprobe_profile hit/miss counts.  "ok" says whether the bytes agree
with the kernel's own flags.

Example:
  (gdb) kprobe-list
  (gdb) kprobe-list --json"""

    name = "kprobe-list"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "all kprobes")
        p.add_argument("--no-memory", action="store_true",
                       help="do not walk kprobe_table (kprobes/list and live bytes only)")
        return _source_options(p)

    def run(self, args):
        with _session(args) as s:
            return s.kprobe_report(use_memory=not args.no_memory)

    def render(self, r, ctx):
        from gdb_toolkit.common.render import table

        if not r.probes:
            out = "no kprobes registered\n"
        else:
            rows = []
            for p in r.probes:
                hm = "-" if p.hits is None else f"{p.hits}/{p.misses}"
                rows.append([_hex(p.address), "r" if p.type == "kretprobe" else "k", p.where,
                             "".join(f"[{f}]" for f in p.flags) or "-", p.state,
                             p.original.hex(" ") if p.original else "?",
                             p.ret_handler or p.handler or "-", _event_text(p, short=True), hm,
                             "ok" if p.consistent else "MISMATCH"])
            out = table(["address", "t", "probe", "kernel flags", "live", "original", "handler",
                         "event", "hit/miss", "check"], rows, ctx.width)
        notes = list(r.notes) + [f"{p.where}: {n}" for p in r.probes for n in p.notes]
        out += f"sources: {', '.join(r.sources)}\n"
        return out + "".join(f"note: {n}\n" for n in notes)


class KprobeShow(_KernelSymbolCompleter, ToolkitCommand):
    """Show one kprobe in depth: live vs original code, struct kprobe fields, detour, BPF.

Usage: kprobe-show SYMBOL|ADDR [-n N] [--json] [--kcore PATH] [--btf PATH]

Disassembles the first N instructions as they are now and as they were (original
bytes from p->opcode / optinsn.copied_insn / the ftrace NOP), decodes every field of
the struct kprobe (and its aggregate / optimized_kprobe) through BTF, disassembles the
optimized probe's detour buffer or the ftrace trampoline, and for BPF-backed probes
lists the attached programs and their JIT addresses.

Example:
  (gdb) kprobe-show do_sys_openat2
  (gdb) kprobe-show vfs_write+0x5"""

    name = "kprobe-show"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "one kprobe in depth")
        p.add_argument("where", help="SYMBOL, SYMBOL+OFF or ADDRESS of the probe")
        p.add_argument("-n", "--count", type=int, default=6, help="instructions to show (6)")
        return _source_options(p)

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.kernel.kprobe_show import kprobe_show

        if args.count <= 0 or args.count > 1000:
            raise ToolkitError(f"count {args.count} is out of range", "give -n 1..1000")
        with _session(args) as s:
            return kprobe_show(s, args.where, args.count, addr=_address(s, args.where))

    def render(self, r, ctx):
        from gdb_toolkit.common.render import key_values, table

        out = [f"kprobe at {_hex(r.address)} <{r.where}>\n"]
        for p in r.probes:
            out.append(key_values([
                ("probe", f"{p.type} {''.join(f'[{f}]' for f in p.flags)}".strip()),
                ("live bytes show", f"{p.state} (kernel flags expect {p.expected or 'anything'}: "
                                    f"{'agree' if p.consistent else 'MISMATCH'})"),
                ("handler", ", ".join(x for x in (p.handler, p.post_handler and f"post {p.post_handler}",
                                                  p.ret_handler and f"return {p.ret_handler}") if x)
                 or "-"),
                ("event", _event_text(p)),
                ("hits/misses", "-" if p.hits is None else f"{p.hits}/{p.misses}"),
                ("struct kprobe", _hex(p.struct_addr)),
            ]))
        def dis(lines):
            return table(["address", "bytes", "instruction", "target"],
                         [[_hex(x.address), x.raw, x.text, x.target or ""] for x in lines], ctx.width)
        out.append("\nlive code:\n" + dis(r.live))
        if r.original:
            out.append(f"\noriginal code (from {r.original_source}):\n" + dis(r.original))
        else:
            out.append("\noriginal code: unknown (needs kprobe_table via CONFIG_KALLSYMS_ALL and BTF)\n")
        if r.as_built:
            out.append("\nas built (the --vmlinux file, KASLR-slid):\n" + dis(r.as_built))
        if r.detour:
            out.append(f"\n{r.detour_title}:\n" + dis(r.detour))
        for sd in r.structs:
            out.append(f"\n{sd.title}: {sd.type} at {_hex(sd.address)}\n")
            out.append(table(["field", "offset", "type", "value"],
                             [[f.path, f.offset, f.type, f.value] for f in sd.fields], ctx.width))
        if r.bpf:
            out.append("\nBPF programs attached:\n")
            out.append(table(["prog", "id", "name", "bpf_func (JIT)", "symbol"],
                             [[_hex(b["prog"]), b["id"], b["name"] or "-", _hex(b["bpf_func"]),
                               b["bpf_func_symbol"] or "-"] for b in r.bpf], ctx.width))
        out += [f"note: {n}\n" for n in r.notes]
        return "".join(out)


class Kdis(_KernelSymbolCompleter, ToolkitCommand):
    """Disassemble kernel memory read through /proc/kcore, marking kprobe and ftrace sites.

Usage: kdis SYMBOL|ADDR [N] [--function] [--json] [--kcore PATH] [--kallsyms PATH]

Shows N instructions (default 16) with symbolized targets.  int3 / brk, optimized-probe
jumps and ftrace calls are cross-checked against kprobes/list: not every int3 or call
is a kprobe.  Works with or without a vmlinux loaded in gdb.

Example:
  (gdb) kdis do_sys_openat2 8
  (gdb) kdis 0xffffffff81234560 --function"""

    name = "kdis"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "disassemble kernel memory")
        p.add_argument("where", help="SYMBOL, SYMBOL+OFF, ADDRESS or a gdb expression ($pc)")
        p.add_argument("count", nargs="?", type=int, default=16, help="instructions (16)")
        p.add_argument("--function", action="store_true", help="the whole function")
        return _source_options(p)

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.kernel.memory_views import kdis

        if args.count <= 0 or args.count > 100000:
            raise ToolkitError(f"count {args.count} is out of range", "give 1..100000")
        with _session(args) as s:
            addr = _address(s, args.where)
            try:
                listed = s.listed_probes()
                kaddrs = None if listed is None else {p.address for p in listed}
            except ToolkitError:
                kaddrs = None
            return kdis(s, addr, args.count, kaddrs, args.function)

    def render(self, r, ctx):
        from gdb_toolkit.common.render import table

        rows = [[_hex(i.address), i.where, i.raw.hex(" "), i.text, i.target or "", i.note]
                for i in r.insns]
        out = f"{_hex(r.address)} <{r.where}>:\n"
        out += table(["address", "symbol", "bytes", "instruction", "target", "note"], rows, ctx.width)
        return out + "".join(f"note: {n}\n" for n in r.notes)


class Kx(_KernelSymbolCompleter, ToolkitCommand):
    """Dump kernel memory through /proc/kcore as hex and ASCII (or symbolized 8-byte words).

Usage: kx SYMBOL|ADDR [LEN] [--words] [--json] [--kcore PATH]

LEN defaults to 64 bytes (k/M suffixes accepted).  --words shows little-endian 64-bit
values with the kernel symbol each points at.

Example:
  (gdb) kx linux_banner 128
  (gdb) kx kprobe_table 64 --words"""

    name = "kx"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "dump kernel memory")
        p.add_argument("where", help="SYMBOL, SYMBOL+OFF, ADDRESS or a gdb expression")
        p.add_argument("length", nargs="?", type=parse_int, default=64, help="bytes (64)")
        p.add_argument("--words", action="store_true", help="64-bit words with symbols")
        return _source_options(p)

    def run(self, args):
        from gdb_toolkit.kernel.memory_views import kx

        with _session(args) as s:
            return kx(s, _address(s, args.where), args.length, args.words)

    def render(self, r, ctx):
        out = [f"{_hex(r.address)} <{r.where}>, {r.length} bytes:\n"]
        for row in r.rows:
            if row.words:
                ws = "  ".join(f"0x{v:016x}" + (f" <{s}>" if s else "") for v, s in row.words)
                out.append(f"0x{row.address:x}:  {ws}\n")
            else:
                out.append(f"0x{row.address:x}:  {row.hex:<47}  {row.ascii}\n")
        return "".join(out)


class Ksym(_KernelSymbolCompleter, ToolkitCommand):
    """Look up a kernel symbol by name or address (kallsyms, module symbols, BTF prototype).

Usage: ksym NAME|MODULE:NAME|ADDR [--json] [--kallsyms PATH] [--system-map PATH]

By name: every symbol with that name (vmlinux and modules), its type letter, size
(distance to the next symbol) and, from BTF, its C prototype.  By address: the
symbol containing it and the offset.  Needs no kcore; kptr_restrict is reported.

Example:
  (gdb) ksym do_sys_openat2
  (gdb) ksym 0xffffffff81234567"""

    name = "ksym"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "kernel symbol lookup")
        p.add_argument("query", help="NAME, MODULE:NAME or ADDRESS")
        p.add_argument("--no-btf", action="store_true", help="skip BTF prototypes")
        return _source_options(p)

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.kernel.memory_views import ksym

        with _session(args) as s:
            rep = ksym(s, args.query, btf=not args.no_btf)
        if not rep.matches:
            raise ToolkitError(f"no kernel symbol matches {args.query!r} in {rep.source}",
                               "check the spelling; module symbols appear once the module is loaded")
        return rep

    def render(self, r, ctx):
        from gdb_toolkit.common.render import table

        rows = [[_hex(m.address), m.type, m.name + (f"+0x{m.offset:x}" if m.offset else ""),
                 m.module or "vmlinux", m.size if m.size is not None else "-", m.prototype or ""]
                for m in r.matches]
        out = table(["address", "type", "symbol", "module", "size", "prototype (BTF)"], rows, ctx.width)
        return out + "".join(f"note: {n}\n" for n in r.notes)


class FtraceSite(_KernelSymbolCompleter, ToolkitCommand):
    """Is FUNC's ftrace (fentry) site patched, and to what?

Usage: ftrace-site FUNC [--json] [--kcore PATH] [--kallsyms PATH]

Reads the first bytes of FUNC through /proc/kcore: the idle 5-byte NOP (arm64: two
NOPs), a call to ftrace_caller / ftrace_regs_caller / a trampoline, or a kprobe
breakpoint; says who enabled it (tracefs enabled_functions) and whether FUNC is
traceable at all (available_filter_functions).

Example:
  (gdb) ftrace-site vfs_read"""

    name = "ftrace-site"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "ftrace site state")
        p.add_argument("function", help="kernel function name")
        return _source_options(p)

    def run(self, args):
        from gdb_toolkit.kernel.ftrace import ftrace_site

        with _session(args) as s:
            return ftrace_site(s, args.function)

    def render(self, r, ctx):
        from gdb_toolkit.common.render import key_values

        en = r.enabled
        return key_values([
            ("function", f"{r.function} at {_hex(r.function_address)}"),
            ("ftrace site", _hex(r.site_address)),
            ("live bytes", r.live.hex(" ")),
            ("state", f"{r.state}: {r.description}"
                      + (f" -> {r.target_symbol or _hex(r.target)}" if r.target else "")),
            ("original", r.original.hex(" ") if r.original else "-"),
            ("traceable", "unknown" if r.traceable is None else "yes" if r.traceable else
             "no (not in available_filter_functions)"),
            ("enabled by", en["line"] if en else "-"),
            ("kprobes here", "; ".join(r.kprobes) or "-"),
        ]) + "".join(f"note: {n}\n" for n in r.notes)


def _function_errors(name: str, usage: str):
    """Run a convenience function's body so that any failure is one gdb error line (a
    Python traceback in ``print $f(...)`` is no answer): wrong argument count or type,
    toolkit errors, internal errors."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        from gdb_toolkit.common.errors import ToolkitError

        try:
            yield
        except gdb.GdbError:
            raise
        except ToolkitError as exc:
            raise gdb.GdbError(str(exc)) from None
        except gdb.error as exc:
            raise gdb.GdbError(f"${name}: {exc}. Fix: {usage}.") from None
        except Exception as exc:  # an internal bug: still one line
            raise gdb.GdbError(f"${name}: internal error: {type(exc).__name__}: {exc}. "
                               "Fix: report it with GDB_TOOLKIT_DEBUG=1 output.") from None
    return guard()


class KsymFunction(gdb.Function):
    """$ksym("name") -- the kernel address of a symbol, from /proc/kallsyms (no vmlinux needed).

Also "name+0x10", "module:name" and "0xADDR".  The value is an unsigned long long, so
$ksym("vfs_write")+5 is an address."""

    USAGE = 'give one quoted symbol name, e.g. $ksym("vfs_read") or $ksym("ext4:ext4_file_open")'

    def __init__(self):
        super().__init__("ksym")

    def invoke(self, *args):
        with _function_errors("ksym", self.USAGE):
            if len(args) != 1:
                raise gdb.GdbError(f"$ksym takes one argument, {len(args)} given. Fix: {self.USAGE}.")
            code = args[0].type.strip_typedefs().code
            if code not in (gdb.TYPE_CODE_ARRAY, gdb.TYPE_CODE_PTR):
                raise gdb.GdbError(f"$ksym needs a symbol name in quotes, not a {args[0].type}. "
                                   f"Fix: {self.USAGE}.")
            name = args[0].string()
            from gdb_toolkit.kernel.session import KernelSession

            with KernelSession(**_session_defaults()) as s:
                addr = s.parse_address(name)
            return gdb.Value(addr).cast(gdb.lookup_type("unsigned long long"))


class KprobeFunction(gdb.Function):
    """$kprobe(ADDR) -- the struct kprobe registered at ADDR, as a typed (struct kprobe *).

Typed with gdb's own struct kprobe: from a vmlinux with debug info, or from `ktypes`
(which loads the kernel's BTF types into gdb; no debug vmlinux needed).  Without either,
kprobe-show decodes the same fields through BTF."""

    USAGE = 'give the probed address, e.g. $kprobe($ksym("vfs_write")+5)'

    def __init__(self):
        super().__init__("kprobe")

    def invoke(self, *args):
        with _function_errors("kprobe", self.USAGE):
            if len(args) != 1:
                raise gdb.GdbError(f"$kprobe takes one argument, {len(args)} given. Fix: {self.USAGE}.")
            try:
                ktype = gdb.lookup_type("struct kprobe")
            except gdb.error:
                raise gdb.GdbError("$kprobe needs gdb to know struct kprobe. Fix: run ktypes (the "
                                   "kernel's BTF as gdb types), load a vmlinux with debug info, or "
                                   "use kprobe-show, which decodes it through BTF.") from None
            code = args[0].type.strip_typedefs().code
            if code not in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_ENUM):
                raise gdb.GdbError(f"$kprobe needs an address, not a {args[0].type}. Fix: {self.USAGE}.")
            want = int(args[0]) & ((1 << 64) - 1)
            from gdb_toolkit.kernel.session import KernelSession

            with KernelSession(**_session_defaults()) as s:
                rep = s.kprobe_report()
            for p in rep.probes:
                if p.address == want and (p.aggregate_addr or p.struct_addr):
                    return gdb.Value(p.aggregate_addr or p.struct_addr).cast(ktype.pointer())
            raise gdb.GdbError(f"no kprobe at 0x{want:x}. Fix: see kprobe-list.")


def register():
    return [Kcore(), KprobeList(), KprobeShow(), Kdis(), Kx(), Ksym(), FtraceSite(),
            KsymFunction(), KprobeFunction()]
