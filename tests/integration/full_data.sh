#!/usr/bin/env bash
# The example job on all 3,000,000 flights of ../shared/data, when it is there.
set -u
eddy=$1; src=$2; build=$3
shared=${EDDY_SHARED:-$src/../shared}
data=$shared/data/flights-3m.csv.gz
if [ ! -r "$data" ]; then
  echo "SKIPPED: full-data test did NOT run: $data not found (set EDDY_SHARED)"
  exit 77
fi
for input in "$data" "$shared/data/flights-3m-disordered.csv.gz"; do
  out=$build/full_$(basename "$input" .csv.gz).csv
  start=$(date +%s%N)
  "$eddy" demo "$input" > "$out" || { echo "FAIL: eddy demo $input exited $?"; exit 1; }
  cmp -s "$src/tests/data/flights-3m.origin-counts.expected.csv" "$out" ||
    { echo "FAIL: $out differs from tests/data/flights-3m.origin-counts.expected.csv"; exit 1; }
  echo "RAN: full-data test on $input: 229 origins equal DuckDB's ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
done
