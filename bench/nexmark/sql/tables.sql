-- DuckDB: the tables person, auction and bid over the CSV files of `eddy nexmark-gen` (the file
-- contract: no header, comma-separated, no quoting, timestamps 'YYYY-MM-DD HH:MM:SS.mmm' UTC).
-- ${DATA} stands for the directory holding persons.csv, auctions.csv and bids.csv; the scripts
-- that use this file (bench/peers/flink/check.sh) replace it. An empty field is an empty string,
-- not NULL (as Flink's csv format reads it). A malformed line is an error (DuckDB's strict mode).
CREATE TABLE person AS SELECT * FROM read_csv('${DATA}/persons.csv',
    header = false, delim = ',', quote = '', escape = '', nullstr = '\N', auto_detect = false,
    timestampformat = '%Y-%m-%d %H:%M:%S.%g',
    columns = {'id': 'BIGINT', 'name': 'VARCHAR', 'emailAddress': 'VARCHAR',
               'creditCard': 'VARCHAR', 'city': 'VARCHAR', 'state': 'VARCHAR',
               'dateTime': 'TIMESTAMP', 'extra': 'VARCHAR'});
CREATE TABLE auction AS SELECT * FROM read_csv('${DATA}/auctions.csv',
    header = false, delim = ',', quote = '', escape = '', nullstr = '\N', auto_detect = false,
    timestampformat = '%Y-%m-%d %H:%M:%S.%g',
    columns = {'id': 'BIGINT', 'itemName': 'VARCHAR', 'description': 'VARCHAR',
               'initialBid': 'BIGINT', 'reserve': 'BIGINT', 'dateTime': 'TIMESTAMP',
               'expires': 'TIMESTAMP', 'seller': 'BIGINT', 'category': 'BIGINT',
               'extra': 'VARCHAR'});
CREATE TABLE bid AS SELECT * FROM read_csv('${DATA}/bids.csv',
    header = false, delim = ',', quote = '', escape = '', nullstr = '\N', auto_detect = false,
    timestampformat = '%Y-%m-%d %H:%M:%S.%g',
    columns = {'auction': 'BIGINT', 'bidder': 'BIGINT', 'price': 'BIGINT', 'channel': 'VARCHAR',
               'url': 'VARCHAR', 'dateTime': 'TIMESTAMP', 'extra': 'VARCHAR'});
