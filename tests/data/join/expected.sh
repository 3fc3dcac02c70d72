#!/usr/bin/env bash
# The expected results of the join tests, computed by DuckDB independently of eddy.
#
#   expected.sh IN_DIR OUT_DIR [QUERY ...]
#
# IN_DIR holds left.csv and right.csv (gen.py two) and/or events.csv (gen.py late); one
# OUT_DIR/QUERY.expected.csv is written per query (default: all of those whose inputs are
# there). DUCKDB_SQL overrides the tool (default ../shared/tools/duckdb-sql of the
# repository). Windows are aligned to the epoch, half-open [start, end); a null key joins
# nothing. Output columns: the left fields with prefix l_, then the right ones with r_.
set -eu
in=$(cd "$1" && pwd); out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2
here=$(cd "$(dirname "$0")" && pwd)
duck=${DUCKDB_SQL:-$here/../../../../shared/tools/duckdb-sql}

L="read_csv('$in/left.csv', header=true, columns={'k':'BIGINT','ts':'TIMESTAMP','v':'BIGINT','tag':'VARCHAR'})"
R="read_csv('$in/right.csv', header=true, columns={'k':'BIGINT','ts':'TIMESTAMP','w':'DOUBLE','tag':'VARCHAR'})"
E="read_csv('$in/events.csv', header=true, columns={'seq':'BIGINT','kind':'VARCHAR','k':'BIGINT','ts':'TIMESTAMP','v':'BIGINT'})"
T="'%Y-%m-%d %H:%M:%S'"
# the output row of a pair (l, r) of left.csv/right.csv, and of events.csv x events.csv
two_cols="l.k AS l_k, strftime(l.ts, $T) AS l_ts, l.v AS l_v, l.tag AS l_tag, r.k AS r_k, strftime(r.ts, $T) AS r_ts, r.w AS r_w, r.tag AS r_tag"
ev_cols="l.seq AS l_seq, l.kind AS l_kind, l.k AS l_k, strftime(l.ts, $T) AS l_ts, l.v AS l_v, r.seq AS r_seq, r.kind AS r_kind, r.k AS r_k, strftime(r.ts, $T) AS r_ts, r.v AS r_v"

query() { # query NAME: the SQL of that expected file
  case $1 in
  # window join, tumbling 1 minute: same key, same window
  tumbling) echo "SELECT $two_cols FROM $L l JOIN $R r ON l.k = r.k
      AND epoch_ms(l.ts) // 60000 = epoch_ms(r.ts) // 60000" ;;
  # window join, sliding 2 minutes every 30 s: a pair once per window both are in
  sliding) echo "WITH lw AS (SELECT *, unnest(generate_series(epoch_ms(ts) - epoch_ms(ts) % 30000 - 90000,
                                  epoch_ms(ts) - epoch_ms(ts) % 30000, 30000)) AS st FROM $L),
      rw AS (SELECT *, unnest(generate_series(epoch_ms(ts) - epoch_ms(ts) % 30000 - 90000,
                                  epoch_ms(ts) - epoch_ms(ts) % 30000, 30000)) AS st FROM $R)
    SELECT $two_cols FROM lw l JOIN rw r ON l.k = r.k AND l.st = r.st" ;;
  # window join, sessions with a gap of 45.5 s over both inputs of a key: a session
  # starts where an element is more than the gap after the one before
  session) echo "WITH ln AS (SELECT row_number() OVER () AS id, * FROM $L),
      rn AS (SELECT row_number() OVER () AS id, * FROM $R),
      u AS (SELECT 0 AS side, id, k, ts FROM ln WHERE k IS NOT NULL
            UNION ALL SELECT 1, id, k, ts FROM rn WHERE k IS NOT NULL),
      g AS (SELECT *, CASE WHEN epoch_ms(ts) - lag(epoch_ms(ts)) OVER (PARTITION BY k ORDER BY ts, side, id) <= 45500
                          THEN 0 ELSE 1 END AS new FROM u),
      s AS (SELECT side, id, sum(new) OVER (PARTITION BY k ORDER BY ts, side, id ROWS UNBOUNDED PRECEDING) AS sess FROM g),
      l AS (SELECT x.*, s.sess FROM ln x JOIN s ON s.side = 0 AND s.id = x.id),
      r AS (SELECT x.*, s.sess FROM rn x JOIN s ON s.side = 1 AND s.id = x.id)
    SELECT $two_cols FROM l JOIN r ON l.k = r.k AND l.sess = r.sess" ;;
  # interval join: r.ts in [l.ts - 30 s, l.ts + 1 min], where l.v > 100
  interval) echo "SELECT $two_cols FROM $L l JOIN $R r ON l.k = r.k
      AND r.ts BETWEEN l.ts - INTERVAL 30 SECOND AND l.ts + INTERVAL 1 MINUTE WHERE l.v > 100" ;;
  # regular join on two keys (k, tag): every pair of a key
  regular) echo "SELECT $two_cols FROM $L l JOIN $R r ON l.k = r.k AND l.tag = r.tag" ;;
  # regular join with ttl 2 minutes (event time): elements 2 minutes or more apart do not join
  ttl) echo "SELECT $two_cols FROM $L l JOIN $R r ON l.k = r.k
      AND abs(epoch_ms(l.ts) - epoch_ms(r.ts)) < 120000" ;;
  # events.csv is read with a watermark after every record, no out-of-orderness: the
  # watermark before record seq is the largest earlier ts - 1 ms (none for the first)
  late_window|late_window_late|late_interval|late_interval_late)
    local late
    if [ "${1#late_window}" != "$1" ]; then
      # tumbling 1 minute, allowed lateness 30 s: late when end - 1 + 30 s <= watermark
      late="wm IS NOT NULL AND epoch_ms(ts) - epoch_ms(ts) % 60000 + 60000 - 1 + 30000 <= wm"
    else
      late="wm IS NOT NULL AND epoch_ms(ts) <= wm" # interval: at or behind the watermark
    fi
    local x="WITH w AS (SELECT *, max(epoch_ms(ts)) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - 1 AS wm FROM $E),
      x AS (SELECT *, ($late) AS late FROM w)"
    case $1 in
    *_late) echo "$x SELECT seq, kind, k, strftime(ts, $T) AS ts, v FROM x WHERE late" ;;
    late_window) echo "$x SELECT $ev_cols FROM x l JOIN x r ON l.k = r.k
        AND epoch_ms(l.ts) // 60000 = epoch_ms(r.ts) // 60000
        WHERE NOT l.late AND NOT r.late AND l.kind = 'A' AND r.kind = 'B'" ;;
    late_interval) echo "$x SELECT $ev_cols FROM x l JOIN x r ON l.k = r.k
        AND r.ts BETWEEN l.ts - INTERVAL 10 SECOND AND l.ts + INTERVAL 20 SECOND
        WHERE NOT l.late AND NOT r.late AND l.kind = 'A' AND r.kind = 'B'" ;;
    esac ;;
  *) echo "unknown query $1" >&2; return 1 ;;
  esac
}

if [ $# -eq 0 ]; then
  [ -f "$in/left.csv" ] && set -- tumbling sliding session interval regular ttl
  [ -f "$in/events.csv" ] && set -- "$@" late_window late_window_late late_interval late_interval_late
fi
for q in "$@"; do
  sql=$(query "$q")
  "$duck" "COPY ($sql) TO '$out/$q.expected.csv' (HEADER)" > /dev/null
done
