#!/usr/bin/env bash
# bench/peers/flink/check.sh: checks that the Flink peer computes the same results as DuckDB.
# For each query it runs the peer with --out (the query's final result: its changelog applied)
# over the CSV files in DIR, runs the DuckDB SQL of bench/nexmark/sql/qN.sql over the same files
# (tables from bench/nexmark/sql/tables.sql, with ../shared/tools/duckdb-sql), compares the two
# as multisets of rows with ../shared/tools/csv-compare, and prints per query
#   qN OK   (rows)      or      qN DIFF   (followed by csv-compare's first differences)
# Last line: CHECK flink ok=K diff=D.
#
# Usage: bench/peers/flink/check.sh --data DIR [--parallelism P] [--keep DIR] [qN ...]
#   --data DIR         the directory written by `eddy nexmark-gen --out DIR` (100 k events is enough)
#   --parallelism P    the peer's parallelism (default 2: results must not depend on it)
#   --keep DIR         write both results to DIR/flink/qN.csv and DIR/duckdb/qN.csv and keep them
#   qN ...             queries among q0 q1 q2 q3 q4 q5 q7 q8 (default all)
# Exit: 0 all OK, 1 a DIFF or a failed run, 2 bad arguments.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
shared=${EDDY_SHARED:-$root/../shared}
sqldir=$root/bench/nexmark/sql
# shellcheck source=lib.sh
. "$here/lib.sh"

data= par=2 keep= queries=()
while (($#)); do
	case $1 in
	--data) data=${2:?--data needs a directory}; shift 2 ;;
	--parallelism) par=${2:?--parallelism needs a number}; shift 2 ;;
	--keep) keep=${2:?--keep needs a directory}; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	q[0-9]*) queries+=("$1"); shift ;;
	*) echo "check.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ -n $data ]] || { echo "check.sh: --data DIR is required" >&2; exit 2; }
[[ -d $data ]] || { echo "check.sh: --data $data: no such directory" >&2; exit 2; }
data=$(cd "$data" && pwd)
[[ $par =~ ^[1-9][0-9]*$ ]] || { echo "check.sh: --parallelism $par: expected a number" >&2; exit 2; }
((${#queries[@]})) || queries=(q0 q1 q2 q3 q4 q5 q7 q8)
for q in "${queries[@]}"; do
	[[ -f $sqldir/$q.sql ]] || { echo "check.sh: unknown query $q (no $sqldir/$q.sql)" >&2; exit 2; }
done
for t in csv-compare duckdb-sql; do
	[[ -x $shared/tools/$t ]] || { echo "check.sh: $shared/tools/$t is missing (set EDDY_SHARED)" >&2; exit 2; }
done
[[ $data != *"'"* ]] || { echo "check.sh: --data must not contain a quote" >&2; exit 2; }

if [[ -n $keep ]]; then
	mkdir -p "$keep"
	work=$(cd "$keep" && pwd)
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/flink" "$work/duckdb"

# DuckDB: the tables once, then one COPY per query; timestamps as the peer writes them.
stmts=("$(sed "s|\${DATA}|$data|g" "$sqldir/tables.sql")")
for q in "${queries[@]}"; do
	stmts+=("COPY ($(grep -v '^[[:space:]]*--' "$sqldir/$q.sql" | sed 's/;[[:space:]]*$//')) TO '$work/duckdb/$q.csv' (HEADER, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%g')")
done
"$shared/tools/duckdb-sql" "${stmts[@]}" >/dev/null

flink_build
ok=0 diff=0
for q in "${queries[@]}"; do
	log=$work/flink/$q.log
	if ! flink_java --data "$data" --query "$q" --parallelism "$par" --out "$work/flink/$q.csv" >"$log.out" 2>"$log"; then
		echo "$q DIFF (the Flink run failed; the end of its log:)"
		tail -n 20 "$log" | sed 's/^/    /'
		diff=$((diff + 1))
		continue
	fi
	if res=$("$shared/tools/csv-compare" "$work/duckdb/$q.csv" "$work/flink/$q.csv" 2>&1); then
		echo "$q OK   ($(sed -n 's/^equal: \([0-9]*\) rows.*/\1/p' <<<"$res") rows)"
		ok=$((ok + 1))
	else
		echo "$q DIFF"
		sed 's/^/    /' <<<"$res" | head -n 25
		diff=$((diff + 1))
	fi
done
echo "CHECK flink ok=$ok diff=$diff"
((diff == 0))
