#!/usr/bin/env python3
"""Regenerate (--update) or check (default) gdb_toolkit/gdbsupport/command_table.py, the
table gdb is given at load (every command's name, help text and module; see
gdbsupport/registry.py).  Run --update after changing a command's metadata or adding one.

    /usr/bin/python3 scripts/command_table.py            # exit 1 if the table is stale
    /usr/bin/python3 scripts/command_table.py --update   # rewrite it

The entries are built inside a real gdb (the command modules import gdb) from the command
classes themselves; tests/integration/test_command_table.py runs the check.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from generated import check_or_update

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "gdb_toolkit" / "gdbsupport" / "command_table.py"

# run in gdb: prints the table's text (nothing else reaches stdout)
BUILD = """\
import sys
sys.path.insert(0, {root!r})
from gdb_toolkit.gdbsupport import registry
entries, variables = registry.entries_from_modules()
sys.stdout.write(registry.table_text(entries, variables))
"""


def build() -> str:
    with tempfile.TemporaryDirectory(prefix="gtk-table-") as tmp:
        script = Path(tmp) / "build.py"
        script.write_text(BUILD.format(root=str(ROOT)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GDB_TOOLKIT_")}
        res = subprocess.run(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                              "-ex", f"source {script}"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, env=env, cwd=tmp, timeout=120)
    if res.returncode != 0 or res.stderr.strip():
        sys.exit(f"building the table failed:\n{res.stderr}")
    return res.stdout


def main() -> int:
    return check_or_update(__doc__.splitlines()[0], TABLE, build, __file__)


if __name__ == "__main__":
    sys.exit(main())
