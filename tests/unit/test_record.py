"""common.record: the dataclass subset the toolkit's first-call paths use, without importing
dataclasses.  The oracle is dataclasses itself: the same class under both decorators must
construct, compare, hash, print and serialise alike."""
import dataclasses
import subprocess
import sys

import pytest

from gdb_toolkit.common import record as rec
from gdb_toolkit.common.render import to_jsonable


def _both(body: str, **options):
    """The class defined by *body* under @dataclass and under @record."""
    out = []
    for deco, field in ((dataclasses.dataclass, dataclasses.field), (rec.record, rec.field)):
        ns = {"field": field}
        exec(body, ns)
        out.append(deco(**options)(ns["C"]) if options else deco(ns["C"]))
    return out


BODY = '''
class C:
    """doc"""
    a: int
    b: str = "x"
    c: list = field(default_factory=list)
    d: object = field(default=None, repr=False, compare=False, metadata={"json_skip": True})
    e: "int | None" = None

    def twice(self):
        return 2 * self.a
'''


@pytest.mark.parametrize("options", [{}, {"slots": True}, {"frozen": True}])
def test_record_behaves_like_dataclass(options):
    D, R = _both(BODY, **options)
    for args in ((1,), (1, "y"), (1, "y", [2], object(), 5)):
        d, r = D(*args), R(*args)
        assert repr(d).replace("C(", "") == repr(r).replace("C(", "")
        assert (d == D(*args)) == (r == R(*args))
        assert r.twice() == d.twice() and r.c == d.c
    assert R(1) == R(1, d=7) and R(1) != R(2) and R(1).__eq__(object()) is NotImplemented
    assert R(1).c is not R(1).c                          # a fresh default per instance
    assert to_jsonable(R(1, "y", [3])) == to_jsonable(D(1, "y", [3])) == {"a": 1, "b": "y", "c": [3], "e": None}
    if options.get("frozen"):
        assert hash(R(1, "y", (3,))) == hash(R(1, "y", (3,)))
        with pytest.raises(AttributeError):
            R(1).a = 2
    else:
        with pytest.raises(TypeError):
            hash(R(1))
    if options.get("slots"):
        assert not hasattr(R(1), "__dict__") and set(R.__slots__) == set("abcde")
    with pytest.raises(TypeError):
        R()


def test_post_init_inheritance_classvar_and_mutable_defaults():
    from typing import ClassVar

    @rec.record
    class Base:
        x: int
        y: int = 0

        def __post_init__(self):
            self.total = self.x + self.y

    @rec.record
    class Child(Base):
        z: int = 5
        LIMIT: ClassVar[int] = 3

    c = Child(1, 2, 3)
    assert (c.x, c.y, c.z, c.total, Child.LIMIT) == (1, 2, 3, 3, 3)
    assert [f.name for f in rec.fields(Child)] == ["x", "y", "z"]
    with pytest.raises(ValueError):
        rec.record(type("M", (), {"__annotations__": {"m": list}, "m": []}))
    with pytest.raises(TypeError):
        rec.record(type("O", (), {"__annotations__": {"a": int, "b": int}, "a": 1}))


FIRST_CALL_CORES = [
    # got: plt core, ELF reader, /proc readers, renderer
    "plt.slots", "plt.staleness", "plt.demangle", "common.procfs", "common.table", "common.args",
    # plt, plt-walk: stubs, the walk, the disassembler
    "plt.plt_report", "plt.walk", "plt.stubs", "common.disasm", "common.capstone_lite",
    # stack-diagnose's core
    "stack.diagnose", "stack.recursion", "stack.sigframe", "stack.sp_insn", "stack.text",
    # kernel commands: the session, kcore/vmcore, symbols, kprobes, ftrace sites
    "kernel.session", "kernel.kcore", "kernel.vmcore", "kernel.kallsyms_mem", "kernel.kprobes",
    "kernel.kprobe_show", "kernel.kprobe_table", "kernel.ftrace", "kernel.memory_views",
    # the doctor, the valgrind commands, ktrace's gdb side
    "doctor.checks", "ktrace.kheaders", "valgrind.launch", "valgrind.error_reports",
    "valgrind.leak_view", "valgrind.memory_reports", "ktrace.report", "ktrace.api",
]


def test_first_call_modules_do_not_import_dataclasses():
    code = ("import sys\n"
            + "".join(f"import gdb_toolkit.{m}\n" for m in FIRST_CALL_CORES)
            + "print(sorted(m for m in ('dataclasses', 'inspect', 'argparse', 'typing', 'platform')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_replace_is_dataclasses_replace():
    D, R = _both(BODY)
    for cls, replace in ((D, dataclasses.replace), (R, rec.replace)):
        x = cls(1, "y", [2])
        y = replace(x, b="z")
        assert (y.a, y.b, y.c, y.e) == (1, "z", [2], None) and y.c is x.c and y is not x
        with pytest.raises(TypeError):
            replace(x, nope=1)


def test_generic_and_compiled_init_bind_arguments_alike():
    # the first COMPILE_AFTER instances use the generic __init__, later ones the compiled one
    D, R = _both(BODY)
    calls = [((1,), {}), ((1, "y"), {"e": 3}), ((), {"a": 2, "c": [1]}), ((1,), {"b": "z", "d": 4})]
    bad = [((), {}), ((1, "y"), {"b": "z"}), ((1,), {"nope": 1}), ((1, 2, 3, 4, 5, 6), {})]
    for _ in range(rec.COMPILE_AFTER + 5):
        for args, kw in calls:
            assert vars(R(*args, **kw)) == vars(D(*args, **kw))
        for args, kw in bad:
            with pytest.raises(TypeError):
                D(*args, **kw)
            with pytest.raises(TypeError):
                R(*args, **kw)
    assert R.__init__.__code__.co_varnames[:6] == ("self", "a", "b", "c", "d", "e")   # compiled now
