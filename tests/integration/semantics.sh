#!/usr/bin/env bash
# Small jobs whose results were worked out by hand (tests/jobs/semantics/): allowed
# lateness with late re-firing and the late side output, late records dropped and
# counted, first/last by event time, a union of a CSV and a JSON-lines source into a
# global window on the print sink, processing time on generated rows.
set -u
eddy=$1; src=$2; work=$3/semantics${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
S=tests/jobs/semantics

run_job lateness $S/lateness.yaml --set "sinks.out.path=$work/lateness" \
  --set "sinks.late.path=$work/lateness-late"
# p = 1: rows in firing order, compared as they are
cmp -s $S/lateness.expected.csv "$work/lateness/part-0.csv" ||
  { diff $S/lateness.expected.csv "$work/lateness/part-0.csv"; fail "lateness"; }
cmp -s $S/lateness-late.expected.csv "$work/lateness-late/part-0.csv" ||
  { diff $S/lateness-late.expected.csv "$work/lateness-late/part-0.csv"; fail "late output"; }
echo "ok: allowed lateness re-fires, too-late record on the side output"

# panes: a sliding window without allowed lateness keeps panes and fires by scanning its
# keys; with allowed_lateness 1ms (one state per window and timers) nothing here is within
# the lateness, so both must give the rows worked out in panes.yaml (order-free: a scan
# visits keys in no particular order)
for lat in 0s 1ms; do
  run_job panes-$lat $S/panes.yaml --set operators.w.allowed_lateness=$lat \
    --set "sinks.out.path=$work/panes-$lat" --set "sinks.late.path=$work/panes-$lat-late"
  same_rows $S/panes.expected.csv "$work/panes-$lat" || fail "panes (allowed_lateness $lat)"
  same_rows $S/panes-late.expected.csv "$work/panes-$lat-late" ||
    fail "panes (allowed_lateness $lat): late output"
done
echo "ok: sliding panes: fired windows skipped, late record out, first/last across panes"

# a window's int sum merged from panes (in the walk's order) fails only when the whole sum
# overflows 64 bits
run_job panes_sum $S/panes_sum.yaml --set "sinks.out.path=$work/panes_sum"
same_rows $S/panes_sum.expected.csv "$work/panes_sum" || fail "panes: a sum near 2^63 merged from panes"
rc=0; "$eddy" run $S/panes_sum.yaml --set "sinks.out.path=$work/panes_overflow" \
  --set sources.events.path=$S/panes_overflow.csv > /dev/null 2> "$work/panes_overflow.stderr" || rc=$?
[ $rc -ne 0 ] && grep -q "sum overflows a 64-bit integer" "$work/panes_overflow.stderr" ||
  { cat "$work/panes_overflow.stderr"; fail "panes: a window sum over 2^63 must fail the job (exit $rc)"; }
echo "ok: an int sum merged from panes fails only when the window's sum overflows"

run_job dropped $S/lateness.yaml --set operators.w.late_output= --set sinks.late.input=w \
  --set "sinks.out.path=$work/dropped" --set "sinks.late.path=$work/dropped-2"
grep -q "6 records in, 6 out, 1 late dropped," "$work/dropped.stderr" ||
  { cat "$work/dropped.stderr"; fail "a dropped late record is not counted"; }
echo "ok: without a late output a late record is dropped and counted"

run_job union $S/union.yaml
cmp -s $S/union.expected.csv "$work/union.stdout" ||
  { diff $S/union.expected.csv "$work/union.stdout"; fail "union into a global window"; }
echo "ok: union of CSV and JSON lines into a global window, print sink"

run_job processing $S/processing.yaml --set "sinks.out.path=$work/processing"
sums=$(cat "$work"/processing/part-* | sed 's/.*"n":\([0-9]*\),"ids":\([0-9]*\)}/\1 \2/' |
  awk '{ n += $1; ids += $2 } END { print n, ids }')
[ "$sums" = "5000 12502500" ] || fail "processing time: got counts and id sums '$sums', want '5000 12502500'"
echo "ok: processing time windows count each of 5,000 generated rows once"

# idleness: `quiet` reads a FIFO that stays silent. With idle_timeout it is soon idle, so
# the finished `events` source drives the watermark to +inf and its windows fire; a record
# sent afterwards on the FIFO is late. Without idle_timeout the windows wait for `quiet`
# and that record is counted in its window.
idle_case() { # idle_case NAME [--set ...]
  local name=$1; shift
  local fifo=$work/$name.fifo
  mkfifo "$fifo"
  "$eddy" run $S/idle.yaml --set "sources.quiet.path=$fifo" --set "sinks.out.path=$work/$name" \
    --set "sinks.late.path=$work/$name-late" "$@" > "$work/$name.stdout" 2> "$work/$name.stderr" &
  local pid=$!
  exec 3> "$fifo"          # opens once eddy's reader has opened the FIFO
  sleep 1                  # well past the 200 ms idle timeout
  echo "2024-01-01 00:05:00,a,100" >&3
  exec 3>&-                # end of the quiet source
  local rc=0
  wait $pid || rc=$?
  [ $rc -eq 0 ] || { cat "$work/$name.stderr"; fail "$name: eddy exited $rc"; }
}
idle_case idle
printf 'window_start,window_end,k,n,total\n2024-01-01 00:00:00,2024-01-01 00:10:00,a,2,3\n2024-01-01 00:10:00,2024-01-01 00:20:00,a,1,3\n' > "$work/idle.expected"
same_rows "$work/idle.expected" "$work/idle" || fail "idle: windows did not fire without the idle source"
grep -qx "2024-01-01 00:05:00,a,100" "$work"/idle-late/part-0.csv || fail "idle: the record after idleness was not late"
idle_case waiting --set sources.quiet.watermark.idle_timeout=0s
printf 'window_start,window_end,k,n,total\n2024-01-01 00:00:00,2024-01-01 00:10:00,a,3,103\n2024-01-01 00:10:00,2024-01-01 00:20:00,a,1,3\n' > "$work/waiting.expected"
same_rows "$work/waiting.expected" "$work/waiting" || fail "without idleness the windows must wait for the quiet source"
echo "ok: an idle source stops holding the watermark back; without idle_timeout windows wait"

# a file sink replaces the part files of an earlier run (and leaves other files alone)
run_job rerun-p2 examples/flights_hourly.yaml --set "sinks.out.path=$work/rerun" --set "sinks.late.path=$work/rerun-late"
touch "$work/rerun/notes.txt"
run_job rerun-p1 examples/flights_hourly.yaml --set parallelism=1 --set "sinks.out.path=$work/rerun" --set "sinks.late.path=$work/rerun-late"
[ "$(cd "$work/rerun" && echo *)" = "notes.txt part-0.csv" ] || fail "rerun: left $(cd "$work/rerun" && echo *)"
same_rows tests/jobs/hourly.expected.csv "$work/rerun" || fail "rerun: rows"
echo "ok: a rerun with fewer subtasks leaves no stale part files"
