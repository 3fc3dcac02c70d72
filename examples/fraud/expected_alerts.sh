#!/usr/bin/env bash
# Computes the fraud example's expected alerts with DuckDB, independently of eddy:
# for each transaction, the previous one of its account (LAG over account, time); an
# alert is a previous amount < 1.00, this amount > 500.00, at most 60 s apart (the flag
# set by the small one lives until the watermark passes small + 60 s; any transaction
# of the account clears it, so only the previous one counts).
#
# usage: examples/fraud/expected_alerts.sh [INPUT.csv [OUTPUT.csv]]
#   defaults: examples/fraud/transactions.csv -> examples/fraud/expected_alerts.csv
# Needs ../shared/tools/duckdb-sql (or DUCKDB_SQL=path).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
in=$(realpath "${1:-$here/transactions.csv}")
out=$(realpath -m "${2:-$here/expected_alerts.csv}")
sql=${DUCKDB_SQL:-$here/../../../shared/tools/duckdb-sql}
"$sql" "COPY (
  WITH t AS (
    SELECT * FROM read_csv('$in', header = true,
      columns = {'time': 'TIMESTAMP', 'account_id': 'BIGINT', 'amount': 'DOUBLE'})),
  p AS (
    SELECT account_id, time, amount,
           LAG(time) OVER w AS prev_time, LAG(amount) OVER w AS prev_amount
    FROM t WINDOW w AS (PARTITION BY account_id ORDER BY time))
  SELECT account_id, prev_time AS small_time, prev_amount AS small_amount,
         time AS large_time, amount AS large_amount
  FROM p
  WHERE prev_amount < 1.00 AND amount > 500.00 AND time - prev_time <= INTERVAL 60 SECOND
  ORDER BY large_time, account_id
) TO '$out' (HEADER)" > /dev/null
