#!/usr/bin/env bash
# The top_n and split operators (tests/jobs/topn/), against results DuckDB computed
# independently (tests/jobs/topn/expected.sql, split.sql):
#  - the committed bids are what gen_bids.py writes (disordered: some bids are late);
#  - Nexmark q7 (tumbling, no key, ties kept, late bids on late_output), q5 (a sliding
#    window count, then top_n over its windows: window: input), a keyed sliding top 2
#    ascending with a rank_field, and a string order by an expression under a key
#    expression: exact at parallelism 1 and 2;
#  - split: every output equals the WHERE of its predicate, a record in two outputs, the
#    default output; without a default the unmatched records are counted;
#  - on a larger generated input (expected results from DuckDB): checkpoints every 50 ms
#    with injected failures at p1 and p2 (the job restarts from its latest checkpoint,
#    keyed state and timers restored), and a savepoint taken at p2 restored at p3 and p1
#    (keyed state redistributed by key group): exact.
# EDDY_TEST_STATE_BACKEND=leveldb runs every job on the LevelDB backend.
#
# usage: topn.sh EDDY SRC BUILD
set -u
eddy=$1; src=$2; build=$3; work=$build/topn${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
T=tests/jobs/topn
csv_compare=$src/../shared/tools/csv-compare
duckdb_sql=$src/../shared/tools/duckdb-sql
[ -x "$csv_compare" ] || fail "$csv_compare is needed to compare results"

# same EXPECTED ACTUAL: csv-compare (rows as multisets, numbers as numbers)
same() {
  "$csv_compare" "$1" "$2" > "$work/compare.out" 2>&1 || { cat "$work/compare.out"; return 1; }
}

# job NAME YAML [ARGS...]: runs a job with its out sink (and q7's late sink) in $work/NAME
job() {
  local name=$1 yaml=$2; shift 2
  rm -rf "$work/$name"
  local late=()
  [ "$(basename "$yaml")" = q7.yaml ] && late=(--set "sinks.late.path=$work/$name/late")
  run_job "$name" "$yaml" --control none --set "sinks.out.path=$work/$name/out" "${late[@]}" "$@"
}

# ---- the committed input is the generator's ----
python3 $T/gen_bids.py > "$work/bids.csv" || fail "gen_bids.py failed"
cmp -s "$work/bids.csv" $T/bids.csv || fail "$T/bids.csv is not what $T/gen_bids.py writes"
echo "ok: $T/bids.csv is gen_bids.py's ($(($(wc -l < $T/bids.csv) - 1)) bids)"

# ---- exact results at parallelism 1 and 2 ----
for par in 1 2; do
  for j in q7 q5 sliding string; do
    job $j-p$par $T/$j.yaml --set parallelism=$par
    same $T/$j.expected.csv "$work/$j-p$par/out" || fail "$j at parallelism $par"
    n=$(($(wc -l < $T/$j.expected.csv) - 1))
    echo "ok: $j, parallelism $par: exactly the $n expected rows"
  done
  same $T/q7-late.expected.csv "$work/q7-p$par/late" || fail "q7's late bids at parallelism $par"
  late=$(($(wc -l < $T/q7-late.expected.csv) - 1))
  [ "$late" -gt 0 ] || fail "the input has no late bid for q7"
  echo "ok: q7, parallelism $par: the $late late bids on late_output"
  # late bids without a late output are dropped and counted
  grep -q "400 records in, [0-9]* out, [1-9][0-9]* late dropped" "$work/sliding-p$par.stderr" ||
    { cat "$work/sliding-p$par.stderr"; fail "sliding: no late bid counted as dropped"; }
done

# ---- split ----
outs="persons auctions bids big_bids other"
split_job() { # split_job NAME [ARGS...]
  local name=$1; shift
  local sets=()
  for o in $outs; do sets+=(--set "sinks.$o.path=$work/$name/$o"); done
  rm -rf "$work/$name"
  run_job "$name" $T/split.yaml --control none "${sets[@]}" "$@"
}
for par in 1 2; do
  split_job split-p$par --set parallelism=$par
  for o in $outs; do
    same $T/split-$o.expected.csv "$work/split-p$par/$o" || fail "split p$par: output $o"
  done
  echo "ok: split, parallelism $par: persons, auctions, bids, big_bids (also in bids) and the default other are DuckDB's WHERE"
done
unmatched=$(($(wc -l < $T/split-other.expected.csv) - 1))
[ "$unmatched" -gt 0 ] || fail "split: the input has no record matching no output"
split_job split-nodefault --set operators.kinds.default= --set sinks.other.input=kinds.persons
grep -q "60 records in, .* $unmatched unmatched by a split$" "$work/split-nodefault.stderr" ||
  { cat "$work/split-nodefault.stderr"; fail "split without a default: the $unmatched unmatched records are not counted"; }
for o in persons auctions bids big_bids; do
  same $T/split-$o.expected.csv "$work/split-nodefault/$o" || fail "split without default: output $o"
done
echo "ok: split without a default: the $unmatched records matching no output are dropped and counted"

# ---- a larger input: checkpoints with injected failures, a savepoint rescaled ----
if [ ! -x "$duckdb_sql" ]; then
  echo "skipped: the larger input (no $duckdb_sql for its expected results)"
  echo "PASS: topn"
  exit 0
fi
big=$work/big.csv
python3 $T/gen_bids.py --rows 300000 --seed 2 > "$big" || fail "generating $big"
mkdir -p "$work/big"
DUCKDB_SQL=$duckdb_sql $T/make_expected.sh "$big" "$work/big" > /dev/null || fail "DuckDB on $big"
restores=0
for j in q7 sliding; do
  for par in 1 2; do
    seed=$par
    name=big-$j-p$par
    job $name $T/$j.yaml --set "sources.bids.path=$big" --set parallelism=$par \
      --set checkpoint.interval=50ms --set "checkpoint.dir=$work/$name/ck" \
      --set supervision.intensity=50 --inject-failures 5 --seed $seed
    same "$work/big/$j.expected.csv" "$work/$name/out" || fail "$name: wrong rows under injected failures"
    [ $j != q7 ] || same "$work/big/q7-late.expected.csv" "$work/$name/late" || fail "$name: wrong late bids"
    r=$(grep -c "restored from checkpoint" "$work/$name.stderr" || true)
    restores=$((restores + r))
    n=$(($(wc -l < "$work/big/$j.expected.csv") - 1))
    echo "ok: $j on 300,000 bids, parallelism $par, checkpoints, 5 injected failures (seed $seed, $r restores from checkpoints): exactly the $n expected rows"
  done
done
[ "$restores" -gt 0 ] || fail "no run restored from a checkpoint: the keyed state was not exercised"

# whole batches: the same bids in time order (none late), read in batches of 4,096, so
# a batch holds many rows of one (key, window) and each group's own top n (ties kept,
# rows better than the kept ones arriving later) is cut within the batch
sorted=$work/big-sorted.csv
{ head -1 "$big"; tail -n +2 "$big" | sort -s -t, -k1,1; } > "$sorted"
mkdir -p "$work/big-sorted"
DUCKDB_SQL=$duckdb_sql $T/make_expected.sh "$sorted" "$work/big-sorted" > /dev/null || fail "DuckDB on $sorted"
for j in sliding string q7; do
  for par in 1 2; do
    name=batched-$j-p$par
    job $name $T/$j.yaml --set "sources.bids.path=$sorted" --set parallelism=$par \
      --set sources.bids.batch_size=4096
    same "$work/big-sorted/$j.expected.csv" "$work/$name/out" || fail "$name: wrong rows"
    n=$(($(wc -l < "$work/big-sorted/$j.expected.csv") - 1))
    echo "ok: $j on the 300,000 bids in time order, batches of 4,096, parallelism $par: exactly the $n expected rows"
  done
done

name=savepoint
sp=$work/$name/sp
n=$(($(wc -l < "$work/big/sliding.expected.csv") - 1))
"$eddy" run $T/sliding.yaml --control none --set "sources.bids.path=$big" \
  --set "sinks.out.path=$work/$name/out" --set parallelism=2 --set checkpoint.interval=1s \
  --set "checkpoint.dir=$work/$name/ck" --stop-with-savepoint "$sp" > /dev/null 2> "$work/$name.stderr" &
pid=$!
stop_soon $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$work/$name.stderr"; fail "$name: stop with a savepoint exited $rc"; }
grep -q "savepoint [0-9]* written to $sp" "$work/$name.stderr" ||
  { cat "$work/$name.stderr"; fail "$name: no savepoint written (did the job end first?)"; }
at=$(cat "$work/$name"/out/part-* 2> /dev/null | grep -vc '^window_start' || true)
[ "$at" -lt "$n" ] || fail "$name: the job was not stopped before its end ($at rows)"
for par in 3 1; do
  run_job $name-p$par $T/sliding.yaml --control none --set "sources.bids.path=$big" \
    --set "sinks.out.path=$work/$name/out" --set parallelism=$par \
    --set "checkpoint.dir=$work/$name/ck" --restore "$sp"
  same "$work/big/sliding.expected.csv" "$work/$name/out" || fail "$name: restored at parallelism $par"
  echo "ok: savepoint at parallelism 2 ($at rows written), restored at parallelism $par: exactly the $n expected rows"
done

echo "PASS: topn"
