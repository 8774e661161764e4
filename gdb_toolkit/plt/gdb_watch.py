"""plt-walk --live: a hardware write watchpoint on one GOT slot, continue until ld.so
writes it, report the writer, and always delete the watchpoint.

The user's own breakpoints and watchpoints are left exactly as they were: when the target
refuses a hardware watchpoint (all debug registers taken by the user's, or qemu-user's
gdbstub), ours is created as a software watchpoint by turning ``can-use-hw-watchpoints``
off only for the instant of its creation -- never across a ``continue``, where gdb would
re-evaluate (and downgrade) every other watchpoint."""
import os

import gdb

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.gdbsupport.safe_gdb import source_of
from gdb_toolkit.plt.walk import LiveWrite, Location
from gdb_toolkit.plt.wording import counted

MAX_HITS = 8
BACKTRACE = 12


def _read_slot(addr: int, wordsize: int = 8) -> int:
    return int.from_bytes(bytes(gdb.selected_inferior().read_memory(addr, wordsize)), "little")


def frame_location(frame, describe=None) -> Location:
    """A frame as the common location object: pc, function (+offset), file:line from gdb's
    line table, object.  A function gdb has no symbol for (stripped ld.so) is named by our
    own index (*describe*)."""
    from gdb_toolkit.common.names import escape_name
    from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename, solib_name

    pc = frame.pc()
    lib = solib_name(pc)
    obj = escape_name(os.path.basename(lib) if lib else os.path.basename(progspace_filename() or "?"))
    try:
        name, offset = frame.name(), None
        name = escape_name(name) if name else name      # printed once (describe's is already)
    except UnicodeDecodeError:                          # gdb cannot give a non-UTF-8 name
        name, offset = None, None
    try:
        fn = frame.function()
        if fn is not None and name:
            offset = pc - int(fn.value().address)
    except (gdb.error, TypeError, ValueError):
        offset = None
    section_offset = ""
    if not name and describe:   # no symbol known to gdb: "sym+12 in obj" from our own index
        text = describe(pc).split(" in ")[0]
        head, plus, off = text.rpartition("+")
        name, offset = (head, int(off)) if plus and off.isdigit() else (text, None)
        if name.startswith("0x") or ":" in name:    # "ld-linux.so.2:.text+0xf86d": no symbol
            section_offset = text.partition(":")[2] if ":" in name else ""
            name, offset = None, None
    try:
        file, line = source_of(frame.find_sal())
    except gdb.error:
        file = line = None
    return Location(pc, name or None, offset, file, line, obj, section_offset=section_offset)


def frame_text(loc: Location) -> str:
    """``0x7ffff7fd5e2b _dl_fixup+411 (ld-linux-x86-64.so.2)`` for a backtrace line."""
    at = f" at {loc.file}:{loc.line}" if loc.file and loc.line else ""
    return f"0x{loc.address:x} {loc.name_text()}{at} ({loc.object})"


def _set_watchpoint(slot: int, wordsize: int = 8, software: bool = False):
    ctype = "unsigned long long" if wordsize == 8 else "unsigned int"
    spec = f"*({ctype} *) 0x{slot:x}"          # only numbers: no user text reaches gdb's parser
    if not software:
        wp = gdb.Breakpoint(spec, gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)
    else:
        old = gdb.parameter("can-use-hw-watchpoints")
        gdb.execute("set can-use-hw-watchpoints 0", to_string=True)
        try:
            wp = gdb.Breakpoint(spec, gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)
        finally:
            gdb.execute(f"set can-use-hw-watchpoints {int(old)}", to_string=True)
    wp.silent = True
    return wp


def watch_slot(slot: int, symbol: str, unresolved: set[int], describe, wordsize: int = 8) -> LiveWrite:
    """Continue until *slot* gets a value outside *unresolved* (the lazy-stub values);
    the program is left stopped right after the write.  A hardware watchpoint is used;
    where the target refuses one (qemu-user's gdbstub) a software watchpoint is used."""
    try:
        old = _read_slot(slot, wordsize)
    except gdb.MemoryError:
        raise ToolkitError(f"cannot read the GOT slot at 0x{slot:x}", "check the process is alive") from None
    try:
        wp = _set_watchpoint(slot, wordsize)
    except gdb.error as exc:
        raise ToolkitError(f"cannot set a watchpoint on 0x{slot:x}: {exc}",
                           "check 'show can-use-hw-watchpoints' and free a debug register") from None
    first_old = old
    hits = 0
    software = False
    try:
        for _ in range(MAX_HITS):
            before = wp.hit_count
            try:
                gdb.execute("continue", to_string=True)
            except gdb.error as exc:
                if software or not gdb.selected_inferior().pid:
                    raise ToolkitError(f"the program could not continue: {exc}",
                                       "check its state with 'info program'") from None
                # the target would not insert a hardware watchpoint: fall back to software
                wp.delete()
                software = True
                wp = _set_watchpoint(slot, wordsize, software=True)
                before = wp.hit_count
                try:
                    gdb.execute("continue", to_string=True)
                except gdb.error as exc2:
                    raise ToolkitError(f"the program could not continue: {exc2}",
                                       "check its state with 'info program'") from None
            inf = gdb.selected_inferior()
            if not inf.pid or not inf.is_valid():
                raise ToolkitError(f"the program exited without writing the slot of {symbol}",
                                   f"start it again and run 'plt-walk {symbol} --live' before the first call")
            if wp.hit_count == before:
                where = frame_text(frame_location(gdb.newest_frame(), describe)) if gdb.selected_thread() else "?"
                raise ToolkitError(f"the program stopped for another reason at {where} before the slot "
                                   "was written (the watchpoint is removed)",
                                   f"continue to where you want and run 'plt-walk {symbol} --live' again")
            hits += 1
            new = _read_slot(slot, wordsize)
            if new != old and new not in unresolved:
                frame = gdb.newest_frame()
                trace = []
                f = frame
                while f is not None and len(trace) < BACKTRACE:
                    loc = frame_location(f, describe)
                    if trace and loc.symbol is None and "(no loaded object)" in describe(loc.address):
                        break           # gdb unwound past _start into garbage
                    trace.append(loc)
                    try:
                        f = f.older()
                    except gdb.error:
                        break
                return LiveWrite(trace[0], trace, first_old, new, describe(new), hits)
            old = new
        raise ToolkitError(f"the slot was written {counted(hits, 'time')} without leaving the lazy stub",
                           "check the binary is lazily bound (got shows 'unresolved')")
    finally:
        if wp.is_valid():
            wp.delete()
