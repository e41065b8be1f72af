-- DuckDB view over one partition of `recommendations` (one row per user and rank).
CREATE OR REPLACE VIEW recommendations AS
SELECT *, CAST('${ds}' AS DATE) AS ds
FROM read_parquet('${warehouse}/recommendations/ds=${ds}/*.parquet', hive_partitioning = false);
