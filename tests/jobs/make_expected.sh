#!/usr/bin/env bash
# Recomputes the expected results of the job tests with DuckDB (see expected.sql).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
sql="$(sed "s|@ROOT@|$root|g" "$root/tests/jobs/expected.sql" | grep -v '^--')"
"${DUCKDB_SQL:-$root/../shared/tools/duckdb-sql}" "$sql"
