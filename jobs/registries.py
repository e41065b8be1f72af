"""What was ever assigned: item indexes and semantic IDs across every committed ds.

A registry that only grows must be read as the union of all its partitions, not as one of
them: a backfill for an earlier ds runs after later partitions exist, and an item that left
the catalog is absent from the newest partition but still owns its index and its ID. Reading
everything means neither can be handed to another item. Per item, the partitions must agree;
a disagreement is a corrupt registry and stops the stage.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, functions as F

from liger_jobs.warehouse import Warehouse
from liger_core.errors import DataError


def ever_assigned_items(warehouse: Warehouse) -> pd.DataFrame | None:
    """item_id, item_idx, first_seen_ds of every item any ``item_index`` partition holds."""
    history = _every_partition(warehouse, "item_index")
    if history is None:
        return None
    merged = history.groupBy("item_id").agg(
        F.min("item_idx").alias("item_idx"),
        F.countDistinct("item_idx").alias("indexes"),
        F.min("first_seen_ds").alias("first_seen_ds"),
    )
    _single_valued(
        merged, "indexes", "item_id", "item_index: item {} has more than one item_idx", "`liger ingest --ds <that ds>`"
    )
    registry = merged.select("item_id", "item_idx", "first_seen_ds").toPandas()
    return registry.sort_values("item_idx", ignore_index=True)


def ever_assigned_ids(warehouse: Warehouse, version: str) -> pd.DataFrame | None:
    """item_idx, codes, assigned_ds of every item that ever had an ID under ``version``."""
    history = _every_partition(warehouse, "semantic_ids", version)
    if history is None:
        return None
    merged = history.groupBy("item_idx").agg(
        F.first("codes").alias("codes"), F.countDistinct("codes").alias("ids"), F.min("assigned_ds").alias("assigned_ds")
    )
    _single_valued(
        merged,
        "ids",
        "item_idx",
        f"semantic_ids under rqvae_version={version}: item_idx {{}} has more than one ID",
        "`liger semantic_ids --mode assign --ds <that ds>`",
    )
    return merged.select("item_idx", "codes", "assigned_ds").toPandas().sort_values("item_idx", ignore_index=True)


def _every_partition(warehouse: Warehouse, table: str, version: str | None = None) -> DataFrame | None:
    if version is None:
        paths = [warehouse.path(table, ds) for ds in warehouse.partitions(table)]
    else:
        paths = [warehouse.path(table, ds, version) for ds in warehouse.partitions(table) if warehouse.exists(table, ds, version)]
    return warehouse.spark.read.parquet(*paths) if paths else None


def _single_valued(merged: DataFrame, count: str, key: str, message: str, rerun: str) -> None:
    conflict = merged.filter(F.col(count) > 1).select(key).limit(1).collect()
    if conflict:
        raise DataError(f"{message.format(conflict[0][0])}; rerun {rerun} for the partition that disagrees")
