-- Source tables over the CSV files of `eddy nexmark-gen` (the file contract: no header, comma-
-- separated, no quoting, timestamps 'YYYY-MM-DD HH:MM:SS.mmm' UTC).
--
-- Changed from the nexmark repository's queries/ddl.sql + ddl_views.sql: there, one `nexmark`
-- table of the `nexmark` (datagen) connector holds every event kind as ROWs and the views person,
-- auction and bid select one kind each, all under ONE watermark `dateTime - INTERVAL '4' SECOND`.
-- Here each kind is its own `filesystem` table over its own file with the same columns and the
-- same watermark expression, so each table has its own watermark (the watermark of a join or
-- union of two tables is the smaller of the two). ${DATA} is replaced by the data directory's
-- absolute file: URI.

CREATE TABLE person (
    id  BIGINT,
    name  VARCHAR,
    emailAddress  VARCHAR,
    creditCard  VARCHAR,
    city  VARCHAR,
    state  VARCHAR,
    `dateTime`  TIMESTAMP(3),
    extra  VARCHAR,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${DATA}/persons.csv',
    'format' = 'csv'
);

CREATE TABLE auction (
    id  BIGINT,
    itemName  VARCHAR,
    description  VARCHAR,
    initialBid  BIGINT,
    reserve  BIGINT,
    `dateTime`  TIMESTAMP(3),
    expires  TIMESTAMP(3),
    seller  BIGINT,
    category  BIGINT,
    extra  VARCHAR,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${DATA}/auctions.csv',
    'format' = 'csv'
);

CREATE TABLE bid (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    `dateTime`  TIMESTAMP(3),
    extra  VARCHAR,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '${DATA}/bids.csv',
    'format' = 'csv'
);
