#!/usr/bin/env bash
# The whole test suite: set-up, then unit, gdb-driven and guest (real kernel) tests.
# Extra arguments go to pytest (e.g. scripts/test.sh -k plt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# gdb embeds /usr/bin/python3's version; run pytest with the same interpreter and packages.
exec /usr/bin/python3 -m pytest -p no:cacheprovider -ra "${@:-tests}"
