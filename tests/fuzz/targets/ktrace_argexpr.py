"""ktrace's --args / --capture expressions (ktrace.argexpr), resolved for a kprobe and a
tracepoint candidate and turned into both programs (bpf_codegen's instructions and
bpf_source's C): everything a user's text reaches before the worker.

Input: the --args text, then optionally a NUL and --capture paths separated by NUL.
Invariants: names are unique C identifiers; constants fit in 64 bits; rendering the parsed
expressions back and parsing again gives the same terms; every instruction encodes (fields in
range, jumps inside the program); the C names every value."""
from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.names import decode_name
from gdb_toolkit.ktrace import bpf_codegen, bpf_insn, bpf_source
from gdb_toolkit.ktrace.argexpr import MAX_TERMS, parse_args_spec, parse_path, render_args
from gdb_toolkit.ktrace.plan import Candidate, resolve_values

MAX_LEN = 2048
DICT = [b"vma->vm_end", b"->", b".", b"[3]", b"arg0", b"arg7", b"task", b"0x10", b"0o7", b"0b1",
        b"010", b"-", b"+", b",", b"=", b"size", b"address", b"len", b"signal->rlim[3].rlim_cur", b"\x00"]

PARAMS = [("vma", "vm_area_struct"), ("address", None), ("size", None)]
TP_FIELDS = {"common_type": (0, 2, False), "common_pid": (4, 4, True), "addr": (8, 8, False),
             "len": (16, 8, False), "prot": (24, 4, True)}


class Oracle:
    """Any path resolves to a chain of reads derived from its text (no BTF needed)."""

    def func_params(self, function):
        return PARAMS

    def field_reads(self, struct, path):
        hops = path.replace("->", ".").split(".")
        return [(8 * (len(h) % 64), 8) for h in hops[:-1]] + [(len(hops[-1]) % 4096, 8)], "s" in path


def _check_program(obj):
    for prog in obj.progs:
        code = bpf_insn.encode(prog.insns, {m.name: 3 for m in obj.maps})
        assert len(code) == 8 * len(prog.insns)
        rows = bpf_insn.to_wire(prog.insns)
        assert bpf_insn.from_wire(rows) == [bpf_insn.Insn(*r[:5], map_name=r[5]) for r in rows]


def fuzz(data: bytes) -> None:
    text, _, rest = decode_name(data).partition("\x00")
    args = parse_args_spec(text)
    names = [a.name for a in args]
    assert len(set(names)) == len(names)
    for a in args:
        assert a.name.isidentifier() and 1 <= len(a.terms) <= MAX_TERMS
        assert all(t.base is not None or 0 <= t.const < 1 << 64 for t in a.terms)
    again = parse_args_spec(render_args(args))
    assert [(a.name, a.terms) for a in again] == [(a.name, a.terms) for a in args]
    capture = [parse_path(p) for p in rest.split("\x00") if p] if rest else []
    for cand, params, fields in ((Candidate("expand_downwards", "kprobe", "expand_downwards"), PARAMS, None),
                                 (Candidate("syscalls:sys_enter_mmap", "tracepoint",
                                            "tracepoint:syscalls:sys_enter_mmap"), None, TP_FIELDS)):
        try:
            values = resolve_values(args, capture, cand, params, Oracle(), fields)
        except ToolkitError:
            continue
        for machine in ("x86_64", "aarch64"):
            try:
                obj = bpf_codegen.generate(cand, values, 42, True, True, machine, 16, (7, 8))
            except ToolkitError:
                continue
            _check_program(obj)
        c = bpf_source.generate(cand, values, 42, True, True, len(PARAMS), 16, (7, 8))
        assert all(f"/* {v.name} = " in c.text for v in values)
