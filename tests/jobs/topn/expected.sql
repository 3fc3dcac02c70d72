-- Expected results of the top_n jobs in this folder, computed with DuckDB independently
-- of eddy: Window Top-N is RANK() OVER (PARTITION BY window, key ORDER BY x) <= n.
-- make_expected.sh runs it on an input (@INPUT@) into a directory (@OUT@).
--
-- Lateness, as eddy's source and windows define it: the source emits a watermark after
-- every bid (batch_size 1) of the largest event time so far - 2 s - 1 ms, so bid number
-- rn meets the watermark wm = max(event time of bids 1 .. rn-1) - 2001 ms (none for the
-- first), and a window [s, e) takes it only when e - 1 > wm; a bid no window takes
-- (and, for a sliding window, whose own time is <= wm) is late.
CREATE TABLE bids AS SELECT *, row_number() OVER () AS rn FROM read_csv('@INPUT@', header=true, columns={'date_time':'TIMESTAMP','auction':'BIGINT','bidder':'BIGINT','price':'BIGINT','channel':'VARCHAR','url':'VARCHAR'});
CREATE TABLE arrived AS SELECT *, epoch_ms(date_time) AS t, max(epoch_ms(date_time)) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - 2001 AS wm FROM bids;
-- tumbling 10 s and 20 s windows, and sliding 10 s windows every 5 s and every 2 s: each bid's windows [ws, ws + size) (ms), only those open when it arrived
CREATE MACRO windows(size, slide) AS TABLE SELECT * FROM (SELECT *, unnest(generate_series(t - t % slide - size + slide, t - t % slide, slide)) AS ws FROM arrived) WHERE ws + size - 1 > coalesce(wm, -9223372036854775807);
-- q7.yaml: per 10 s tumbling window the highest bids, ties kept
COPY (SELECT make_timestamp(ws * 1000) AS window_start, make_timestamp((ws + 10000) * 1000) AS window_end, date_time, auction, bidder, price, channel, url, rank FROM (SELECT *, rank() OVER (PARTITION BY ws ORDER BY price DESC NULLS LAST) AS rank FROM windows(10000, 10000)) WHERE rank <= 1) TO '@OUT@/q7.expected.csv' (HEADER);
-- q7.yaml's late_output: the bids whose window had fired when they arrived
COPY (SELECT date_time, auction, bidder, price, channel, url FROM arrived WHERE t - t % 10000 + 10000 - 1 <= wm) TO '@OUT@/q7-late.expected.csv' (HEADER);
-- q5.yaml: bids per auction in sliding windows of 10 s every 2 s; per window the auctions with the most, ties kept
COPY (SELECT make_timestamp(ws * 1000) AS window_start, make_timestamp((ws + 10000) * 1000) AS window_end, auction, num, rank FROM (SELECT *, rank() OVER (PARTITION BY ws ORDER BY num DESC) AS rank FROM (SELECT ws, auction, count(*) AS num FROM windows(10000, 2000) GROUP BY ws, auction)) WHERE rank <= 1) TO '@OUT@/q5.expected.csv' (HEADER);
-- sliding.yaml: per auction and sliding window of 10 s every 5 s the 2 lowest prices, ties kept, no price last
COPY (SELECT make_timestamp(ws * 1000) AS window_start, make_timestamp((ws + 10000) * 1000) AS window_end, date_time, auction, bidder, price, channel, url, pos FROM (SELECT *, rank() OVER (PARTITION BY ws, auction ORDER BY price ASC NULLS LAST) AS pos FROM windows(10000, 5000)) WHERE pos <= 2) TO '@OUT@/sliding.expected.csv' (HEADER);
-- string.yaml: per auction % 3 and 20 s tumbling window the 3 first by lower(channel) descending, ties kept
COPY (SELECT make_timestamp(ws * 1000) AS window_start, make_timestamp((ws + 20000) * 1000) AS window_end, date_time, auction, bidder, price, channel, url, rank FROM (SELECT *, rank() OVER (PARTITION BY ws, auction % 3 ORDER BY lower(channel) DESC) AS rank FROM windows(20000, 20000)) WHERE rank <= 3) TO '@OUT@/string.expected.csv' (HEADER);
