"""C++ names for display: ``_ZSt4cout`` -> ``std::cout``.

binutils' ``c++filt`` demangles every name of one command in a single run (names on its
stdin, one per line; run isolated: no shell, fixed environment, cwd /, bounded time).  It
is a separate process on purpose: a crafted mangled name can exhaust a demangler's stack,
which in-process would take gdb down with it.  Results are cached per name; without
c++filt names stay raw.
"""
import shutil
import subprocess

_cache: dict[str, str] = {}
MAX_NAME = 4096
TIMEOUT = 5.0


def is_mangled(name: str) -> bool:
    return name.startswith("_Z") and len(name) <= MAX_NAME and "\n" not in name


def demangle_all(names) -> dict[str, str]:
    """{raw: displayed} for every mangled name in *names* (others are left out)."""
    todo = sorted({n for n in names if is_mangled(n) and n not in _cache})
    if todo:
        tool = shutil.which("c++filt", path="/usr/bin:/bin:/usr/local/bin")
        if tool:
            try:
                out = subprocess.run([tool], input="\n".join(todo) + "\n", capture_output=True, text=True,
                                     errors="replace", timeout=TIMEOUT, cwd="/",
                                     env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}).stdout.split("\n")
            except (OSError, subprocess.SubprocessError):
                out = []
            if len(out) >= len(todo):
                for raw, shown in zip(todo, out):
                    _cache[raw] = shown or raw
        for raw in todo:
            _cache.setdefault(raw, raw)
    return {n: _cache[n] for n in names if n in _cache}
