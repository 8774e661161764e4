#!/usr/bin/env bash
# The guided demo: builds the bundled example programs and shows each available
# command's real output.  Each step lives in demo/steps/ (one per domain).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DEMO_BUILD="${DEMO_BUILD:-$(mktemp -d /tmp/gdb_toolkit-demo.XXXXXX)}"
export GDBINIT_PY="$PWD/gdb_toolkit/gdbinit.py"
for step in demo/steps/*.sh; do
  echo
  echo "================================================================================"
  echo "== $(sed -n 's/^# DEMO: //p' "$step")"
  echo "================================================================================"
  bash "$step" || echo "(demo step $step failed with status $?)"
done
