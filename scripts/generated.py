"""The check-or-rewrite step of the scripts that generate a file of the package
(command_table.py, first_call_modules.py): one ``--update`` option, one way to say stale."""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check_or_update(description: str, target: Path, build, script: str) -> int:
    """Compare *target* with ``build()``; rewrite it with --update.  0 when it is (now) up to
    date, 1 when it is stale and was left alone."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--update", action="store_true", help="rewrite the file")
    opts = ap.parse_args()
    text = build()
    rel = target.relative_to(ROOT)
    if text == (target.read_text() if target.exists() else ""):
        print(f"{rel} is up to date")
        return 0
    if opts.update:
        target.write_text(text)
        print(f"wrote {rel}")
        return 0
    print(f"{rel} is stale: run {Path(script).resolve().relative_to(ROOT)} --update", file=sys.stderr)
    return 1
