#!/usr/bin/env bash
# The C operator SDK beyond the fraud example, with tests/native/probe.c on
# tests/native/probe.yaml (40 records, keys (name, k): 6 of them, parallelism 2):
#  - keyed: counts per key in keyed state are exactly 1..n for every key; the side output
#    "fired" has one event-time and one processing-time timer per key, each with its key
#    decoded (strings and ints), and the end-of-input watermark once per subtask;
#  - without key_by: no keyed state, records pass with n = 0, no timers;
#  - an emit of the wrong type fails the job (exit 1) with the reason;
#  - a library calling a function eddy does not have is a config error (exit 2).
#
# usage: native_sdk.sh EDDY SRC BUILD PROBE.so
set -u
eddy=$1; src=$2; build=$3; probe=$4; work=$build/native_sdk
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
job=tests/native/probe.yaml

# expected counts: id 1..40, name odd/even, k = id % 3, n = the record's rank in its key
awk 'BEGIN { print "name,k,n"; for (i = 1; i <= 40; i++) { nm = i % 2 ? "odd" : "even"; k = i % 3;
  print nm "," k "," ++c[nm "," k] } }' > "$work/counts.csv"
{ echo "name,k,domain"
  for nm in odd even; do for k in 0 1 2; do echo "$nm,$k,event"; echo "$nm,$k,processing"; done; done
  echo "end,-1,event"; echo "end,-1,event"; } > "$work/fired.csv"

run_job keyed "$job" --control none --set "operators.probe.library=$probe" \
  --set "sinks.counts.path=$work/keyed/counts" --set "sinks.fired.path=$work/keyed/fired"
same_rows "$work/counts.csv" "$work/keyed/counts" || fail "keyed: counts per key"
same_rows "$work/fired.csv" "$work/keyed/fired" || fail "keyed: timers fired"
echo "ok: keyed by (name, k): counts 1..n per key, one event- and one processing-time timer per key with its key decoded, the final watermark per subtask"

sed '/key_by:/d' "$job" > "$work/unkeyed.yaml"
run_job unkeyed "$work/unkeyed.yaml" --control none --set "operators.probe.library=$probe" \
  --set "sinks.counts.path=$work/unkeyed/counts" --set "sinks.fired.path=$work/unkeyed/fired"
awk -F, -v OFS=, 'NR > 1 { $3 = 0 } { print }' "$work/counts.csv" > "$work/counts0.csv"
same_rows "$work/counts0.csv" "$work/unkeyed/counts" || fail "unkeyed: records"
printf 'name,k,domain\nend,-1,event\nend,-1,event\n' > "$work/fired0.csv"
same_rows "$work/fired0.csv" "$work/unkeyed/fired" || fail "unkeyed: only the final watermarks"
echo "ok: without key_by: no keyed state, no timers"

rc=0
"$eddy" run "$job" --control none --set "operators.probe.library=$probe" \
  --set operators.probe.params.wrong_type=true --set "sinks.counts.path=$work/wrong/counts" \
  --set "sinks.fired.path=$work/wrong/fired" > /dev/null 2> "$work/wrong.stderr" || rc=$?
[ $rc -eq 1 ] || { cat "$work/wrong.stderr"; fail "wrong_type: exit $rc, want 1"; }
grep -qxE "eddy run: job probe failed: (.*: )?probe: ev_op_emit: port 0 field 1 'k' is int, got string" \
  "$work/wrong.stderr" || { cat "$work/wrong.stderr"; fail "wrong_type: no reason"; }
echo "ok: an emit of the wrong type fails the job with its reason"

# a library calling a function eddy does not export: a config error when the plan is built
unresolved=$(dirname "$probe")/unresolved.so
rc=0
"$eddy" check "$job" --set "operators.probe.library=$unresolved" --set operators.probe.symbol=unresolved_op \
  > /dev/null 2> "$work/unresolved.stderr" || rc=$?
[ $rc -eq 2 ] || { cat "$work/unresolved.stderr"; fail "unresolved: exit $rc, want 2"; }
grep -qxF "eddy check: --set operators.probe.library: cannot load the library: $unresolved: undefined symbol: ev_op_no_such_function" \
  "$work/unresolved.stderr" || { cat "$work/unresolved.stderr"; fail "unresolved: message"; }
echo "ok: a library with a symbol eddy does not provide is refused when the plan is built"

echo "PASS: native_sdk"
