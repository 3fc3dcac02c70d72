-- Nexmark q4 (average winning price per category) as batch SQL for DuckDB over the tables of
-- tables.sql. The streaming query updates its result (the join and both aggregates retract);
-- this is its FINAL result, after all input: per category, the average over its auctions of
-- the highest bid whose dateTime lies in [auction dateTime, expires] (both ends included), for
-- auctions with at least one such bid. No time bound drops anything, so arrival order and the
-- watermark do not matter.
-- Care: Flink's AVG over BIGINT is a BIGINT (the sum divided by the count in integer
-- arithmetic, truncated), and the nexmark sink declares `final BIGINT`; prices are positive, so
-- DuckDB's integer division // (floor) gives the same number. The columns are named after the
-- nexmark sink table (id, final).
SELECT Q.category AS id, CAST(sum(Q.final) // count(*) AS BIGINT) AS final
FROM (
    SELECT max(B.price) AS final, A.category
    FROM auction A, bid B
    WHERE A.id = B.auction AND B."dateTime" BETWEEN A."dateTime" AND A.expires
    GROUP BY A.id, A.category
) Q
GROUP BY Q.category
