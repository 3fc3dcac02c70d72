#!/usr/bin/env bash
# bench/topn/run.sh: the top_n operator's throughput at parallelism 1 on a generated
# input of N bids (default 5,000,000; 1,000 bids per second of event time, 500
# auctions, prices 0..9999 with ties), plain CSV read by one file source, best of R runs:
#   - source: the same job with a filter that keeps nothing (reading and parsing alone);
#   - q7: per 10 s tumbling window the highest bids, ties kept (no key: one group per
#     window, Nexmark q7's shape);
#   - keyed: per auction and 10 s tumbling window the 3 highest bids (many small groups:
#     a state read and write per bid);
# events/s = N / the job's wall time as `eddy run` reports it. Each result is checked
# against DuckDB (../shared/tools/duckdb-sql) when it is there.
# Last lines: BENCH topn.* ...
# Usage: bench/topn/run.sh [--rows N] [--runs R] [--build DIR] [--backend memory|leveldb]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
rows=5000000 runs=3 build=$root/build backend=memory
while (($#)); do
	case $1 in
	--rows) rows=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--build) build=${2:?}; shift 2 ;;
	--backend) backend=${2:?}; shift 2 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
eddy=$build/tools/eddy
[ -x "$eddy" ] || { echo "run.sh: build first (need $eddy)" >&2; exit 2; }
duckdb_sql=$root/../shared/tools/duckdb-sql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# bids in event-time order, epoch ms from 2024-01-01 00:00:00 UTC
awk -v n="$rows" 'BEGIN { print "date_time,auction,bidder,price,channel";
  split("apple Google facebook baidu", ch, " ");
  for (i = 0; i < n; i++)
    printf "%.0f,%d,%d,%d,%s\n", 1704067200000 + i, (i * 7919) % 500 + 1, (i * 31) % 100000,
      (i * 104729) % 10000, ch[i % 4 + 1] }' > "$work/bids.csv"
echo "input: $rows bids, $(($(stat -c %s "$work/bids.csv") / 1048576)) MiB, $(nproc) cores, backend $backend"

job() { # job NAME OPERATOR-YAML: a job file reading the bids into that operator
	cat > "$work/$1.yaml" <<YAML
job: $1
parallelism: 1
state: {backend: $backend}
sources:
  - id: bids
    connector: file
    path: $work/bids.csv
    header: true
    schema: {date_time: timestamp, auction: int, bidder: int, price: int, channel: string}
    watermark: {event_time: date_time, max_out_of_orderness: 0ms}
operators:
$2
sinks:
  - {id: out, connector: file, input: op, path: $work/out-$1}
YAML
}
job source '  - {id: op, type: filter, input: bids, where: price < 0}'
job q7 '  - {id: op, type: top_n, input: bids, order_by: price, order: desc, n: 1, window: {type: tumbling, size: 10s}}'
job keyed '  - {id: op, type: top_n, input: bids, key_by: auction, order_by: price, order: desc, n: 3, window: {type: tumbling, size: 10s}}'

for name in source q7 keyed; do
	best=
	for ((r = 0; r < runs; r++)); do
		"$eddy" run "$work/$name.yaml" --control none 2> "$work/$name.stderr" > /dev/null ||
			{ cat "$work/$name.stderr"; exit 1; }
		s=$(sed -n 's/.* finished in \([0-9.]*\) s:.*/\1/p' "$work/$name.stderr")
		best=$(awk -v a="${best:-1e9}" -v b="$s" 'BEGIN { print (b < a ? b : a) }')
	done
	eps=$(awk -v n="$rows" -v s="$best" 'BEGIN { printf "%.0f", n / s }')
	out=$(for f in "$work"/out-$name/part-*; do tail -n +2 "$f"; done | wc -l)
	check=unchecked
	if [ -x "$duckdb_sql" ] && [ $name != source ]; then
		part="PARTITION BY ws"
		[ $name = keyed ] && part="PARTITION BY ws, auction"
		n=1
		[ $name = keyed ] && n=3
		want=$("$duckdb_sql" "SELECT count(*) AS c FROM (SELECT rank() OVER ($part ORDER BY price DESC) AS r FROM (SELECT *, date_time // 10000 AS ws FROM read_csv('$work/bids.csv', header=true, columns={'date_time':'BIGINT','auction':'BIGINT','bidder':'BIGINT','price':'BIGINT','channel':'VARCHAR'}))) WHERE r <= $n" | sed 's/[^0-9]//g')
		[ "$want" = "$out" ] && check=checked || { echo "run.sh: $name wrote $out rows, DuckDB says $want" >&2; exit 1; }
	fi
	echo "BENCH topn.$name backend=$backend rows=$rows seconds=$best eps=$eps out_rows=$out ($check)"
done
