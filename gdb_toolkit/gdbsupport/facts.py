"""Facts gathered from gdb for the pure cores: process, target kind, memory, arch."""
import gdb

from gdb_toolkit.common.errors import ToolkitError


def inferior():
    return gdb.selected_inferior()


def target_kind() -> str:
    """'none', 'live' (native process), 'core', 'remote' (incl. vgdb) or 'exec' (file only)."""
    inf = inferior()
    conn = getattr(inf, "connection", None)
    ctype = getattr(conn, "type", None) if conn is not None else None
    if ctype == "core":
        return "core"
    if ctype in ("remote", "extended-remote"):
        return "remote" if inf.pid else "none"
    if inf.pid:
        return "live"
    from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename

    return "exec" if progspace_filename() else "none"      # the name may be any bytes


def current_pid() -> int | None:
    """The inferior's pid for a live or core target, else None."""
    pid = inferior().pid
    return pid or None


def require_live_process(what: str) -> int:
    """The live inferior's pid, or a ToolkitError explaining how to get one."""
    kind = target_kind()
    if kind == "live":
        return inferior().pid
    if kind == "core":
        raise ToolkitError(f"{what} needs a live process, but the target is a core file",
                           "run the program (run/start) or attach to it (attach PID)")
    if kind == "remote":
        raise ToolkitError(f"{what} needs a local live process, but the target is remote",
                           "run gdb on the machine of the process")
    raise ToolkitError(f"{what} needs a process, but none is running",
                       "start the program (start, run) or attach to one (attach PID)")


def require_stopped_thread(what: str):
    thread = gdb.selected_thread()
    if thread is None:
        raise ToolkitError(f"{what} needs a stopped thread, but there is none",
                           "start the program (start, run), attach to it, or load a core file")
    if thread.is_running():
        raise ToolkitError(f"{what} needs the thread stopped", "interrupt it first (Ctrl-C or 'interrupt')")
    return thread


def read_memory(address: int, length: int) -> bytes:
    try:
        return bytes(inferior().read_memory(address, length))
    except gdb.MemoryError:
        raise ToolkitError(f"cannot read {length} bytes at 0x{address:x}",
                           "the address is not mapped in the target") from None


def target_arch() -> str:
    """Normalised architecture name (x86_64 / aarch64) of the current target or file."""
    from gdb_toolkit.common.disasm import normalize_arch

    try:
        name = gdb.selected_frame().architecture().name()
    except gdb.error:
        name = inferior().architecture().name()
    return normalize_arch(name)


def executable_path() -> str | None:
    """The program's path (any bytes, surrogateescape-decoded), or None."""
    from gdb_toolkit.gdbsupport.safe_gdb import progspace_filename

    return progspace_filename()


def eval_int(expression: str) -> int:
    """Evaluate a gdb expression (``&g_buf``, ``sizeof(buf)``, ``$sp+8``) to an int."""
    try:
        value = gdb.parse_and_eval(expression)
        code = value.type.strip_typedefs().code
        if code == gdb.TYPE_CODE_VOID:      # $name never set (gdb: "Cannot convert value")
            from gdb_toolkit.gdbsupport.registry import convenience_variables

            what = convenience_variables().get(expression.strip())
            raise ToolkitError(f"{expression!r} has no value (void: a convenience variable "
                               "that was never set?)",
                               (f"it is the {what}: run that first" if what else "set it first")
                               + ", or give a number or another expression")
        if code == gdb.TYPE_CODE_ARRAY:
            value = value.address
        return int(value)
    except gdb.error as exc:
        # a convenience function's own error ($ksym("nosuch")) already says cause and fix:
        # keep its fix instead of a second "Fix:" on the line
        inner, _, inner_fix = str(exc).partition(". Fix: ")
        raise ToolkitError(f"cannot evaluate {expression!r}: {inner}",
                           inner_fix or "give a number or a valid gdb expression") from None


def eval_address(expression: str, bits: int | None = None) -> int:
    """An address expression as the target sees it: ``-8`` is 0xfff...f8, not -8.

    *bits* defaults to the target's pointer width; the kernel commands pass 64
    (with no program loaded gdb assumes i386, but kernel addresses are 64-bit).
    """
    if bits is None:
        try:
            bits = 8 * gdb.lookup_type("void").pointer().sizeof
        except gdb.error:
            bits = 64
    return eval_int(expression) & ((1 << bits) - 1)


def core_file_path() -> str | None:
    """The path of the core file gdb has loaded (from ``info target``), else None."""
    import re

    from gdb_toolkit.gdbsupport.safe_gdb import execute_to_string

    try:
        text = execute_to_string("info target")
    except gdb.error:
        return None
    # gdb prints "`PATH', file type ELF-FORMAT." on one line: the path may hold quotes
    m = re.search(r"core dump file:\s*`(.*)', file type [^\n]*$", text, re.M)
    return m.group(1) if m else None


def auxv() -> dict[str, int]:
    """The inferior's auxiliary vector ({"AT_PHDR": ..., "AT_PAGESZ": ...}); {} when gdb has none."""
    from gdb_toolkit.common.procfs import parse_auxv

    try:
        from gdb_toolkit.gdbsupport.safe_gdb import execute_to_string

        return parse_auxv(execute_to_string("info auxv"))     # AT_EXECFN may be any bytes
    except gdb.error:
        return {}
