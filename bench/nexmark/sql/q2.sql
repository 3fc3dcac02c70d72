-- Nexmark q2 (selection) as batch SQL for DuckDB over the tables of tables.sql: the bids of every
-- 123rd auction (Flink SQL: MOD(auction, 123) = 0; ids are positive, so % agrees with MOD).
SELECT auction, price
FROM bid
WHERE auction % 123 = 0
