"""Heavy dependencies, imported on first use (never at gdb start-up).

Each missing dependency becomes a ToolkitError naming the package that fixes it.
"""
import importlib

# module name -> (what it is for, Debian package, PyPI package)
KNOWN = {
    "capstone": ("disassembly", "python3-capstone", "capstone"),
    "elftools": ("ELF parsing", "python3-pyelftools", "pyelftools"),
    "tabulate": ("tables", "python3-tabulate", "tabulate"),
    "bcc": ("live kernel tracing", "python3-bpfcc", None),
}


def fix_for(module: str) -> str:
    _, deb, pypi = KNOWN.get(module, (module, None, module))
    ways = []
    if deb:
        ways.append(f"apt-get install {deb}")
    if pypi:
        ways.append(f"pip install {pypi} into a venv made with gdb's Python")
    ways.append("or run scripts/setup.sh")
    return ", ".join(ways)


def require(module: str):
    """Import *module* or raise a ToolkitError saying how to install it."""
    from gdb_toolkit.common.errors import ToolkitError

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        purpose = KNOWN.get(module, (module,))[0]
        raise ToolkitError(f"{module} is needed for {purpose} but cannot be imported ({exc})",
                           fix_for(module)) from None


def find_spec(module: str):
    """``importlib.util.find_spec(module)`` for a top-level name: where it would be imported
    from, without importing it -- and without importing importlib.util (~0.3 ms of a first
    disassembly).  None when it is not found or is loaded without a spec."""
    import sys
    from importlib._bootstrap import _find_spec

    if "." in module:               # a submodule needs its parent's path: importlib's own way
        import importlib.util

        return importlib.util.find_spec(module)
    if module in sys.modules:
        return getattr(sys.modules[module], "__spec__", None)
    return _find_spec(module, None)


#: modules the toolkit never imports (tabulate: common.table renders every table): the doctor
#: reads their version from their source instead (importing tabulate cost it ~2.7 ms)
NOT_IMPORTED = ("tabulate",)


def source_version(module: str) -> str | None:
    """``__version__ = "X"`` from *module*'s source (or its package's version.py), found
    without importing it; None when it is absent or does not say so that way."""
    import os
    import re

    try:
        spec = find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    files = [origin]
    if origin.endswith("__init__.py"):
        files.append(os.path.join(os.path.dirname(origin), "version.py"))   # setuptools_scm's
    pattern = re.compile(rb"""^__version__\s*=\s*(?:version\s*=\s*)?["']([^"'\n]{1,40})["'][ \t\r]*(?:#.*)?$""",
                         re.M)
    for path in files:
        try:
            with open(path, "rb") as f:
                m = pattern.search(f.read(1 << 20))
        except OSError:
            continue
        if m:
            return m.group(1).decode("ascii", "replace")
    return None


def version_of(module: str) -> str | None:
    """Version string of an importable module, or None if it is missing."""
    if module in NOT_IMPORTED:
        found = source_version(module)
        if found:
            return found
    try:
        if module == "capstone":
            # what disassembles: the package's libcapstone through common.capstone_lite (the
            # version is the package's, read from its source), else the package imported
            # without the 0.15 s distutils detour (common.disasm)
            from gdb_toolkit.common import capstone_lite
            from gdb_toolkit.common.disasm import _import_capstone, lite_library

            if lite_library() is not None and capstone_lite.package_version():
                return capstone_lite.package_version()
            mod = _import_capstone()
        else:
            mod = importlib.import_module(module)
    except Exception:
        return None
    for attr in ("__version__", "VERSION", "version"):
        v = getattr(mod, attr, None)
        if v is not None:
            if isinstance(v, tuple):
                v = ".".join(str(p) for p in v)
            return str(v)
    try:
        from importlib.metadata import version
        return version({"elftools": "pyelftools", "bcc": "bcc"}.get(module, module))
    except Exception:
        return "unknown"
