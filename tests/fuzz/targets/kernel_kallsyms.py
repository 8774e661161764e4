"""kallsyms-format text (/proc/kallsyms, a saved copy, a System.map): kallsyms.Kallsyms and
the /proc/modules extents that bound module symbols."""
from gdb_toolkit.common.names import decode_name
from gdb_toolkit.kernel.kallsyms import Kallsyms, parse_module_extents

MAX_LEN = 16384
DICT = [b"ffffffff81000000 T _text\n", b" t ", b" D ", b" a ", b"\t[", b"]\n", b"0000000000000000",
        b"ffffffffc0000000", b"__builtin__kprobes", b"[bpf]", b" Live 0x", b"_end"]


def fuzz(data: bytes) -> None:
    text = decode_name(data)
    ks = Kallsyms.parse(text, "fuzz")
    ks.module_extents.update(parse_module_extents(text))
    if ks.restricted:
        return
    for name in ("_text", "_end", "kprobe_table", "a", "mod:x"):
        ks.lookup(name)
        ks.all_named(name)
    for s in ks.symbols[:32]:
        c = ks.containing(s.address)
        assert c is None or c.address <= s.address
        ks.next_symbol_after(s.address)
        ks.describe(s.address + 5)
    ks.modules()
