#!/usr/bin/env bash
# Guest (real kernel) tests: fetch Debian's x86_64 kernel into the cache (apt-get download +
# dpkg -x, never into /boot), install the matching linux-headers on the host (bcc in the guest
# uses the host root), assemble the arm64 root from arm64 .debs (dpkg --add-architecture arm64,
# apt resolves, dpkg -x; kernel, headers and userland; cached by package versions), fetch
# Debian's newer kernel from bookworm-backports through a private apt state (x86_64-new: the
# host's apt sources are untouched) and build the three initramfs images. Idempotent and quiet; the harness does the same on demand.
# Skipped when GDB_TOOLKIT_SKIP_GUEST=1 or GDB_TOOLKIT_DEMO_GUEST=0 (README: the demo
# without its guest parts prepares no guest either).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "${GDB_TOOLKIT_SKIP_GUEST:-}" = 1 ] && exit 0
[ "${GDB_TOOLKIT_DEMO_GUEST:-}" = 0 ] && exit 0
out=$(/usr/bin/python3 -m tests.guest prepare 2>&1) || {
  echo "setup: guest preparation failed (guest tests will fail with the reason):" >&2
  echo "$out" >&2
  exit 0
}
