#!/usr/bin/env bash
# Fuzzing (tests/fuzz, issue 11): atheris (coverage-guided, libFuzzer) from PyPI in a cached venv
# made with gdb's interpreter, /usr/bin/python3, and --system-site-packages so the Debian
# packages the parsers use (pyelftools, capstone) are visible.  Idempotent and quiet.
# The venv: $GDB_TOOLKIT_FUZZ_VENV, default ~/.cache/gdb_toolkit/fuzz-venv.
set -euo pipefail
venv="${GDB_TOOLKIT_FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gdb_toolkit/fuzz-venv}"
ATHERIS="atheris==3.0.0"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import atheris, elftools, capstone" 2>/dev/null; then
  exit 0
fi
echo "setup: fuzz: creating $venv with $ATHERIS"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$ATHERIS" >/dev/null \
  || { echo "setup: fuzz: pip install $ATHERIS failed (fuzz tests will fail with the reason)" >&2; exit 0; }
