"""stack-diagnose at 80 columns in a real terminal (tmux, issue 14's harness): every address,
symbol and size of its answer is printed whole, prose wraps at spaces, no line is folded by
the terminal, and gdb's styles colour it.  Oracle: the same command's --json in the same
session."""
import pytest

from tests.support.stack_oracles import build
from tests.support.tmux import TmuxGdb

pytestmark = pytest.mark.gdb


def _hex(v):
    return v if isinstance(v, str) else f"0x{v:x}"


@pytest.mark.parametrize("name,args", [("teststack", ["1920", "1080"]),
                                       ("recurse_helper", []),
                                       ("thread_clash", ["262144", "530000"]),
                                       ("coroutine", ["131072", "vla", "307200"])])
def test_stack_diagnose_at_80_columns(name, args):
    prog = build(name)
    with TmuxGdb(width=80, program=prog, args=args) as t:
        t.run("run")
        doc = t.json("stack-diagnose")
        rows = t.run("stack-diagnose")
        tokens = [_hex(doc["sp_address"]), _hex(doc["pc_address"])]
        if doc["fault_address"]:
            tokens.append(_hex(doc["fault_address"]))
        for fr in doc["frames"][:10]:
            tokens.append(_hex(fr["sp_address"]))
            if fr["symbol"] and len(fr["symbol"]) < 40:
                tokens.append(fr["symbol"])
        if doc["culprit"] and doc["culprit"]["instruction"]:
            tokens.append(_hex(doc["culprit"]["instruction"]["address"]))
        assert doc["verdict"] != "healthy"
        assert any(r.startswith("VERDICT") for r in rows)
        assert all(len(r) <= 80 for r in rows)
        t.assert_whole(rows, tokens)
        styled = t.run("stack-diagnose", styled=True)
        assert any("\x1b[" in r for r in styled)                 # gdb's styles are used
