-- DuckDB view over one partition of `items` (DESIGN §4). Rendered by liger_core.platform.sql_catalog.
-- `ds` is the partition directory, not a column in the files: it is added here as a DATE.
CREATE OR REPLACE VIEW items AS
SELECT *, CAST('${ds}' AS DATE) AS ds
FROM read_parquet('${warehouse}/items/ds=${ds}/*.parquet', hive_partitioning = false);
