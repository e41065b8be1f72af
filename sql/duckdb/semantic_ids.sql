-- DuckDB view over one partition of `semantic_ids` (codes: list of ints, last = collision code).
CREATE OR REPLACE VIEW semantic_ids AS
SELECT *, CAST('${ds}' AS DATE) AS ds
FROM read_parquet('${warehouse}/semantic_ids/ds=${ds}/*.parquet', hive_partitioning = false);
