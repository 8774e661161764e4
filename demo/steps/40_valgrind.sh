# DEMO: valgrind vgdb helpers -- the seed's memleakloop, leaking while it runs
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
EX="$(cd "$(dirname "$0")/../../examples/valgrind" && pwd)"
B="${DEMO_BUILD:-$(mktemp -d)}/valgrind"
mkdir -p "$B"
for p in memleakloop memcorrupt vbits; do gcc -g -O0 -o "$B/$p" "$EX/$p.c"; done

say "A server that never exits leaks 1111+2456+356 bytes per round and keeps 45678+560000 bytes"
say "reachable through globals. vg-start runs it under memcheck+vgdb; vg-leaks checks while it runs:"
gdb_session "$B/memleakloop" \
  "vg-start --main --stdout $B/memleakloop.out --log $B/vg-%p.log $B/memleakloop 5" \
  "break checkpoint" "continue" \
  "vg-leaks" \
  "continue" \
  "vg-leaks --delta increased" \
  "vg-leaks" \
  "vg-who g_psz1[0]" \
  "vg-block g_psz1[1]" \
  "vg-leaks --kinds definite --top 2 --depth 2" \
  "continue" "vg-leaks" "continue" "vg-leaks" \
  "vg-leaks --history --plot $B/leaks.png"
say "Every complete vg-leaks was a snapshot: --history shows each site's growth per check and per"
say "second (the plot is $B/leaks.png). What the program printed (its stdout went to --stdout):"
sed 's/^/    /' "$B/memleakloop.out"

say "The seed's heap overflow psz[32]='b': memcheck stops the program and vg-start's hook says why:"
gdb_session "$B/memcorrupt" \
  "vg-start --stdout $B/memcorrupt.out --log $B/vg-%p.log $B/memcorrupt" "continue" "vg-errors"

say "Validity bits: g_buf has 10 of its 64 bytes written:"
gdb_session "$B/vbits" \
  "vg-start --main --stdout $B/vbits.out --log $B/vg-%p.log $B/vbits" "break checkpoint" "continue" \
  "vg-vbits g_buf 24" "vg-check g_buf 64 defined" "vg-vbits g_buf+56 16"
