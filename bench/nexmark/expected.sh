#!/usr/bin/env bash
# bench/nexmark/expected.sh: DuckDB's answers to the Nexmark queries over the CSV files of
# `eddy nexmark-gen`, written as eddy's file sink writes its rows, so that they can be compared
# with eddy's output (with ../shared/tools/csv-compare, or as text).
#
# Usage: bench/nexmark/expected.sh DATA OUTDIR [QUERY ...]
#   DATA     the directory holding persons.csv, auctions.csv and bids.csv
#   OUTDIR   receives QUERY.csv per query (header, then rows in DuckDB's order)
#   QUERY    names of bench/nexmark/sql/QUERY.sql (default: q0 q1 q2 q3 q4 q5 q7 q7_top1 q8)
# Environment: DUCKDB_SQL (default ../shared/tools/duckdb-sql relative to the repository, or
# $EDDY_SHARED/tools/duckdb-sql).
#
# The tables come from sql/tables.sql, each query from sql/QUERY.sql, unchanged (the same files
# the Flink peer's check runs). Only the text of the result is adapted to eddy's CSV writer:
# DuckDB writes every timestamp with milliseconds (TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%g'),
# and a `.000` is then removed, as eddy writes `.mmm` only when the milliseconds are not zero.
# Exit: 0, or 1 when DuckDB fails, 2 bad arguments.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
duckdb_sql=${DUCKDB_SQL:-${EDDY_SHARED:-$root/../shared}/tools/duckdb-sql}
(($# >= 2)) || { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
data=$1 out=$2
shift 2
queries=("$@")
((${#queries[@]})) || queries=(q0 q1 q2 q3 q4 q5 q7 q7_top1 q8)
[[ -d $data ]] || { echo "expected.sh: $data: no such directory" >&2; exit 2; }
[[ -x $duckdb_sql ]] || { echo "expected.sh: $duckdb_sql is missing (set DUCKDB_SQL or EDDY_SHARED)" >&2; exit 2; }
for q in "${queries[@]}"; do
	[[ -f $here/sql/$q.sql ]] || { echo "expected.sh: no $here/sql/$q.sql" >&2; exit 2; }
done
data=$(cd "$data" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
[[ $data$out != *"'"* ]] || { echo "expected.sh: paths must not contain a quote" >&2; exit 2; }

stmts=("$(sed "s|\${DATA}|$data|g" "$here/sql/tables.sql")")
for q in "${queries[@]}"; do
	stmts+=("COPY ($(grep -v '^[[:space:]]*--' "$here/sql/$q.sql" | sed 's/;[[:space:]]*$//')) TO '$out/$q.duckdb.csv' (HEADER, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%g')")
done
"$duckdb_sql" "${stmts[@]}" > /dev/null || { echo "expected.sh: DuckDB failed" >&2; exit 1; }
for q in "${queries[@]}"; do
	# a timestamp field ends in .000: drop it (repeated, as two fields may touch)
	sed -E ':a; s/(^|,)([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})\.000(,|$)/\1\2\3/; ta' \
		"$out/$q.duckdb.csv" > "$out/$q.csv"
	rm -f "$out/$q.duckdb.csv"
done
