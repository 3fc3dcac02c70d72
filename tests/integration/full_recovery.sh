#!/usr/bin/env bash
# Exactly-once recovery on all 3,000,000 flights of ../shared/data when it is there (CI
# has it): the hourly-by-origin job (examples/flights_hourly.yaml) with a checkpoint every
# 200 ms and the two-phase-commit file sink
#  - with --inject-failures 10 at parallelism 1 and 2, on the ordered and the disordered
#    file: the committed output equals flights_hourly_by_origin.csv.gz exactly;
#  - killed with kill -9 in the middle, then --restore latest: exactly the expected rows.
# Keyed state is in memory, or on LevelDB with EDDY_TEST_STATE_BACKEND=leveldb
# (ctest: recovery_full_data_leveldb).
# Says plainly on its output whether it ran.
set -u
eddy=$1; src=$2; work=$3/full_recovery${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
shared=${EDDY_SHARED:-$src/../shared}
data=$shared/data
if [ ! -r "$data/flights-3m.csv.gz" ]; then
  echo "SKIPPED: full-data recovery tests did NOT run: $data/flights-3m.csv.gz not found (set EDDY_SHARED)"
  exit 77
fi
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
hourly=$data/expected/flights_hourly_by_origin.csv.gz
ran() { echo "RAN: $1 ($(( ($(date +%s%N) - $2) / 1000000 )) ms)"; }

ckpt() { # the job with checkpoints every 200 ms into $work/$1
  echo --control none --set "sinks.out.path=$work/$1/out" --set "sinks.late.path=$work/$1/late" \
    --set checkpoint.interval=200ms --set "checkpoint.dir=$work/$1/ck" --set supervision.intensity=50
}

for p in 1 2; do
  for input in flights-3m flights-3m-disordered; do
    t0=$(date +%s%N)
    name=inject-$input-p$p
    # shellcheck disable=SC2046
    run_job $name examples/flights_hourly.yaml $(ckpt $name) --set parallelism=$p \
      --set "sources.flights.path=$data/$input.csv.gz" --inject-failures 10 --seed $p
    same_rows "$hourly" "$work/$name/out" || fail "$name: committed output after 10 injected failures"
    n=$(grep -c "restored from checkpoint" "$work/$name.stderr" || true)
    ran "hourly by origin, $input.csv.gz, parallelism $p, 10 injected failures ($n job restores from checkpoints): 424,259 rows equal" "$t0"
  done
done

t0=$(date +%s%N)
name=kill9
zcat "$data/flights-3m-disordered.csv.gz" > "$work/disordered.csv"
# shellcheck disable=SC2046
"$eddy" run examples/flights_hourly.yaml $(ckpt $name) --set parallelism=2 \
  --set "sources.flights.path=$work/disordered.csv" > /dev/null 2> "$work/$name.crash.stderr" &
pid=$!
# the plain file split over 2 subtasks takes ~0.5 s: kill it once a checkpoint exists
for _ in $(seq 200); do ls "$work/$name/ck"/chk-*/MANIFEST > /dev/null 2>&1 && break; sleep 0.01; done
kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null
ls "$work/$name/ck"/chk-*/MANIFEST > /dev/null 2>&1 || fail "$name: no checkpoint before the kill"
# shellcheck disable=SC2046
run_job $name examples/flights_hourly.yaml $(ckpt $name) --set parallelism=2 \
  --set "sources.flights.path=$work/disordered.csv" --restore latest
same_rows "$hourly" "$work/$name/out" || fail "$name: committed output after kill -9 and --restore latest"
ran "kill -9 after the first checkpoint, --restore latest: 424,259 rows equal, no duplicate, none missing" "$t0"
