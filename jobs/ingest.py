"""Stage 1: raw source -> items, interactions, item_index registry, quarantine/<table>,
field_issues/<table> (values nulled or re-decoded in rows that were kept)."""

from __future__ import annotations

import logging
import sys
import time

from pyspark.sql import SparkSession

from liger_jobs.common import stage_main
from liger_jobs.registries import ever_assigned_items
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.platform import tracking
from liger_core.config import Settings
from liger_core.data.ingest import IngestResult, ingest, load_source
from liger_core.data.item_index import extend_registry
from liger_core.platform.validation import interactions_suite, items_suite, validate_frame, with_unknown

log = logging.getLogger("liger.ingest")


def run(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    spark = spark or spark_session(settings)
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    with tracking.stage_run(settings, "ingest", ds):
        started = time.perf_counter()
        raw = load_source(settings.source, settings.paths)
        result = ingest(raw, settings.source, ds)

        # Every index ever given, also those written after ds and of retired items: never reused.
        registry = extend_registry(ever_assigned_items(warehouse), result.items["item_id"], ds)
        items = result.items.drop(columns="line_no").merge(registry, on="item_id", how="left")
        events = result.events.merge(registry[["item_id", "item_idx"]], on="item_id", how="left")
        events = events[["user_id", "item_id", "item_idx", "ts", "event_seq"]]

        ts = events["ts"]
        # Both tables are already pandas in the driver (the parser reads them there), so GX
        # checks them there: the interactions suite takes 3 s in pandas and 25 s as a Spark
        # frame on Beauty, where ``isin`` over 12,101 item ids builds one literal per id.
        validate_frame("items", items, items_suite(), settings.paths.state_dir)
        checked = with_unknown(events, "item_id", items["item_id"])
        validate_frame("interactions", checked, interactions_suite(ts.min(), ts.max()), settings.paths.state_dir)

        warehouse.write(spark.createDataFrame(items), "items", ds)
        warehouse.write(spark.createDataFrame(events), "interactions", ds)
        for table, rejected in result.quarantine.items():
            rejected = rejected.assign(source_file=raw.files.get(table, ""))
            warehouse.write(spark.createDataFrame(rejected, schema=_QUARANTINE_SCHEMA), f"quarantine/{table}", ds)
        for table, noted in result.notes.items():
            noted = noted.assign(source_file=raw.files.get(table, ""))
            warehouse.write(spark.createDataFrame(noted, schema=_NOTES_SCHEMA), f"field_issues/{table}", ds)
        warehouse.write(spark.createDataFrame(registry), "item_index", ds)

        seconds = time.perf_counter() - started
        counts = result.quarantine_counts()
        stats = {
            "read_items": result.read["items"],
            "read_interactions": result.read["interactions"],
            "items": len(items),
            "interactions": len(events),
            "users": int(events["user_id"].nunique()),
            "new_items": int((registry["first_seen_ds"] == ds).sum()),
            "quarantined_items": len(result.quarantine["items"]),
            "quarantined_interactions": len(result.quarantine["interactions"]),
            "field_issues_items": len(result.notes["items"]),
            "field_issues_interactions": len(result.notes["interactions"]),
            "rows_per_second": (result.read["items"] + result.read["interactions"]) / seconds,
        }
        tracking.log_metrics({**stats, **{f"quarantine.{k}": v for k, v in counts.items()}})
        _log_accounting(result, stats, counts)
    return stats


def _log_accounting(result: IngestResult, stats: dict, counts: dict[str, int]) -> None:
    """Every row read is either ingested or quarantined; say so per table, with the reasons."""
    for table in ("items", "interactions"):
        log.info(
            "%s: %d rows read = %d ingested + %d quarantined",
            table,
            result.read[table],
            stats[table],
            stats[f"quarantined_{table}"],
        )
    log.info("numeric timestamps read as epoch %s", result.timestamp_unit)
    for key, value in counts.items():
        log.warning("quarantined %s rows: %d", key, value)
    for table, noted in result.notes.items():
        for reason, value in noted["reason"].value_counts().items():
            log.warning("field issues %s.%s: %d (kept, value nulled or re-decoded)", table, reason, value)


_QUARANTINE_SCHEMA = "line_no long, reason string, raw string, source_file string"
_NOTES_SCHEMA = "line_no long, field string, reason string, raw string, source_file string"


def main(argv: list[str] | None = None) -> int:
    return stage_main("ingest", run, argv)


if __name__ == "__main__":
    sys.exit(main())
