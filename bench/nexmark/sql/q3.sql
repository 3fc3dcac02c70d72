-- Nexmark q3 (local item suggestion) as batch SQL for DuckDB over the tables of tables.sql.
-- Flink runs it as an unbounded inner join (no time bound, no watermark use), whose output
-- after all input equals the batch join whatever the arrival order; it is append-only.
SELECT P.name, P.city, P.state, A.id
FROM auction AS A
JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')
