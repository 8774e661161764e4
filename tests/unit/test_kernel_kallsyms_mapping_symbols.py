"""arm64 modules' mapping symbols ($x, $d) in /proc/kallsyms name no code.

The text is what Debian's arm64 6.1 kernel printed in the guest (modprobe loop): a ``$x``
at the start of each text section shares its address with the section's first function.
The expected names are the kernel's own: kprobes/list printed
``ffffbba06978a000  k  max_loop_param_set_int+0x0  loop`` for a probe there, and
available_filter_functions lists ``loop_exit [loop]`` (kernel/module/kallsyms.c skips
mapping symbols in every lookup).  The guest test checks the same on the live kernel."""
from gdb_toolkit.kernel.kallsyms import Kallsyms, is_mapping_symbol

TEXT = """\
ffffbba0cae10000 T _stext
ffffbba0cae10040 T do_one_initcall
ffffbba069785000 t $x\t[dummy]
ffffbba06978a000 t $x\t[loop]
ffffbba06978a000 t max_loop_param_set_int\t[loop]
ffffbba06978a040 t loop_set_hw_queue_depth\t[loop]
ffffbba06978a094 t loop_set_status_from_info\t[loop]
ffffbba06978e210 t $x\t[loop]
ffffbba06978e210 t loop_exit\t[loop]
ffffbba06978e300 d $d\t[loop]
ffffbba06978e300 d loop_misc\t[loop]
"""


def test_mapping_symbols_are_recognised_as_the_kernel_does():
    for name in ("$x", "$d", "$a", "$t", "$x.12", "$d.3", ".Ltmp0"):
        assert is_mapping_symbol(name), name
    for name in ("$", "$xx", "$e", "x", "_stext", "loop_exit", ".text", "$x_y"):
        assert not is_mapping_symbol(name), name


def test_module_addresses_name_the_function_not_the_mapping_symbol():
    k = Kallsyms.parse(TEXT)
    k.module_extents["loop"] = (0xffffbba06978a000, 0xffffbba06978a000 + 36864)
    assert k.describe(0xffffbba06978a000) == "max_loop_param_set_int [loop]"
    assert k.describe(0xffffbba06978a008) == "max_loop_param_set_int+0x8 [loop]"
    assert k.describe(0xffffbba06978e210) == "loop_exit [loop]"
    assert k.describe(0xffffbba06978e300) == "loop_misc [loop]"
    # a $x with no function beside it names nothing (dummy's module holds no other symbol here)
    assert k.describe(0xffffbba069785000) is None
    assert k.address("$x") is None and k.all_named("$x") == []
    # the listing keeps every line /proc/kallsyms has (a dump's module walk is compared to it)
    assert sum(s.name.startswith("$") for s in k.symbols) == 4
    # the function's extent runs to the next function, not to the next mapping symbol
    assert k.next_symbol_after(0xffffbba06978a000) == 0xffffbba06978a040
    assert k.address("loop:loop_exit") == 0xffffbba06978e210
