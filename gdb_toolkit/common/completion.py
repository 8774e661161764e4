"""File names and process ids for tab completion, listed by the toolkit itself.

gdb's own filename completer completes the whole argument text, not the last word: a
command's ``--log <Tab>`` or ``vg-start --main prog<Tab>`` offered nothing.  So a path
after other words is completed here: the entries of its directory that start with its last
part, directories with a ``/``, at most LIMIT of them (a huge directory stays cheap).
"""
import os

LIMIT = 500


def process_ids(prefix: str = "", limit: int = LIMIT) -> list[str]:
    """Pids of the processes now (/proc), as words, that start with *prefix* -- in numeric
    order, at most *limit* of them; [] when *prefix* is not a number's beginning."""
    if prefix and not prefix.isdigit():
        return []
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit() and n.startswith(prefix)]
    except OSError:
        return []
    return [str(p) for p in sorted(map(int, names))[:limit]]


def file_names(token: str, limit: int = LIMIT) -> list[str]:
    """Whole tokens completing *token* as a path (``/tmp/sa`` -> ``/tmp/saved.json``)."""
    head, _, part = token.rpartition("/")
    directory = (head or "/") if "/" in token else "."
    prefix = head + "/" if "/" in token else ""
    out: list[str] = []
    try:
        with os.scandir(os.path.expanduser(directory)) as entries:
            for entry in entries:
                if not entry.name.startswith(part) or (entry.name.startswith(".") and not part):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                out.append(prefix + entry.name + ("/" if is_dir else ""))
                if len(out) >= limit:
                    break
    except OSError:
        return []
    return sorted(out)
