"""The kernel's kallsyms tables read from memory: by VMCOREINFO's addresses and found by their
structure (as for a halted kernel), on tables written the way scripts/kallsyms.c does and on
the real Debian kernel image (its vmlinuz, when the guest kernel is cached)."""
import os

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.kernel import kallsyms_mem as KM
from gdb_toolkit.kernel.memory import CallbackMemory
from tests.support.kallsyms_tables import BASE, build, sample_symbols


def image_memory(img: bytes, base: int, lead: int = 0x20000):
    """Memory holding *img* at *base*, with *lead* bytes of zeros before it."""
    start = base - lead
    blob = bytes(lead) + img

    def read(addr, n):
        if addr < start or addr + n > start + len(blob):
            raise ToolkitError(f"0x{addr:x} not mapped", None)
        return blob[addr - start:addr - start + n]
    return CallbackMemory(read, "x86_64", "test image", page_cache=False)


@pytest.mark.parametrize("seqs", [False, True])
def test_tables_found_by_structure_decode_every_symbol(seqs):
    syms = sample_symbols(700)
    img, labels = build(syms, seqs=seqs)
    mem = image_memory(img, BASE)
    t = KM.find_tables(mem, BASE - 0x20000, len(img) + 0x20000, "x86_64")
    assert (t.names, t.token_table, t.token_index, t.num_syms) == (
        labels["kallsyms_names"], labels["kallsyms_token_table"], labels["kallsyms_token_index"], len(syms))
    assert KM.read_symbols(mem, t) == syms


def test_tables_from_vmcoreinfo_addresses():
    syms = sample_symbols(300)
    img, labels = build(syms)
    mem = image_memory(img, BASE)
    info = {f"SYMBOL({k})": f"{v:x}" for k, v in labels.items()}
    t = KM.tables_from_vmcoreinfo(mem, info, "x86_64")
    assert t.how == "VMCOREINFO" and KM.read_symbols(mem, t) == syms


def test_no_tables_is_one_clear_error():
    mem = image_memory(bytes(range(256)) * 64, BASE)
    with pytest.raises(ToolkitError, match="no kallsyms tables .*--kallsyms FILE"):
        KM.find_tables(mem, BASE, 256 * 64, "x86_64")


def _images():
    from tests.support.vmlinux_image import cached_debian_vmlinuz
    return [pytest.param(p, id=p.name[len("vmlinuz-"):]) for p in cached_debian_vmlinuz()] or \
        [pytest.param(None, id="none")]


def _image_elf(vmlinuz) -> bytes:
    if vmlinuz is None:
        pytest.skip("no cached Debian amd64 kernel (python3 -m tests.guest prepare fetches it)")
    from tests.support.vmlinux_image import vmlinux_from_vmlinuz
    return vmlinux_from_vmlinuz(vmlinuz.read_bytes())


@pytest.mark.parametrize("vmlinuz", _images())
def test_real_debian_kernel_image(vmlinuz):
    """The tables inside Debian's vmlinuz (the guest kernels' packages: 6.1, and 6.12 from
    bookworm-backports), found by structure: _text at .text's address, linux_banner at the
    "Linux version" string, every symbol."""
    elf = _image_elf(vmlinuz)
    from tests.support.vmlinux_image import ElfImageMemory
    mem = ElfImageMemory(elf)
    text, rodata = mem.section(".text"), mem.section(".rodata")
    t = KM.find_tables(mem, rodata[0], rodata[1], "x86_64")
    syms = KM.read_symbols(mem, t)
    by = {n: a for a, _t, n in syms}
    assert len(syms) == t.num_syms > 50000
    assert by["_text"] == text[0]
    assert mem.read(by["linux_banner"], 14) == b"Linux version "
    body = [a for a, _t, _n in syms if a >= 1 << 47]
    assert body == sorted(body)


@pytest.mark.parametrize("vmlinuz", _images())
def test_data_symbols_from_the_code_of_the_real_kernel_image(vmlinuz):
    """Without KALLSYMS_ALL (Debian arm64) a data symbol is read from the code using it: here on
    Debian's amd64 image (which has KALLSYMS_ALL, so kallsyms is the oracle), get_kprobe's data
    reference is kprobe_table and normalize_rt_tasks' include init_task."""
    from gdb_toolkit.kernel.btf import Btf
    from gdb_toolkit.kernel.code_refs import candidates, data_refs
    from gdb_toolkit.kernel.kallsyms import Kallsyms
    elf = _image_elf(vmlinuz)
    from tests.support.vmlinux_image import ElfImageMemory
    mem = ElfImageMemory(elf)
    rodata = mem.section(".rodata")
    syms = Kallsyms.parse(KM.kallsyms_text(KM.read_symbols(
        mem, KM.find_tables(mem, rodata[0], rodata[1], "x86_64"))))
    btf = Btf(mem.read(*mem.section(".BTF")), "the image's .BTF")
    for func, var in (("get_kprobe", "kprobe_table"), ("normalize_rt_tasks", "init_task")):
        f = syms.lookup(func)
        code = mem.read(f.address, syms.next_symbol_after(f.address) - f.address)
        assert syms.address(var) in candidates(var, data_refs(code, f.address, "x86_64"), btf)
