#!/usr/bin/env bash
# The join operator (operators/join.c) against DuckDB's answers (tests/data/join/expected.sh):
#  - the committed inputs are what tests/data/join/gen.py writes, and (with DuckDB) the
#    committed expected files are what expected.sh computes now;
#  - window joins (tumbling, sliding, session), the interval join with a where, the
#    regular join on two keys and with a ttl: exact at parallelism 1 and 2;
#  - late data: a self-join of one disordered stream (window with allowed lateness,
#    interval): the pairs of the on-time elements and exactly the late elements on each
#    late output; without late outputs the late elements are counted as dropped;
#  - on a generated input of 400,000 elements (expected results from DuckDB): checkpoints
#    every 50 ms with 5 injected failures at p1 and p2 (restores from checkpoints), and a
#    savepoint taken at p2 restored at p3 and p1: exact.
# EDDY_TEST_STATE_BACKEND=leveldb runs it all on LevelDB (ctest join_leveldb).
#
# usage: join.sh EDDY SRC BUILD
set -u
eddy=$1; src=$2; build=$3; work=$build/join${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
D=tests/data/join
J=tests/jobs/join
csv_compare=$src/../shared/tools/csv-compare
duckdb_sql=$src/../shared/tools/duckdb-sql

# same EXPECTED DIR: the part files in DIR hold exactly the expected rows (csv-compare:
# numbers as numbers; without it, as text)
same() {
  if [ -x "$csv_compare" ]; then
    "$csv_compare" "$1" "$2" > "$work/compare.out" || { cat "$work/compare.out"; return 1; }
    return 0
  fi
  same_rows "$1" "$2"
}

rows() { echo $(($(wc -l < "$1") - 1)); }

# ---- the committed inputs and expected results ----
mkdir -p "$work/gen"
python3 $D/gen.py two --out "$work/gen" && python3 $D/gen.py late --rows 1500 --keys 10 \
  --span 1800 --out "$work/gen" || fail "gen.py failed"
for f in left right events; do
  cmp -s "$work/gen/$f.csv" $D/$f.csv || fail "$D/$f.csv is not what $D/gen.py writes"
done
echo "ok: the committed inputs are gen.py's"
if [ -x "$duckdb_sql" ]; then
  DUCKDB_SQL=$duckdb_sql $D/expected.sh $D "$work/gen" || fail "expected.sh failed"
  for f in $D/*.expected.csv; do
    cmp -s "$f" "$work/gen/${f##*/}" || fail "$f is not what $D/expected.sh computes"
  done
  echo "ok: the committed expected files are DuckDB's (expected.sh)"
fi

# ---- the jobs at parallelism 1 and 2 ----
for q in tumbling sliding session interval regular ttl; do
  for par in 1 2; do
    run_job $q-p$par $J/$q.yaml --control none --set parallelism=$par \
      --set "sinks.out.path=$work/$q-p$par"
    same $D/$q.expected.csv "$work/$q-p$par" || fail "$q at parallelism $par"
  done
  echo "ok: $q: exactly the $(rows $D/$q.expected.csv) expected pairs at parallelism 1 and 2"
done

# ---- late data ----
for k in window interval; do
  nlate=$(rows $D/late_${k}_late.expected.csv)
  for par in 1 2; do
    name=late-$k-p$par
    run_job $name $J/late_$k.yaml --control none --set parallelism=$par \
      --set "sinks.out.path=$work/$name" --set "sinks.late_l.path=$work/$name-l" \
      --set "sinks.late_r.path=$work/$name-r"
    same $D/late_$k.expected.csv "$work/$name" || fail "$name: pairs"
    same $D/late_${k}_late.expected.csv "$work/$name-l" || fail "$name: left late output"
    same $D/late_${k}_late.expected.csv "$work/$name-r" || fail "$name: right late output"
  done
  echo "ok: late $k join: the $(rows $D/late_$k.expected.csv) pairs of on-time elements, the $nlate late elements on both late outputs (p1, p2)"
  name=late-$k-dropped
  run_job $name $J/late_$k.yaml --control none --set operators.j.late_output.left= \
    --set operators.j.late_output.right= \
    --set sinks.late_l.input=j --set sinks.late_r.input=j --set "sinks.out.path=$work/$name" \
    --set "sinks.late_l.path=$work/$name-l" --set "sinks.late_r.path=$work/$name-r"
  same $D/late_$k.expected.csv "$work/$name" || fail "$name: pairs"
  grep -qE "1500 records in, [0-9]+ out, $((2 * nlate)) late dropped," "$work/$name.stderr" ||
    { cat "$work/$name.stderr"; fail "$name: want $((2 * nlate)) late dropped (each late element on both sides)"; }
  echo "ok: late $k join without late outputs: $((2 * nlate)) late elements dropped and counted"
done

# ---- a larger input: checkpoints, injected failures, savepoints ----
if [ ! -x "$duckdb_sql" ]; then
  echo "skipped: the larger input (no $duckdb_sql for its expected results)"
  echo "PASS: join"
  exit 0
fi
big=$work/big
mkdir -p "$big"
python3 $D/gen.py two --rows 200000 --keys 5000 --span 86400 --seed 3 --out "$big" ||
  fail "gen.py (larger input)"
DUCKDB_SQL=$duckdb_sql $D/expected.sh "$big" "$big" tumbling interval ttl || fail "expected.sh (larger input)"
bigset=(--set "sources.left.path=$big/left.csv" --set "sources.right.path=$big/right.csv")
# sources cannot change their parallelism across a savepoint: 2 in every run that uses one
spset=(--set sources.left.parallelism=2 --set sources.right.parallelism=2)
restores=0
for q in tumbling interval ttl; do
  for par in 1 2; do
    name=inject-$q-p$par
    run_job $name $J/$q.yaml --control none "${bigset[@]}" --set parallelism=$par \
      --set "sinks.out.path=$work/$name" --set checkpoint.interval=50ms \
      --set "checkpoint.dir=$work/$name-ck" --set supervision.intensity=50 \
      --inject-failures 5 --seed $par
    same "$big/$q.expected.csv" "$work/$name" || fail "$name: wrong pairs under injected failures"
    r=$(grep -c "restored from checkpoint" "$work/$name.stderr" || true)
    restores=$((restores + r))
    echo "ok: $q, 400,000 elements, parallelism $par, 5 injected failures ($r restores from checkpoints): exactly the $(rows "$big/$q.expected.csv") expected pairs"
  done
done
[ "$restores" -gt 0 ] || fail "no run restored from a checkpoint: the join's keyed state was not exercised"

# a savepoint at parallelism 2, restored at 3 and 1 (keyed state by key group)
for q in tumbling ttl; do
  name=savepoint-$q
  sp=$work/$name-sp
  "$eddy" run $J/$q.yaml --control none "${bigset[@]}" "${spset[@]}" --set parallelism=2 \
    --set "sinks.out.path=$work/$name" --set checkpoint.interval=1s \
    --set "checkpoint.dir=$work/$name-ck" --stop-with-savepoint "$sp" \
    > /dev/null 2> "$work/$name.stderr" &
  pid=$!
  stop_soon $pid
  rc=0; wait $pid || rc=$?
  [ $rc -eq 0 ] || { cat "$work/$name.stderr"; fail "$name: stop with a savepoint exited $rc"; }
  grep -q "savepoint [0-9]* written to $sp" "$work/$name.stderr" ||
    { cat "$work/$name.stderr"; fail "$name: no savepoint written (did the job end first?)"; }
  at=$(cat "$work/$name"/part-* 2> /dev/null | grep -vc '^l_k' || true)
  want=$(rows "$big/$q.expected.csv")
  [ "$at" -lt "$want" ] || fail "$name: the job was not stopped before its end ($at pairs)"
  for par in 3 1; do
    run_job $name-p$par $J/$q.yaml --control none "${bigset[@]}" "${spset[@]}" --set parallelism=$par \
      --set "sinks.out.path=$work/$name" --set "checkpoint.dir=$work/$name-ck" --restore "$sp"
    same "$big/$q.expected.csv" "$work/$name" || fail "$name: restored at parallelism $par"
    echo "ok: $q: savepoint at parallelism 2 ($at pairs written), restored at parallelism $par: exactly the $want expected pairs"
  done
done

echo "PASS: join"
