# Helpers for demo steps: show a command, then run it for real.
# shellcheck shell=bash
say() { printf '\n-- %s\n' "$*"; }
# gdb_session PROGRAM [gdb commands...]: print and run a batch gdb session
gdb_session() {
  local prog="$1"; shift
  local args=(-nx -batch -iex "set debuginfod enabled off" -ex "source $GDBINIT_PY")
  printf '$ gdb %s' "$(basename "$prog")"
  for c in "$@"; do printf " -ex '%s'" "$c"; args+=(-ex "$c"); done
  echo
  # an error from the last command is part of the show, not a failed demo step
  { gdb "${args[@]}" "$prog" 2>&1 || true; } | sed 's/^/    /'
}
