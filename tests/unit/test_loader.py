import sys

from gdb_toolkit import loader


def test_venv_for_this_python_is_added(tmp_path, monkeypatch):
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = tmp_path / "venv" / "lib" / ver / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setenv("GDB_TOOLKIT_VENV", str(tmp_path / "venv"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert loader.add_venvs(str(tmp_path)) == [str(site)]
    assert str(site) in sys.path


def test_venv_for_other_python_is_ignored(tmp_path, monkeypatch, capsys):
    (tmp_path / "venv" / "lib" / "python2.7" / "site-packages").mkdir(parents=True)
    monkeypatch.setenv("GDB_TOOLKIT_VENV", str(tmp_path / "venv"))
    assert loader.add_venvs(str(tmp_path)) == []
    assert "not built for gdb's Python" in capsys.readouterr().err


def test_core_modules_do_not_import_gdb():
    import importlib
    import pkgutil

    import gdb_toolkit

    for mod in pkgutil.walk_packages(gdb_toolkit.__path__, "gdb_toolkit."):
        name = mod.name
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("gdb") or ".gdbsupport" in name:  # the gdb layer: gdb_*.py, gdbinit
            continue
        importlib.import_module(name)
    assert "gdb" not in sys.modules


def test_interpreter_path_runs_even_when_sys_executable_does_not_exist(monkeypatch):
    import os

    monkeypatch.setattr(sys, "executable", "/nonexistent/bin/python")
    path = loader.interpreter_path()
    assert os.path.isfile(path) and os.access(path, os.X_OK), path
    import subprocess
    out = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True).stdout.strip()
    assert out == str(tuple(sys.version_info[:2]))
