#!/usr/bin/env bash
# plt: libc6-dbg gives the GOT symbolizer names for glibc's ifunc implementations
# (__memmove_avx_unaligned_erms ...) through /usr/lib/debug/.build-id; optional, idempotent.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' libc6-dbg 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends libc6-dbg >/dev/null \
    || echo "setup.d/plt: libc6-dbg not installed (ifunc implementations will be shown as libc.so.6+offset)"
fi
