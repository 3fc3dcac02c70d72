#!/usr/bin/env bash
# bench/join/run.sh: events/s of the join operator at parallelism 1 on generated inputs of
# 2,000,000 elements (1,000,000 per side, tests/data/join/gen.py, one day of event time,
# at most 20 s out of order):
#   window  tests/jobs/join/tumbling.yaml (1-minute windows, 5,000 keys)
#   regular tests/jobs/join/regular.yaml (keys (k, tag), 500,000 values of k: ~2 M pairs)
#   interval tests/jobs/join/interval.yaml (5,000 keys)
# on the memory backend (and LevelDB with --leveldb). The inputs are generated once into
# DIR (default build/bench-join). Output goes to DIR/out-*; its row count is printed.
#
# Usage: bench/join/run.sh [--runs N] [--dir DIR] [--leveldb]
# Lines: BENCH join.QUERY backend=B events=2000000 seconds=S eddy_p1_eps=E pairs=P
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=3 dir=$root/build/bench-join backends=memory
while (($#)); do
	case $1 in
	--runs) runs=${2:?}; shift 2 ;;
	--dir) dir=${2:?}; shift 2 ;;
	--leveldb) backends="memory leveldb"; shift ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
eddy=$root/build/tools/eddy
[[ -x $eddy ]] || { echo "run.sh: build eddy first ($eddy)" >&2; exit 1; }
gen=$root/tests/data/join/gen.py
mkdir -p "$dir/k5000" "$dir/k500000"
[[ -s $dir/k5000/right.csv ]] ||
	python3 "$gen" two --rows 1000000 --keys 5000 --span 86400 --seed 7 --out "$dir/k5000"
[[ -s $dir/k500000/right.csv ]] ||
	python3 "$gen" two --rows 1000000 --keys 500000 --span 86400 --seed 7 --out "$dir/k500000"
cd "$root"
for backend in $backends; do
	for q in tumbling:k5000 regular:k500000 interval:k5000; do
		name=${q%%:*} in=$dir/${q#*:}
		best=
		for ((i = 0; i < runs; i++)); do
			t0=$(date +%s.%N)
			"$eddy" run tests/jobs/join/$name.yaml --control none --set parallelism=1 \
				--set "sources.left.path=$in/left.csv" --set "sources.right.path=$in/right.csv" \
				--set "sinks.out.path=$dir/out-$name" --set "state.backend=$backend" \
				2> "$dir/$name.stderr" > /dev/null
			t1=$(date +%s.%N)
			s=$(echo "$t1 - $t0" | bc)
			[[ -z $best ]] || (($(echo "$s < $best" | bc))) && best=$s
		done
		pairs=$(cat "$dir/out-$name"/part-* | grep -vc '^l_k' || true)
		printf 'BENCH join.%s backend=%s events=2000000 seconds=%.3f eddy_p1_eps=%.0f pairs=%s\n' \
			"$name" "$backend" "$best" "$(echo "2000000 / $best" | bc -l)" "$pairs"
	done
done
