-- Nexmark q1 (currency conversion) as batch SQL for DuckDB over the tables of tables.sql.
-- price is 0.908 * price as an exact DECIMAL(23, 3), the type of Flink's result.
SELECT auction, bidder, CAST(0.908 * price AS DECIMAL(23, 3)) AS price, "dateTime", extra
FROM bid
