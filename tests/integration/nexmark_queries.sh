#!/usr/bin/env bash
# The Nexmark queries (bench/nexmark/qN.yaml: q0 q1 q2 q3 q4 q5 q7 q8) against DuckDB's
# answers to their SQL (bench/nexmark/sql/qN.sql; q7 also sql/q7_top1.sql, eddy's Window
# Top-N reading of it, see q7.yaml):
#  - always: on the committed sample tests/data/nexmark/ (4,000 events, 40 s of event
#    time) at parallelism 1 and 2, against the committed expected results
#    tests/data/nexmark/expected/ (made by make_expected.sh there, with DuckDB);
#  - with ../shared (DuckDB and csv-compare; set EDDY_SHARED to point elsewhere): those
#    committed files are re-made with DuckDB and must not have changed; then 200,000
#    events made by `eddy nexmark-gen --seed 1 --tps 1000` (200 s of event time: 20
#    tumbling and 100 sliding windows of 10 s, ~9,200 bids each) at parallelism 1 and 2
#    against DuckDB's answers on the same files; and the stateful queries (q3, q4 on
#    the global window, q5, q7, q8) with checkpoints every 50 ms and injected failures
#    (restarts from checkpoints: keyed state, timers and the global window's end timer
#    restored) give the same rows.
# Without ../shared the committed comparisons still run (as text, decimals to 12
# significant digits) and the DuckDB part says it did NOT run.
# EDDY_TEST_STATE_BACKEND=leveldb runs every job on the LevelDB backend.
#
# usage: nexmark_queries.sh EDDY SRC BUILD
set -u
eddy=$1; src=$2; build=$3; work=$build/nexmark_queries${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
. "$src/bench/nexmark/lib.sh"
cd "$src"
shared=${EDDY_SHARED:-$src/../shared}
queries="q0 q1 q2 q3 q4 q5 q7 q8"
sample=tests/data/nexmark
CSV_COMPARE=
[ -x "$shared/tools/csv-compare" ] && command -v python3 > /dev/null && CSV_COMPARE=$shared/tools/csv-compare
how=${CSV_COMPARE:+csv-compare}
how=${how:-text, decimals to 12 digits}

# query NAME Q DATA [ARGS...]: runs bench/nexmark/Q.yaml on DATA into $work/NAME
query() {
  local name=$1 q=$2 data=$3; shift 3
  nexmark_sets bench/nexmark/$q.yaml "$data"
  rm -rf "$work/$name"
  run_job "$name" bench/nexmark/$q.yaml --control none "${nexmark_sets[@]}" \
    --set "sinks.out.path=$work/$name/out" "$@"
}

# check NAME Q EXPECTED_DIR: the output of run NAME is EXPECTED_DIR's answer to Q (q7: both
# readings, which agree on these inputs: no bid ties a window's maximum at its end)
check() {
  local name=$1 q=$2 dir=$3 e
  for e in $q $([ $q = q7 ] && echo q7_top1); do
    nexmark_compare "$dir/$e.csv" "$work/$name/out" || fail "$name: not the rows of $dir/$e.csv"
  done
  [ "$(($(wc -l < "$dir/$q.csv") - 1))" -gt 0 ] || fail "$dir/$q.csv has no rows: nothing was checked"
}

# ---- projection pushdown: each query's sources parse only the fields it reads (the
# results below are then checked whole); q3 joins whole records: everything parsed ----
parses() { # parses Q SOURCE FIELDS: `eddy check` says SOURCE parses FIELDS only
  "$eddy" check bench/nexmark/$1.yaml > "$work/check-$1.out" 2>&1 || { cat "$work/check-$1.out"; fail "eddy check $1"; }
  awk -v s="$2" '$1 == s { getline; print; exit }' "$work/check-$1.out" | grep -q "^      parses: $3 (" ||
    { cat "$work/check-$1.out"; fail "$1: source $2 should parse only $3"; }
}
parses q0 bid "auction, bidder, price, dateTime, extra"
parses q2 bid "auction, price, dateTime"
parses q5 bid "auction, dateTime"
parses q7 bid "auction, bidder, price, dateTime, extra"
parses q4 auction "id, dateTime, expires, category"
parses q8 person "id, name, dateTime"
"$eddy" check bench/nexmark/q3.yaml > "$work/check-q3.out" 2>&1 && ! grep -q "parses:" "$work/check-q3.out" ||
  { cat "$work/check-q3.out"; fail "q3 (a join of whole records) should parse every field"; }
echo "ok: projection pushdown: q0, q2, q5, q7, q4, q8 parse only the fields they read, q3 all"

# ---- the committed sample against the committed expected results ----
for par in 1 2; do
  for q in $queries; do
    query sample-$q-p$par $q $sample --set parallelism=$par
    check sample-$q-p$par $q $sample/expected
    echo "ok: $q, parallelism $par, sample: the $(($(wc -l < $sample/expected/$q.csv) - 1)) rows of $sample/expected/$q.csv ($how)"
  done
done

# ---- DuckDB ----
if [ ! -x "$shared/tools/duckdb-sql" ] || [ -z "$CSV_COMPARE" ]; then
  echo "SKIPPED: the DuckDB re-computation and the 200,000-event input did NOT run (no $shared/tools/duckdb-sql, csv-compare or python3)"
  echo "PASS: nexmark_queries (committed expected results only)"
  exit 0
fi
export DUCKDB_SQL=$shared/tools/duckdb-sql
bench/nexmark/expected.sh $sample "$work/sample-expected" > "$work/sample-expected.log" 2>&1 ||
  { cat "$work/sample-expected.log"; fail "DuckDB on $sample"; }
for e in $queries q7_top1; do
  "$CSV_COMPARE" "$work/sample-expected/$e.csv" $sample/expected/$e.csv > "$work/compare.out" 2>&1 ||
    { cat "$work/compare.out"; fail "$sample/expected/$e.csv is not DuckDB's answer (run $sample/expected/make_expected.sh)"; }
done
echo "ok: $sample/expected/ is DuckDB's answer to bench/nexmark/sql/ on $sample"

gen=$work/gen
"$eddy" nexmark-gen --events 200000 --seed 1 --tps 1000 --out "$gen" 2> "$work/gen.stderr" ||
  { cat "$work/gen.stderr"; fail "nexmark-gen"; }
bench/nexmark/expected.sh "$gen" "$work/gen-expected" > "$work/gen-expected.log" 2>&1 ||
  { cat "$work/gen-expected.log"; fail "DuckDB on $gen"; }
for par in 1 2; do
  for q in $queries; do
    query gen-$q-p$par $q "$gen" --set parallelism=$par
    check gen-$q-p$par $q "$work/gen-expected"
    echo "ok: $q, parallelism $par, 200,000 events: DuckDB's $(($(wc -l < "$work/gen-expected/$q.csv") - 1)) rows"
  done
done

# small source batches (a watermark after every 2 records) make the runs last long
# enough for checkpoints to complete between the failures
restores=0
for q in q3 q4 q5 q7 q8; do
  name=gen-$q-failures
  small=()
  for s in person auction bid; do
    grep -q "^  - id: $s\$" bench/nexmark/$q.yaml && small+=(--set sources.$s.batch_size=2)
  done
  query $name $q "$gen" --set parallelism=2 --set checkpoint.interval=50ms \
    --set "checkpoint.dir=$work/$name/ck" --set supervision.intensity=50 "${small[@]}" \
    --inject-failures 3 --seed 7
  check $name $q "$work/gen-expected"
  f=$(grep -c "injected failure [0-9]* of" "$work/$name.stderr" || true)
  r=$(grep -c "restored from checkpoint" "$work/$name.stderr" || true)
  restores=$((restores + r))
  echo "ok: $q, parallelism 2, checkpoints every 50 ms, up to 3 injected failures ($f happened before the end, $r restores from checkpoints): DuckDB's rows"
done
[ "$restores" -gt 0 ] || fail "no run restored from a checkpoint: the keyed state was not exercised"

echo "PASS: nexmark_queries"
