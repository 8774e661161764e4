"""Relocation type numbers and names for x86_64, i386, aarch64 and arm (from the psABIs),
normalised to one vocabulary of slot kinds so the rest of the code is architecture-free."""
from gdb_toolkit.plt.elf_file import EM_386, EM_AARCH64, EM_ARM, EM_X86_64

X86_64 = {1: "64", 5: "COPY", 6: "GLOB_DAT", 7: "JUMP_SLOT", 8: "RELATIVE", 16: "DTPMOD64",
          17: "DTPOFF64", 18: "TPOFF64", 36: "TLSDESC", 37: "IRELATIVE"}
AARCH64 = {257: "ABS64", 1024: "COPY", 1025: "GLOB_DAT", 1026: "JUMP_SLOT", 1027: "RELATIVE",
           1028: "TLS_DTPMOD64", 1029: "TLS_DTPREL64", 1030: "TLS_TPREL64", 1031: "TLSDESC",
           1032: "IRELATIVE"}
I386 = {1: "32", 5: "COPY", 6: "GLOB_DAT", 7: "JMP_SLOT", 8: "RELATIVE", 14: "TLS_TPOFF",
        35: "TLS_DTPMOD32", 36: "TLS_DTPOFF32", 37: "TLS_TPOFF32", 41: "TLS_DESC", 42: "IRELATIVE"}
ARM = {2: "ABS32", 13: "TLS_DESC", 17: "TLS_DTPMOD32", 18: "TLS_DTPOFF32", 19: "TLS_TPOFF32",
       20: "COPY", 21: "GLOB_DAT", 22: "JUMP_SLOT", 23: "RELATIVE", 160: "IRELATIVE"}
TABLES = {EM_X86_64: X86_64, EM_AARCH64: AARCH64, EM_386: I386, EM_ARM: ARM}
PREFIX = {EM_X86_64: "R_X86_64_", EM_AARCH64: "R_AARCH64_", EM_386: "R_386_", EM_ARM: "R_ARM_"}
ARCH_NAME = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64", EM_386: "i386", EM_ARM: "arm"}

#: architecture-specific name -> the kind used everywhere else
_KIND = {"JMP_SLOT": "JUMP_SLOT", "64": "ABS", "ABS64": "ABS", "32": "ABS", "ABS32": "ABS",
         "TPOFF64": "TLS_TPOFF", "TLS_TPREL64": "TLS_TPOFF", "TLS_TPOFF32": "TLS_TPOFF",
         "DTPMOD64": "TLS_DTPMOD", "TLS_DTPMOD64": "TLS_DTPMOD", "TLS_DTPMOD32": "TLS_DTPMOD",
         "DTPOFF64": "TLS_DTPOFF", "TLS_DTPREL64": "TLS_DTPOFF", "TLS_DTPOFF32": "TLS_DTPOFF",
         "TLS_DESC": "TLSDESC"}

#: relocation kinds that make a GOT slot "used for external calls/data"
SLOT_KINDS = {"JUMP_SLOT", "GLOB_DAT", "IRELATIVE", "ABS", "TLS_TPOFF", "TLS_DTPMOD",
              "TLS_DTPOFF", "TLSDESC"}
TLS_KINDS = {"TLS_TPOFF", "TLS_DTPMOD", "TLS_DTPOFF", "TLSDESC"}


def arch_name(machine: int) -> str | None:
    return ARCH_NAME.get(machine)


def raw_name(machine: int, rtype: int) -> str:
    """The psABI's name without its prefix (JMP_SLOT on i386, JUMP_SLOT elsewhere)."""
    return TABLES.get(machine, {}).get(rtype, f"type{rtype}")


def short_name(machine: int, rtype: int) -> str:
    """The architecture-free kind: JUMP_SLOT, GLOB_DAT, IRELATIVE, ABS, TLSDESC, TLS_*."""
    raw = raw_name(machine, rtype)
    return _KIND.get(raw, raw)


def full_name(machine: int, rtype: int) -> str:
    return PREFIX.get(machine, "R_") + raw_name(machine, rtype)
