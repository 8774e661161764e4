"""Finding dependencies for gdb's embedded Python.

gdb embeds its own interpreter (on Debian 12: /usr/bin/python3.11), which is
not necessarily the ``python3`` on PATH.  Dependencies come either from
Debian packages (already on gdb's sys.path) or from a virtual environment
created with gdb's interpreter: ``$GDB_TOOLKIT_VENV`` or ``<checkout>/.venv``.
A venv made for another Python version is ignored with a warning, because its
compiled modules (capstone) would not load.
"""
import os
import sys


def interpreter_path() -> str:
    """gdb's interpreter as a path that runs: sys.executable only if it exists.

    gdb 13 sets sys.executable to <prefix>/bin/python, which Debian 12 does not
    ship (only python3 / python3.11); fall back to the versioned name.
    """
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    bindir = os.path.join(sys.exec_prefix or "/usr", "bin")
    for path in (sys.executable, os.path.join(bindir, f"python{ver}"),
                 os.path.join(bindir, f"python{sys.version_info.major}")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return sys.executable or f"python{ver}"


def venv_site_packages(venv: str) -> str | None:
    """The site-packages of *venv* if it matches this interpreter's version."""
    want = f"python{sys.version_info.major}.{sys.version_info.minor}"
    path = os.path.join(venv, "lib", want, "site-packages")
    return path if os.path.isdir(path) else None


def candidate_venvs(root: str) -> list[str]:
    found = []
    env = os.environ.get("GDB_TOOLKIT_VENV")
    if env:
        found.append(env)
    found.append(os.path.join(root, ".venv"))
    return [v for v in found if os.path.isdir(v)]


def add_venvs(root: str) -> list[str]:
    """Append matching venv site-packages to sys.path; return what was added."""
    added = []
    for venv in candidate_venvs(root):
        site = venv_site_packages(venv)
        if site is None:
            sys.stderr.write(
                f"gdb_toolkit: ignoring venv {venv}: not built for gdb's Python "
                f"{sys.version_info.major}.{sys.version_info.minor} "
                f"(recreate it with: {interpreter_path()} -m venv {venv})\n")
            continue
        if site not in sys.path:
            sys.path.append(site)
            added.append(site)
    return added


def bootstrap(root: str) -> None:
    add_venvs(root)
    import gdb_toolkit

    gdb_toolkit.register()
