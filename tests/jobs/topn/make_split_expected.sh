#!/usr/bin/env bash
# Computes the expected results of split.yaml with DuckDB (split.sql) into this folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sql="$(sed -e "s|@DIR@|$here|g" "$here/split.sql" | grep -v '^--')"
"${DUCKDB_SQL:-$here/../../../../shared/tools/duckdb-sql}" "$sql"
