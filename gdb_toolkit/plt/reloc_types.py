"""Relocation type numbers and names for x86_64 and aarch64 (from the psABI documents)."""
from gdb_toolkit.plt.elf_file import EM_AARCH64, EM_X86_64

X86_64 = {1: "64", 5: "COPY", 6: "GLOB_DAT", 7: "JUMP_SLOT", 8: "RELATIVE", 16: "DTPMOD64",
          17: "DTPOFF64", 18: "TPOFF64", 36: "TLSDESC", 37: "IRELATIVE"}
AARCH64 = {257: "ABS64", 1024: "COPY", 1025: "GLOB_DAT", 1026: "JUMP_SLOT", 1027: "RELATIVE",
           1028: "TLS_DTPMOD64", 1029: "TLS_DTPREL64", 1030: "TLS_TPREL64", 1031: "TLSDESC",
           1032: "IRELATIVE"}
PREFIX = {EM_X86_64: "R_X86_64_", EM_AARCH64: "R_AARCH64_"}
ARCH_NAME = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}

#: relocation kinds that make a GOT slot "used for external calls/data"
SLOT_KINDS = {"JUMP_SLOT", "GLOB_DAT", "IRELATIVE", "64", "ABS64", "TPOFF64", "TLS_TPREL64",
              "DTPMOD64", "TLS_DTPMOD64", "DTPOFF64", "TLS_DTPREL64", "TLSDESC"}


def short_name(machine: int, rtype: int) -> str:
    """JUMP_SLOT, GLOB_DAT, ... (the part after R_X86_64_/R_AARCH64_)."""
    table = X86_64 if machine == EM_X86_64 else AARCH64
    return table.get(rtype, f"type{rtype}")


def full_name(machine: int, rtype: int) -> str:
    return PREFIX.get(machine, "R_") + short_name(machine, rtype)
