#!/bin/sh
# Register (or remove) a small zoo of kprobes through tracefs, one of each kind the
# kernel commands classify:
#   open_entry  p do_sys_openat2        function entry      -> [FTRACE]   (e8 call into ftrace)
#   open_ret    r do_sys_openat2        kretprobe           -> [FTRACE]   (aggregated with open_entry)
#   write_off   p vfs_write+0x5         inside the function -> int3, then [OPTIMIZED] (e9 jmp to a detour)
#   read_dis    p vfs_read              defined, not enabled -> [DISABLED] (site untouched)
# Usage: probes.sh add|remove      (root; tracefs at /sys/kernel/tracing)
set -u
T=/sys/kernel/tracing
[ -w "$T/kprobe_events" ] || { echo "probes.sh: $T/kprobe_events not writable (root? kprobes?)" >&2; exit 1; }
case "${1:-}" in
add)
  for spec in 'p:gtkdemo/open_entry do_sys_openat2' 'r:gtkdemo/open_ret do_sys_openat2' \
              'p:gtkdemo/write_off vfs_write+0x5' 'p:gtkdemo/read_dis vfs_read'; do
    echo "$spec" >> "$T/kprobe_events" || exit 1
  done
  for e in open_entry open_ret write_off; do echo 1 > "$T/events/gtkdemo/$e/enable"; done
  ;;
remove)
  [ -d "$T/events/gtkdemo" ] || exit 0
  echo 0 > "$T/events/gtkdemo/enable" 2>/dev/null
  for e in open_entry open_ret write_off read_dis; do echo "-:gtkdemo/$e" >> "$T/kprobe_events" 2>/dev/null; done
  ;;
*) echo "usage: $0 add|remove" >&2; exit 2 ;;
esac
