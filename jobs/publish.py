"""Stage: publish recommendations/ds=… — SQL views smoke check and optional PostgreSQL export.

The recommendations are plain Parquet files, so on a local warehouse this stage needs no
Spark: DuckDB reads the partition through the same view DDL that downstream users get
(sql/duckdb/) and runs the source-mix query, which fails the stage if the published table is
not queryable or empty. On a cluster root (hdfs://, s3a://, ...) the same check runs through
Spark SQL (sql/spark/). With ``publish.postgres_dsn`` set, the partition is also exported to
PostgreSQL, replacing that ds (liger_core.platform.export_postgres).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse


from liger_jobs.common import stage_main
from liger_core.platform import tracking
from liger_core.config import Settings
from liger_core.errors import DataError
from liger_core.platform.export_postgres import export_partition, export_table
from liger_core.platform.sql_catalog import TABLES, duckdb_query, query, view_ddl

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("liger.publish")
MISSING_PARTITION = "no recommendations partition for ds={ds}; run `liger recommend --ds {ds}` first"


def local_root(uri: str) -> Path | None:
    """The warehouse folder for a plain path or ``file:`` URI; None for a remote root."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    return None


def smoke_stats(ds: str, views: list[str], mix: list[tuple]) -> dict:
    """Flat stats from the source-mix rows (source, n_rows, row_share, n_users).

    Raises DataError for an empty partition, before any export could replace a good ds
    in PostgreSQL with nothing.
    """
    log.info("recommendations ds=%s source mix (source, rows, share, users): %s", ds, mix)
    stats: dict = {"views": views, "rows": sum(int(row[1]) for row in mix)}
    if not stats["rows"]:
        raise DataError(f"the recommendations partition for ds={ds} has no rows")
    for source, n_rows, share, _users in mix:
        stats[f"rows_{source}"] = int(n_rows)
        stats[f"share_{source}"] = float(share)
    return stats


def _publish_local(root: Path, ds: str, dsn: str | None) -> dict:
    partition = root / "recommendations" / f"ds={ds}"
    if not partition.is_dir():
        raise DataError(MISSING_PARTITION.format(ds=ds))
    present = [table for table in TABLES if (root / table / f"ds={ds}").is_dir()]
    views, source_mix = duckdb_query(str(root), ds, present, query("source_mix"))
    stats = smoke_stats(ds, views, source_mix)
    if dsn:
        stats["exported_rows"] = export_partition(dsn, partition, ds)
    return stats


def _publish_spark(settings: Settings, ds: str, dsn: str | None, spark: SparkSession | None) -> dict:
    from liger_jobs.spark import spark_session
    from liger_jobs.warehouse import Warehouse

    spark = spark or spark_session(settings)
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    if not warehouse.exists("recommendations", ds):
        raise DataError(MISSING_PARTITION.format(ds=ds))
    views = [table for table in TABLES if warehouse.exists(table, ds)]
    for table in views:
        spark.sql(view_ddl("spark", table, warehouse.root, ds))
    mix = [tuple(row) for row in spark.sql(query("source_mix", dialect="spark")).collect()]
    stats = smoke_stats(ds, views, mix)
    if dsn:
        rows = warehouse.read("recommendations", ds).toArrow()
        stats["exported_rows"] = export_table(dsn, rows, ds)
    return stats


def run(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    """Smoke-check the ds's recommendations through the SQL views; export them if configured.

    Spark is started only for a remote warehouse root (and reused when the caller has one).
    """
    secret = settings.publish.postgres_dsn
    dsn = secret.get_secret_value() if secret is not None else None
    root = local_root(settings.paths.warehouse_uri)
    with tracking.stage_run(settings, "publish", ds):
        stats = _publish_local(root, ds, dsn) if root is not None else _publish_spark(settings, ds, dsn, spark)
        if "exported_rows" in stats:
            log.info("exported %d rows of ds=%s to PostgreSQL", stats["exported_rows"], ds)
        tracking.log_metrics({k: v for k, v in stats.items() if k != "views"})
    return stats


def main(argv: list[str] | None = None) -> int:
    return stage_main("publish", run, argv)


if __name__ == "__main__":
    sys.exit(main())
