"""``got``, ``plt`` and ``plt-walk``: GOT slot tables, PLT stubs and the lazy-binding walk."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


def _parser(name: str, desc: str, regex: bool = True, all_objects: bool = True):
    from gdb_toolkit.common.args import ArgParser

    p = ArgParser(name, desc)
    if regex:
        p.add_argument("regex", nargs="?", help="only symbols matching this Python regular expression "
                                                "(with or without @VERSION, raw or demangled)")
    if all_objects:
        p.add_argument("--all-objects", action="store_true",
                       help="every loaded shared object too, not only the executable")
        p.add_argument("--object", metavar="PATH",
                       help="only the objects whose path contains PATH (e.g. libfoo)")
    return p


def _quoted(text: str) -> str:
    """What the user typed, quoted in a message as typed (a printed name ``esc\\x1bok`` stays
    that; only a control character is escaped): repr() doubled each backslash of a printed
    name and printed an undecodable byte as '\\udce9'."""
    from gdb_toolkit.common.names import printable_text

    return f"'{printable_text(text)}'"


def _typed_path(path: str) -> str:
    """A FILE argument: as given when it exists, else the file it names as the toolkit
    prints paths (escape_name: ``caf\\xe9.json``)."""
    import os

    from gdb_toolkit.common.names import typed_name

    typed = typed_name(path)
    return typed if typed is not None and not os.path.lexists(path) else path


def _select(objs, all_objects: bool, object_filter: str | None):
    from gdb_toolkit.common.errors import ToolkitError

    objs = [o for o in objs if o.listable]     # not the vDSO, not a namespace's alias of ld.so
    if object_filter is not None:
        if not object_filter:
            raise ToolkitError("--object needs part of a path", "e.g. --object libc")
        from gdb_toolkit.plt.slots import object_matches

        listed = [o for o in objs if object_matches(object_filter, o)]
        if not listed:
            raise ToolkitError(f"no loaded object matches {_quoted(object_filter)}",
                               "'got --all-objects' lists them (after start)")
        return listed
    return objs if all_objects else objs[:1]


def _missing_note(kind: str, all_objects: bool) -> list[str]:
    from gdb_toolkit.plt import gdb_live
    from gdb_toolkit.plt.elf_file import display_path

    notes = []
    if kind != "file" and all_objects and gdb_live.missing:
        notes.append(f"not listed: {', '.join(gdb_live.missing)} (in the dynamic linker's list, but no such "
                     "file here; 'set sysroot' or give the path it was loaded from)")
    for path, was, how in gdb_live.remapped:
        if how == "program" and gdb_live.replaced_program:
            notes.append(f"gdb's program file {display_path(gdb_live.replaced_program[0])} is not the file the process "
                         f"runs (deleted or replaced on disk since it started, or another file): its slots are read "
                         f"from {path} ({display_path(was)}), the file the process maps")
        elif how == "program":
            notes.append(f"gdb knows no file for this program ({display_path(was)}): it is read from {path}, "
                         "the file the process still maps ('file' it to give gdb its symbols too)")
        elif how == "replaced":
            notes.append(f"{display_path(was)} was deleted or replaced on disk after the process loaded it: "
                         f"its slots are read from the mapped file ({path}), not from the file now at that path")
        else:
            notes.append(f"{display_path(was)} (the dynamic linker's name for it) does not name the mapped file "
                         f"here (a relative name, or the file moved): read from {display_path(path)}, the file "
                         "/proc/PID/maps names")
    return notes


def _symbol_col(symbols, width, header: str = "symbol"):
    """The symbol column: whole names (gdb's function style), or, when a name (a demangled
    C++ one) is longer than the terminal, text that wraps between its words -- else the
    terminal would fold it in the middle of a word."""
    from gdb_toolkit.common.table import Col

    if width and any(len(s) + 12 > width and " " in s for s in symbols):
        return Col(header, "text")
    return Col(header, "symbol")


_STATES = {"overwritten": "bad", "other-definition": "warn", "redirected": "warn", "n/a": "metadata"}


def shown_objects(report) -> list:
    """The objects whose header the text shows: with a REGEX over several objects, those with
    a matching slot (or a WARNING), not 300 headers of libraries the name is not in."""
    if not getattr(report, "filtered", False) or len(report.objects) < 2:
        return report.objects
    return [o for o in report.objects if o.slot_count or o.stale]


def _hidden_note(report) -> list[str]:
    hidden = len(report.objects) - len(shown_objects(report))
    if not hidden:
        return []
    from gdb_toolkit.plt.wording import counted

    return [f"{counted(hidden, 'object')} without a matching slot not shown ('got --json' lists every object)"]


def _summary_lines(report, width=None, styler=None) -> str:
    """One wrapped paragraph per object: kind, binding (and why), bias, RELRO, staleness."""
    from gdb_toolkit.common.text import wrap
    from gdb_toolkit.plt.wording import counted, headed

    out = ""
    for o in shown_objects(report):
        bits = [o.kind, f"binding {o.binding}"]
        if o.arch not in ("x86_64", "aarch64"):
            bits.insert(0, o.arch)
        if o.namespace:
            bits.append(f"namespace {o.namespace}")
        if o.bias:
            bits.append(f"load bias 0x{o.bias:x}")
        if o.relro_range:
            bits.append(f"RELRO 0x{o.relro_range[0]:x}-0x{o.relro_range[1]:x}")
        bits.append(counted(o.slot_count, "slot"))
        look = {}
        if styler is not None and getattr(styler, "enabled", False):
            look = {f"0x{a:x}": styler("address", f"0x{a:x}") for a in (o.bias, *(o.relro_range or ())) if a}
        # the path is already escape_name'd; "8 slots" stays on one line
        out += headed(o.path, ", ".join(bits), width, "    ", styler, look=look, keep=(bits[-1],))
        if o.binding in ("now", "lazy") and report.mode != "file" and o.binding_reason:
            out += wrap(f"binding {o.binding}: {o.binding_reason}", width, "  ", "    ")
        if o.stale:
            out += _lines(f"WARNING: {o.stale}", width, (o.path,), "  ", "    ")
    return out


def _lines(text: str, width, keep=(), indent: str = "", rest: str = "  ") -> str:
    """*text* wrapped (the strings of *keep* whole), one string with a final newline."""
    from gdb_toolkit.plt.wording import wrap_keep

    return "".join(ln + "\n" for ln in wrap_keep(text, width, indent, rest, keep))


def _notes(notes, width, keep=()) -> str:
    """``note: SENTENCE`` lines; the paths and names of *keep* stay whole."""
    return "".join(_lines(f"note: {n}", width, keep) for n in notes)


class LastGot:
    """The previous ``got`` report of this session (for ``got --diff``)."""
    __slots__ = ("executable", "mode", "report")

    def __init__(self, executable: str, mode: str, report):
        self.executable, self.mode, self.report = executable, mode, report


_last_got: LastGot | None = None


def _previews(report, arch: str) -> None:
    """First instruction at each bound target (one small read per distinct target)."""
    from gdb_toolkit.common.disasm import disassemble
    from gdb_toolkit.plt import gdb_live

    seen: dict[int, str] = {}
    for r in report.slots:
        if r.state not in ("resolved", "bound-at-load") or not r.value or r.tls or r.target_object is None:
            continue
        if r.value not in seen:
            if len(seen) >= 4096:
                break
            code = gdb_live._read(r.value, 16)
            ins = disassemble(code, r.value, arch, 1) if code else []
            seen[r.value] = ins[0].text if ins else "(unreadable)"
        r.preview = seen[r.value]


def loaded_object_names() -> list[str]:
    """For ``--object <Tab>``: each loaded object by its path and by its file name (the
    option matches any part of the path, completion a start of either)."""
    from gdb_toolkit.common.args import name_word
    from gdb_toolkit.common.names import escape_name
    from gdb_toolkit.gdbsupport.safe_gdb import objfile_filename

    names: set[str] = set()
    for objfile in gdb.objfiles():
        path = objfile_filename(objfile) if objfile.owner is None else None
        if path and path.startswith("/"):
            names.update((path, path.rsplit("/", 1)[-1]))
    # as printed and as --object takes them back (a path may be any bytes: ESC reached the line)
    return sorted(name_word(escape_name(n)) for n in names)


class ObjectsCommand(ToolkitCommand):
    """A command of this domain: ``--object <Tab>`` offers the loaded objects, a name
    ``<Tab>`` the program's imported functions (got: every slot's symbol)."""

    def split_argv(self, argument):
        """Words keeping backslashes, so a name or path typed as the toolkit printed it
        (``got 'esc\\x1bok'``, ``plt-walk q\\\\uote``) arrives as printed (common.args)."""
        from gdb_toolkit.common.args import split_name_words

        return split_name_words(argument)

    def complete_option(self, option, metavar, word):
        if option == "--object":
            return loaded_object_names()
        return super().complete_option(option, metavar, word)

    def complete_values(self, word):
        """Imported functions of the loaded program (not data, not TLS): plt-walk's symbol,
        a plt REGEX; got overrides ``completion_symbols`` with every slot's symbol."""
        try:
            from gdb_toolkit.plt.elf_model import load_model

            from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename

            path = progspace_filename()
            names = self.completion_symbols(load_model(path)) if path else []
        except Exception:       # no program, an unreadable file: nothing to offer
            return []
        from gdb_toolkit.common.args import name_word

        return [w for w in map(name_word, names) if w.startswith(word)]

    def completion_symbols(self, model) -> list[str]:
        from gdb_toolkit.plt.walk import completion_names

        return completion_names(model)


class Got(ObjectsCommand):
    def completion_symbols(self, model) -> list[str]:
        # every slot's symbol: data (stdout, environ) and TLS slots are rows of got too
        return sorted({slot.symbol_text for slot in model.slots if slot.symbol})

    summary = "GOT slots, their state and binding now"
    usage = """\
got [REGEX] [--all-objects] [--object PATH] [--preview] [--audit] [--json]
got [REGEX] --diff [FILE] [--all-objects] [--json]"""
    description = """\
One row per GOT slot of the executable (with --all-objects, of every loaded
object, every dlmopen namespace included; --object PATH: those whose path
contains PATH): slot, symbol with version (memcpy@GLIBC_2.14, C++ names
demangled), relocation kind, current value and state: unresolved (still the
lazy stub), resolved (bound on the first call), bound-at-load (-z now,
dlopen RTLD_NOW, LD_BIND_NOW, GLOB_DAT, IRELATIVE, TLS), null (absent weak
symbol).  The binding mode of each object is read from the process
(GOT[1]/GOT[2], its environment), not from the file.  TLS slots name their
variable and module.  REGEX matches names with or without @VERSION.
x86_64, i386, aarch64 and arm; live, core, remote, or the file before run.

--preview  the first instruction at each target.
--audit    what the dynamic linker's lookup scope SHOULD bind each slot to
           (search order, versions, preloads, interposition) against what it
           holds: overwritten (hijacked) slots are flagged.
--diff     what changed since the previous 'got' of this session, or since
           a report saved with 'pipe got --json | cat > FILE' (e.g. a core)."""
    examples = ("got", "got '^puts$' --all-objects", "got --object libc --audit", "got --diff",
                "got --json")
    category = "plt"
    json_hex_addresses = True
    #: a first call imports ~25 modules and parses three ELF files: the cyclic collector's
    #: ~6 passes over it (1-2 ms) free nothing; 3000 slots' rows all stay alive too
    pause_gc = True
    name = "got"

    def build_parser(self):
        p = _parser(self.name, "GOT slot table")
        p.add_argument("--preview", action="store_true", help="first instruction at each target")
        p.add_argument("--audit", action="store_true",
                       help="compare each slot with what the lookup scope should bind")
        p.add_argument("--diff", nargs="?", const="", metavar="FILE",
                       help="changes since the previous 'got', or since a saved 'got --json'")
        return p

    def run(self, args):
        from gdb_toolkit.plt.gdb_live import same_stop

        with same_stop():       # auxv and /proc/PID/maps read once (the process stays stopped)
            return self._run(args)

    def _run(self, args):
        global _last_got
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.plt import gdb_live
        from gdb_toolkit.plt.elf_file import display_path
        from gdb_toolkit.plt.slots import compile_filter, got_report

        compile_filter(args.regex)
        saved = None
        if args.diff:
            from gdb_toolkit.plt.diff import load_saved

            saved = load_saved(_typed_path(args.diff))
        kind, objs = gdb_live.loaded_objects()
        listed = _select(objs, args.all_objects, args.object)
        memory, failed = (None, [])
        if kind != "file":
            memory, failed = gdb_live.read_slots(listed)
            if failed and listed[0].name in failed and len(listed) == 1:
                o = listed[0]
                raise ToolkitError(f"cannot read the GOT of {o.name} at 0x{o.start:x}",
                                   "the object's data is not in the target's memory (a core file without it?)")
        names = [s.symbol for o in listed for s in _safe_slots(o)]
        demangled = {}
        if any(n.startswith("_Z") for n in names):
            from gdb_toolkit.plt.demangle import demangle_all

            demangled = demangle_all(names)
        report = got_report(listed, memory, mode=kind, pattern=args.regex,
                            bind_now_env=False, space_objects=objs,
                            relocated=gdb_live.relocated(kind, objs),
                            writable=gdb_live.writable_ranges(kind) if kind != "file" else None,
                            demangled=demangled)
        report.filtered = bool(args.regex)
        if failed:
            report.notes.append(f"cannot read the GOT of {', '.join(failed)} (not in the target's memory)")
        for r in report.slots:
            if r.tls and r.tls.get("dynamic_arg") is not None:
                from gdb_toolkit.plt.slots import tlsdesc_dynamic

                w = 4 if r.reloc_type.startswith(("R_386_", "R_ARM_")) else 8
                arg = r.tls["dynamic_arg"]
                tlsdesc_dynamic(r, gdb_live.read_word(arg, w), gdb_live.read_word(arg + w, w))
        if kind != "file":
            stale = {}
            for o in listed:
                why = gdb_live.stale_objects([o])
                if why:
                    stale[display_path(o.path)] = why[0].split(": ", 1)[1]
            for summary in report.objects:
                summary.stale = stale.get(summary.path)
        if kind == "file":
            report.notes.append("not running: values are the file's; 'start' to see them resolved")
            if args.all_objects or args.object:
                report.notes.append("shared objects are listed once the program is loaded (start/run)")
        report.notes += _missing_note(kind, args.all_objects or bool(args.object))
        if args.preview:
            if kind == "file":
                report.notes.append("--preview needs a process or a core: the targets are not bound yet")
            else:
                _previews(report, listed[0].model.arch)
        if args.audit:
            if kind == "file":
                raise ToolkitError("--audit compares slots with what ld.so bound, but nothing is running",
                                   "start the program (start, run), attach, or load a core")
            from gdb_toolkit.plt.audit import audit_report

            report.notes += audit_report(report.pairs, objs, gdb_live.loaded_objects.env.audit)
        if kind != "file":
            from gdb_toolkit.plt.slots import apply_demangled, demangled_names

            raw = demangled_names(report)
            if raw:
                apply_demangled(report, demangle_all(raw))
        if args.diff is not None:
            from gdb_toolkit.plt.diff import diff_reports

            exe = gdb_live.executable()
            if saved is not None:
                report.diff = diff_reports(saved, report, args.diff, f"now ({kind})")
            elif _last_got is None or _last_got.executable != exe:
                report.notes.append("--diff: no previous 'got' of this program in this session: "
                                    "this one is kept for the next 'got --diff'")
            else:
                report.diff = diff_reports(_last_got.report, report, f"the previous 'got' ({_last_got.mode})",
                                           f"now ({kind})")
        if not report.slots and not [n for n in report.notes if not n.startswith("rtld-audit modules")]:
            report.notes.append("no GOT slot matched" if args.regex else "no GOT slots (no dynamic relocations)")
        if kind != "file" and not args.regex:
            _last_got = LastGot(gdb_live.executable(), kind, report)
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.table import Col, render_table
        from gdb_toolkit.common.text import wrap

        multi = len(report.objects) > 1
        keep = _names_of(report)
        preview = any(r.preview for r in report.slots)
        audit = any(r.audit for r in report.slots)
        text = _summary_lines(report, ctx.width, ctx.styler)
        if report.diff is not None:
            return text + _render_diff(report.diff, ctx, keep) + _notes(report.notes, ctx.width, keep)
        rows = []
        for r in report.slots:
            ro = r.read_only_now
            prot = ("ro" if ro else "rw") if ro is not None else ("relro" if r.relro else "")
            # the audit's table leaves out value and prot (in --json): the verdict needs the room
            if audit:
                row = [f"0x{r.address:x}", r.symbol, r.kind, r.state, r.target]
            else:
                row = [f"0x{r.address:x}", r.symbol, r.kind, f"0x{r.value:x}", r.state, r.target, prot]
            if preview:
                row.append(r.preview or "")
            if audit:
                row.append(r.audit["verdict"] if r.audit else "")
            if multi:
                row.insert(0, r.object)
            rows.append(row)
        cols = ([Col("object", "symbol")] if multi else []) + [
            Col("slot", "address"), _symbol_col((r.symbol for r in report.slots), ctx.width), Col("type", "key")] + \
            ([] if audit else [Col("value", "address")]) + [Col("state", "state"), Col("target")] + \
            ([] if audit else [Col("prot", "key")])
        cols += ([Col("first insn")] if preview else []) + ([Col("audit", "state", states=_STATES)] if audit else [])
        if rows:
            text += render_table(cols, rows, ctx.width, styler=ctx.styler)
        notes = report.notes + _hidden_note(report)
        if audit:
            for r in report.slots:
                if r.audit and r.audit["verdict"] in ("overwritten", "other-definition", "redirected"):
                    text += _lines(f"{r.audit['verdict'].upper()}: {r.symbol} in {r.object} at 0x{r.address:x}: "
                                   f"{r.audit['why']}", ctx.width, keep)
                elif r.audit and r.audit.get("interposes") and r.audit["verdict"] in ("ok", "lazy"):
                    text += _lines(f"interposed: {r.symbol} in {r.object}: {r.audit['why']}", ctx.width, keep)
        return text + _notes(notes, ctx.width, keep)


def _safe_slots(obj):
    from gdb_toolkit.common.errors import ToolkitError

    try:
        return obj.model.slots
    except ToolkitError:
        return []


def _names_of(report) -> tuple:
    """The object paths and names and the symbols of a got report: kept whole in its prose."""
    return (*(o.path for o in report.objects), *{r.object for r in report.slots},
            *{r.symbol for r in report.slots})


def _render_diff(diff, ctx, keep=()) -> str:
    from gdb_toolkit.common.table import Col, render_table

    head = _lines(f"GOT diff: {diff.before} -> {diff.after}: {len(diff.changes)} changed, "
                  f"{diff.unchanged} unchanged", ctx.width, keep)
    if diff.changes:
        rows = [[c.object, f"0x{c.address:x}", c.symbol, c.change, c.before or "-", c.after or "-"]
                for c in diff.changes]
        head += render_table([Col("object", "symbol"), Col("slot", "address"), Col("symbol", "symbol"),
                              Col("change", "key"), Col("before"), Col("after")], rows, ctx.width, styler=ctx.styler)
    return head + _notes(diff.notes, ctx.width, keep)


class Plt(ObjectsCommand):
    summary = "PLT stubs, the GOT slot each uses, disassembly"
    #: as got's: a first call imports ~30 modules and builds ELF models that all stay alive; a
    #: full collection the imports set off (~1 ms) freed nothing (common/gc_pause.py)
    pause_gc = True
    usage = "plt [REGEX] [--all-objects] [--object PATH] [--json]"
    description = """\
Decodes .plt, .plt.sec (endbr64 + bnd jmp, -fcf-protection), .plt.got and
the static .plt of IRELATIVE stubs with capstone: x86_64 jmp *GOT(%rip) and
push N, i386 jmp *GOT(%ebx) / jmp *ABS, aarch64 adrp x16 / ldr x17 / br x17
(BTI and PAC PLTs too), arm add ip, pc / ldr pc, [ip].  ".plt[0]" is the
resolver trampoline; "lazy" entries are the first-call halves of an IBT PLT.
On a live process or core the current state of each slot is shown too."""
    examples = ("plt", "plt puts", "plt --object libfoo")
    category = "plt"
    json_hex_addresses = True
    name = "plt"

    def build_parser(self):
        return _parser(self.name, "PLT stubs")

    def run(self, args):
        from gdb_toolkit.plt import gdb_live
        from gdb_toolkit.plt.plt_report import plt_report
        from gdb_toolkit.plt.slots import compile_filter

        compile_filter(args.regex)
        kind, objs = gdb_live.loaded_objects()
        listed = _select(objs, args.all_objects, args.object)
        memory = None if kind == "file" else gdb_live.read_slots(listed)[0]
        # plt_report calls it for C++ targets only: a C program's plt spares plt.demangle
        report = plt_report(listed, objs, memory, kind, args.regex,
                            relocated=gdb_live.relocated(kind, objs) if memory is not None else True,
                            demangle=_demangle_all)
        report.notes += _missing_note(kind, args.all_objects or bool(args.object))
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.table import Col, render_table

        multi = len({s.object for s in report.stubs}) > 1
        rows = []
        for s in report.stubs:
            row = [f"0x{s.address:x}", s.section, s.kind,
                   f"0x{s.slot_address:x}" if s.slot_address is not None else "-",
                   s.symbol or "-", s.state or "-", s.target or "", "; ".join(s.code)]
            rows.append(([s.object] if multi else []) + row)
        cols = ([Col("object", "symbol")] if multi else []) + [
            Col("stub", "address"), Col("section", "key"), Col("kind", "key"), Col("GOT slot", "address"),
            _symbol_col((s.symbol for s in report.stubs), ctx.width), Col("state", "state"), Col("target"),
            Col("code")]
        text = _notes(report.notes, ctx.width, tuple({s.object for s in report.stubs}))
        return text + (render_table(cols, rows, ctx.width, styler=ctx.styler) if rows else "")


class PltWalk(ObjectsCommand):
    summary = "One PLT call, hop by hop; --live watches ld.so"
    usage = "plt-walk SYMBOL [--object PATH] [--live] [--json]"
    description = """\
Shows each hop with its address and disassembly, from a call of SYMBOL in
the current function (or the first call found in .text) through the PLT stub
and the GOT slot to the target, and explains the first call (push of the
relocation index, .plt[0], GOT[1] = link_map, GOT[2] = resolver) versus later
calls -- or, when the process bound the object at load (-z now, LD_BIND_NOW,
dlopen RTLD_NOW), says so.  When several objects or versions import SYMBOL,
it says which slot it walks and why and lists the others (pick one with
SYMBOL@VERSION or --object).  Data symbols are refused.

--live (a running process, slot still unresolved): a write watchpoint on the
slot, continue until ld.so writes it; the writer (e.g. _dl_fixup) with its
backtrace, old -> new value and target are reported, the watchpoint is
deleted, your own breakpoints and watchpoints are left exactly as they were,
and the program stays stopped right there."""
    examples = ("plt-walk puts", "plt-walk puts --live", "plt-walk foo@VER_2 --object libfoo")
    category = "plt"
    json_hex_addresses = True
    #: as plt's: the collector's passes over a first call's ~30 modules free nothing (~1.3 ms
    #: of a first call); --live resumes it while the program runs to the call (_live)
    pause_gc = True
    name = "plt-walk"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "PLT walkthrough")
        p.add_argument("symbol", help="imported function, e.g. puts or memcpy@GLIBC_2.14")
        p.add_argument("--object", metavar="PATH", help="the slot of the object whose path contains PATH")
        p.add_argument("--live", action="store_true",
                       help="continue until the dynamic linker writes the slot (watchpoint)")
        return p

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.gdbsupport import facts
        from gdb_toolkit.plt import gdb_live
        from gdb_toolkit.plt.slots import AddressSpace, classify
        from gdb_toolkit.plt.stubs import decode_plt
        from gdb_toolkit.plt.walk import build_walk, choose_slot, find_call_site

        if not args.symbol.strip():
            raise ToolkitError("no symbol given", "name an imported function, e.g. 'plt-walk puts'")
        kind, objs = gdb_live.loaded_objects()
        if args.live and kind != "remote":       # qemu-user / gdbserver targets can be watched too
            facts.require_live_process("plt-walk --live")
        here = None
        if kind != "file" and gdb.selected_thread() is not None:
            try:
                here = AddressSpace(objs).find(gdb.selected_frame().pc())
            except gdb.error:
                here = None
        choice = choose_slot(objs, args.symbol, here, args.object, demangle=_demangle_all)
        if choice is None:
            exe = objs[0].model
            if exe.is_static:
                raise ToolkitError(f"{exe.name} is statically linked and has no GOT slot for {_quoted(args.symbol)}: "
                                   "calls to it are direct", "'got' lists its IRELATIVE (ifunc) slots")
            raise ToolkitError(f"no GOT slot for {_quoted(args.symbol)} in {exe.name}"
                               f"{' or its loaded objects' if len(objs) > 1 else ''}",
                               "list the imported symbols with 'got' (or 'got --all-objects' after start)")
        obj, spec = choice.obj, choice.spec
        space = AddressSpace(objs) if kind != "file" else None
        read = None
        value = second = None
        w = obj.model.wordsize
        if kind != "file":
            read = gdb_live._read
            value = gdb_live.read_word(spec.address + obj.bias, w)
            if value is None:
                raise ToolkitError(f"cannot read the GOT slot of {spec.display} at 0x{spec.address + obj.bias:x}",
                                   "the object's data is not in the target's memory (a core file without it?)")
            if spec.kind == "TLSDESC":
                second = gdb_live.read_word(spec.address + obj.bias + w, w)
        row = classify(spec, obj, value, space, live=kind != "file",
                       relocated=gdb_live.relocated(kind, objs), second=second)
        got12 = gdb_live.got12(obj) if kind != "file" else None
        around = None
        if kind != "file" and gdb.selected_thread() is not None:
            try:
                pc = gdb.selected_frame().pc() - obj.bias
                if obj.model.section_of(pc) == ".text":
                    around = pc
            except gdb.error:
                pass
        stubs = decode_plt(obj.model)
        call = find_call_site(obj.model, stubs, spec, around)
        report = build_walk(obj, spec, row, stubs, kind, call, space, read, got12)
        _source_lines(report.hops)
        report.chosen_because = choice.because
        report.candidates = [{"object": o.name, "slot_address": s.address + o.bias, "symbol": s.display, "kind": s.kind}
                             for o, s in choice.others]
        if choice.others:
            listed = ", ".join(f"{d['symbol']} in {d['object']} ({d['kind']} at 0x{d['slot_address']:x})"
                               for d in report.candidates[:8])
            more = f" and {len(report.candidates) - 8} more" if len(report.candidates) > 8 else ""
            report.notes.append(f"walking the slot in {obj.name} ({choice.because}); also: {listed}{more}. "
                                "Pick another with SYMBOL@VERSION or --object PATH")
        if args.live:
            self._live(report, obj, spec, row, kind)
        from gdb_toolkit.plt.walk import demangle_walk, mangled_names

        raw = mangled_names(report)
        if raw:
            from gdb_toolkit.plt.demangle import demangle_all

            demangle_walk(report, demangle_all(sorted(raw)))
        return report

    @staticmethod
    def _live(report, obj, spec, row, kind):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.common.gc_pause import gc_resumed
        from gdb_toolkit.plt import gdb_live
        from gdb_toolkit.plt.gdb_watch import watch_slot
        from gdb_toolkit.plt.slots import AddressSpace

        env = gdb_live.loaded_objects.env
        if row.state not in ("unresolved", "not-relocated"):
            if row.state == "resolved":
                fix = "restart the program ('start') and run 'plt-walk --live' before the first call"
            elif spec.kind == "JUMP_SLOT" and env.bind_now:
                fix = ("LD_BIND_NOW is set in the process's environment, so ld.so binds every slot at load: "
                       "'unset environment LD_BIND_NOW', 'start' again, then 'plt-walk "
                       f"{spec.display} --live'")
            elif spec.kind == "JUMP_SLOT" and not obj.model.bind_now and obj.namespace == 0 and obj.order:
                fix = ("the process bound this object at load (dlopen with RTLD_NOW?): the write happens "
                       "inside dlopen; use RTLD_LAZY to see a first-call binding")
            else:
                fix = (f"ld.so fills {spec.kind} slots at load: 'starti', then 'plt-walk "
                       f"{spec.display} --live' watches that write"
                       + (" (or link with -z lazy and unset LD_BIND_NOW for a first-call binding)"
                          if spec.kind == "JUMP_SLOT" else ""))
            raise ToolkitError(f"the slot of {spec.display} at 0x{report.slot_address:x} is already {row.state} "
                               f"({row.target}); ld.so will not write it again", fix)
        if obj.no_write == "_dl_runtime_profile" and row.state == "unresolved":
            raise ToolkitError(f"GOT[2] of {obj.name} is _dl_runtime_profile (an rtld-audit module with "
                               f"la_pltenter/la_pltexit, or LD_PROFILE): ld.so resolves {spec.display} on every "
                               "call but never writes its slot, so there is no write to watch",
                               "start without that LD_AUDIT/LD_PROFILE, or step into the call to watch "
                               "_dl_profile_fixup")
        if env.bind_not and row.state == "unresolved":
            raise ToolkitError(f"LD_BIND_NOT is set in the process: ld.so resolves {spec.display} on every call "
                               "but never writes its slot, so there is no write to watch",
                               "'unset environment LD_BIND_NOT' and start again, or step into the call "
                               "to watch _dl_fixup")
        # values that still mean "lazy stub": as in the file, and rebased by ld.so at load
        unresolved = {row.value, spec.file_value + obj.bias} if spec.kind == "JUMP_SLOT" else {row.value}
        # the program runs for as long as it takes to reach the call, other Python code in gdb
        # (stop handlers, other extensions) allocating meanwhile: the collector as usual
        with gc_resumed():
            report.live = watch_slot(report.slot_address, spec.display, unresolved,
                                     lambda v: AddressSpace(gdb_live.loaded_objects(decide=False)[1])
                                     .describe_bound(v, spec, obj.namespace)[0], obj.model.wordsize)

    def render(self, report, ctx):
        from gdb_toolkit.plt.wording import styled_line, wrap_keep

        w = ctx.width
        look = _walk_styles(report, ctx.styler)
        keep = (report.object, report.symbol, report.target, *(h.where for h in report.hops),
                *(h.location.object for h in report.hops), *(c["object"] for c in report.candidates))
        if report.live:
            keep += (report.live.target, *(f.object for f in report.live.backtrace))

        def para(text, first, rest):
            return "".join(styled_line(ln, look) + "\n" for ln in wrap_keep(text, w, first, rest, keep))

        out = para(f"{report.symbol} in {report.object} ({report.arch}, binding {report.binding}, {report.mode}): "
                   f"GOT slot 0x{report.slot_address:x} [{report.kind}] = 0x{report.value:x}, "
                   f"{report.state} -> {report.target}", "", "  ")
        if report.binding_reason and report.mode != "file":
            out += para(f"binding {report.binding}: {report.binding_reason}", "", "  ")
        out += "\n"
        compact = report.live is not None    # the walk itself is 'plt-walk SYMBOL' without --live
        for i, h in enumerate(report.hops, 1):
            at = f" at {h.location.file}:{h.location.line}" if h.location.file and h.location.line else ""
            out += para(f"[{i}] {h.step:<10} 0x{h.address:x}  {h.where}{at}", "", "                ")
            if compact:
                continue
            for c in h.code:
                out += para(c, "      ", "          ")
            if h.note:
                out += para(f"-- {h.note}", "      ", "         ")
        if report.first_call and not compact:
            out += "\nFirst call:\n" + "".join(para(t, "  ", "     ") for t in report.first_call)
        if report.later_calls and not compact:
            out += "Later calls:\n" + "".join(para(t, "  ", "    ") for t in report.later_calls)
        if report.live:
            from gdb_toolkit.plt.gdb_watch import frame_text    # (--live only: the watch module)

            lv = report.live
            out += "\n" + para(f"Live: the slot was written by {lv.location.name_text()} "
                               f"({lv.location.object}) at 0x{lv.location.address:x}", "", "  ")
            out += para(f"old 0x{lv.old:x} -> new 0x{lv.new:x} = {lv.target}", "  ", "    ")
            out += "  backtrace:\n" + "".join(para(f"#{i} {frame_text(f)}", "    ", "       ")
                                               for i, f in enumerate(lv.backtrace))
            out += para("(watchpoint removed; the program is stopped here: 'continue' or 'finish')", "  ", "   ")
        return out + _notes(report.notes, w, keep)


def _demangle_all(names):
    """plt.demangle's demangle_all, imported when a C++ name is looked up (choose_slot,
    plt_report's C++ targets)."""
    from gdb_toolkit.plt.demangle import demangle_all

    return demangle_all(names)


def _source_lines(hops) -> None:
    """file and line of each hop from gdb's line table (the call site in the program's
    source; stubs and GOT slots have none)."""
    from gdb_toolkit.gdbsupport.safe_gdb import source_of     # (not plt.gdb_watch: --live's)

    for h in hops:
        try:
            h.location.file, h.location.line = source_of(gdb.find_pc_line(h.address))
        except (gdb.error, OverflowError):
            continue


def _walk_styles(report, styler) -> dict[str, str]:
    """{word: the word in gdb's style} for the walk's addresses (its hops, slot, value,
    instruction addresses, GOT[1]/GOT[2], the live write), symbols and source files.
    Empty when styling is off: the text stays plain."""
    if styler is None or not getattr(styler, "enabled", False):
        return {}
    import re

    addrs = {report.slot_address, report.value}
    syms = {report.symbol, report.symbol.split("@", 1)[0]}
    files = set()
    texts = [*report.first_call, *report.later_calls, report.binding_reason]
    for h in report.hops:
        addrs.add(h.address)
        texts += [*h.code, h.note]
        if h.location.symbol:
            syms.add(h.location.text())
        if h.location.file and h.location.line:
            files.add((h.location.file, h.location.line))
    if report.live:
        addrs |= {report.live.old, report.live.new}
        for f in report.live.backtrace:
            addrs.add(f.address)
            if f.symbol:
                syms.add(f.text())
            if f.file and f.line:
                files.add((f.file, f.line))
    for t in texts:       # instruction addresses ("0x...: insn") and GOT[n]=0x... of the story
        addrs.update(int(m, 16) for m in re.findall(r"(?:^|GOT\[\d\]=)(0x[0-9a-f]+)", t or ""))
    look = {f"0x{a:x}": styler("address", f"0x{a:x}") for a in addrs if a is not None}
    look.update({s: styler("symbol", s) for s in syms if s and " " not in s})
    look.update({f"{f}:{ln}": styler("file", f) + f":{ln}" for f, ln in files if " " not in f})
    return look


COMMANDS = (Got, Plt, PltWalk)
