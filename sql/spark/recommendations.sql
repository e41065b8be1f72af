-- Spark SQL view over one partition of `recommendations`. Rendered by liger_core.platform.sql_catalog.
-- basePath makes Spark discover the partition directory as a `ds` column (type DATE).
CREATE OR REPLACE TEMPORARY VIEW recommendations
USING parquet
OPTIONS (path '${warehouse}/recommendations/ds=${ds}', basePath '${warehouse}/recommendations');
