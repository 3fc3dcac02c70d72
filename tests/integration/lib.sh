# Helpers for the integration tests (sourced). Needs: $eddy (the binary), $work (a
# scratch directory).

fail() { echo "FAIL: $*"; exit 1; }

# EDDY_TEST_STATE_BACKEND=leveldb (or memory) runs every `eddy run` of the test on that
# keyed-state backend: $eddy becomes a wrapper adding --set state.backend=... .
if [ -n "${EDDY_TEST_STATE_BACKEND:-}" ]; then
  mkdir -p "$work"
  real_eddy=$eddy
  eddy=$work/eddy-$EDDY_TEST_STATE_BACKEND
  dir_arg=
  [ "$EDDY_TEST_STATE_BACKEND" = leveldb ] && dir_arg="--set state.dir=$work/state-\$\$"
  printf '#!/bin/sh\nif [ "$1" = run ]; then exec "%s" "$@" --set state.backend=%s %s; fi\nexec "%s" "$@"\n' \
    "$real_eddy" "$EDDY_TEST_STATE_BACKEND" "$dir_arg" "$real_eddy" > "$eddy"
  chmod +x "$eddy"
  echo "state backend: $EDDY_TEST_STATE_BACKEND (every eddy run gets --set state.backend=$EDDY_TEST_STATE_BACKEND)"
fi

# same_rows EXPECTED ACTUAL_DIR_OR_FILE: the same header and the same multiset of rows
# (row order ignored, part files concatenated). Values must match as text; eddy writes
# floats the shortest way that reads back exactly, as DuckDB does.
same_rows() {
  local exp=$1 act=$2 cat=cat
  case $exp in *.gz) cat=zcat ;; esac
  local files
  if [ -d "$act" ]; then files=$(ls "$act"/part-* 2>/dev/null); else files=$act; fi
  [ -n "$files" ] || { echo "no part files in $act"; return 1; }
  local want_header got_header
  want_header=$($cat "$exp" | head -1)
  for f in $files; do
    got_header=$(head -1 "$f")
    [ "$got_header" = "$want_header" ] ||
      { echo "$f: header '$got_header', expected '$want_header'"; return 1; }
  done
  $cat "$exp" | tail -n +2 | LC_ALL=C sort > "$work/expected.sorted"
  for f in $files; do tail -n +2 "$f"; done | LC_ALL=C sort > "$work/actual.sorted"
  if ! cmp -s "$work/expected.sorted" "$work/actual.sorted"; then
    echo "rows differ from $exp ($(wc -l < "$work/expected.sorted") expected, $(wc -l < "$work/actual.sorted") actual); first differences:"
    diff "$work/expected.sorted" "$work/actual.sorted" | head -10
    return 1
  fi
}

# run_job NAME YAML [--set ...]: runs eddy run, failing the test on a non-zero exit.
run_job() {
  local name=$1; shift
  local rc=0
  "$eddy" run "$@" > "$work/$name.stdout" 2> "$work/$name.stderr" || rc=$?
  [ $rc -eq 0 ] || { cat "$work/$name.stderr"; fail "$name: eddy run $* exited $rc"; }
}

# stop_soon PID: SIGTERM to a starting `eddy run` once it handles SIGTERM (the process is
# eddy and its handler is installed: bit 15 of SigCgt in /proc/PID/status), 50 ms later — a fixed sleep is no good:
# on a quiet machine a job reading a file may be done in 0.3 s, on a busy one not started.
stop_soon() {
  local pid=$1 m
  for _ in $(seq 1000); do
    m=$(awk '/^SigCgt:/ { print $2 }' "/proc/$pid/status" 2> /dev/null)
    # eddy itself (not a wrapper script that execs it) with its handler
    [[ $(readlink "/proc/$pid/exe" 2> /dev/null) == */eddy ]] && [ -n "$m" ] &&
      (( (16#$m >> 14) & 1 )) && break
    sleep 0.005
  done
  sleep 0.05
  kill -TERM "$pid"
}
