"""C++ names for display: ``_ZSt4cout`` -> ``std::cout``.

binutils' ``c++filt`` demangles every name of one command in a single run (names on its
stdin, one per line; run isolated: no shell, fixed environment, cwd /, bounded time).  It
is a separate process on purpose: a crafted mangled name can exhaust a demangler's stack,
which in-process would take gdb down with it.  Results are cached per name; without
c++filt names stay raw.
"""
_cache: dict[str, str] = {}
MAX_NAME = 4096
TIMEOUT = 5.0


def is_mangled(name: str) -> bool:
    return name.startswith("_Z") and len(name) <= MAX_NAME and "\n" not in name


def demangle_all(names) -> dict[str, str]:
    """{raw: displayed} for every mangled name in *names* (others are left out)."""
    todo = sorted({n for n in names if is_mangled(n) and n not in _cache})
    if todo:
        from gdb_toolkit.common.helper_process import helper_env, run_helper, which

        tool = which("c++filt", path="/usr/bin:/bin:/usr/local/bin")
        if tool:
            try:
                res = run_helper([tool], timeout=TIMEOUT, env=helper_env(set={"LC_ALL": "C"}),
                                 input="\n".join(todo) + "\n", max_output=64 << 20)
                out = res.stdout.split("\n") if res.ok else []
            except (OSError, ValueError):
                out = []
            if len(out) >= len(todo):
                for raw, shown in zip(todo, out):
                    _cache[raw] = shown or raw
        for raw in todo:
            _cache.setdefault(raw, raw)
    return {n: _cache[n] for n in names if n in _cache}


def replacer(demangled: dict[str, str]):
    """A function text -> text that shows every raw name of *demangled* ({raw: shown}) in a
    sentence demangled (whole names only: a longer mangled name is never cut)."""
    pairs = {raw: shown for raw, shown in demangled.items() if shown and shown != raw}
    if not pairs:
        return lambda text: text
    import re           # only for C++ names (keeps a C program's first 'got' cheap)
    rx = re.compile("(?<![A-Za-z0-9_.$])(" + "|".join(re.escape(n) for n in sorted(pairs, key=len, reverse=True))
                    + ")(?![A-Za-z0-9_$])")
    return lambda text: rx.sub(lambda m: pairs[m.group(1)], text) if text and "_Z" in text else text
