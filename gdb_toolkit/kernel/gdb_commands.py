"""gdb commands over a kernel: kcore, kprobe-list, kprobe-show, kdis, kx, ksym, ftrace-site,
and the $ksym / $kprobe convenience functions.

They read kernel memory, symbols and BTF themselves (gdb_toolkit.kernel), so they work with
or without a vmlinux in gdb.  Which kernel: the running one (/proc/kcore), a dump
(``kcore FILE`` or ``--kcore FILE``), or gdb's own target when it is a halted kernel (QEMU's
gdbstub, kgdb, a JTAG gdb server: ``target remote``, picked automatically, or ``kcore --gdb``).
"""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand

KERNEL_SPACE = 0xFFFF800000000000


def _name(symbol) -> str:
    """A symbol from a report inside prose: the report escaped it already (escape_name, where
    it was read), so only a control character left raw is escaped here (printable_text: a
    backslash is not doubled a second time)."""
    from gdb_toolkit.common.names import printable_text

    return printable_text(symbol) if symbol else str(symbol)


class KernelChoice:
    """Which kernel the commands read when given no --kcore: typed session state.

    kind: "auto" (gdb's target if it is a halted kernel, else the running kernel),
    "live", "file" (a dump at *path*) or "gdb"."""

    __slots__ = ("kind", "path")

    def __init__(self, kind: str = "auto", path: str | None = None):
        self.kind = kind
        self.path = path


CHOICE = KernelChoice()


# -- memory sources -----------------------------------------------------------------------------

def _kernel_thread():
    """(thread, pc) of a vCPU of gdb's target stopped in kernel code (the selected one if it
    is), when the target is a remote connection -- QEMU's gdbstub, kgdb, a JTAG server --
    else None.  A vCPU in user mode may not map the kernel (KPTI): reads go through this one."""
    try:
        inf = gdb.selected_inferior()
        conn = getattr(inf, "connection", None)
        if conn is None or getattr(conn, "type", None) not in ("remote", "extended-remote"):
            return None
        current = gdb.selected_thread()
        if current is None or current.is_running():
            return None
        threads = [current] + [t for t in inf.threads() if t.num != current.num]
        found = None
        for t in threads:
            t.switch()
            pc = int(gdb.selected_frame().pc()) & ((1 << 64) - 1)
            if pc >= KERNEL_SPACE:
                found = (t, pc)
                break
        current.switch()
        return found
    except (gdb.error, RuntimeError):
        return None


def _gdb_kernel_pc() -> int | None:
    found = _kernel_thread()
    return found[1] if found else None


def gdb_target_memory(require: bool = True):
    """gdb's target as kernel memory (a CallbackMemory); reads go through gdb, on a vCPU
    that is in kernel mode."""
    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.gdbsupport import facts
    from gdb_toolkit.kernel.memory import CallbackMemory

    found = _kernel_thread()
    if found is None and require:
        raise ToolkitError("gdb's target is not a halted kernel (no remote connection stopped in "
                           "kernel code)", "connect and stop it first: target remote HOST:PORT "
                           "(QEMU -s, kgdb, a JTAG gdb server), then interrupt it")
    inf = gdb.selected_inferior()
    kthread = found[0] if found else None

    def read(addr, size):
        here = gdb.selected_thread()
        try:
            if kthread is not None and here is not None and here.num != kthread.num:
                kthread.switch()
            return bytes(inf.read_memory(addr, size))
        except (gdb.MemoryError, gdb.error) as exc:
            raise ToolkitError(f"gdb's target cannot read kernel memory at 0x{addr:x} "
                               f"({str(exc).splitlines()[0] if str(exc) else 'no access'})",
                               "check the address (ksym NAME); the target must be stopped") from None
        finally:
            if here is not None and kthread is not None and here.num != kthread.num:
                here.switch()

    conn = getattr(inf, "connection", None)
    details = getattr(conn, "details", None) or getattr(conn, "type", "target")
    mem = CallbackMemory(read, facts.target_arch(), f"gdb's target ({details})")
    mem.anchor = found[1] if found else None
    return mem


def kernel_session_args() -> dict:
    """KernelSession arguments for commands given no --kcore: the kernel chosen with `kcore`
    (the running one, a dump, or gdb's halted target).  Other domains (ktask, ktypes) use it."""
    if CHOICE.kind == "file":
        return {"kcore": CHOICE.path}
    if CHOICE.kind == "gdb" or (CHOICE.kind == "auto" and _gdb_kernel_pc() is not None):
        return {"memory": gdb_target_memory(require=CHOICE.kind == "gdb")}
    return {}


def _source_options(p):
    g = p.add_argument_group("sources")
    g.add_argument("--kcore", metavar="PATH", help="kernel memory: /proc/kcore or a vmcore "
                   "(default: the kernel chosen with `kcore`)")
    g.add_argument("--kallsyms", metavar="PATH",
                   help="symbols: /proc/kallsyms, or one saved on the dumped/halted kernel's boot")
    g.add_argument("--system-map", metavar="PATH",
                   help="symbols from a System.map or vmlinux ELF (slid by the KASLR offset)")
    g.add_argument("--vmlinux", metavar="PATH", help="a vmlinux: kprobe-show adds its as-built bytes")
    g.add_argument("--btf", metavar="PATH", help="BTF (default: /sys/kernel/btf/vmlinux, or the "
                   "dump's own)")
    return p


GIVEN_FILES = (("kcore", "--kcore file"), ("kallsyms", "--kallsyms file"),
               ("system_map", "--system-map file"), ("vmlinux", "--vmlinux file"), ("btf", "--btf file"))


def check_given_files(args) -> None:
    """A file the user named must be a regular file (a FIFO would block gdb, a device stream
    for ever): refused now, in one line, before anything reads it."""
    import os
    import stat

    from gdb_toolkit.common.errors import ToolkitError
    from gdb_toolkit.common.names import escape_name
    from gdb_toolkit.common.safe_open import describe_mode

    for attr, what in GIVEN_FILES + (("path", "kcore file"),):
        path = getattr(args, attr, None)
        if not path:
            continue
        try:
            st = os.stat(path)      # no open: /proc/kcore's own errors (EPERM) are explained later
        except OSError:
            continue                # the reader says why (missing, permission)
        if not stat.S_ISREG(st.st_mode):
            raise ToolkitError(f"{what} {escape_name(path)} is {describe_mode(st.st_mode)}, not a "
                               "regular file", "give the path of a regular file")


def _session(args):
    from gdb_toolkit.kernel.session import KernelSession

    check_given_files(args)
    kw = {"kcore": args.kcore} if getattr(args, "kcore", None) else kernel_session_args()
    return KernelSession(kallsyms=getattr(args, "kallsyms", None), btf=getattr(args, "btf", None),
                         system_map=getattr(args, "system_map", None),
                         vmlinux=getattr(args, "vmlinux", None), **kw)


def _address(session, text: str) -> int:
    """A kernel address from the symbols (sym, sym+off, 0x...) or, failing that, a gdb expression."""
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


def _notes(notes, ctx) -> str:
    """``note: SENTENCE`` lines as every command prints them (common.text.notes_block)."""
    from gdb_toolkit.common.text import notes_block

    return notes_block(notes, ctx.width)


class _KernelCommand(ToolkitCommand):
    """Kernel commands: ``kernel`` category, hex addresses in JSON, symbol completion, and a
    command line split keeping quotes inside a word, so ``kx $ksym("vfs_write")+5 8``
    reaches gdb's evaluator as written."""

    category = "kernel"
    json_hex_addresses = True
    #: a first call imports ~25 modules and reads kallsyms, kcore and probe tables whose objects
    #: stay alive (caches): the collector's passes over them free nothing (common/gc_pause.py)
    pause_gc = True

    def split_argv(self, argument):
        from gdb_toolkit.common.args import split_expression_words

        return split_expression_words(argument)

    def complete_values(self, word):
        # MODULE:NAME completes NAME (kallsyms names carry no module prefix)
        module, colon, name = word.rpartition(":") if ":" in word and "::" not in word else ("", "", word)
        if len(name) < 2:
            return gdb.COMPLETE_NONE
        import bisect

        from gdb_toolkit.common.args import name_word
        from gdb_toolkit.common.names import escape_name, typed_name
        from gdb_toolkit.kernel.kallsyms import symbol_names

        # offered as the commands print them and take them back (a name may be any bytes)
        names = symbol_names()
        raw = typed_name(name) or name
        i = bisect.bisect_left(names, raw)
        out = []
        while i < len(names) and names[i].startswith(raw) and len(out) < 200:
            out.append(module + colon + name_word(escape_name(names[i])))
            i += 1
        return out


class Kcore(_KernelCommand):
    name = "kcore"
    summary = "Kernel memory source: segments, release, KASLR"
    usage = """\
kcore [PATH] [--kallsyms PATH] [--all-info] [--json]
kcore --gdb | --live"""
    description = """\
Shows the kernel memory the kernel commands read -- /proc/kcore of the running
kernel, a dump, or gdb's own target when it is a halted kernel -- with its
segments, release, build-id and KASLR offset (VMCOREINFO's KERNELOFFSET).

kcore PATH opens a dump (a kdump/makedumpfile vmcore, ELF or compressed, or
QEMU's dump-guest-memory) and makes it the kernel of the following kprobe-list,
kprobe-show, kdis, kx, ksym, ftrace-site commands; --gdb makes it gdb's
target (chosen by itself after `target remote` to a stopped kernel); --live
goes back to /proc/kcore.  A dump or a halted kernel has no tracefs or
debugfs: probes come from kernel memory alone, symbols from the kernel's own
kallsyms tables, types from its BTF.  Needs root for /proc/kcore."""
    examples = ("kcore", "kcore /var/crash/vmcore", "kcore --gdb", "kcore --live --json")
    value_completer = gdb.COMPLETE_FILENAME

    def split_argv(self, argument):
        return gdb.string_to_argv(argument)

    def complete_values(self, word):
        return gdb.COMPLETE_FILENAME

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "kcore segments and VMCOREINFO")
        p.add_argument("path", nargs="?", help="a vmcore, or /proc/kcore")
        w = p.add_mutually_exclusive_group()
        w.add_argument("--gdb", action="store_true", help="read gdb's target (a halted kernel)")
        w.add_argument("--live", action="store_true", help="read /proc/kcore (the running kernel)")
        p.add_argument("--kallsyms", metavar="PATH", help="symbols for segment labels")
        p.add_argument("--all-info", action="store_true", help="print every VMCOREINFO line")
        return p

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.kernel.memory_views import kcore_report
        from gdb_toolkit.kernel.session import LIVE_KCORE, KernelSession

        check_given_files(args)
        if args.path and (args.gdb or args.live):
            raise ToolkitError("give a PATH or --gdb/--live, not both", "kcore PATH, or kcore --gdb")
        if args.gdb:
            choice, kw = KernelChoice("gdb"), {"memory": gdb_target_memory()}
        elif args.live or (args.path and args.path == LIVE_KCORE):
            choice, kw = KernelChoice("live"), {"kcore": LIVE_KCORE}
        elif args.path:
            choice, kw = KernelChoice("file", args.path), {"kcore": args.path}
        else:
            choice, kw = None, kernel_session_args()
        with KernelSession(kallsyms=args.kallsyms, **kw) as s:
            rep = kcore_report(s)          # opens it: a bad file does not become the choice
        if choice is not None:
            CHOICE.kind, CHOICE.path = choice.kind, choice.path
        if not args.all_info and not args.json:
            rep.vmcoreinfo = {}
        return rep

    def render(self, r, ctx):
        from gdb_toolkit.common.render import human_size
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import key_values

        head = key_values([
            ("kcore", r.path, "file"), ("source", {"live": "the running kernel",
                                                   "vmcore": "a kernel dump",
                                                   "gdb": "gdb's target (a halted kernel)"}
                                         .get(r.source_kind, r.source_kind)),
            ("arch", r.arch), ("release", r.release or "-"),
            ("build-id", r.build_id or "-"), ("page size", r.page_size),
            ("KASLR offset", f"{_hex(r.kaslr_offset)} ({r.kaslr_source})" if r.kaslr_offset is not None
             else "unknown"),
        ], ctx.width, ctx.styler)
        rows = [[_hex(s.start_address), _hex(s.end_address), human_size(s.size),
                 _hex(s.file_offset), s.label] for s in r.segments]
        out = head + "\n" + render_table(
            [Col("start", "address"), Col("end", "address"), Col("size", "number"),
             Col("file offset", "address"), Col("what")], rows, ctx.width, styler=ctx.styler)
        if r.vmcoreinfo:
            # the dump's own text (any bytes a crafted vmcore holds): each KEY=VALUE line
            # escaped and wrapped by the prose wrapper, under its heading
            from gdb_toolkit.common.text import wrap

            out += "VMCOREINFO:\n" + "".join(wrap(f"{k}={v}", ctx.width, "  ", "    ")
                                             for k, v in r.vmcoreinfo.items())
        return out + _notes(r.notes, ctx)


class KprobeList(_KernelCommand):
    name = "kprobe-list"
    summary = "Every kprobe: live bytes vs kernel flags"
    usage = "kprobe-list [--no-memory] [SOURCES] [--json]"
    description = """\
Every registered kprobe, one row per probe as in the kernel's own list
(/sys/kernel/debug/kprobes/list), joined with the probes found by walking
kprobe_table[64] in kernel memory (layouts from BTF): the live bytes at each
address (int3, optimized jmp to a detour buffer, ftrace call, disarmed), the
original instruction (p->opcode, optinsn.copied_insn, or the ftrace NOP), the
handler, and each probe's own event, hit count and BPF programs from its
trace_kprobe.  "ok" says the bytes agree with the kernel's flags.  On a dump or
a halted kernel everything comes from memory."""
    examples = ("kprobe-list", "kprobe-list --json", "kprobe-list --kcore /var/crash/vmcore")

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "all kprobes")
        p.add_argument("--no-memory", action="store_true",
                       help="do not walk kprobe_table (kprobes/list and live bytes only)")
        return _source_options(p)

    def run(self, args):
        with _session(args) as s:
            rep = s.kprobe_report(use_memory=not args.no_memory)
            rep.sources += [f"symbols: {d}" for d in s.symbol_sources()]
        return rep

    def render(self, r, ctx):
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import wrap

        if not r.probes:
            out = "no kprobes registered\n"
        else:
            rows, below = [], []
            for p in r.probes:
                hm = "-" if p.hit_count is None else f"{p.hit_count}/{p.miss_count if p.miss_count is not None else '-'}"
                rows.append([_hex(p.address), "r" if p.kind == "kretprobe" else "k", p.symbol,
                             "".join(f"[{f}]" for f in p.flags) or "-", p.state,
                             "ok" if p.consistent else "MISMATCH", _event_text(p, short=True), hm])
                # the long fields go whole under their row
                below.append([("original", (p.original.hex(" ") if p.original else "?") +
                               (f"  ({p.original_source})" if p.original_source else "")),
                              ("handler", p.ret_handler or p.handler or "-")])
            out = render_table([Col("address", "address"), Col("t", "key"), Col("probe", "symbol"),
                                Col("kernel flags", "key"), Col("live", "state"),
                                Col("check", "state", states={"ok": "good", "MISMATCH": "bad"}),
                                Col("event", "key"), Col("hit/miss", "number")],
                               rows, ctx.width, styler=ctx.styler, below=below)
        notes = list(r.notes) + [f"{p.symbol}: {n}" for p in r.probes for n in p.notes]
        out += wrap(f"sources: {', '.join(r.sources)}", ctx.width, "", "  ").rstrip("\n") + "\n"
        return out + _notes(notes, ctx)


class KprobeShow(_KernelCommand):
    name = "kprobe-show"
    summary = "One kprobe: code, struct, detour, BPF"
    usage = "kprobe-show SYMBOL|ADDR|$expr [-n N] [SOURCES] [--json]"
    description = """\
One kprobe in depth: the first N instructions as they are now and as they were
(original bytes from p->opcode / optinsn.copied_insn / the ftrace NOP), every
field of each struct kprobe (and of the aggregate) decoded through BTF, the
optimized probe's detour buffer or the ftrace trampoline, and for BPF-backed
probes the programs attached to that probe's own event and their JIT
addresses.  --vmlinux adds the bytes the kernel was built with."""
    examples = ("kprobe-show do_sys_openat2", "kprobe-show vfs_write+0x5 -n 3",
                'kprobe-show $ksym("vfs_write")+5 --json')

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "one kprobe in depth")
        p.add_argument("where", help="SYMBOL, SYMBOL+OFF, ADDRESS or a gdb expression")
        p.add_argument("-n", "--count", type=parse_int, default=6, help="instructions to show (6)")
        return _source_options(p)

    def run(self, args):
        from gdb_toolkit.common.args import check_int_option
        from gdb_toolkit.kernel.kprobe_show import kprobe_show

        check_int_option("-n", args.count, 1, 1000, "instructions")
        with _session(args) as s:
            return kprobe_show(s, args.where, args.count, addr=_address(s, args.where))

    def render(self, r, ctx):
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import key_values

        out = [f"kprobe at {_hex(r.address)} <{_name(r.symbol)}>\n"]
        for p in r.probes:
            out.append(key_values([
                ("probe", f"{p.kind} {''.join(f'[{f}]' for f in p.flags)}".strip()),
                ("live bytes show", f"{p.state} (kernel flags expect {p.expected or 'anything'}: "
                                    f"{'agree' if p.consistent else 'MISMATCH'})"),
                ("handler", ", ".join(x for x in (p.handler, p.post_handler and f"post {p.post_handler}",
                                                  p.ret_handler and f"return {p.ret_handler}") if x)
                 or "-", "symbol"),
                ("event", _event_text(p)),
                ("hits/misses", "-" if p.hit_count is None else f"{p.hit_count}/{p.miss_count}"),
                ("struct kprobe", _hex(p.struct_address), "address"),
            ], ctx.width, ctx.styler))

        def dis(lines):
            return render_table([Col("address", "address"), Col("bytes", "key"),
                                 Col("instruction"), Col("target", "symbol")],
                                [[_hex(x.address), bytes.fromhex(x.raw).hex(" "), x.text, x.target_symbol or ""]
                                 for x in lines],
                                ctx.width, styler=ctx.styler)
        out.append("\nlive code:\n" + dis(r.live))
        if r.original:
            out.append(f"\noriginal code (from {r.original_source}):\n" + dis(r.original))
        else:
            out.append(f"\noriginal code: {r.original_source or 'unknown (needs kprobe_table and BTF)'}\n")
        if r.as_built:
            out.append("\nas built (the --vmlinux file, KASLR-slid):\n" + dis(r.as_built))
        if r.detour:
            out.append(f"\n{r.detour_title}:\n" + dis(r.detour))
        for sd in r.structs:
            out.append(f"\n{sd.title}: {sd.c_type} at {_hex(sd.address)}\n")
            out.append(render_table([Col("field", "key"), Col("offset", "number"), Col("type"),
                                     Col("value")],
                                    [[f.path, f.offset, f.c_type, f.value] for f in sd.fields],
                                    ctx.width, styler=ctx.styler))
        if r.bpf:
            out.append("\nBPF programs attached:\n")
            out.append(render_table([Col("prog", "address"), Col("id", "number"), Col("name", "key"),
                                     Col("bpf_func (JIT)", "address"), Col("symbol", "symbol")],
                                    [[_hex(b["prog_address"]), b["id"], b["name"] or "-",
                                      _hex(b["bpf_func_address"]),
                                      b["bpf_func_location"].kernel_text() or "-"]
                                     for b in r.bpf], ctx.width, styler=ctx.styler))
        out.append(_notes(r.notes, ctx))
        return "".join(out)


class Kdis(_KernelCommand):
    name = "kdis"
    summary = "Disassemble kernel memory; mark probe sites"
    usage = "kdis SYMBOL|ADDR|$expr [N] [--function] [SOURCES] [--json]"
    description = """\
Shows N instructions (16) of kernel memory with symbolized targets.  int3 /
brk, optimized-probe jumps and ftrace calls are cross-checked against
kprobes/list (not every int3 is a kprobe: the alternatives pad a ret or an
indirect jmp with int3).  Works with or without a vmlinux in gdb, on the
running kernel, a dump or gdb's halted kernel."""
    examples = ("kdis do_sys_openat2 8", "kdis vfs_read --function",
                'kdis $ksym("vfs_write")+5 4')

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser, parse_int

        p = ArgParser(self.name, "disassemble kernel memory")
        p.add_argument("where", help="SYMBOL, SYMBOL+OFF, ADDRESS or a gdb expression ($pc)")
        p.add_argument("count", nargs="?", type=parse_int, default=16, help="instructions (16)")
        p.add_argument("--function", action="store_true", help="the whole function")
        return _source_options(p)

    def run(self, args):
        from gdb_toolkit.common.args import check_int_option
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.kernel.memory_views import kdis

        check_int_option("count", args.count, 1, 100000, "instructions")
        with _session(args) as s:
            addr = _address(s, args.where)
            try:
                listed = s.listed_probes()
                kaddrs = None if listed is None else {p.address for p in listed}
            except ToolkitError:
                kaddrs = None
            if kaddrs is None and not s.is_live:
                kaddrs = _memory_probe_addresses(s)
            return kdis(s, addr, args.count, kaddrs, args.function)

    def render(self, r, ctx):
        from gdb_toolkit.common.table import Col, render_table

        rows = [[_hex(i.address), i.symbol, i.raw.hex(" "), i.text, i.target_symbol or "", i.note]
                for i in r.insns]
        out = f"{_hex(r.address)} <{_name(r.symbol)}>:\n"
        out += render_table([Col("address", "address"), Col("symbol", "symbol"), Col("bytes", "key"),
                             Col("instruction"), Col("target", "symbol"), Col("note")],
                            rows, ctx.width, styler=ctx.styler)
        return out + _notes(r.notes, ctx)


def _memory_probe_addresses(session) -> set | None:
    """Probe addresses from kprobe_table (a dump or a halted kernel has no kprobes/list)."""
    from gdb_toolkit.common.errors import ToolkitError

    try:
        return {p.address for p in session.kprobe_report().probes}
    except ToolkitError:
        return None


class Kx(_KernelCommand):
    name = "kx"
    summary = "Dump kernel memory (hex or symbolized words)"
    usage = "kx SYMBOL|ADDR|$expr [LEN] [--words] [SOURCES] [--json]"
    description = """\
Hex and ASCII of LEN bytes (64; k/M suffixes, at most 1 MiB) of kernel memory,
or with --words the little-endian 64-bit values, each with the kernel symbol
it points at."""
    examples = ("kx linux_banner 128", "kx kprobe_table 64 --words", 'kx $ksym("vfs_write")+5 8')

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
        from gdb_toolkit.common.text import wrap
        from gdb_toolkit.kernel.memory_views import dump_lines

        addr = ctx.styler
        out = [wrap(f"{_hex(r.address)} <{_name(r.symbol)}>, {r.size} bytes:", ctx.width, "", "  ")]
        if any(row.words for row in r.rows):
            for row in r.rows:
                words = [(w.value, f" <{_name(w.target_location.kernel_text())}>"
                          if w.target_location else "") for w in row.words]
                line = f"0x{row.address:x}:  " + "  ".join(v + t for v, t in words)
                if ctx.width is None or len(line) <= ctx.width:
                    out.append(f"{addr('address', f'0x{row.address:x}')}:  "
                               + "  ".join(v + addr("symbol", t) for v, t in words) + "\n")
                    continue
                # one word a line when two do not fit the terminal (gdb's x/2gx does the same)
                for k, (v, t) in enumerate(words):
                    out.append(f"{addr('address', f'0x{row.address + 8 * k:x}')}:  {v}"
                               f"{addr('symbol', t)}\n")
            return "".join(out) + _notes(r.notes, ctx)
        # hex and ASCII: 16 bytes a line, or 8 / 4 when the line would not fit the terminal
        # (0xADDR:  hex  ascii is 86 columns at 16: the terminal folded every line at 80)
        per = 16
        width_of = len(f"0x{r.address + max(len(r.data) - 1, 0):x}")
        while ctx.width is not None and per > 4 and width_of + 3 + 4 * per + 1 > ctx.width:
            per //= 2
        for address, hex_text, ascii_text in dump_lines(r.address, r.data, per):
            out.append(f"{addr('address', f'0x{address:x}')}:  {hex_text:<{3 * per - 1}}  {ascii_text}\n")
        return "".join(out) + _notes(r.notes, ctx)


class Ksym(_KernelCommand):
    name = "ksym"
    summary = "Kernel symbol <-> address, with BTF prototype"
    usage = "ksym NAME|MODULE:NAME|ADDR [--no-btf] [SOURCES] [--json]"
    description = """\
By name: every symbol with that name (vmlinux and modules), its kallsyms type
letter, size (distance to the next symbol) and, from BTF, its C prototype.  By
address (0x..., SYMBOL+OFF): the symbol containing it and the offset.  Needs no
kcore on the running kernel; kptr_restrict is reported."""
    examples = ("ksym do_sys_openat2", "ksym 0xffffffff81234567", "ksym ext4:ext4_file_open")

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
            raise ToolkitError(f"no kernel symbol matches {args.query!r} in {rep.symbol_source}",
                               "check the spelling; module symbols appear once the module is loaded")
        return rep

    def render(self, r, ctx):
        from gdb_toolkit.common.table import Col, render_table

        # an address query's row reads as gdb's <sym+off>: the address asked, inside the symbol
        rows = [[_hex(m.address + (m.offset or 0)), m.symbol_type,
                 m.symbol + (f"+0x{m.offset:x}" if m.offset else ""),
                 m.module or "vmlinux", m.size if m.size is not None else "-"] for m in r.matches]
        below = [[("prototype", m.prototype)] if m.prototype else None for m in r.matches]
        out = render_table([Col("address", "address"), Col("type", "key"), Col("symbol", "symbol"),
                            Col("module", "key"), Col("size", "number")], rows, ctx.width,
                           styler=ctx.styler, below=below)
        return out + _notes(r.notes, ctx)


class FtraceSite(_KernelCommand):
    name = "ftrace-site"
    summary = "Is FUNC's ftrace site patched, and to what"
    usage = "ftrace-site FUNC [SOURCES] [--json]"
    description = """\
Reads the first bytes of FUNC: the idle 5-byte NOP, a call to ftrace_caller /
ftrace_regs_caller / a trampoline, or a kprobe breakpoint; says who enabled it
(tracefs enabled_functions, running kernel only) and whether FUNC is traceable
at all (available_filter_functions).  arm64: the patchable entry `mov x9, x30;
nop` (idle) or `mov x9, x30; bl ftrace_caller` (traced); the site is its call
slot at func+4, and a kprobe's `brk #0x4` over func+0 is shown beside it (arm64
kprobes never use ftrace)."""
    examples = ("ftrace-site vfs_read", "ftrace-site do_sys_openat2 --json")

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
        from gdb_toolkit.common.text import key_values

        en = r.enabled
        return key_values([
            ("function", f"{r.function} at {_hex(r.function_address)}"),
            *([("patchable entry", _hex(r.entry_address))] if r.entry_address is not None else []),
            ("ftrace site", _hex(r.site_address) + (
                f" (+{r.site_address - r.function_address:#x}: the call slot)"
                if r.entry_address is not None else ""), "address"),
            ("live bytes", r.live.hex(" ")),
            ("state", f"{r.state}: {r.description}"
                      + (f" -> {r.target_symbol or _hex(r.target_address)}" if r.target_address else "")),
            ("original", r.original.hex(" ") if r.original else "-"),
            ("traceable", "unknown" if r.traceable is None else "yes" if r.traceable else
             "no (not in available_filter_functions)"),
            ("enabled by", en["text"] if en else "-"),
            ("kprobes here", "; ".join(r.kprobes) or "-"),
        ], ctx.width, ctx.styler) + _notes(r.notes, ctx)


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


class KsymFunction:
    """$ksym("name") -- a kernel symbol's address; no vmlinux needed.

From /proc/kallsyms, or the dump / halted kernel chosen with `kcore`.  Also
"name+0x10", "module:name" and "0xADDR".  The value is an unsigned long long,
so $ksym("vfs_write")+5 is an address."""

    USAGE = 'give one quoted symbol name, e.g. $ksym("vfs_read") or $ksym("ext4:ext4_file_open")'

    name = "ksym"

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

            with KernelSession(**kernel_session_args()) as s:
                addr = s.parse_address(name)
            return gdb.Value(addr).cast(gdb.lookup_type("unsigned long long"))


class KprobeFunction:
    """$kprobe(ADDR) -- the kprobe at ADDR, as (struct kprobe *).

Typed with gdb's own struct kprobe: from `ktypes` (the kernel's BTF loaded as
gdb types; no debug vmlinux needed) or a vmlinux with debug info.  Without
either, kprobe-show decodes the same fields through BTF."""

    USAGE = 'give the probed address, e.g. $kprobe($ksym("vfs_write")+5)'

    name = "kprobe"

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

            with KernelSession(**kernel_session_args()) as s:
                rep = s.kprobe_report()
            for p in rep.probes:
                if p.address == want and (p.aggregate_address or p.struct_address):
                    return gdb.Value(p.aggregate_address or p.struct_address).cast(ktype.pointer())
            raise gdb.GdbError(f"no kprobe at 0x{want:x}. Fix: see kprobe-list.")


COMMANDS = (Kcore, KprobeList, KprobeShow, Kdis, Kx, Ksym, FtraceSite)
FUNCTIONS = (KsymFunction, KprobeFunction)
