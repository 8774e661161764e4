"""Names ktrace can complete: kernel text symbols (/proc/kallsyms) and tracepoints (tracefs)."""
import os

_cache: dict = {}
LIMIT = 200


def kernel_functions(path: str = "/proc/kallsyms") -> list[str]:
    if "funcs" not in _cache:
        names = set()
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] in "tT" and len(parts) == 3:
                        names.add(parts[2])
        except OSError:
            pass
        _cache["funcs"] = sorted(names)
    return _cache["funcs"]


def tracepoints(tracefs: str | None = None) -> list[str]:
    for d in ([tracefs] if tracefs else ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]):
        try:
            with open(os.path.join(d, "available_events")) as f:
                return sorted(line.strip() for line in f if ":" in line)
        except OSError:
            continue
    return []


def complete_target(prefix: str) -> list[str]:
    if prefix.startswith("tracepoint:"):
        rest = prefix[len("tracepoint:"):]
        return [f"tracepoint:{t}" for t in tracepoints() if t.startswith(rest)][:LIMIT]
    if not prefix:
        return []
    import bisect

    funcs = kernel_functions()
    i = bisect.bisect_left(funcs, prefix)
    out = []
    while i < len(funcs) and funcs[i].startswith(prefix) and len(out) < LIMIT:
        out.append(funcs[i])
        i += 1
    if "tracepoint:".startswith(prefix):
        out.insert(0, "tracepoint:")
    return out
