# DEMO: stack-diagnose -- the seed's teststack: why 1920x1080 crashes and what fixes it
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
EX="$(cd "$(dirname "$0")/../../examples/stack" && pwd)"
B="${DEMO_BUILD:-$(mktemp -d)}/stack"
mkdir -p "$B"
for p in teststack recurse thread_overflow badptr; do
  gcc -g -O0 -pthread -o "$B/$p" "$EX/$p.c"
done

say "The seed program: 800x600 passes, 1920x1080 faults under the default 8 MiB stack limit"
printf '$ ulimit -s; ./teststack; ./teststack 1920 1080\n'
{ ulimit -s; "$B/teststack"; "$B/teststack" 1920 1080 || echo "exit status $? (SIGSEGV)"; } 2>/dev/null | sed 's/^/    /' 

say "One command after the SIGSEGV: the limit that refused the growth, the culprit, the fix"
gdb_session "$B/teststack" "run 1920 1080" "stack-diagnose"

say "The suggested limit really makes it pass:"
printf '$ (ulimit -s 16384; ./teststack 1920 1080)\n'
( ulimit -s 16384; "$B/teststack" 1920 1080 ) 2>&1 | sed 's/^/    /'

say "Deep recursion (100 000+ frames) is diagnosed without walking every frame:"
gdb_session "$B/recurse" "run" "stack-diagnose" "print depth"

say "A thread with a 64 KiB stack overflowing: the pthread_attr_setstacksize size to use"
gdb_session "$B/thread_overflow" "run" "stack-diagnose"

say "An ordinary NULL dereference is not called a stack problem:"
gdb_session "$B/badptr" "run null" "stack-diagnose"

say "--kernel re-runs it under a bcc probe on acct_stack_growth (root + kprobes; otherwise it says why):"
gdb_session "$B/teststack" "run 1920 1080" "stack-diagnose --kernel" 2>&1 | sed -n '/kernel view\|--kernel:/,$p'
