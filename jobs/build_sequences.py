"""Stage 4: interactions -> user_sequences (one row per user, items in time order).

Order within a user is (ts, event_seq): equal timestamps keep the source order, which the
evaluation protocol depends on (the last two items are the test and validation targets).
``user_idx`` is dense, in order of each user's first event in the source, so it is stable
for a given input.
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from liger_jobs.common import stage_main
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.platform import tracking
from liger_core.config import Settings
from liger_core.platform.validation import user_sequences_suite, validate_frame

log = logging.getLogger("liger.sequences")


def user_sequences(events: DataFrame) -> DataFrame:
    """Group events per user, ordered by (ts, event_seq), with a dense user_idx."""
    grouped = events.groupBy("user_id").agg(F.array_sort(F.collect_list(F.struct("ts", "event_seq", "item_idx"))).alias("events"))
    # A dense numbering needs one ordered pass through a single partition: it sees only
    # (user_id, first event) pairs, and the sequences join it back, so no partition ever
    # holds every user's events.
    first = events.groupBy("user_id").agg(F.min("event_seq").alias("first_seq"))
    numbered = first.select("user_id", (F.row_number().over(Window.orderBy("first_seq")) - 1).cast("long").alias("user_idx"))
    return grouped.join(numbered, "user_id").select(
        "user_id",
        "user_idx",
        F.col("events.item_idx").alias("items"),
        F.col("events.ts").alias("ts"),
    )


def sequence_summary(sequences: DataFrame, known_items: DataFrame) -> DataFrame:
    """Per user, computed in Spark: list lengths, items missing from ``known_items``
    (item_idx) and whether ts never goes back; what ``user_sequences_suite`` checks."""
    unknown = (
        sequences.select("user_id", F.explode("items").alias("item_idx"))
        .join(known_items, "item_idx", "left_anti")
        .groupBy("user_id")
        .count()
    )
    return sequences.join(unknown, "user_id", "left").select(
        "user_id",
        "user_idx",
        F.size("items").alias("n_items"),
        F.size("ts").alias("n_ts"),
        F.coalesce("count", F.lit(0)).alias("unknown_items"),
        (F.col("ts") == F.array_sort("ts")).alias("ts_sorted"),
    )


def run(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    spark = spark or spark_session(settings)
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    warehouse.require(ds, "interactions", "items")
    with tracking.stage_run(settings, "build_sequences", ds):
        events = warehouse.read("interactions", ds).select("user_id", "item_idx", "ts", "event_seq")
        known = warehouse.read("items", ds).select("item_idx")
        sequences = user_sequences(events)

        def validate(staged: DataFrame) -> None:
            # Six scalars per user reach the driver (as the lengths below do), never the lists.
            summary = sequence_summary(staged, known).toPandas()
            validate_frame("user_sequences", summary, user_sequences_suite(), settings.paths.state_dir)

        warehouse.write(sequences, "user_sequences", ds, validate=validate)
        lengths = warehouse.read("user_sequences", ds).select(F.size("items").alias("n")).toPandas()["n"]
        stats = {
            "users": int(len(lengths)),
            "events": int(lengths.sum()),
            "length_min": int(lengths.min()),
            "length_mean": float(lengths.mean()),
            "length_max": int(lengths.max()),
        }
        tracking.log_metrics(stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    return stage_main("build_sequences", run, argv)


if __name__ == "__main__":
    sys.exit(main())
