#!/usr/bin/env bash
# The issue's jobs on all 3,000,000 flights of ../shared/data when it is there (CI has
# it), compared with the expected results computed there with DuckDB. Says plainly on its
# output whether it ran.
set -u
eddy=$1; src=$2; work=$3/full_jobs
shared=${EDDY_SHARED:-$src/../shared}
data=$shared/data
if [ ! -r "$data/flights-3m.csv.gz" ]; then
  echo "SKIPPED: full-data job tests did NOT run: $data/flights-3m.csv.gz not found (set EDDY_SHARED)"
  exit 77
fi
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
hourly=$data/expected/flights_hourly_by_origin.csv.gz

ran() { echo "RAN: $1 ($(( ($(date +%s%N) - $2) / 1000000 )) ms)"; }

# the issue's job file as written (paths relative to the repository root)
t0=$(date +%s%N)
if [ "$(cd "$shared" && pwd)" = "$(cd "$src/../shared" 2>/dev/null && pwd)" ]; then  # its path is ../shared/...
  run_job as-written tests/jobs/issue3_hourly.yaml --set "sinks.out.path=$work/as-written/hourly" \
    --set "sinks.late.path=$work/as-written/late"
  same_rows "$hourly" "$work/as-written/hourly" || fail "the issue's job file as written"
  ran "the issue's job file as written (parallelism 2, flights-3m.csv.gz): 424,259 rows equal" "$t0"
fi

for p in 1 2; do
  for input in flights-3m flights-3m-disordered; do
    t0=$(date +%s%N)
    out=$work/hourly-$input-p$p
    run_job "hourly-$input-p$p" examples/flights_hourly.yaml --set parallelism=$p \
      --set "sources.flights.path=$data/$input.csv.gz" \
      --set "sinks.out.path=$out" --set "sinks.late.path=$work/late-$input-p$p"
    same_rows "$hourly" "$out" || fail "hourly job on $input.csv.gz at parallelism $p"
    ran "hourly by origin, $input.csv.gz, parallelism $p: 424,259 rows equal" "$t0"
  done
done

# a plain file split into byte ranges across the source's subtasks
zcat "$data/flights-3m-disordered.csv.gz" > "$work/disordered.csv"
t0=$(date +%s%N)
run_job hourly-plain examples/flights_hourly.yaml --set parallelism=2 \
  --set "sources.flights.path=$work/disordered.csv" \
  --set "sinks.out.path=$work/hourly-plain" --set "sinks.late.path=$work/late-plain"
same_rows "$hourly" "$work/hourly-plain" || fail "hourly job on the plain disordered file"
ran "hourly by origin, plain disordered CSV split across 2 subtasks: equal" "$t0"

# a stop mid-run (SIGINT) on the split file: whatever windows were written are complete ones
# (every row is a row of the full result); a stopped source holds the watermark back
for delay in 0.2 0.4; do
  out=$work/stopped-$delay
  "$eddy" run examples/flights_hourly.yaml --set parallelism=4 --set "sources.flights.path=$work/disordered.csv" \
    --set "sinks.out.path=$out" --set "sinks.late.path=$out-late" > /dev/null 2> "$work/stopped.stderr" &
  pid=$!
  sleep $delay
  kill -INT $pid
  rc=0; wait $pid || rc=$?
  [ $rc -eq 0 ] || { cat "$work/stopped.stderr"; fail "stop after ${delay}s: eddy exited $rc"; }
  zcat "$hourly" | tail -n +2 | LC_ALL=C sort > "$work/full.sorted"
  tail -q -n +2 "$out"/part-* | LC_ALL=C sort > "$work/stopped.sorted"
  extra=$(LC_ALL=C comm -13 "$work/full.sorted" "$work/stopped.sorted" | wc -l)
  [ "$extra" -eq 0 ] || fail "stop after ${delay}s: $extra incomplete or wrong window rows written"
  echo "RAN: SIGINT after ${delay}s at parallelism 4 on the split file: exit 0, $(wc -l < "$work/stopped.sorted") rows, all complete windows"
done
rm -f "$work/disordered.csv"

t0=$(date +%s%N)
run_job daily tests/jobs/daily_delayed.yaml --set parallelism=2 \
  --set "sources.flights.path=$data/flights-3m.csv.gz" --set "sinks.out.path=$work/daily"
same_rows "$data/expected/flights_daily_delayed_routes.csv.gz" "$work/daily" ||
  fail "daily delayed routes"
ran "delay > 15, daily by route: 269,276 rows equal" "$t0"

# late data: with a 1 minute bound on the disordered file some flights are late; every
# flight is either counted in a window or written to the late output, exactly once
t0=$(date +%s%N)
run_job late examples/flights_hourly.yaml --set parallelism=2 \
  --set "sources.flights.path=$data/flights-3m-disordered.csv.gz" \
  --set sources.flights.watermark.max_out_of_orderness=1m \
  --set "sinks.out.path=$work/late-hourly" --set "sinks.late.path=$work/late-late"
counted=$(tail -q -n +2 "$work"/late-hourly/part-* | awk -F, '{ s += $4 } END { print s }')
late=$(tail -q -n +2 "$work"/late-late/part-* | wc -l)
[ "$late" -gt 0 ] || fail "no late flights with a 1 minute bound"
[ $(( counted + late )) -eq 3000000 ] ||
  fail "late data: $counted flights in windows + $late late = $(( counted + late )), not 3000000"
ran "late data (1m bound): $counted in windows + $late late = 3,000,000" "$t0"
