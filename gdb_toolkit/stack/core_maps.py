"""The memory map of a core file: PT_LOAD segments named from the NT_FILE note.  Pure
(reads the core with pyelftools; no gdb)."""
from gdb_toolkit.common.procfs import Mapping

PF_X, PF_W, PF_R = 1, 2, 4


def _perms(flags: int) -> str:
    return (("r" if flags & PF_R else "-") + ("w" if flags & PF_W else "-")
            + ("x" if flags & PF_X else "-") + "p")


def core_mappings(path: str) -> list[Mapping]:
    """Every mapping a core records.  Kernel cores have one PT_LOAD per VMA (file size 0
    for the unreadable ones, e.g. guard pages); gdb's gcore omits unmodified file-backed
    parts, which NT_FILE still lists.  Anonymous regions have no name in a core."""
    from gdb_toolkit.common.deps import require

    require("elftools")
    from elftools.elf.elffile import ELFFile

    loads: list[Mapping] = []
    files: list[tuple[int, int, int, str]] = []
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
                loads.append(Mapping(seg["p_vaddr"], seg["p_vaddr"] + seg["p_memsz"],
                                     _perms(seg["p_flags"]), 0, "00:00", 0, ""))
            elif seg["p_type"] == "PT_NOTE":
                for note in seg.iter_notes():
                    if note["n_type"] != "NT_FILE":
                        continue
                    desc = note["n_desc"]
                    page = desc["page_size"]
                    for entry, name in zip(desc["Elf_Nt_File_Entry"], desc["filename"]):
                        files.append((entry["vm_start"], entry["vm_end"],
                                      entry["page_offset"] * page,
                                      name.decode() if isinstance(name, bytes) else name))
    out = []
    for m in loads:
        hit = next((f for f in files if f[0] <= m.start < f[1]), None)
        if hit:
            m.path, m.offset = hit[3], hit[2] + (m.start - hit[0])
        out.append(m)
    for lo, hi, off, name in files:           # file parts gcore left out
        if not any(m.start < hi and lo < m.end for m in loads):
            out.append(Mapping(lo, hi, "r--p", off, "00:00", 0, name))
    return sorted(out, key=lambda m: m.start)
