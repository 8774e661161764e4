"""Names ktrace can complete: kernel text symbols (/proc/kallsyms) and tracepoints (tracefs)."""
import os

LIMIT = 200


def kernel_functions(path: str = "/proc/kallsyms") -> list[str]:
    """vmlinux text symbols, sorted (ktrace attaches to functions of the kernel proper)."""
    from gdb_toolkit.kernel.kallsyms import symbol_names

    return symbol_names(path, types="tT", modules=False)


def tracepoints(tracefs: str | None = None) -> list[str]:
    from gdb_toolkit.kernel.kprobe_text import TRACEFS_DIRS

    for d in ([tracefs] if tracefs else TRACEFS_DIRS):
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
