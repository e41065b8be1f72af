-- Spark SQL view over one partition of `items`. Rendered by liger_core.platform.sql_catalog.
-- basePath makes Spark discover the partition directory as a `ds` column (type DATE).
CREATE OR REPLACE TEMPORARY VIEW items
USING parquet
OPTIONS (path '${warehouse}/items/ds=${ds}', basePath '${warehouse}/items');
