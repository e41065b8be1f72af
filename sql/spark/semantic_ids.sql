-- Spark SQL view over one partition of `semantic_ids`. Rendered by liger_core.sql_catalog.
-- basePath makes Spark discover the partition directory as a `ds` column (type DATE).
CREATE OR REPLACE TEMPORARY VIEW semantic_ids
USING parquet
OPTIONS (path '${warehouse}/semantic_ids/ds=${ds}', basePath '${warehouse}/semantic_ids');
