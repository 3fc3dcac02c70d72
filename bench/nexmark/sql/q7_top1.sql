-- Nexmark q7 as eddy's bench/nexmark/q7.yaml computes it (Window Top-N, RANK() = 1), as batch
-- SQL for DuckDB over the tables of tables.sql: the bids whose price is the highest of their own
-- TUMBLE window of 10 s (aligned to the epoch, [start, end)), ties kept. It differs from q7.sql
-- (the nexmark repository's meaning) only for a bid stamped exactly at a window's end whose price
-- equals the maximum of the window that ends there: q7.sql's BETWEEN (both ends included) also
-- gives it for that earlier window, this does not. Like q7.sql it keeps every bid, late or not
-- (the generator's files have no late bid). Columns as the sink's.
SELECT auction, bidder, price, "dateTime", extra
FROM bid
QUALIFY price = max(price) OVER (PARTITION BY epoch_ms("dateTime") // 10000)
