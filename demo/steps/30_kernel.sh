# DEMO: kernel -- kprobes through /proc/kcore (int3, optimized jmp, ftrace call), kallsyms, BTF
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
GDBINIT_PY="${GDBINIT_PY:-$ROOT/gdb_toolkit/gdbinit.py}"
PROBES="$ROOT/examples/kernel/probes.sh"

kgdb() {  # kgdb CMD... : a batch gdb (no program) running the commands, shown like a session
  local args=(-nx -batch -iex "set debuginfod enabled off" -ex "source $GDBINIT_PY" -ex "set width 160")
  printf '$ gdb'
  for c in "$@"; do printf " -ex '%s'" "$c"; args+=(-ex "echo (gdb) $c\\n" -ex "$c"); done
  echo
  { gdb "${args[@]}" 2>&1 || true; } | sed 's/^/    /'
}

live_demo() {
  say "Register four kprobes through tracefs (entry, kretprobe, offset, disabled): $PROBES add"
  trap '"$PROBES" remove' EXIT
  "$PROBES" add
  sleep 2   # give the optimizer time to turn the offset probe into a jmp
  say "The kernel's own list (debugfs) -- the flags we check against:"
  sed 's/^/    /' /sys/kernel/debug/kprobes/list
  say "kcore: segments, release, KASLR offset; kprobe-list: every probe classified from its live bytes"
  kgdb "kcore" "kprobe-list"
  say "An optimized probe in depth: original instructions from p->opcode + optinsn.copied_insn, the detour"
  kgdb "kprobe-show vfs_write+0x5 -n 3"
  say "Not every call is a kprobe: kdis marks the ftrace call and the optimized jmp; ftrace-site says who"
  kgdb "kdis do_sys_openat2 4" "ftrace-site do_sys_openat2" "ftrace-site vfs_read"
  say "Forced back to int3 with sysctl debug.kprobes-optimization=0:"
  local old; old=$(cat /proc/sys/debug/kprobes-optimization)
  echo 0 > /proc/sys/debug/kprobes-optimization; sleep 1
  kgdb "kprobe-list"
  echo "$old" > /proc/sys/debug/kprobes-optimization
  "$PROBES" remove; trap - EXIT
  say "After removal the bytes are the recovered originals again:"
  kgdb "kdis vfs_write 3"
}

if [ "${GDB_TOOLKIT_IN_GUEST:-}" = 1 ] || { [ -r /proc/kcore ] && [ -w /sys/kernel/tracing/kprobe_events ] 2>/dev/null; }; then
  live_demo
  exit 0
fi

say "This machine's kernel ($(uname -r)) has no /proc/kcore and no kprobes -- the commands say so:"
kgdb "kcore" "kprobe-list"
say "What still works without kcore: symbols from /proc/kallsyms, prototypes from BTF"
kgdb "ksym do_sys_openat2" "ksym vfs_write" 'print/x $ksym("do_mmap")'
say "BTF member paths (our own parser of /sys/kernel/btf/vmlinux; what kprobe-show and ktrace use):"
printf '$ python3 -c "Btf.load().resolve(\\"task_struct\\", \\"signal->rlim[3].rlim_cur\\")"\n'
/usr/bin/python3 - "$ROOT" <<'PY' | sed 's/^/    /'
import sys
sys.path.insert(0, sys.argv[1])
from gdb_toolkit.kernel.btf import Btf
b = Btf.load()
for path in ("signal->rlim[3].rlim_cur", "mm->mmap_base", "comm", "se.on_rq"):
    p = b.resolve("task_struct", path)
    hops = " -> ".join(f"+{h}" for h in p.hops)
    print(f"task_struct.{path:26} offsets {hops:14} ({p.derefs} pointer load(s)), {p.type_name}, {p.size} bytes")
print(b.c_definition("kprobe"))
PY

if [ "${GDB_TOOLKIT_DEMO_GUEST:-1}" != 0 ] && command -v qemu-system-x86_64 >/dev/null; then
  say "The same commands on a real kernel: Debian's 6.1 booted under QEMU (docs/guest.md; ~1 min in TCG)"
  (cd "$ROOT" && /usr/bin/python3 -m tests.guest run --timeout 900 -- bash demo/steps/30_kernel.sh) 2>&1 \
    | sed 's/^/  | /' || echo "  (the guest could not run: see above)"
else
  say "Set GDB_TOOLKIT_DEMO_GUEST=1 with qemu-system-x86_64 installed to see the live part in a QEMU guest."
fi
