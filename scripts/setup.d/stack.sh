#!/usr/bin/env bash
# stack: the crash shapes stack-diagnose is tested on include clang's probe loops and VLAs,
# Rust's stack-overflow handler and the Go runtime (Debian's clang, rustc, golang-go:
# about 40 s to install on a fresh machine).  Idempotent.
set -euo pipefail
need=()
for p in clang rustc golang-go; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup.d/stack: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends "${need[@]}" >/dev/null
fi
