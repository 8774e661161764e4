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


def version_of(module: str) -> str | None:
    """Version string of an importable module, or None if it is missing."""
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
