"""What a module's import pays for must be used: a first call pays every module-level
``re.compile`` of the modules it imports (CPython's regex compiler is Python code: 0.1-2.5 ms
a pattern in gdb), so a pattern nothing reads is pure cost.  leak_records compiled one for
2.5 ms that nothing had read since a rewrite."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gdb_toolkit"


def _module_level_patterns(tree: ast.Module):
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "compile"
                and isinstance(node.value.func.value, ast.Name) and node.value.func.value.id == "re"):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node.lineno


def _names_read(tree: ast.AST) -> set[str]:
    """Every name read in *tree*, bare (``X``) or as an attribute (``module.X``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.alias):
            out.add(node.name)
    return out


def test_every_pattern_compiled_at_import_is_read_somewhere():
    trees = {p: ast.parse(p.read_text(), str(p)) for p in PACKAGE.rglob("*.py")}
    read = set().union(*(_names_read(t) for t in trees.values()))
    unused = [f"{p.relative_to(PACKAGE.parent)}:{line} {name}"
              for p, tree in trees.items() for name, line in _module_level_patterns(tree)
              if name not in read]
    assert sum(1 for t in trees.values() for _ in _module_level_patterns(t)) > 30   # the scan sees them
    assert unused == [], "compiled at import, never read:\n" + "\n".join(unused)
