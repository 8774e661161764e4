#!/usr/bin/env python3
"""Regenerate (--update) or check (default) the generated regions of the docs: command
headers from the commands' metadata and transcripts from real gdb runs.

    /usr/bin/python3 scripts/docs_transcripts.py            # report drift, exit 1 if any
    /usr/bin/python3 scripts/docs_transcripts.py --update   # rewrite the regions in place

Regions and recipes: tests/support/transcripts.py.  The suite runs the check
(tests/integration/test_docs_transcripts.py), so a change of output fails until the docs
are regenerated.
"""
import argparse
import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import transcripts as T  # noqa: E402
from tests.support.gdbrun import gdb_json  # noqa: E402


def expected(kind: str, name: str, commands: dict) -> str:
    if kind.startswith("header"):
        return T.header(commands[name], 2 if kind == "header2" else 1)
    return T.fenced(T.run(T.RECIPES[name]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="rewrite the generated regions")
    ap.add_argument("names", nargs="*", help="only these regions (recipe or command names)")
    opts = ap.parse_args()
    commands = {c["name"]: c for c in gdb_json([], "toolkit commands")["commands"]}
    drift = 0
    for path in T.doc_files():
        text = path.read_text()
        new_text = text
        for kind, name, body, m in T.regions(path):
            if opts.names and name not in opts.names:
                continue
            fresh = expected(kind, name, commands)
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
            new_text = new_text.replace(m.group(0), m.group(1) + fresh + m.group(5), 1)
        if opts.update and new_text != text:
            path.write_text(new_text)
    if drift and not opts.update:
        print(f"{drift} region(s) drifted: run {sys.argv[0]} --update")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
