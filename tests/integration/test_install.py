"""``pip install`` of the checkout into a venv made with gdb's own Python (issue 14).

The checkout is copied and mounted read-only (a private mount namespace: root ignores
file modes) so a build that writes into the source tree (setuptools' build/ and
*.egg-info) fails; without mount namespaces the copy's file list is compared before and
after instead.  The installed package is then loaded into gdb from the venv, and its
shipped JSON Schemas validate a real document.
"""
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.gdbrun import GDB, REPO, run_gdb

pytestmark = pytest.mark.gdb


def gdb_python() -> str:
    res = run_gdb(["python from gdb_toolkit.loader import interpreter_path; print('@@', interpreter_path())"])
    return next(ln.split(None, 1)[1] for ln in res.stdout.splitlines() if ln.startswith("@@"))


def tree(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def can_mount_readonly(path) -> bool:
    if not shutil.which("unshare"):
        return False
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           f'mount --bind -o ro "{path}" "{path}" && ! touch "{path}/.probe" 2>/dev/null'],
                          capture_output=True)
    return proc.returncode == 0


def test_pip_install_from_read_only_checkout_into_gdbs_python(tmp_path):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "checkout"
    for f in files:
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    before = tree(src)
    python = gdb_python()
    venv = tmp_path / "venv"
    # Debian's pyelftools/capstone/tabulate satisfy the dependencies (no download but the backend)
    subprocess.run([python, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(src)]
    readonly = can_mount_readonly(src)
    cmd = (["unshare", "-m", "--propagation", "private", "sh", "-c",
            f'mount --bind -o ro "{src}" "{src}" && exec "$@"', "sh", *pip] if readonly else pip)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "No matching distribution found for flit_core" in proc.stderr:
        pytest.skip("the package index cannot be reached for the build backend (flit_core)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tree(src) == before, sorted(tree(src) ^ before)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = site / "gdb_toolkit"
    assert (installed / "schemas" / "envelope.schema.json").is_file()
    assert (installed / "schemas" / "toolkit-doctor.schema.json").is_file()
    # gdb loads the installed copy (not the checkout) and its schemas validate real output
    probe = (f"python import sys; sys.path.insert(0, {str(site)!r}); import gdb_toolkit; "
             "print('@@', gdb_toolkit.__file__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([GDB, "-nx", "-batch", "-ex", probe, "-ex", "toolkit doctor --quick --json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    where = next(ln for ln in res.stdout.splitlines() if ln.startswith("@@"))
    assert str(installed) in where, (where, ver)
    doc_text = res.stdout[res.stdout.index("{"):]
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import json, sys; from gdb_toolkit.common.schemas import validate_document;"
                            "print(validate_document(json.loads(sys.stdin.read())))"],
                           input=doc_text, capture_output=True, text=True, cwd=tmp_path)
    assert check.stdout.strip() == "[]", check.stdout + check.stderr


def test_requires_python_matches_the_code():
    """The code evaluates PEP 604 unions (``int | None``) in annotations at import time, which
    Python 3.9 cannot do: requires-python says 3.10, and gdb's interpreter satisfies it."""
    import ast

    needs_310 = []
    for path in (REPO / "gdb_toolkit").rglob("*.py"):
        tree_ = ast.parse(path.read_text())
        if any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree_.body):
            continue
        for node in ast.walk(tree_):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                anns = [a.annotation for a in node.args.args + node.args.kwonlyargs] + [node.returns]
                if any(isinstance(a, ast.BinOp) and isinstance(a.op, ast.BitOr) for a in anns if a):
                    needs_310.append(f"{path.name}:{node.lineno}")
    assert needs_310, "no 3.10-only annotation left: requires-python could be lowered"
    assert 'requires-python = ">=3.10"' in (REPO / "pyproject.toml").read_text()
    out = subprocess.run([gdb_python(), "-c", "import sys; print(sys.version_info >= (3, 10))"],
                         capture_output=True, text=True).stdout.strip()
    assert out == "True"
