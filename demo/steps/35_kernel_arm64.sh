# DEMO: kernel on arm64 -- brk #0x4 kprobes and the patchable ftrace entry on Debian's arm64 kernel (QEMU)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
GDBINIT_PY="${GDBINIT_PY:-$ROOT/gdb_toolkit/gdbinit.py}"
T=/sys/kernel/tracing

kgdb() {  # kgdb CMD... : a batch gdb (no program) running the commands, shown like a session
  local args=(-nx -batch -iex "set debuginfod enabled off" -ex "source $GDBINIT_PY" -ex "set width 160")
  printf '$ gdb'
  for c in "$@"; do printf " -ex '%s'" "$c"; args+=(-ex "echo (gdb) $c\\n" -ex "$c"); done
  echo
  { gdb "${args[@]}" 2>&1 || true; } | sed 's/^/    /'
}

tracefs_add() {  # tracefs wants O_APPEND writes (a shell >> is one)
  echo "$1" >> "$T/kprobe_events"
}

cleanup() {
  echo 0 > "$T/events/gtkarm/enable" 2>/dev/null || true
  for e in open_entry open_ret write_off fsync_dis; do echo "-:gtkarm/$e" >> "$T/kprobe_events" 2>/dev/null || true; done
  echo nop > "$T/current_tracer"; echo > "$T/set_ftrace_filter"
}

live_demo() {
  say "Debian's arm64 kernel $(uname -r): no optprobes, no kprobes on ftrace, no KALLSYMS_ALL"
  grep -E "CONFIG_(OPTPROBES|KPROBES_ON_FTRACE|KALLSYMS_ALL|DYNAMIC_FTRACE_WITH_REGS|ARM64_PTR_AUTH_KERNEL)[ =]" \
    "/boot/config-$(uname -r)" | sed 's/^/    /' || true
  echo "    (OPTPROBES and KPROBES_ON_FTRACE are not even options for arm64 in 6.1's Kconfig)"
  say "An idle function: the patchable entry is 'mov x9, x30; nop' (ftrace_init_nop made the first NOP a mov)"
  kgdb "kdis vfs_read 4" "ftrace-site vfs_read"
  trap cleanup EXIT
  say "Register kprobes (entry, kretprobe, offset, disabled) and trace vfs_read + do_sys_openat2 with the function tracer"
  tracefs_add "p:gtkarm/open_entry do_sys_openat2"
  tracefs_add "r:gtkarm/open_ret do_faccessat"
  tracefs_add "p:gtkarm/write_off vfs_write+8"
  tracefs_add "p:gtkarm/fsync_dis vfs_fsync_range"
  for e in open_entry open_ret write_off; do echo 1 > "$T/events/gtkarm/$e/enable"; done
  printf 'vfs_read\ndo_sys_openat2\n' > "$T/set_ftrace_filter"; echo function > "$T/current_tracer"
  say "The kernel's own list (no [FTRACE], no [OPTIMIZED] on arm64) and enabled_functions:"
  sed 's/^/    /' /sys/kernel/debug/kprobes/list
  sed 's/^/    /' "$T/enabled_functions"
  say "kprobe-list: every probe a brk #0x4 (the arm64 note says why nothing else)"
  kgdb "kcore" "kprobe-list"
  say "Traced and probed at once: brk #0x4 over func+0, bl ftrace_caller in the call slot at func+4"
  kgdb "kdis do_sys_openat2 4" "ftrace-site do_sys_openat2" "ftrace-site vfs_read"
  say "The kernel refuses a kprobe on the call slot (func+4):"
  printf '$ echo "p:gtkarm/slot vfs_read+4" >> %s/kprobe_events\n' "$T"
  (tracefs_add "p:gtkarm/slot vfs_read+4") 2>&1 | sed 's/^/    /' || true
  cleanup; trap - EXIT
  say "All removed: the entry is 'mov x9, x30; nop' again -- the original ftrace-site gave"
  kgdb "kdis do_sys_openat2 3"
}

if [ "${GDB_TOOLKIT_IN_GUEST:-}" = 1 ] && [ "$(uname -m)" = aarch64 ]; then
  live_demo
  exit 0
fi

if [ "${GDB_TOOLKIT_DEMO_GUEST:-1}" != 0 ] && command -v qemu-system-aarch64 >/dev/null; then
  say "Debian's arm64 kernel booted under qemu-system-aarch64 (TCG) on an arm64 root (docs/guest.md)"
  (cd "$ROOT" && /usr/bin/python3 -m tests.guest run --arch arm64 --timeout 900 -- bash demo/steps/35_kernel_arm64.sh) 2>&1 \
    | sed 's/^/  | /' || echo "  (the arm64 guest could not run: see above)"
else
  say "Set GDB_TOOLKIT_DEMO_GUEST=1 with qemu-system-aarch64 (qemu-system-arm) installed to see arm64 in a QEMU guest."
fi
