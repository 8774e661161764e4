#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (root, package registries only).
# Installs every apt package the toolkit, its demo and its tests use, then runs
# the per-domain steps in scripts/setup.d/ (each idempotent too).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  gdb gcc libc6-dev make file binutils procps util-linux
  python3 python3-pytest python3-pyelftools python3-capstone python3-tabulate python3-jsonschema
  valgrind python3-matplotlib tmux
  python3-bpfcc bpfcc-tools bpftool
  qemu-system-x86 qemu-system-arm busybox-static cpio kmod xz-utils zstd
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross gdb-multiarch qemu-user
  # plt's ELF32 fixtures: cross compilers (gcc-multilib would remove gcc-aarch64-linux-gnu)
  # and the i386 runtime that runs them natively; arm runs under qemu-arm
  gcc-i686-linux-gnu libc6-dev-i386-cross libc6-i386 gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
echo "setup: ready ($(gdb --version | head -1), gdb's python: $(gdb -nx -batch -ex 'python import sys; print(sys.version.split()[0])'))"
