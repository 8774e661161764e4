"""The location object of the JSON contract (docs/json.md, "location"): where something is,
as ``{address, symbol, offset, file, line, object}`` with every key present (None when
unknown).  One record for every command: plt-walk's hops and backtraces, ktrace's kernel
stacks, kdis/kx/kprobe-list/kprobe-show/ftrace-site's code positions.  Pure."""
from gdb_toolkit.common.record import field, record

#: the object a kernel location names when no module holds it (ktrace, ksym, kdis ...)
KERNEL_OBJECT = "vmlinux"


@record
class Location:
    """Where a hop, a frame or an instruction is: every key present, None when unknown."""
    address: int | None
    symbol: str | None
    offset: int | None
    file: str | None = None
    line: int | None = None
    object: str | None = None
    #: where the object's sections place an address no symbol names (a stripped ld.so:
    #: ``.text+0xf86d``), for the terminal; the JSON keeps symbol and offset null
    section_offset: str = field(default="", metadata={"json_skip": True})

    def text(self) -> str:
        """``main+49``, ``puts@plt``; the address when no symbol is known."""
        if self.symbol:
            return self.symbol + (f"+{self.offset}" if self.offset else "")
        return f"0x{self.address:x}" if self.address is not None else "??"

    def name_text(self) -> str:
        """``_dl_fixup+411``, else ``.text+0xf86d``, else ``??`` (beside an address)."""
        return self.text() if self.symbol else (self.section_offset or "??")

    def kernel_text(self) -> str | None:
        """As the kernel prints a position (kallsyms, kprobes/list): ``vfs_write+0x2``,
        ``ext4_file_open [ext4]``; None when no symbol is known."""
        if not self.symbol:
            return None
        mod = self.object if self.object and self.object != KERNEL_OBJECT else None
        return self.symbol + (f"+0x{self.offset:x}" if self.offset else "") + (f" [{mod}]" if mod else "")


def kernel_location(address: int | None, symbol: str | None = None, offset: int | None = 0,
                    module: str | None = None) -> Location:
    """A kernel position: *module* None is the kernel image (object ``vmlinux``); without a
    symbol, offset and object are unknown too.  *symbol* and *module* are raw (kallsyms,
    System.map, BTF: any bytes) and escaped here, once, as every name the toolkit prints
    (common.names.escape_name; docs/json.md "Names")."""
    if not symbol:
        return Location(address, None, None)
    from gdb_toolkit.common.names import escape_name

    return Location(address, escape_name(symbol), offset or 0,
                    object=escape_name(module) if module else KERNEL_OBJECT)


def split_kernel_text(text: str | None) -> tuple[str | None, int, str | None]:
    """``name+0x10 [mod]`` (the kernel's spelling, kallsyms.describe's) -> (name, 0x10, mod);
    (None, 0, None) for an address or nothing.  An arm64 module PLT's final target is named
    first (``ftrace_caller via the module PLT at 0x...``, kernel/sites.py): that name counts."""
    if not text or text.startswith("0x"):
        return None, 0, None
    text = text.split(" via ", 1)[0]
    head, _, mod = text.partition(" [")
    name, _, off = head.partition("+0x")
    try:
        return name, int(off, 16) if off else 0, mod.rstrip("]") or None
    except ValueError:
        return None, 0, None


def kernel_location_of(address: int | None, text: str | None) -> Location:
    """The location of *address* from its kernel spelling (a ``symbolize`` callback's answer)."""
    name, off, mod = split_kernel_text(text)
    return kernel_location(address, name, off, mod)
