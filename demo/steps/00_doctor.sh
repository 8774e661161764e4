# DEMO: toolkit doctor -- what works on this machine
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
say "Which capabilities are available here, and the fix for each missing one:"
printf "$ gdb -batch -ex 'toolkit doctor'\n"
gdb -nx -batch -ex "source $GDBINIT_PY" -ex "toolkit doctor" 2>&1 | sed 's/^/    /'
