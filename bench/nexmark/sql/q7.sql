-- Nexmark q7 (highest bid) as batch SQL for DuckDB over the tables of tables.sql.
-- TUMBLE windows of 10 s aligned to the epoch, [start, end). B1 is each window's highest price
-- with its window_end; the query keeps every bid whose price equals that maximum and whose
-- dateTime lies in [window_end - 10 s, window_end], both ends included, as the nexmark SQL's
-- BETWEEN says: ties all stay, and a bid stamped exactly window_end (which belongs to the NEXT
-- window) also matches when its price equals the earlier window's maximum. Flink runs the outer
-- join as an unbounded regular join (window_end is no time attribute), so after all input it
-- equals the batch join; the columns are the sink's (auction, bidder, price, dateTime, extra).
-- Care: Flink's window aggregate drops bids later than the watermark (dateTime - 4 s) past the
-- window's end, the regular join does not; this SQL keeps every bid, so the two agree only when
-- no bid is that late.
WITH B1 AS (
    SELECT max(price) AS maxprice,
           epoch_ms((epoch_ms("dateTime") // 10000) * 10000 + 10000) AS "dateTime"
    FROM bid
    GROUP BY epoch_ms("dateTime") // 10000
)
SELECT B.auction, B.bidder, B.price, B."dateTime", B.extra
FROM bid B
JOIN B1 ON B.price = B1.maxprice
WHERE B."dateTime" BETWEEN B1."dateTime" - INTERVAL 10 SECOND AND B1."dateTime"
