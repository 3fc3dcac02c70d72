#!/usr/bin/env bash
# The expected results of the Nexmark baseline's test (tests/integration/nexmark_baseline.sh),
# computed by DuckDB independently of bench/nexmark/baseline.c.
#
#   expected.sh BIDS.csv OUT_PREFIX [QUERY ...]
#
# Writes OUT_PREFIX.QUERY.expected.csv for each QUERY among q0 q5 q7 q5w q7w (default: q5 q7
# q5w q7w; q5w and q7w are q5 and q7 with the window's window_start,window_end first), rows
# sorted. BIDS.csv is a bids file of `eddy nexmark-gen` (no header, no quoting, dateTime
# 'YYYY-MM-DD HH:MM:SS.mmm'). DUCKDB_SQL overrides the tool (default ../shared/tools/duckdb-sql
# beside the repository).
#
# The queries, from the nexmark repository's Flink SQL (queries/q0.sql, q5.sql, q7.sql):
#   q0  SELECT auction, bidder, price, dateTime, extra FROM bid
#   q5  HOP(bid, dateTime, 2 s slide, 10 s size): count(*) per (window, auction); the rows
#       whose count is the window's max count (ties kept): auction, num
#   q7  TUMBLE(bid, dateTime, 10 s): max(price) per window; every bid B with that price and
#       B.dateTime BETWEEN window_end - 10 s AND window_end (both ends): auction, bidder,
#       price, dateTime, extra
# Windows are aligned to the epoch, [start, end). Event time as Flink's with the suite's
# watermark (dateTime - 4 s) emitted after every bid in file order, the watermark before a bid
# being the largest earlier dateTime - 4 s: a window has fired before a bid when its end - 1 ms
# is at or before that watermark. As in Flink's (slicing) window aggregates, a bid counts in
# those of its windows that had not fired (q5: its later windows; q7: its one window), and is
# left out of the others; q7's outer join is a regular join in Flink, so every bid, late or
# not, joins a window's maximum. With no late bid (the generator's files) these are the plain
# batch queries. Timestamps are written as eddy's file sink writes them:
# '.mmm' only when the milliseconds are not 0.
set -eu
bids=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
prefix=$2
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
shift 2
here=$(cd "$(dirname "$0")" && pwd)
duck=${DUCKDB_SQL:-$here/../../../../shared/tools/duckdb-sql}
[ $# -gt 0 ] || set -- q5 q7 q5w q7w

B="read_csv('$bids', header = false, delim = ',', quote = '', escape = '', auto_detect = false,
    nullstr = '\\N', timestampformat = '%Y-%m-%d %H:%M:%S.%g',
    columns = {'auction': 'BIGINT', 'bidder': 'BIGINT', 'price': 'BIGINT', 'channel': 'VARCHAR',
               'url': 'VARCHAR', 'dateTime': 'TIMESTAMP', 'extra': 'VARCHAR'})"
# a timestamp as eddy writes it
ts() { echo "regexp_replace(strftime($1, '%Y-%m-%d %H:%M:%S.%g'), '\\.000\$', '')"; }
# the bids in file order with t (epoch ms) and the watermark before each (NULL for the first)
X="x AS (SELECT *, epoch_ms(\"dateTime\") AS t,
           max(epoch_ms(\"dateTime\")) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - 4000 AS wm
         FROM (SELECT row_number() OVER () AS rn, * FROM $B))"

query() { # query NAME [WINDOW]: the SQL of that expected file
  local win=
  case $1 in
  q0) echo "SELECT auction, bidder, price, $(ts '"dateTime"') AS \"dateTime\", extra FROM $B ORDER BY ALL" ;;
  q5)
    [ -z "${2:-}" ] || win="$(ts 'epoch_ms(c.ws)') AS window_start, $(ts 'epoch_ms(c.ws + 10000)') AS window_end,"
    echo "WITH $X,
      a AS (SELECT auction, wm, (t // 2000) * 2000 - k * 2000 AS ws FROM x, range(0, 5) AS r(k)),
      w AS (SELECT auction, ws FROM a WHERE wm IS NULL OR NOT (ws + 10000 - 1 <= wm)),
      c AS (SELECT ws, auction, count(*) AS num FROM w GROUP BY ws, auction),
      m AS (SELECT ws, max(num) AS maxn FROM c GROUP BY ws)
      SELECT $win c.auction, c.num FROM c JOIN m ON c.ws = m.ws AND c.num >= m.maxn ORDER BY ALL" ;;
  q7)
    [ -z "${2:-}" ] || win="$(ts 'epoch_ms(m.ws)') AS window_start, $(ts 'epoch_ms(m.ws + 10000)') AS window_end,"
    echo "WITH $X,
      m AS (SELECT (t // 10000) * 10000 AS ws, max(price) AS maxprice FROM x
            WHERE wm IS NULL OR NOT ((t // 10000) * 10000 + 10000 - 1 <= wm) GROUP BY 1)
      SELECT $win b.auction, b.bidder, b.price, $(ts 'b."dateTime"') AS \"dateTime\", b.extra
      FROM x b JOIN m ON b.price = m.maxprice AND b.t BETWEEN m.ws AND m.ws + 10000 ORDER BY ALL" ;;
  q5w | q7w) query "${1%w}" window ;;
  *) echo "expected.sh: unknown query $1" >&2; return 1 ;;
  esac
}

stmts=()
for q in "$@"; do
  sql=$(query "$q")
  stmts+=("COPY ($sql) TO '$prefix.$q.expected.csv' (HEADER)")
done
"$duck" "${stmts[@]}" > /dev/null
