"""Stage 3: item_embeddings -> RQ-VAE (MLflow model ``rqvae``) -> semantic_ids.

``--mode train``: train on the driver, register a new ``rqvae`` version, and assign every
item a fresh ID under it. Each version's IDs are their own partition,
``semantic_ids/ds=<ds>/rqvae_version=<v>``, so a retrain's candidate never replaces the
champion's IDs that nightly serves with. ``--mode assign`` (nightly): load the version named by
``semantic_ids.rqvae_model`` (default alias ``champion``); items that ever had an ID under
that version (in any ds partition, also a later one or after leaving the catalog) keep it,
new items are encoded on the executors (model broadcast) and get the next free collision
code, so no ID is handed to a second item.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from liger_jobs.common import stage_main
from liger_jobs.registries import ever_assigned_ids
from liger_jobs.spark import broadcast_for_stage, spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.platform import tracking
from liger_core.config import Settings
from liger_core.errors import DataError
from liger_core.platform.model_registry import load_rqvae, register_rqvae
from liger_core.platform.plots import rqvae_figures
from liger_core.ids.rqvae import RQVAE, quality_metrics, train_rqvae
from liger_core.ids.rqvae_io import encode_frames, rqvae_to_bytes
from liger_core.ids.semantic_ids import assign_semantic_ids, codes_for_catalog, first_assigned
from liger_core.platform.validation import semantic_id_summary, semantic_ids_suite, validate_frame, with_unknown

log = logging.getLogger("liger.semantic_ids")
CODES_SCHEMA = "item_idx long, codes array<int>"


def run_train(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    warehouse = _embeddings_warehouse(settings, ds, spark)
    with tracking.stage_run(settings, "rqvae_train", ds):
        frame = warehouse.read("item_embeddings", ds).select("item_idx", "embedding").toPandas()
        if frame.empty:
            raise DataError(f"item_embeddings for ds={ds} is empty: no catalog to train on")
        frame = frame.sort_values("item_idx")
        vectors = np.asarray(frame["embedding"].tolist(), dtype=np.float32)
        report = train_rqvae(vectors, settings.rqvae, log=lambda metrics, epoch: tracking.log_metrics(metrics, step=epoch))
        version = register_rqvae(report.model, settings.rqvae)
        stats = _assign(settings, ds, warehouse, report.model, version, previous=None)
        for name, figure in rqvae_figures(report, stats.pop("codes"), settings.rqvae.codebook_size).items():
            tracking.log_figure(figure, f"plots/{name}.png")
        stats.update(
            rqvae_version=version,
            train_seconds=round(report.seconds, 1),
            **{f"final_{k}": v for k, v in report.final_metrics.items()},
        )
        tracking.log_metrics({k: v for k, v in stats.items() if isinstance(v, (int, float))})
    return stats


def run_assign(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    warehouse = _embeddings_warehouse(settings, ds, spark)
    with tracking.stage_run(settings, "semantic_ids_assign", ds):
        model, rqvae_cfg, version = load_rqvae(settings.semantic_ids.rqvae_model)
        # The model's own config, not tonight's: the ID space is the registered version's.
        settings = settings.model_copy(update={"rqvae": rqvae_cfg})
        previous = ever_assigned_ids(warehouse, version)
        stats = _assign(settings, ds, warehouse, model, version, previous)
        stats.pop("codes")
        tracking.log_metrics({k: v for k, v in stats.items() if isinstance(v, (int, float))})
    return {**stats, "rqvae_version": version}


def _embeddings_warehouse(settings: Settings, ds: str, spark: SparkSession | None) -> Warehouse:
    """The warehouse, once ds's embeddings are known to exist and the ID layout is current."""
    warehouse = Warehouse(spark or spark_session(settings), settings.paths.warehouse_uri)
    warehouse.require(ds, "item_embeddings")
    _upgrade_layout(warehouse)
    return warehouse


def _upgrade_layout(warehouse: Warehouse) -> None:
    """Partitions from before semantic_ids was partitioned by version move into their folder."""
    for moved in warehouse.nest_unversioned("semantic_ids"):
        log.warning("semantic_ids/ds=%s moved into its rqvae_version folder (layout before versions)", moved)


def _assign(settings: Settings, ds: str, warehouse: Warehouse, model: RQVAE, version: str, previous: pd.DataFrame | None) -> dict:
    """Encode items without an ID on the executors, then assign and commit the table."""
    spark = warehouse.spark
    embeddings = warehouse.read("item_embeddings", ds).select("item_idx", "embedding")
    todo = embeddings
    if previous is not None:
        known = spark.createDataFrame(previous[["item_idx"]].astype("int64"))
        todo = embeddings.join(known, "item_idx", "left_anti")
    parallelism = spark.sparkContext.defaultParallelism
    with broadcast_for_stage(spark, rqvae_to_bytes(model, settings.rqvae)) as blob:
        encoded = (
            todo.repartition(parallelism).mapInPandas(lambda frames: encode_frames(frames, blob.value), CODES_SCHEMA).toPandas()
        )

    current = [row.item_idx for row in embeddings.select("item_idx").collect()]
    item_idx, codes = codes_for_catalog(current, encoded, previous, settings.rqvae.levels)
    assigned = assign_semantic_ids(item_idx, codes, previous, settings.semantic_ids.max_collisions)
    table = pd.DataFrame(
        {
            "item_idx": assigned["item_idx"].astype("int64"),
            "codes": [list(map(int, c)) for c in assigned["codes"]],
            "rqvae_version": version,
            "assigned_ds": first_assigned(assigned["item_idx"].to_numpy(), previous, ds),
        }
    )
    warehouse.write(
        spark.createDataFrame(table, "item_idx long, codes array<int>, rqvae_version string, assigned_ds string"),
        "semantic_ids",
        ds,
        version=version,
        validate=lambda staged: validate_frame(
            "semantic_ids",
            with_unknown(semantic_id_summary(staged.toPandas()), "item_idx", current),
            semantic_ids_suite(
                len(set(current)), settings.rqvae.levels, settings.rqvae.codebook_size, settings.semantic_ids.max_collisions
            ),
            settings.paths.state_dir,
        ),
    )
    prefixes = np.asarray([c[: settings.rqvae.levels] for c in table["codes"]])
    metrics = quality_metrics(prefixes, settings.rqvae.codebook_size, recon_mse=float("nan"))
    metrics.pop("recon_mse")
    return {
        "items": len(table),
        "new_items": len(encoded),
        "max_collision_code": int(max(c[-1] for c in table["codes"])),
        **metrics,
        "codes": prefixes,
    }


MODES = {"train": run_train, "assign": run_assign}


def run(settings: Settings, ds: str, spark: SparkSession | None = None, mode: str = "assign") -> dict:
    """``mode`` train (retrain: a new RQ-VAE and fresh IDs) or assign (nightly: the champion's)."""
    return MODES[mode](settings, ds, spark)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=tuple(MODES),
        default="assign",
        help="train: a new RQ-VAE version and fresh IDs (retrain); assign: the champion's "
        "IDs, new items encoded (nightly; default)",
    )


def main(argv: list[str] | None = None) -> int:
    return stage_main("semantic_ids", run, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
