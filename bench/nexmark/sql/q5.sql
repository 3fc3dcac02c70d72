-- Nexmark q5 (hot items) as batch SQL for DuckDB over the tables of tables.sql.
-- HOP windows of 10 s sliding by 2 s, aligned to the epoch, [start, end): a bid at time t (ms)
-- is in the 5 windows starting at floor(t / 2000) * 2000 - k * 2000, k = 0..4. Per window the
-- bids are counted per auction and every auction whose count is >= the window's highest count is
-- kept: ties all stay (the nexmark query joins on num >= maxn), so a window can give several rows.
-- Only windows holding bids exist (Flink's window aggregate emits nothing for an empty window).
-- Care: Flink drops a bid that arrives after the watermark (dateTime - 4 s, per file) has passed
-- the end of its windows; this batch SQL keeps every bid, so the two agree only when no bid is
-- that late (the generator delays events by less than the watermark's 4 s).
WITH windowed AS (
    SELECT B.auction, (epoch_ms(B."dateTime") // 2000) * 2000 - k.k * 2000 AS starttime
    FROM bid B, range(0, 5) AS k(k)
),
AuctionBids AS (
    SELECT auction, count(*) AS num, starttime
    FROM windowed
    GROUP BY auction, starttime
),
MaxBids AS (
    SELECT max(num) AS maxn, starttime
    FROM AuctionBids
    GROUP BY starttime
)
SELECT AuctionBids.auction, AuctionBids.num
FROM AuctionBids
JOIN MaxBids ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.num >= MaxBids.maxn
