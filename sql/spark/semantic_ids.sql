-- Spark SQL view over one ds of `semantic_ids`: every RQ-VAE version's IDs at that ds
-- (partitions ds=<ds>/rqvae_version=<v>; the files carry rqvae_version themselves).
-- Rendered by liger_core.platform.sql_catalog. The glob makes each version folder a root, so Spark
-- discovers no partition column; ds is added as a DATE like the other views have it.
CREATE OR REPLACE TEMPORARY VIEW semantic_ids AS
SELECT *, CAST('${ds}' AS DATE) AS ds
FROM parquet.`${warehouse}/semantic_ids/ds=${ds}/rqvae_version=*`;
