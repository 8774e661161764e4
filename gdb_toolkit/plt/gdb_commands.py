"""``got``, ``plt`` and ``plt-walk``: GOT slot tables, PLT stubs and the lazy-binding walk."""
import gdb

from gdb_toolkit.gdbsupport.command import ToolkitCommand


def _parser(name: str, desc: str, regex: bool = True, all_objects: bool = True):
    from gdb_toolkit.common.args import ArgParser

    p = ArgParser(name, desc)
    if regex:
        p.add_argument("regex", nargs="?", help="only symbols matching this Python regular expression")
    if all_objects:
        p.add_argument("--all-objects", action="store_true",
                       help="every loaded shared object too, not only the executable")
    return p


def _filtered_objects(all_objects: bool):
    from gdb_toolkit.plt import gdb_live

    kind, objs = gdb_live.loaded_objects()
    listed = objs if all_objects else objs[:1]
    return kind, objs, listed


def _missing_note(kind: str, all_objects: bool) -> list[str]:
    from gdb_toolkit.plt import gdb_live

    if kind == "file" or not all_objects or not gdb_live.missing:
        return []
    return [f"not listed: {', '.join(gdb_live.missing)} (in the dynamic linker's list, but no such "
            "file here; 'set sysroot' or give the path it was loaded from)"]


def _summary_lines(report) -> str:
    from gdb_toolkit.common.render import hexaddr

    lines = []
    for o in report.objects:
        bits = [o.kind, f"binding {o.binding}"]
        if o.bias:
            bits.append(f"load bias {hexaddr(o.bias)}")
        if o.relro:
            bits.append(f"RELRO {hexaddr(o.relro[0])}-{hexaddr(o.relro[1])}")
        bits.append(f"{o.slots} slots")
        lines.append(f"{o.path}: " + ", ".join(bits))
    return "\n".join(lines) + "\n"


class Got(ToolkitCommand):
    """GOT slots used for external calls and data, with their state now.

Usage: got [REGEX] [--all-objects] [--json]

One row per GOT slot of the executable (with --all-objects, of every loaded
shared object too): slot address, symbol with version (memcpy@GLIBC_2.14),
relocation type (JUMP_SLOT, GLOB_DAT, IRELATIVE...), current value and state:
unresolved (still the lazy PLT stub), resolved to "symbol in object" (for an
ifunc, the implementation chosen), bound-at-load (BIND_NOW, GLOB_DAT,
IRELATIVE), null (absent weak symbol); "prot" says whether the slot is
read-only now (RELRO).  Before "run" the values come from the file; on a
live process or a core file from memory (one read per object).

Example:
  (gdb) got
  (gdb) got 'mem|str' --all-objects
  (gdb) got --json"""

    name = "got"

    def build_parser(self):
        return _parser(self.name, "GOT slot table")

    def run(self, args):
        from gdb_toolkit.plt import gdb_live
        from gdb_toolkit.plt.slots import compile_filter, got_report

        compile_filter(args.regex)
        kind, objs, listed = _filtered_objects(args.all_objects)
        if kind == "file":
            values = {o.path: None for o in listed}
        else:
            values = gdb_live.read_slot_ranges(listed)
        report = got_report(listed, values, mode=kind, pattern=args.regex,
                            bind_now_env=gdb_live.bind_now_env(kind), space_objects=objs,
                            relocated=gdb_live.relocated(kind, objs),
                            writable=gdb_live.writable_ranges(kind) if kind != "file" else None)
        if kind == "file":
            report.notes.append("not running: values are the file's; 'start' to see them resolved")
            if args.all_objects:
                report.notes.append("shared objects are listed once the program is loaded (start/run)")
        report.notes += _missing_note(kind, args.all_objects)
        if not report.slots and not report.notes:
            report.notes.append("no GOT slot matched" if args.regex else "no GOT slots (no dynamic relocations)")
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.plain_table import plain_table

        multi = len(report.objects) > 1
        rows = []
        for r in report.slots:
            prot = ("ro" if r.read_only_now else "rw") if r.read_only_now is not None else \
                ("relro" if r.relro else "")
            row = [f"0x{r.address:x}", r.symbol, r.type, f"0x{r.value:x}", r.state, r.target, prot]
            rows.append(([r.object] if multi else []) + row)
        headers = (["object"] if multi else []) + ["slot", "symbol", "type", "value", "state", "target", "prot"]
        text = _summary_lines(report)
        if rows:
            text += plain_table(headers, rows, width=ctx.width)
        for n in report.notes:
            text += f"note: {n}\n"
        return text


class Plt(ToolkitCommand):
    """PLT stubs: address, section, the GOT slot each jumps through, disassembly.

Usage: plt [REGEX] [--all-objects] [--json]

Decodes .plt, .plt.sec (endbr64 + bnd jmp, -fcf-protection), .plt.got and
the static .plt of IRELATIVE stubs with capstone: x86_64 jmp *GOT(%rip) and
push N, aarch64 adrp x16 / ldr x17 / add x16 / br x17.  ".plt[0]" is the
resolver trampoline; "lazy" entries are the first-call halves of an IBT PLT.
On a live process or core the current state of each slot is shown too.

Example:
  (gdb) plt
  (gdb) plt puts"""

    name = "plt"

    def build_parser(self):
        return _parser(self.name, "PLT stubs")

    def run(self, args):
        from gdb_toolkit.plt import gdb_live
        from gdb_toolkit.plt.plt_report import plt_report
        from gdb_toolkit.plt.slots import compile_filter

        compile_filter(args.regex)
        kind, objs, listed = _filtered_objects(args.all_objects)
        values = None if kind == "file" else gdb_live.read_slot_ranges(listed)
        report = plt_report(listed, objs, values, kind, args.regex,
                            relocated=gdb_live.relocated(kind, objs) if values is not None else True)
        report.notes += _missing_note(kind, args.all_objects)
        return report

    def render(self, report, ctx):
        from gdb_toolkit.common.plain_table import plain_table

        multi = len({s.object for s in report.stubs}) > 1
        rows = []
        for s in report.stubs:
            row = [f"0x{s.address:x}", s.section, s.kind, f"0x{s.slot:x}" if s.slot is not None else "-",
                   s.symbol or "-", s.state or "-", "; ".join(s.code)]
            rows.append(([s.object] if multi else []) + row)
        headers = (["object"] if multi else []) + ["stub", "section", "kind", "GOT slot", "symbol", "slot now", "code"]
        text = "".join(f"note: {n}\n" for n in report.notes)
        return text + (plain_table(headers, rows, width=ctx.width) if rows else "")


class PltWalk(ToolkitCommand):
    """Walk one PLT call: call site, stub, GOT slot, target; first call vs later calls.

Usage: plt-walk SYMBOL [--live] [--json]

Shows each hop with its address and disassembly, from a call of SYMBOL in
the current function (or the first call found in .text) through the PLT stub
and the GOT slot to the target, and explains the first call (push of the
relocation index, .plt[0], GOT[1] = link_map, GOT[2] = resolver) versus later
calls.  With --live (a running process, slot still unresolved) a hardware
watchpoint is put on the slot and the program continues until ld.so writes it:
the writer (e.g. _dl_fixup) with its backtrace, old -> new value and the final
target are reported, the watchpoint is deleted, and the program stays stopped
right there.

Example:
  (gdb) plt-walk puts
  (gdb) start
  (gdb) plt-walk puts --live"""

    name = "plt-walk"

    def build_parser(self):
        from gdb_toolkit.common.args import ArgParser

        p = ArgParser(self.name, "PLT walkthrough")
        p.add_argument("symbol", help="imported function, e.g. puts or memcpy@GLIBC_2.14")
        p.add_argument("--live", action="store_true",
                       help="continue until the dynamic linker writes the slot (watchpoint)")
        return p

    def complete_values(self, word):
        """Imported symbol names of the loaded program."""
        try:
            from gdb_toolkit.plt.elf_model import load_model

            path = gdb.current_progspace().filename
            names = sorted({s.symbol for s in load_model(path).slots if s.symbol}) if path else []
        except Exception:
            return []
        return [n for n in names if n.startswith(word)]

    def run(self, args):
        from gdb_toolkit.common.errors import ToolkitError
        from gdb_toolkit.gdbsupport import facts
        from gdb_toolkit.plt import gdb_live
        from gdb_toolkit.plt.slots import AddressSpace, classify
        from gdb_toolkit.plt.stubs import decode_plt
        from gdb_toolkit.plt.walk import build_walk, find_call_site

        kind, objs, _ = _filtered_objects(True)
        if args.live and kind != "remote":       # qemu-user / gdbserver targets can be watched too
            facts.require_live_process("plt-walk --live")
        obj = spec = None
        order = objs
        if kind != "file" and gdb.selected_thread() is not None:
            # the object of the selected frame first: stopped in a library, SYMBOL is the one
            # its own code calls through its own PLT
            try:
                here = AddressSpace(objs).find(gdb.selected_frame().pc())
            except gdb.error:
                here = None
            if here is not None:
                order = [here] + [o for o in objs if o is not here]
        for o in order:
            found = o.model.slots_named(args.symbol)
            if found:
                obj = o
                spec = next((s for s in found if s.kind == "JUMP_SLOT"), found[0])
                break
        if spec is None:
            exe = objs[0].model
            if exe.is_static:
                raise ToolkitError(f"{exe.name} is statically linked and has no GOT slot for {args.symbol!r}: "
                                   "calls to it are direct", "'got' lists its IRELATIVE (ifunc) slots")
            raise ToolkitError(f"no GOT slot for {args.symbol!r} in {exe.name}"
                               f"{' or its loaded objects' if len(objs) > 1 else ''}",
                               "list the imported symbols with 'got' (or 'got --all-objects' after start)")
        space = AddressSpace(objs) if kind != "file" else None
        read = None
        if kind != "file":
            read = gdb_live._read
            raw = read(spec.address + obj.bias, 8)
            value = int.from_bytes(raw, "little") if raw else None
        else:
            value = None
        row = classify(spec, obj, value, space, live=kind != "file",
                       relocated=gdb_live.relocated(kind, objs))
        got12 = None
        g = obj.model.got_plt_reserved()
        if g is not None and read is not None:
            raw = read(g + obj.bias + 8, 16)
            if raw:
                got12 = (int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little"))
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
        if args.live:
            if row.state not in ("unresolved", "not-relocated"):
                raise ToolkitError(f"the slot of {spec.display} at 0x{report.slot:x} is already {row.state} "
                                   f"({row.target}); ld.so will not write it again",
                                   "restart the program ('start') and run 'plt-walk --live' before the first call"
                                   if row.state == "resolved" else
                                   f"ld.so fills {spec.kind} slots at load: 'starti', then 'plt-walk "
                                   f"{spec.display} --live' watches that write"
                                   + (" (or link with -z lazy and unset LD_BIND_NOW for a first-call binding)"
                                      if spec.kind == "JUMP_SLOT" else ""))
            from gdb_toolkit.plt.gdb_watch import watch_slot

            # values that still mean "lazy stub": as in the file, and rebased by ld.so at load
            unresolved = {row.value, spec.file_value + obj.bias} if spec.kind == "JUMP_SLOT" and \
                not obj.model.bind_now else {row.value}
            report.live = watch_slot(report.slot, spec.display, unresolved,
                                     lambda v: AddressSpace(gdb_live.loaded_objects()[1]).describe(v, spec.symbol)[0])
        return report

    def render(self, report, ctx):
        lines = [f"{report.symbol} in {report.object} ({report.arch}, binding {report.binding}, {report.mode}): "
                 f"GOT slot 0x{report.slot:x} [{report.slot_type}] = 0x{report.value:x}, "
                 f"{report.state} -> {report.target}", ""]
        compact = report.live is not None    # the walk itself is 'plt-walk SYMBOL' without --live
        for i, h in enumerate(report.hops, 1):
            lines.append(f"[{i}] {h.step:<10} 0x{h.address:x}  {h.where}")
            if compact:
                continue
            for c in h.code:
                lines.append(f"      {c}")
            if h.note:
                lines.append(f"      -- {h.note}")
        if report.first_call and not compact:
            lines += ["", "First call:"] + [f"  {t}" for t in report.first_call]
        if report.later_calls and not compact:
            lines += ["Later calls:"] + [f"  {t}" for t in report.later_calls]
        if report.live:
            lv = report.live
            lines += ["", f"Live: the slot was written by {lv.writer} ({lv.writer_object}) at 0x{lv.pc:x}",
                      f"  old 0x{lv.old:x} -> new 0x{lv.new:x} = {lv.target}",
                      "  backtrace:"] + [f"    #{i} {t}" for i, t in enumerate(lv.backtrace)]
            lines.append("  (watchpoint removed; the program is stopped here: 'continue' or 'finish')")
        for n in report.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines) + "\n"


def register():
    return [Got(), Plt(), PltWalk()]
