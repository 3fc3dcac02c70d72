-- Nexmark q8 (monitor new users) as batch SQL for DuckDB over the tables of tables.sql.
-- TUMBLE windows of 10 s aligned to the epoch: the persons who registered in a window in which
-- they also opened an auction as seller, one row per (person, window), with the window's start
-- (stime). Care: Flink drops a person or auction that arrives after its file's watermark
-- (dateTime - 4 s) passed its window's end; this SQL keeps every event, so the two agree only
-- when no event is that late.
WITH P AS (
    SELECT id, name, epoch_ms((epoch_ms("dateTime") // 10000) * 10000) AS starttime
    FROM person
    GROUP BY ALL
),
A AS (
    SELECT seller, epoch_ms((epoch_ms("dateTime") // 10000) * 10000) AS starttime
    FROM auction
    GROUP BY ALL
)
SELECT P.id, P.name, P.starttime AS stime
FROM P
JOIN A ON P.id = A.seller AND P.starttime = A.starttime
