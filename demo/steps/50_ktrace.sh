# DEMO: ktrace / ktask / ktypes -- live kernel tracing tied to the inferior's task
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")/../.."
B="${DEMO_BUILD:-/tmp}"
gcc -g -O0 -o "$B/mmap_file" examples/ktrace/mmap_file.c
kp=yes; [ -e /sys/bus/event_source/devices/kprobe ] || kp=no
kc=yes; [ -e /proc/kcore ] || kc=no
say "This kernel: $(uname -r); kprobes: $kp; /proc/kcore: $kc"
if [ $kp = no ]; then
  say "No kprobes here: ktrace says so and falls back (kfunc/fentry, then a tracepoint on the same path: mmap(2))."
  say "--capture reads task_struct fields at event time (BPF, BTF offsets) -- no kcore needed:"
fi
gdb_session "$B/mmap_file" "break after_mmap" "start" \
  "ktrace thp_get_unmapped_area --args len --capture signal->rlim[3].rlim_cur --capture mm->mmap_base --ret --run" \
  'p $ktask' 'p $kevents' "ktask \$ktask comm" "ktypes" 'p $ktask' \
  "ktrace thp_get_unmapped_area --method kprobe" || true
say "Nothing left attached (bpftool prog show | grep -c gtk_kt):"
echo "    $(bpftool prog show 2>/dev/null | grep -c gtk_kt || true)"
if [ $kp = no ] || [ $kc = no ]; then
  say "Unavailable on this machine: kprobe/kretprobe on thp_get_unmapped_area and expand_downwards, and ktask"
  say "(needs /proc/kcore).  Both seed workflows run on Debian's 6.1 kernel in the QEMU guest:"
  echo "    /usr/bin/python3 -m tests.guest run -- bash examples/ktrace/guest_workflows.sh"
  if [ "${GDB_TOOLKIT_DEMO_GUEST:-1}" != 0 ] && command -v qemu-system-x86_64 >/dev/null; then
    say "Running them now (about 3 minutes under TCG; GDB_TOOLKIT_DEMO_GUEST=0 skips this):"
    { /usr/bin/python3 -m tests.guest run --timeout 900 -- bash examples/ktrace/guest_workflows.sh 2>&1 || true; } \
      | sed 's/^/    /'
  else
    say "(GDB_TOOLKIT_DEMO_GUEST=0: skipped; a recorded run is in docs/commands/ktask.md)"
  fi
fi
