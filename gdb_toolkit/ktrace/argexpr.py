"""Argument expressions for ``ktrace --args``: parse, then resolve to BPF reads.

Spec syntax (comma separated): ``NAME`` or ``NAME=EXPR``; EXPR is terms joined
by ``+``/``-``; a term is an integer, ``argN``, a parameter name or tracepoint
field, optionally followed by a field path (``vma->vm_end``,
``signal->rlim[3].rlim_cur``).  Pure: no bcc, no gdb.
"""
import re
from dataclasses import dataclass, field

from gdb_toolkit.common.errors import ToolkitError

_TERM = re.compile(r"^\s*(?:(?P<num>-?(?:0x[0-9a-fA-F]+|\d+))|(?P<base>[A-Za-z_]\w*)(?P<path>(?:->|\.|\[)[\w\[\]\.\->]*)?)\s*$")


@dataclass
class Term:
    sign: int                 # +1 or -1
    base: str | None = None   # 'arg2', a parameter name or a tracepoint field; None for a constant
    path: str = ""            # field path after the base ('vm_end', 'signal->rlim[3].rlim_cur')
    const: int = 0


@dataclass
class ArgExpr:
    name: str
    text: str
    terms: list[Term] = field(default_factory=list)


def _split_terms(expr: str) -> list[tuple[int, str]]:
    out, sign, cur, i = [], 1, "", 0
    while i < len(expr):
        ch = expr[i]
        if ch == "-" and expr[i:i + 2] == "->":
            cur += "->"
            i += 2
            continue
        if ch in "+-" and cur.strip():
            out.append((sign, cur))
            sign, cur = (1 if ch == "+" else -1), ""
        elif ch == "-" and not cur.strip():
            sign = -sign
        else:
            cur += ch
        i += 1
    if not cur.strip():
        raise ToolkitError(f"--args: incomplete expression {expr!r}",
                           "write NAME or NAME=EXPR, e.g. size or size=vma->vm_end-address")
    out.append((sign, cur))
    return out


def parse_term(sign: int, text: str) -> Term:
    m = _TERM.match(text)
    if not m:
        raise ToolkitError(f"--args: cannot parse {text.strip()!r}",
                           "use argN, a parameter name, or a field path like vma->vm_end")
    if m.group("num"):
        return Term(sign, const=int(m.group("num"), 0))
    path = (m.group("path") or "")
    path = path[2:] if path.startswith("->") else path[1:] if path.startswith(".") else path
    return Term(sign, m.group("base"), path)


def parse_args_spec(spec: str | list[str] | None) -> list[ArgExpr]:
    """``"size, start=vma->vm_start"`` -> [ArgExpr('size'), ArgExpr('start', ...)]."""
    if not spec:
        return []
    items = spec if isinstance(spec, list) else [spec]
    parts = [p.strip() for item in items for p in item.split(",") if p.strip()]
    out = []
    for part in parts:
        name, eq, expr = part.partition("=")
        name = name.strip()
        if not eq:
            expr = name
            name = re.sub(r"\W+", "_", name).strip("_") or "arg"
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ToolkitError(f"--args: bad name {name!r}", "names are C identifiers: size=arg1")
        terms = [parse_term(s, t) for s, t in _split_terms(expr)]
        out.append(ArgExpr(name, expr.strip(), terms))
    names = [a.name for a in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ToolkitError(f"--args: {', '.join(sorted(dup))} given twice", "give each name once")
    return out


def render_args(args: list[ArgExpr]) -> list[str]:
    """Back to ``NAME=EXPR`` strings (what the worker receives)."""
    return [a.name if a.text == a.name else f"{a.name}={a.text}" for a in args]
