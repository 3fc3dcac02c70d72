-- Nexmark q0 (pass-through of bids) as batch SQL for DuckDB over the tables of tables.sql.
-- The nexmark repository's Flink SQL: SELECT auction, bidder, price, dateTime, extra FROM bid.
-- Streaming = batch here: a projection drops nothing, late or not.
SELECT auction, bidder, price, "dateTime", extra
FROM bid
