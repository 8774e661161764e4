"""The contract's one location record (common/location.py): kernel positions from the kernel's
own spelling, as kallsyms' ``describe`` and kprobes/list write them (docs/json.md, "location")."""
from gdb_toolkit.common.location import Location, kernel_location, kernel_location_of, split_kernel_text
from gdb_toolkit.common.render import to_jsonable


def test_kernel_spellings_split_into_symbol_offset_module():
    assert split_kernel_text("vfs_write+0x2") == ("vfs_write", 2, None)
    assert split_kernel_text("ext4_file_open+0x0 [ext4]") == ("ext4_file_open", 0, "ext4")
    assert split_kernel_text("bpf_prog_6deef7357e7b4530_trace [bpf]") == ("bpf_prog_6deef7357e7b4530_trace", 0, "bpf")
    assert split_kernel_text("linux_banner") == ("linux_banner", 0, None)
    assert split_kernel_text("ftrace_caller via the module PLT at 0xffff800001234560") == ("ftrace_caller", 0, None)
    assert split_kernel_text("0xffffffff81000000") == (None, 0, None)
    assert split_kernel_text(None) == (None, 0, None)


def test_kernel_location_object_is_the_module_or_vmlinux():
    at = 0xFFFFFFFFC0A01010
    assert to_jsonable(kernel_location_of(at, "mod_fn+0x10 [mymod]"), hex_addresses=True) == {
        "address": "0xffffffffc0a01010", "symbol": "mod_fn", "offset": 16, "file": None, "line": None,
        "object": "mymod"}
    assert kernel_location(at, "vfs_write", 2).object == "vmlinux"
    assert kernel_location(at) == Location(at, None, None)          # no symbol: nothing else known
    # the terminal's words round-trip
    for text in ("vfs_write+0x2", "ext4_file_open [ext4]", "linux_banner"):
        assert kernel_location_of(at, text).kernel_text() == text
    assert kernel_location(at).kernel_text() is None
