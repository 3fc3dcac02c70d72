#!/usr/bin/env bash
# Makes the expected results of the Nexmark queries (bench/nexmark/qN.yaml) on the committed
# sample tests/data/nexmark/ with DuckDB: bench/nexmark/expected.sh runs the SQL of
# bench/nexmark/sql/ (tables.sql, then qN.sql per query) and writes qN.csv here in eddy's
# text (timestamps without .000). Run from anywhere; needs ../shared/tools/duckdb-sql (or
# DUCKDB_SQL / EDDY_SHARED). tests/integration/nexmark_queries.sh checks that these files are
# still what this makes, whenever DuckDB is there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../../../../bench/nexmark/expected.sh" "$here/.." "$here" "$@"
