#!/usr/bin/env bash
# The Nexmark generator's speed: `eddy nexmark-gen` writing the CSV files of EVENTS events
# (default 10 M) into a scratch directory, and the nexmark source (kind bid and all, p1 and
# p2) into a filter that drops everything. Prints BENCH lines; best of 3 runs each.
# usage: bench/nexmark_source/run.sh [EVENTS]   (from the repository root, after a build)
set -eu
events=${1:-10000000}
eddy=${EDDY:-build/tools/eddy}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
best() { sort -g | head -1; }
secs() { # secs CMD...: wall seconds of one run
  local t0 t1
  t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
s=$(for i in 1 2 3; do secs "$eddy" nexmark-gen --events "$events" --seed 1 --out "$tmp/gen"; done | best)
echo "BENCH nexmark.gen events=$events seconds=$s eps=$(echo "$events / $s" | bc) bytes=$(cat "$tmp"/gen/*.csv | wc -c)"
rm -rf "$tmp/gen"
for kind in bid all; do
  for par in 1 2; do
    s=$(for i in 1 2 3; do secs "$eddy" run bench/nexmark_source/discard.yaml --control none \
      --set sources.events.kind=$kind --set sources.events.events=$events --set parallelism=$par; done | best)
    echo "BENCH nexmark.source kind=$kind parallelism=$par events=$events seconds=$s eps=$(echo "$events / $s" | bc)"
  done
done
