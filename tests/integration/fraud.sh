#!/usr/bin/env bash
# The C operator SDK on its example (examples/fraud: a native operator with keyed state
# and event-time timers, include/eddy/operator.h):
#  - the committed input is what its generator writes;
#  - at parallelism 1 and 2 the alerts are exactly examples/fraud/expected_alerts.csv
#    (computed by DuckDB, examples/fraud/expected_alerts.sh);
#  - with checkpoints every 50 ms and 5 injected failures (the job restarts from its
#    latest checkpoint: keyed state and timers restored), still exactly those;
#  - on a larger generated input (300,000 transactions, expected alerts from DuckDB):
#    injected failures at p1 and p2 with restores from checkpoints, and a savepoint taken
#    at p2 restored at p3 and p1 (keyed state redistributed by key group): exact.
#
# usage: fraud.sh EDDY SRC BUILD
set -u
eddy=$1; src=$2; build=$3; work=$build/fraud${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
job=examples/fraud/fraud.yaml
lib=$build/examples/fraud/libfraud.so
[ -f "$lib" ] || fail "$lib is not built"
csv_compare=$src/../shared/tools/csv-compare
duckdb_sql=$src/../shared/tools/duckdb-sql

# same_alerts EXPECTED DIR: the part files in DIR hold exactly the expected alerts
# (csv-compare: numbers as numbers; without it, text after dropping a trailing ".0",
# which DuckDB writes and eddy does not)
same_alerts() {
  if [ -x "$csv_compare" ]; then
    "$csv_compare" "$1" "$2" > "$work/compare.out" || { cat "$work/compare.out"; return 1; }
    return 0
  fi
  sed -E 's/\.0(,|$)/\1/g' "$1" > "$work/expected.norm.csv"
  same_rows "$work/expected.norm.csv" "$2"
}

# fraud NAME [ARGS...]: runs the example with the built library into $work/NAME/out
fraud() {
  local name=$1; shift
  rm -rf "$work/$name"
  run_job "$name" "$job" --control none --set "operators.fraud.library=$lib" \
    --set "sinks.alerts.path=$work/$name/out" "$@"
}

# ---- the committed input is the generator's ----
python3 examples/fraud/gen_transactions.py > "$work/transactions.csv" ||
  fail "the generator failed"
cmp -s "$work/transactions.csv" examples/fraud/transactions.csv ||
  fail "examples/fraud/transactions.csv is not what examples/fraud/gen_transactions.py writes"
n=$(($(wc -l < examples/fraud/expected_alerts.csv) - 1))
echo "ok: examples/fraud/transactions.csv is the generator's ($(($(wc -l < "$work/transactions.csv") - 1)) transactions, $n expected alerts)"

# ---- exact alerts at parallelism 1 and 2 ----
for par in 1 2; do
  fraud p$par --set parallelism=$par
  same_alerts examples/fraud/expected_alerts.csv "$work/p$par/out" || fail "p$par: wrong alerts"
  echo "ok: parallelism $par: exactly the $n expected alerts"
done

# ---- checkpoints and injected failures ----
for par in 1 2; do
  name=inject-p$par
  fraud $name --set parallelism=$par --set checkpoint.interval=50ms \
    --set "checkpoint.dir=$work/$name/ck" --set supervision.intensity=50 \
    --inject-failures 5 --seed 1
  same_alerts examples/fraud/expected_alerts.csv "$work/$name/out" ||
    fail "$name: wrong alerts under injected failures"
  f=$(grep -c "injected failure" "$work/$name.stderr" || true)
  echo "ok: parallelism $par, checkpoints, 5 injected failures ($f happened before the end): exactly the $n expected alerts"
done

# ---- a larger input: restores from checkpoints, and rescaling through a savepoint ----
if [ ! -x "$duckdb_sql" ]; then
  echo "skipped: the larger input (no $duckdb_sql for its expected alerts)"
  echo "PASS: fraud"
  exit 0
fi
big=$work/big.csv
python3 examples/fraud/gen_transactions.py --rows 300000 --seed 2 > "$big" || fail "generating $big"
DUCKDB_SQL=$duckdb_sql examples/fraud/expected_alerts.sh "$big" "$work/big_expected.csv" ||
  fail "DuckDB on $big"
nb=$(($(wc -l < "$work/big_expected.csv") - 1))
[ "$nb" -gt 100 ] || fail "only $nb expected alerts on the larger input"
restores=0
for par in 2 1; do
  for seed in 1 2; do
    name=big-p$par-s$seed
    fraud $name --set "sources.transactions.path=$big" --set parallelism=$par \
      --set checkpoint.interval=50ms --set "checkpoint.dir=$work/$name/ck" \
      --set supervision.intensity=50 --inject-failures 5 --seed $seed
    same_alerts "$work/big_expected.csv" "$work/$name/out" || fail "$name: wrong alerts"
    r=$(grep -c "restored from checkpoint" "$work/$name.stderr" || true)
    restores=$((restores + r))
    echo "ok: 300,000 transactions, parallelism $par, 5 injected failures (seed $seed, $r restores from checkpoints): exactly the $nb expected alerts"
  done
done
[ "$restores" -gt 0 ] || fail "no run restored from a checkpoint: keyed state was not exercised"

name=savepoint
sp=$work/$name/sp
"$eddy" run "$job" --control none --set "operators.fraud.library=$lib" \
  --set "sources.transactions.path=$big" --set "sinks.alerts.path=$work/$name/out" \
  --set parallelism=2 --set checkpoint.interval=1s --set "checkpoint.dir=$work/$name/ck" \
  --stop-with-savepoint "$sp" > /dev/null 2> "$work/$name.stderr" &
pid=$!
stop_soon $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$work/$name.stderr"; fail "$name: stop with a savepoint exited $rc"; }
grep -q "savepoint [0-9]* written to $sp" "$work/$name.stderr" ||
  { cat "$work/$name.stderr"; fail "$name: no savepoint written (did the job end first?)"; }
at=$(cat "$work/$name"/out/part-* 2> /dev/null | grep -vc '^account_id' || true)
[ "$at" -lt "$nb" ] || fail "$name: the job was not stopped before its end ($at alerts)"
for par in 3 1; do
  run_job $name-p$par "$job" --control none --set "operators.fraud.library=$lib" \
    --set "sources.transactions.path=$big" --set "sinks.alerts.path=$work/$name/out" \
    --set parallelism=$par --set "checkpoint.dir=$work/$name/ck" --restore "$sp"
  same_alerts "$work/big_expected.csv" "$work/$name/out" || fail "$name: restored at parallelism $par"
  echo "ok: savepoint at parallelism 2 ($at alerts written), restored at parallelism $par: exactly the $nb expected alerts"
done

echo "PASS: fraud"
