#!/bin/bash
# The seed's two ktrace workflows, run inside the QEMU guest (Debian 6.1: kprobes, kcore, BTF):
#   /usr/bin/python3 -m tests.guest run -- bash examples/ktrace/guest_workflows.sh
# (1) mmap a file on ext4 -> thp_get_unmapped_area -> $ktask -> ktask names mm->get_unmapped_area;
#     then ktypes + /proc/kcore make plain `p ((struct task_struct *)$ktask)->...` work.
# (2) the stack overflow -> acct_stack_growth (inlined: expand_downwards traced) -> size, -12, rlimit.
set -u
cd "$(dirname "$0")/../.."
B=/tmp/gtk-demo; mkdir -p $B
gcc -g -O0 -o $B/mmap_file examples/ktrace/mmap_file.c
gcc -g -O0 -fno-stack-clash-protection -o $B/teststack examples/ktrace/teststack.c
G=(gdb -nx -batch -iex "set debuginfod enabled off" -ex "source $PWD/gdb_toolkit/gdbinit.py")
show() { printf '(gdb) %s\n' "$@"; }
PYTHONPATH=$PWD /usr/bin/python3 - <<'PY'
from tests.support.guest_ext4 import ext4_mount
import subprocess, sys, os
with ext4_mount() as mnt:
    data = mnt / "data"; data.write_bytes(b"x" * (4 << 20))
    cmds = ["break after_mmap", f"start {data} keep-running > /dev/null 2>&1",
            "ktrace thp_get_unmapped_area --args len --stack --run",
            "ktask $ktask pid comm mm->get_unmapped_area signal->rlim[3].rlim_cur",
            "detach", "ktypes", "core-file /proc/kcore",
            "p ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur",
            "p ((struct task_struct *)$ktask)->mm->get_unmapped_area",
            "p ((struct task_struct *)$ktask)->comm"]
    print("== workflow 1: mmap a file on ext4 (pid's limits: see below)")
    argv = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-ex",
            f"source {os.getcwd()}/gdb_toolkit/gdbinit.py"]
    for c in cmds:
        argv += ["-ex", f"echo (gdb) {c}\\n", "-ex", c]
    argv += ["/tmp/gtk-demo/mmap_file"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    subprocess.run(["pkill", "-x", "mmap_file"])
    print(out.stdout + out.stderr, flush=True)
PY
echo "== workflow 2: the stack overflow"
"${G[@]}" -ex "echo (gdb) start\n" -ex "start > /dev/null" \
  -ex "echo (gdb) ktrace acct_stack_growth --ret --args size --run\n" -ex "ktrace acct_stack_growth --ret --args size --run" \
  -ex "echo (gdb) ktask \$ktask signal->rlim[3].rlim_cur\n" -ex "ktask \$ktask signal->rlim[3].rlim_cur" \
  -ex "echo (gdb) shell grep 'Max stack' /proc/\$(pgrep -x teststack)/limits\n" \
  -ex "shell grep 'Max stack' /proc/\$(pgrep -x teststack)/limits" $B/teststack 2>&1
echo "== leftovers: bpftool prog show | grep -c gtk_kt; kprobe_events"
bpftool prog show | grep -c gtk_kt
cat /sys/kernel/tracing/kprobe_events
