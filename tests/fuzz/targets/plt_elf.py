"""The ELF reader behind got/plt/plt-walk (plt.elf_file + plt.elf_model, the slot table, the
PLT stub decoder): the bytes are an executable or shared object on disk.

Invariants beyond "no exception but ToolkitError": every slot lies inside a loaded segment,
the table's rows are one per slot, every decoded stub lies inside its PLT section."""
import os

from gdb_toolkit.plt import elf_model
from gdb_toolkit.plt.plt_report import plt_report
from gdb_toolkit.plt.slots import LoadedObject, got_report
from gdb_toolkit.plt.stubs import decode_plt
from tests.fuzz import framework

MAX_LEN = 80000
PER_INPUT_SECONDS = 2.0
DICT = [b"\x7fELF", b"\x02\x01\x01", b"\x01\x01\x01", b".plt", b".got.plt", b".rela.plt", b".rel.plt",
        b".gnu.version", b".dynsym", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\x00\x00\x00\x00\x00\x01"]


def fuzz(data: bytes) -> None:
    path = os.path.join(framework.scratch_dir("plt_elf"), "input.elf")
    with open(path, "wb") as f:
        f.write(data)
    elf_model.clear_cache()
    m = elf_model.load_model(path)
    obj = LoadedObject(path, 0x10000, m)
    report = got_report([obj], None, mode="file")
    assert len(report.slots) == len(m.slots)
    for s in m.slots:
        assert m._elf.segment_of(s.address) is not None, s
    memory = {s.address + obj.bias: s.file_value for s in m.slots}
    got_report([obj], memory, mode="live")
    for stub in decode_plt(m):
        assert any(sec.contains(stub.address) for sec in m.plt_sections()), stub
    plt_report([obj], [obj], None, "file", None)
    m.exports
