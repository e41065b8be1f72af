-- DuckDB view over one ds of `semantic_ids`: every RQ-VAE version's IDs at that ds
-- (partitions ds=<ds>/rqvae_version=<v>; codes: list of ints, last = collision code).
CREATE OR REPLACE VIEW semantic_ids AS
SELECT *, CAST('${ds}' AS DATE) AS ds
FROM read_parquet('${warehouse}/semantic_ids/ds=${ds}/rqvae_version=*/*.parquet', hive_partitioning = false);
