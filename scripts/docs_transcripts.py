#!/usr/bin/env python3
"""Regenerate (--update) or check (default) the generated regions of the docs: command
headers from the commands' metadata and transcripts from real gdb runs.

    /usr/bin/python3 scripts/docs_transcripts.py            # report drift, exit 1 if any
    /usr/bin/python3 scripts/docs_transcripts.py --update   # rewrite the regions in place
    /usr/bin/python3 scripts/docs_transcripts.py --update ksym-guest   # only these regions

Regions and recipes: tests/support/transcripts.py.  Guest recipes (the kernel pages:
tests/support/kernel_transcripts.py) run in the QEMU test guest (docs/guest.md): the script
boots it once for all of them, runs itself there with --emit, and reads their transcripts back
through the exchange share; --no-guest leaves them alone.  The suite runs the check
(tests/integration/test_docs_transcripts.py, test_docs_transcripts_guest.py), so a change of
output fails until the docs are regenerated.
"""
import argparse
import difflib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import transcripts as T  # noqa: E402

GUEST_OUT = "doc-transcripts.json"


def guest_transcripts(names: list[str]) -> dict:
    """Run the guest recipes *names* in one guest boot: {name: transcript}."""
    from tests.guest.vm import run_in_guest

    xfer = Path(tempfile.mkdtemp(prefix="gtk-doc-guest-"))
    try:
        print(f"guest: booting for {len(names)} transcript(s): {' '.join(names)}", file=sys.stderr)
        res = run_in_guest(["/usr/bin/python3", str(Path(__file__).resolve()), "--emit",
                            f"/run/gtk/{GUEST_OUT}", *names],
                           timeout=3600, cwd=str(T.REPO), xfer=xfer,
                           stream=lambda text: sys.stderr.write(text))
        out = xfer / GUEST_OUT
        if res.status != 0 or not out.is_file():
            tail = "\n".join(res.console.splitlines()[-40:])
            sys.exit(f"guest run failed (status {res.status}, {res.error}):\n{tail}")
        return json.loads(out.read_text())
    finally:
        import shutil
        shutil.rmtree(xfer, ignore_errors=True)


def emit(names: list[str], out: str) -> int:
    """In the guest: run the recipes and write their transcripts as JSON."""
    texts = {}
    try:
        for name in names:
            texts[name] = T.run(T.RECIPES[name])
            print(f"{name}: done", file=sys.stderr)
    finally:
        T.close_scenes()
    Path(out).write_text(json.dumps(texts))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="rewrite the generated regions")
    ap.add_argument("--no-guest", action="store_true", help="leave the guest (kernel) regions alone")
    ap.add_argument("--emit", metavar="FILE", help=argparse.SUPPRESS)    # in the guest: run, write JSON
    ap.add_argument("names", nargs="*", help="only these regions (recipe or command names)")
    opts = ap.parse_args()
    if opts.emit:
        return emit(opts.names, opts.emit)
    from tests.support.gdbrun import gdb_json

    commands = {c["name"]: c for c in gdb_json([], "toolkit commands")["commands"]}
    wanted = [(path, kind, name, body, m) for path in T.doc_files()
              for kind, name, body, m in T.regions(path)
              if not opts.names or name in opts.names]
    guest = sorted({name for _, kind, name, _, _ in wanted
                    if kind == "transcript" and name in T.RECIPES and T.RECIPES[name].guest})
    if opts.no_guest:
        wanted = [w for w in wanted if w[2] not in guest]
        guest = []
    fresh_guest = {}
    if guest:
        if T.in_guest():
            fresh_guest = {n: T.run(T.RECIPES[n]) for n in guest}
            T.close_scenes()
        else:
            fresh_guest = guest_transcripts(guest)
    drift = 0
    texts = {}
    for path, kind, name, body, m in wanted:
        text = texts.setdefault(path, path.read_text())
        if kind.startswith("header"):
            fresh = T.header(commands[name], 2 if kind == "header2" else 1)
        elif name in fresh_guest:
            fresh = T.fenced(fresh_guest[name])
        else:
            fresh = T.fenced(T.run(T.RECIPES[name]))
        recipe = T.RECIPES.get(name) if kind == "transcript" else None
        same = (T.normalize(T.unfence(body), recipe) == T.normalize(T.unfence(fresh), recipe)
                if recipe else body.strip() == fresh.strip())
        if same:
            continue
        drift += 1
        print(f"{path.relative_to(T.REPO)}: {kind} {name} differs")
        if not opts.update:
            sys.stdout.writelines(difflib.unified_diff(body.splitlines(True), fresh.splitlines(True),
                                                       "docs", "now", n=1))
        texts[path] = text.replace(m.group(0), m.group(1) + fresh + m.group(5), 1)
    if opts.update:
        for path, text in texts.items():
            if text != path.read_text():
                path.write_text(text)
    if drift and not opts.update:
        print(f"{drift} region(s) drifted: run {sys.argv[0]} --update")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
