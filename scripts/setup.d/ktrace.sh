#!/usr/bin/env bash
# ktrace: bcc compiles fentry programs (and any the verifier refuses) against kernel headers.
# Install the running kernel's headers when Debian
# has them; otherwise ktrace uses any installed linux-headers-* tree (the guest step installs
# Debian 6.1's).  e2fsprogs gives the guest tests mkfs.ext4 (thp_get_unmapped_area needs ext4).
# bpftrace: bench/ktrace.py measures ktrace beside it.  Idempotent and quiet.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
want=()
dpkg-query -W -f='${Status}' e2fsprogs 2>/dev/null | grep -q "install ok installed" || want+=(e2fsprogs)
dpkg-query -W -f='${Status}' bpftrace 2>/dev/null | grep -q "install ok installed" || want+=(bpftrace)
rel="$(uname -r)"
if [ ! -e "/lib/modules/$rel/build" ] && apt-cache show "linux-headers-$rel" >/dev/null 2>&1; then
  want+=("linux-headers-$rel")
fi
if ((${#want[@]})); then
  echo "setup: ktrace: installing ${want[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null
fi
