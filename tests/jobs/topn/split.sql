-- Expected results of split.yaml, computed with DuckDB independently of eddy: each
-- output is the WHERE of its predicate on the input (a null predicate is false); the
-- default output takes the records for which none is true. make_split_expected.sh runs
-- it (@DIR@: this folder).
CREATE TABLE events AS SELECT * FROM read_csv('@DIR@/events.csv', header=true, columns={'event_type':'BIGINT','id':'BIGINT','name':'VARCHAR','auction':'BIGINT','price':'BIGINT','date_time':'TIMESTAMP'});
COPY (SELECT * FROM events WHERE event_type = 0) TO '@DIR@/split-persons.expected.csv' (HEADER);
COPY (SELECT * FROM events WHERE event_type = 1) TO '@DIR@/split-auctions.expected.csv' (HEADER);
COPY (SELECT * FROM events WHERE event_type = 2) TO '@DIR@/split-bids.expected.csv' (HEADER);
COPY (SELECT * FROM events WHERE event_type = 2 AND price >= 100) TO '@DIR@/split-big_bids.expected.csv' (HEADER);
COPY (SELECT * FROM events WHERE NOT coalesce(event_type = 0, false) AND NOT coalesce(event_type = 1, false) AND NOT coalesce(event_type = 2, false) AND NOT coalesce(event_type = 2 AND price >= 100, false)) TO '@DIR@/split-other.expected.csv' (HEADER);
