"""Argument expressions for ``ktrace --args`` and ``--capture``: parse, then resolve to BPF reads.

Spec syntax (comma separated): ``NAME`` or ``NAME=EXPR``; EXPR is terms joined by ``+``/``-``
(a leading ``-`` negates); a term is an integer, ``argN``, a parameter name or tracepoint
field, optionally followed by a member path (``vma->vm_end``, ``signal->rlim[3].rlim_cur``).
Integers are decimal, ``0x``, ``0o`` or ``0b`` and fit in 64 bits; ``010`` is refused (C
reads it as octal 8, most people mean ten).  Pure: no bcc, no gdb.  Everything the worker
will be asked to do is checked here first, so a typo never starts the root worker.
"""
import re

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, record

MAX_SPEC = 4096          # characters of one --args/--capture text
MAX_TERMS = 16           # terms in one expression
MAX_HOPS = 16            # components of one member path

_TOKEN = re.compile(r"\s*(?:(?P<num>\d[0-9A-Za-z_]*)|(?P<name>[A-Za-z_]\w*)|(?P<op>->|[-+.\[\]])|(?P<bad>\S))")
_NAME = re.compile(r"[A-Za-z_]\w*")


@record
class Term:
    sign: int                 # +1 or -1
    base: str | None = None   # 'arg2', a parameter name or a tracepoint field; None for a constant
    path: str = ""            # member path after the base ('vm_end', 'signal->rlim[3].rlim_cur')
    const: int = 0


@record
class ArgExpr:
    name: str
    text: str
    terms: list[Term] = field(default_factory=list)


def _error(what: str, text: str, option: str = "--args") -> ToolkitError:
    fix = ("write it like signal->rlim[3].rlim_cur" if option == "--capture" else
           "write NAME or NAME=EXPR, e.g. size or size=vma->vm_end-address")
    return ToolkitError(f"{option}: {what} in {text.strip()!r}", fix)


def parse_number(tok: str, text: str = "") -> int:
    """A C-like integer literal: decimal, 0x.., 0o.., 0b..; no octal-by-leading-zero."""
    low = tok.lower()
    if len(tok) > 1 and tok[0] == "0" and low[1].isdigit():
        raise ToolkitError(f"--args: {tok!r} has a leading 0 (C would read it as octal)",
                           f"write {tok.lstrip('0') or '0'} for decimal, or 0o{tok.lstrip('0') or '0'} "
                           "for octal")
    try:
        value = int(tok, 0)
    except ValueError:
        raise ToolkitError(f"--args: {tok!r} is not a number", "use decimal, 0x.., 0o.. or 0b..") from None
    if value >= 1 << 64:
        raise ToolkitError(f"--args: {tok} does not fit in 64 bits", "give a smaller constant")
    return value


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        kind = m.lastgroup
        if kind == "bad":
            raise _error(f"unexpected {m.group('bad')!r}", text)
        out.append((kind, m.group(kind)))
    return out


def _path(toks: list[tuple[str, str]], i: int, text: str, option: str = "--args") -> tuple[str, int]:
    """Consume a member path starting at toks[i]; return (normalized path, next index)."""
    parts: list[str] = []
    hops = 0
    while i < len(toks) and toks[i] in (("op", "->"), ("op", "."), ("op", "[")):
        op = toks[i][1]
        hops += 1
        if hops > MAX_HOPS:
            raise _error(f"a member path of more than {MAX_HOPS} steps", text, option)
        if op == "[":
            if i + 2 >= len(toks) or toks[i + 1][0] != "num" or toks[i + 2] != ("op", "]"):
                raise _error("'[' must be followed by an index and ']'", text, option)
            parts.append(f"[{parse_number(toks[i + 1][1], text)}]")
            i += 3
        else:
            if i + 1 >= len(toks) or toks[i + 1][0] != "name":
                raise _error(f"'{op}' must be followed by a member name", text, option)
            parts.append(("" if not parts else op) + toks[i + 1][1])
            i += 2
    return "".join(parts), i


def parse_path(path: str) -> str:
    """Check a ``--capture`` member path (``signal->rlim[3].rlim_cur``); return it stripped."""
    if len(path) > MAX_SPEC:
        raise ToolkitError(f"--capture: a path of {len(path)} characters", "name one task_struct member path")
    toks = _tokens(path)
    i = 1
    if toks and toks[0][0] == "name":
        _, i = _path(toks, 1, path, "--capture")
    if not toks or toks[0][0] != "name" or i != len(toks):
        raise ToolkitError(f"--capture: {path.strip()!r} is not a member path",
                           "write it like signal->rlim[3].rlim_cur")
    return path.strip()


def parse_expr(text: str) -> list[Term]:
    """``vma->vm_end - address + 16`` -> terms."""
    toks = _tokens(text)
    if not toks:
        raise _error("an empty expression", text)
    terms: list[Term] = []
    i, sign = 0, 1
    while True:
        while i < len(toks) and toks[i] in (("op", "-"), ("op", "+")):
            sign = -sign if toks[i][1] == "-" else sign
            i += 1
        if i >= len(toks):
            raise _error("an incomplete expression", text)
        kind, tok = toks[i]
        if kind == "num":
            terms.append(Term(sign, const=parse_number(tok, text)))
            i += 1
        elif kind == "name":
            path, i = _path(toks, i + 1, text)
            terms.append(Term(sign, tok, path))
        else:
            raise _error(f"unexpected {tok!r}", text)
        if len(terms) > MAX_TERMS:
            raise _error(f"more than {MAX_TERMS} terms", text)
        if i == len(toks):
            return terms
        if toks[i] not in (("op", "-"), ("op", "+")):
            raise _error(f"unexpected {toks[i][1]!r} (terms are joined by + or -)", text)
        sign = -1 if toks[i][1] == "-" else 1
        i += 1


def parse_args_spec(spec: str | list[str] | None) -> list[ArgExpr]:
    """``"size, start=vma->vm_start"`` -> [ArgExpr('size'), ArgExpr('start', ...)]."""
    if not spec:
        return []
    items = spec if isinstance(spec, list) else [spec]
    if sum(len(i) for i in items) > MAX_SPEC:
        raise ToolkitError(f"--args: more than {MAX_SPEC} characters", "ask for fewer values")
    parts = [p.strip() for item in items for p in item.split(",") if p.strip()]
    out = []
    for part in parts:
        name, eq, expr = part.partition("=")
        name = name.strip()
        if not eq:
            expr = name
            name = implicit_name(name)
        if not _NAME.fullmatch(name):
            raise ToolkitError(f"--args: bad name {name!r}", "names are C identifiers: size=arg1")
        out.append(ArgExpr(name, expr.strip(), parse_expr(expr)))
    names = [a.name for a in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ToolkitError(f"--args: {', '.join(sorted(dup))} given twice", "give each name once")
    return out


def implicit_name(expr: str) -> str:
    """The name of a value given without ``NAME=``: the expression itself when it is an
    identifier (``size``, ``__x``), else its words joined by ``_`` (``vma->vm_end`` ->
    ``vma_vm_end``)."""
    expr = expr.strip()
    if _NAME.fullmatch(expr):
        return expr
    return re.sub(r"\W+", "_", expr).strip("_") or "arg"


def render_args(args: list[ArgExpr]) -> list[str]:
    """Back to ``NAME=EXPR`` strings that parse to the same values."""
    return [a.text if implicit_name(a.text) == a.name else f"{a.name}={a.text}" for a in args]
