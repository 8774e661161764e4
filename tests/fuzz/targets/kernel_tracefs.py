"""The kernel's kprobe text files (kprobe_text): debugfs kprobes/list, tracefs kprobe_events,
kprobe_profile, enabled_functions; and VMCOREINFO text (kcore.parse_vmcoreinfo)."""
from gdb_toolkit.common.names import decode_name
from gdb_toolkit.kernel import kprobe_text as T
from gdb_toolkit.kernel.kcore import parse_vmcoreinfo

MAX_LEN = 8192
DICT = [b"  k  ", b"  r  ", b"+0x", b"[GONE]", b"[DISABLED]", b"[OPTIMIZED]", b"[FTRACE]",
        b"p:kprobes/", b"r10:", b" tramp: 0x", b"->", b"\t", b"=", b"OSRELEASE="]


def fuzz(data: bytes) -> None:
    text = decode_name(data)
    for p in T.parse_kprobes_list(text):
        assert p.kind in ("k", "r") and p.address >= 0
        p.where
    for e in T.parse_kprobe_events(text):
        assert e.probe_type in ("p", "r") and e.name == f"{e.group}/{e.event}"
    for name, (hits, miss) in T.parse_kprobe_profile(text).items():
        assert hits >= 0 and miss >= 0
    T.parse_enabled_functions(text)
    parse_vmcoreinfo(text)
