"""common/fast_import.py against importlib itself: a package of real files, compiled by
py_compile, imported once through fast_import.load and once (a twin copy) through the import
system, and the two compared -- attributes, spec, parent binding, reload, source lookup --
then the cases that must go the ordinary way or not at all.  Each test runs in a fresh
interpreter (the import system's state is process-wide)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "__init__.py": "LOADED = []\n",
    "base.py": "from . import LOADED\nLOADED.append('base')\nVALUE = 41\n",
    "user.py": "from .base import VALUE\nfrom . import LOADED\nLOADED.append('user')\nANSWER = VALUE + 1\n",
    "sub/__init__.py": "from ..base import VALUE\nSUB = VALUE\n",
    "sub/leaf.py": "import os\ndef where():\n    return __name__, __package__\n",
}


def _package(root: Path, name: str, files=FILES) -> None:
    import py_compile

    for rel, text in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in (root / name).rglob("*.py"):
        py_compile.compile(str(path), doraise=True)       # timestamped, like the import system's


def _run(root: Path, code: str, *flags: str) -> subprocess.CompletedProcess:
    """*code* in a fresh interpreter with *root* and the checkout on sys.path; it sees
    ``ordinary``: the names importlib._bootstrap._find_and_load was asked for."""
    prelude = textwrap.dedent(f"""\
        import sys
        sys.path[:0] = [{str(root)!r}, {str(REPO)!r}]
        import importlib._bootstrap as _b
        ordinary = []
        _f = _b._find_and_load
        def _rec(name, imp):
            ordinary.append(name)
            return _f(name, imp)
        _b._find_and_load = _rec
        from gdb_toolkit.common import fast_import
        ordinary.clear()
        """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, "-S", *flags, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, cwd=str(root), timeout=60)


def _ok(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


NAMES = ["fi_pkg.base", "fi_pkg.user", "fi_pkg.sub", "fi_pkg.sub.leaf"]


def test_fast_modules_look_like_importlib_ones(tmp_path):
    _package(tmp_path, "fi_pkg")
    _package(tmp_path, "fi_twin", {k: v for k, v in FILES.items()})
    out = _ok(_run(tmp_path, f"""
        import importlib, inspect, fi_pkg, fi_twin
        ordinary.clear()
        fast_import.load({NAMES!r}, within="fi_pkg.")
        assert ordinary == [], ordinary                  # none through the import system
        assert fi_pkg.LOADED == ["base", "user"], fi_pkg.LOADED
        for name in {NAMES!r}:
            twin_name = name.replace("fi_pkg", "fi_twin")
            fast, twin = sys.modules[name], importlib.import_module(twin_name)
            def norm(v):
                if isinstance(v, list):
                    return [norm(x) for x in v]
                return v.replace("fi_twin", "fi_pkg") if isinstance(v, str) else v
            for attr in ("__name__", "__file__", "__cached__", "__package__", "__path__"):
                assert norm(getattr(twin, attr, None)) == getattr(fast, attr, None), (name, attr)
            for attr in ("name", "origin", "cached", "parent", "has_location",
                         "submodule_search_locations"):
                t, f = getattr(twin.__spec__, attr), getattr(fast.__spec__, attr)
                assert norm(t) == f, (name, attr, t, f)
            assert type(fast.__loader__) is type(twin.__loader__)
            assert fast.__loader__.path == fast.__file__ and fast.__spec__.loader is fast.__loader__
            assert fast.__spec__._initializing is False
            parent, _, leaf = name.rpartition(".")
            assert getattr(sys.modules[parent], leaf) is fast          # bound on its parent
        assert fi_pkg.user.ANSWER == 42 and fi_pkg.sub.SUB == 41
        assert fi_pkg.sub.leaf.where() == ("fi_pkg.sub.leaf", "fi_pkg.sub")
        assert "def where" in inspect.getsource(fi_pkg.sub.leaf)
        importlib.reload(fi_pkg.sub.leaf)                              # its spec reloads it
        import fi_pkg.user as again
        assert again is fi_pkg.user
        fast_import.load({NAMES!r}, within="fi_pkg.")                  # loaded: nothing again
        assert fi_pkg.LOADED == ["base", "user"]
        print("same")
        """))
    assert out.strip() == "same"


def test_stale_or_missing_bytecode_goes_the_ordinary_way(tmp_path):
    _package(tmp_path, "fi_pkg")
    base = tmp_path / "fi_pkg" / "base.py"
    base.write_text(base.read_text().replace("41", "40") + "# edited after compiling\n")
    (tmp_path / "fi_pkg" / "sub" / "__pycache__").rename(tmp_path / "fi_pkg" / "sub" / "gone")
    out = _ok(_run(tmp_path, f"""
        import fi_pkg
        ordinary.clear()
        fast_import.load({NAMES!r}, within="fi_pkg.")
        print(sorted(set(ordinary)), fi_pkg.user.ANSWER, fi_pkg.sub.SUB)
        """))
    # base: stale .pyc; sub and sub.leaf: no .pyc; user: fast (its .pyc is current)
    assert out.split("]")[0] + "]" == str(sorted(["fi_pkg.base", "fi_pkg.sub", "fi_pkg.sub.leaf"]))
    assert out.split("]")[1].split() == ["41", "40"]


def test_names_without_a_source_are_skipped_and_others_go_ordinary(tmp_path):
    _package(tmp_path, "fi_pkg")
    os.mkfifo(tmp_path / "fi_pkg" / "fifo.py")       # not a regular file: never opened here
    out = _ok(_run(tmp_path, """
        import fi_pkg
        ordinary.clear()
        fast_import.load(["fi_pkg.renamed", "fi_pkg.fifo", "colorsys", "fi_pkg.base"],
                         within="fi_pkg.")
        print(sorted(ordinary), "fi_pkg.renamed" in sys.modules, "fi_pkg.fifo" in sys.modules,
              "colorsys" in sys.modules)
        """))
    assert out.split() == ["['colorsys']", "False", "False", "True"]


def test_an_error_in_a_module_propagates_and_leaves_no_module(tmp_path):
    files = dict(FILES, **{"broken.py": "from . import LOADED\nLOADED.append('broken')\n1 / 0\n",
                           "needs.py": "import fi_no_such_module\n"})
    _package(tmp_path, "fi_pkg", files)
    out = _ok(_run(tmp_path, """
        import fi_pkg
        for name in ("fi_pkg.broken", "fi_pkg.needs"):
            try:
                fast_import.load(["fi_pkg.base", name], within="fi_pkg.")
            except Exception as exc:
                print(type(exc).__name__, name in sys.modules, hasattr(fi_pkg, name[7:]))
        try:
            import fi_pkg.broken                    # the import system runs it again
        except ZeroDivisionError:
            print("again", fi_pkg.LOADED)
        """))
    assert out.splitlines() == ["ZeroDivisionError False False", "ModuleNotFoundError False False",
                                "again ['base', 'broken', 'broken']"]


def test_optimized_interpreter_goes_the_ordinary_way(tmp_path):
    _package(tmp_path, "fi_pkg")
    out = _ok(_run(tmp_path, f"""
        import fi_pkg
        ordinary.clear()
        fast_import.load({NAMES!r}, within="fi_pkg.")
        print(ordinary == {NAMES!r} and fi_pkg.user.ANSWER == 42)
        """, "-O"))
    assert out.strip() == "True"


def test_import_time_lines_for_the_modules_it_loads(tmp_path):
    """-X importtime: one top-level line per module, fast or ordinary, as CPython writes."""
    _package(tmp_path, "fi_pkg")
    res = _run(tmp_path, f"""
        import fi_pkg
        ordinary.clear()
        fast_import.load({NAMES!r} + ["colorsys"], within="fi_pkg.")
        """, "-X", "importtime")
    _ok(res)
    rows = {}
    for ln in res.stderr.splitlines():
        if ln.startswith("import time:") and "|" in ln:
            own, cum, name = ln[len("import time:"):].split("|")
            if own.strip().isdigit() and name[1:2] != " ":     # " name": the top level
                rows[name.strip()] = (int(own), int(cum))
    for name in NAMES + ["colorsys"]:
        assert name in rows, (name, res.stderr[-2000:])    # top level: no indentation
        assert rows[name][0] <= rows[name][1]


def test_bytecode_that_is_not_a_plain_file_is_never_read(tmp_path):
    """A FIFO where the .pyc belongs: refused without blocking (O_NONBLOCK, then fstat)."""
    from gdb_toolkit.common.fast_import import _read_regular

    os.mkfifo(tmp_path / "x.pyc")
    (tmp_path / "d.pyc").mkdir()
    (tmp_path / "f.pyc").write_bytes(b"ok")
    assert _read_regular(str(tmp_path / "x.pyc")) is None
    assert _read_regular(str(tmp_path / "d.pyc")) is None
    assert _read_regular(str(tmp_path / "missing.pyc")) is None
    assert _read_regular(str(tmp_path / "f.pyc")) == b"ok"


def test_damaged_bytecode_gets_importlibs_own_answer(tmp_path):
    """A header that matches the source, then junk: the import system decides (the same
    error it gives without the preload)."""
    _package(tmp_path, "fi_pkg")
    _package(tmp_path, "fi_twin")
    tag = sys.implementation.cache_tag
    for pkg in ("fi_pkg", "fi_twin"):
        user = tmp_path / pkg / "__pycache__" / f"user.{tag}.pyc"
        user.write_bytes(user.read_bytes()[:40])
    out = _ok(_run(tmp_path, """
        import fi_pkg, fi_twin
        def outcome(call):
            try:
                call()
                return "ok"
            except Exception as exc:
                return type(exc).__name__
        ordinary.clear()
        fast = outcome(lambda: fast_import.load(["fi_pkg.base", "fi_pkg.user"], within="fi_pkg."))
        seen = list(ordinary)
        print(fast, seen, outcome(lambda: __import__("fi_twin.user")))
        """))
    fast, rest = out.split(" ", 1)
    assert rest.startswith("['fi_pkg.user']"), out           # base was fast, user went ordinary
    assert fast == rest.rsplit(" ", 1)[1].strip(), out        # the same outcome as importlib's


def test_code_compiled_elsewhere_names_this_tree(tmp_path):
    """A tree compiled in one place and copied with its times (cp -a): the code objects name
    the copy's files, as importlib's _fix_co_filename makes them."""
    import shutil

    _package(tmp_path / "a", "fi_pkg")
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copy2)
    shutil.rmtree(tmp_path / "a")
    out = _ok(_run(tmp_path / "b", """
        import fi_pkg
        fast_import.load(["fi_pkg.sub", "fi_pkg.sub.leaf"], within="fi_pkg.")
        print(fi_pkg.sub.leaf.where.__code__.co_filename == fi_pkg.sub.leaf.__file__, ordinary)
        """))
    assert out.split()[0] == "True", out


def test_a_list_naming_a_renamed_package_is_skipped(tmp_path):
    _package(tmp_path, "fi_pkg")
    out = _ok(_run(tmp_path, """
        import fi_pkg
        fast_import.load(["fi_pkg.oldsub", "fi_pkg.oldsub.leaf", "fi_pkg.base"], within="fi_pkg.")
        print("fi_pkg.base" in sys.modules, "fi_pkg.oldsub.leaf" in sys.modules)
        """))
    assert out.split() == ["True", "False"]


def test_import_hooks_and_audit_see_the_modules(tmp_path):
    """A meta-path finder ahead of the path finder is asked about each module (and one that
    claims a module gets it); the 'import' audit event is raised for each, as import.c does."""
    _package(tmp_path, "fi_pkg")
    out = _ok(_run(tmp_path, """
        import importlib.util
        asked, events = [], []
        class Hook:
            def find_spec(self, name, path, target=None):
                asked.append(name)
                if name == "fi_pkg.user":           # claims it: the import system takes it
                    return importlib.util.spec_from_file_location(name, path[0] + "/user.py")
                return None
        sys.meta_path.insert(0, Hook())
        sys.addaudithook(lambda ev, args: ev == "import" and events.append(args[0]))
        import fi_pkg
        asked.clear(); events.clear(); ordinary.clear()
        fast_import.load(["fi_pkg.base", "fi_pkg.user"], within="fi_pkg.")
        print(sorted(set(asked)), sorted(set(events)), ordinary, fi_pkg.user.ANSWER)
        """))
    assert out.strip() == ("['fi_pkg.base', 'fi_pkg.user'] ['fi_pkg.base', 'fi_pkg.user'] "
                           "['fi_pkg.user'] 42"), out


def test_another_thread_importing_a_module_meanwhile(tmp_path):
    """A thread is inside a listed module's dependency, which imports a third module; the
    load waits for it on importlib's own per-module lock (no deadlock, nothing run twice)."""
    files = dict(FILES, **{"slow.py": "import time\ntime.sleep(0.3)\nfrom . import base\nfrom . import LOADED\nLOADED.append('slow')\n",
                           "first.py": "from . import slow\n"})
    _package(tmp_path, "fi_pkg", files)
    out = _ok(_run(tmp_path, """
        import threading, time, faulthandler
        import fi_pkg
        t = threading.Thread(target=lambda: __import__("fi_pkg.slow"), daemon=True)
        t.start()
        time.sleep(0.1)                             # the thread holds fi_pkg.slow's lock
        faulthandler.dump_traceback_later(10, exit=True)
        fast_import.load(["fi_pkg.first"], within="fi_pkg.")
        t.join()
        print(fi_pkg.LOADED)
        """))
    assert out.strip() == "['base', 'slow']", out


def test_a_namespace_package_is_left_to_importlib(tmp_path):
    files = dict(FILES, **{"space/inner.py": "X = 1\n"})      # space/: no __init__.py
    _package(tmp_path, "fi_pkg", files)
    out = _ok(_run(tmp_path, """
        import fi_pkg
        ordinary.clear()
        fast_import.load(["fi_pkg.space", "fi_pkg.space.inner"], within="fi_pkg.")
        print(ordinary, type(fi_pkg.space.__path__).__name__, fi_pkg.space.inner.X)
        """))
    assert out.split() == ["['fi_pkg.space']", "_NamespacePath", "1"], out
