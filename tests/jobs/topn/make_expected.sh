#!/usr/bin/env bash
# Computes the expected results of the top_n jobs with DuckDB (expected.sql).
# usage: make_expected.sh [INPUT OUTDIR]   (default: bids.csv into this folder)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
input="$(realpath "${1:-$here/bids.csv}")"
out="$(realpath "${2:-$here}")"
sql="$(sed -e "s|@INPUT@|$input|g" -e "s|@OUT@|$out|g" "$here/expected.sql" | grep -v '^--')"
"${DUCKDB_SQL:-$here/../../../../shared/tools/duckdb-sql}" "$sql"
