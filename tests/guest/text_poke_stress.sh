#!/bin/sh
# Stress the guest kernel's text patching: add, enable, disable and remove a kprobe event
# N times while a shell loop keeps the other vCPU busy.  N defaults to 3000; the guest's
# command gets an exact environment, so pass it there:
#   -- env N=500 sh tests/guest/text_poke_stress.sh
# Each enable/disable patches kernel text (ftrace call sites, static calls).  Under QEMU's
# multi-threaded TCG, Debian's 6.1 kernel hangs here within a minute (see tests/guest/arch.py):
#   GDB_TOOLKIT_GUEST_TCG_THREADS=multi python3 -m tests.guest run -- sh tests/guest/text_poke_stress.sh
T=/sys/kernel/tracing
[ -w "$T/kprobe_events" ] || { echo "no writable $T/kprobe_events (run it in the guest, as root)"; exit 2; }
N=${N:-3000}
( while :; do cat /proc/self/status >/dev/null; done ) &
busy=$!
trap 'kill $busy 2>/dev/null' EXIT
start=$(date +%s)
i=0
while [ $i -lt "$N" ]; do
  echo 'p:gtk_text_poke_stress vfs_read' >"$T/kprobe_events" || { echo "cannot add the probe"; exit 1; }
  echo 1 >"$T/events/kprobes/gtk_text_poke_stress/enable"
  echo 0 >"$T/events/kprobes/gtk_text_poke_stress/enable"
  echo '-:gtk_text_poke_stress' >>"$T/kprobe_events"
  i=$((i + 1))
  [ $((i % 200)) -eq 0 ] && echo "$i iterations, $(( $(date +%s) - start )) s"
done
echo "done: $i iterations in $(( $(date +%s) - start )) s"
