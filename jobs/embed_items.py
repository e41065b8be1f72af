"""Stage 2: items -> item_embeddings, re-embedding only new or changed item text.

An embedding is reused when (item_idx, text_hash, model) matches the latest earlier
snapshot, so the nightly run costs time proportional to catalog changes, not catalog size.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Sequence

import pandas as pd

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from liger_jobs.common import stage_main
from liger_jobs.spark import spark_session, threads_per_task
from liger_jobs.warehouse import Warehouse
from liger_core.platform import tracking
from liger_core.config import Settings
from liger_core.data.embeddings import embed_frames, embedding_dimension, model_label
from liger_core.precision import uses_bfloat16
from liger_core.platform.validation import item_embeddings_suite, validate_frame, with_unknown

log = logging.getLogger("liger.embed")
EMBEDDING_SCHEMA = "item_idx long, text_hash string, model string, embedding array<float>"


def run(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    spark = spark or spark_session(settings)
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    cfg = settings.embedding
    warehouse.require(ds, "items")
    with tracking.stage_run(settings, "embed_items", ds):
        items = warehouse.read("items", ds).select("item_idx", "text_hash", "text")
        label = model_label(cfg.model)
        todo, reused = items, None
        previous_ds = warehouse.latest_ds("item_embeddings", ds)
        if previous_ds:
            previous = warehouse.read("item_embeddings", previous_ds).where(f"model = '{label}'")
            keys = ["item_idx", "text_hash"]
            reused = previous.join(items.select(*keys), keys, "left_semi")
            todo = items.join(previous.select(*keys), keys, "left_anti")
        n_items, n_todo = items.count(), todo.count()

        parallelism = cfg.partitions or spark.sparkContext.defaultParallelism
        threads = threads_per_task(spark, parallelism)
        name, device, batch_size, precision = cfg.model, cfg.device, cfg.batch_size, cfg.precision
        embedded = todo.repartition(parallelism).mapInPandas(
            lambda frames: embed_frames(frames, name, device, batch_size, threads, precision), EMBEDDING_SCHEMA
        )
        output = embedded if reused is None else reused.select(*embedded.columns).unionByName(embedded)

        dim = embedding_dimension(cfg.model)
        started = time.perf_counter()
        warehouse.write(
            output, "item_embeddings", ds, validate=lambda staged: _validate(staged, items, dim, settings.paths.state_dir)
        )
        seconds = time.perf_counter() - started
        stats = {
            "items": n_items,
            "embedded": n_todo,
            "reused": n_items - n_todo,
            "embed_seconds": seconds,
            "items_per_second": n_todo / seconds if n_todo else 0.0,
            "dimension": dim,
            "bfloat16": int(uses_bfloat16(precision, device)),
        }
        tracking.log_metrics(stats)
    return stats


def embedding_summary(embeddings: DataFrame) -> DataFrame:
    """Per item, computed in Spark: item_idx, text_hash and the embedding's dimension, L2 norm
    (null unless finite) and finiteness; what ``item_embeddings_suite`` checks, without
    bringing the vectors to the driver."""
    finite = F.coalesce(F.forall("embedding", lambda x: F.abs(x) < F.lit(float("inf"))), F.lit(False))
    norm = F.sqrt(F.aggregate("embedding", F.lit(0.0).cast("double"), lambda total, x: total + x * x))
    return embeddings.select(
        "item_idx",
        "text_hash",
        F.size("embedding").alias("embedding_dim"),
        F.when(finite, norm).alias("embedding_norm"),
        finite.alias("embedding_finite"),
    )


def checked_summary(staged: DataFrame, item_idx: Sequence[int]) -> pd.DataFrame:
    """``embedding_summary`` in the driver (five scalars per item, never the vectors: at that
    size pandas GX is faster) with the rows whose item is not in ``item_idx`` flagged."""
    return with_unknown(embedding_summary(staged).toPandas(), "item_idx", item_idx)


def _validate(staged: DataFrame, items: DataFrame, dim: int, gx_project: str) -> None:
    item_idx = [row.item_idx for row in items.select("item_idx").collect()]
    suite = item_embeddings_suite(len(set(item_idx)), dim)
    validate_frame("item_embeddings", checked_summary(staged, item_idx), suite, gx_project)


def main(argv: list[str] | None = None) -> int:
    return stage_main("embed_items", run, argv)


if __name__ == "__main__":
    sys.exit(main())
