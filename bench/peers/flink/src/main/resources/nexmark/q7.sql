-- Query 7: highest bid per 10 s TUMBLE window. As the nexmark repository's queries/q7.sql with
-- one change: its newest version selects `B.auction, B.price, B.bidder, ...` into a sink declared
-- (auction, bidder, price, ...), so price lands in the bidder column (both BIGINT, so the
-- blackhole run does not notice); here the select list is in the sink's order, as in the
-- repository's earlier versions of q7.
CREATE TABLE nexmark_q7 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  `dateTime`  TIMESTAMP(3),
  extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q7
SELECT B.auction, B.bidder, B.price, B.`dateTime`, B.extra
from bid B
JOIN (
  SELECT MAX(price) AS maxprice, window_end as `dateTime`
  FROM TABLE(
          TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end
) B1
ON B.price = B1.maxprice
WHERE B.`dateTime` BETWEEN B1.`dateTime`  - INTERVAL '10' SECOND AND B1.`dateTime`;
