#!/usr/bin/env bash
# Whole jobs on the bundled 50,000-flight sample (the example job files among them), each compared with the result DuckDB
# computed independently (tests/jobs/expected.sql): tumbling, sliding, session and count
# windows, filter + map, filter + window; at parallelism 1 and 2, from .gz and from a
# plain file split across subtasks.
set -u
eddy=$1; src=$2; work=$3/jobs${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
zcat examples/data/flights-50k.csv.gz > "$work/flights-50k.csv"

# the job file of each test: the examples are tested as they are shipped
job_file() {
  case $1 in
  hourly | sliding | filter_map) echo "examples/flights_$1.yaml" ;;
  session) echo examples/flights_sessions.yaml ;;
  *) echo "tests/jobs/$1.yaml" ;;
  esac
}

check() { # check NAME JOB [--set ...]
  local name=$1 job=$2; shift 2
  local out=$work/out-$name
  local late=()
  [ "$job" = hourly ] && late=(--set "sinks.late.path=$work/late-$name")
  run_job "$name" "$(job_file "$job")" --set "sinks.out.path=$out" "${late[@]}" "$@"
  same_rows "tests/jobs/$job.expected.csv" "$out" || fail "$name"
  echo "ok: $name"
}

for p in 1 2; do
  for job in hourly sliding session count filter_map daily_delayed map_strings keyless join_values; do
    check "$job-p$p" "$job" --set parallelism=$p
  done
  # a plain file is split into 1 MiB blocks across the source's subtasks
  check "hourly-plain-p$p" hourly --set parallelism=$p --set "sources.flights.path=$work/flights-50k.csv"
done
check "hourly-p3-source-p1" hourly --set parallelism=3 --set sources.flights.parallelism=1

echo "all job tests passed"
