#!/usr/bin/env bash
# Small jobs whose results were worked out by hand (tests/jobs/semantics/): allowed
# lateness with late re-firing and the late side output, late records dropped and
# counted, first/last by event time, a union of a CSV and a JSON-lines source into a
# global window on the print sink, processing time on generated rows.
set -u
eddy=$1; src=$2; work=$3/semantics
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
