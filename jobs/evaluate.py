"""Stage 6: evaluate a recommender version on the test split and gate its promotion.

Reports Recall/NDCG@5/10 for in-set and cold-start targets, for generative, dense and
hybrid retrieval, hybrid at every K of ``evaluate.beam_sweep``; logs them with a plot; and
gives the version alias ``champion`` only if its validation metric is finite, beats the
3-item transition-count baseline on the same users, and is not worse than the current
champion's by more than ``evaluate.gate_tolerance``.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
from pyspark.sql import SparkSession

from liger_jobs.common import stage_main
from liger_jobs.inputs import load_registered, log_model_inputs
from liger_jobs.spark import broadcast_for_stage, spark_session, threads_per_task
from liger_jobs.warehouse import Warehouse
from liger_core.platform import tracking
from liger_core.precision import autocast_dtype, dtype_name
from liger_core.retrieval.baselines import floor_metric
from liger_core.config import Settings, ranking_metric
from liger_core.errors import DataError
from liger_core.serving.evaluation import (
    SumsRunner,
    evaluate_recommender,
    evaluation_frames,
    hybrid_sweep_table,
    promotion_gate,
    results_table,
)
from liger_core.serving.recommender import Recommender
from liger_core.platform.model_registry import RECOMMENDER_MODEL, champion_metric, promote, tag_metric
from liger_core.platform.plots import hybrid_sweep_figure
from liger_core.data.sequences import Examples, build_split
from liger_core.data.training_data import sequences_in_space

log = logging.getLogger("liger.evaluate")


def run(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    spark = spark or spark_session(settings)
    cfg = settings.evaluate
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    with tracking.stage_run(settings, "evaluate", ds):
        recommender, version, inputs = load_registered(warehouse, settings, ds, cfg.model)
        log_model_inputs(warehouse, ds, inputs.rqvae_version, "evaluation")
        split = build_split(
            sequences_in_space(inputs.sequences["items"], inputs.space),
            recommender.model_config.max_history,
            n_items=inputs.catalog.n_items,
        )
        block_dtype = autocast_dtype(settings.recommend.precision, "cpu", "recommend.precision")
        tracking.log_params({"ranking_dtype": dtype_name(block_dtype)})
        with sharded_sums(spark, recommender, split.in_set) as sums:
            metrics = evaluate_recommender(
                recommender, split, cfg, settings.train.seed, settings.recommend.beams, block_dtype, sums
            )
        tracking.log_metrics(metrics)
        table, sweep = results_table(metrics), hybrid_sweep_table(metrics, cfg.beam_sweep)
        tracking.log_table(table, "evaluation/test_metrics.json")
        if not sweep.empty:
            tracking.log_figure(hybrid_sweep_figure(sweep), "plots/hybrid_vs_K.png")

        gate_metric = ranking_metric(recommender.model_config.mode, cfg.gate_metric)
        if gate_metric not in metrics:
            raise DataError(
                f"evaluate.gate_metric={gate_metric!r} was not computed; "
                f"available: {sorted(k for k in metrics if k.startswith('val_'))}"
            )
        candidate = metrics[gate_metric]
        floor = metrics.get(floor_metric(gate_metric)) if cfg.baseline_floor else None
        decision = promotion_gate(
            candidate, champion_metric(RECOMMENDER_MODEL, gate_metric), cfg.gate_tolerance, gate_metric, floor
        )
        tag_metric(RECOMMENDER_MODEL, version, gate_metric, candidate)
        if decision.promote:
            promote(version, recommender.meta["rqvae_version"])
        tracking.log_params({"evaluated_version": version, "promoted": decision.promote, "gate_reason": decision.reason})
        log.info("promotion gate for recommender v%s: %s", version, decision.reason)
        print(
            f"\nTest split, recommender v{version} (hybrid: best {cfg.beam_sweep[0]} of "
            f"{max(cfg.beam_width, *cfg.beam_sweep)} beams; *_served: history excluded):\n"
            f"{table.to_string(index=False, float_format='%.4f')}"
        )
        if not sweep.empty:
            print(f"\nHybrid by number of beams K:\n{sweep.to_string(index=False, float_format='%.4f')}")
        print(f"\nPromotion: {'PROMOTED' if decision.promote else 'not promoted'} ({decision.reason})")
    return {
        "recommender_version": version,
        "promoted": decision.promote,
        "gate_reason": decision.reason,
        "ranking_dtype": dtype_name(block_dtype),
        "table": table.to_dict(orient="records"),
        "sweep": sweep.to_dict(orient="records"),
        **{tracking.metric_key(k): v for k, v in metrics.items()},
    }


@contextmanager
def sharded_sums(spark: SparkSession, recommender: Recommender, in_set: np.ndarray) -> Iterator[SumsRunner]:
    """``evaluate_sums`` over one Spark task per core, each scoring every n-th user (in local
    mode with its share of the cores as torch threads), summed in the driver: on the 2-core
    Zen 4, two 1-thread tasks rank 100 beams 1.35x as fast as one 2-thread process."""
    parts = spark.sparkContext.defaultParallelism
    threads = threads_per_task(spark, parts)

    with broadcast_for_stage(spark, recommender.to_bytes()) as bundle:

        def run(examples: Examples, **options: Any) -> dict[str, float]:
            with broadcast_for_stage(spark, examples) as shared:
                shards = spark.range(0, parts, numPartitions=parts).withColumnRenamed("id", "shard")
                per_shard = shards.mapInPandas(
                    lambda frames: evaluation_frames(frames, bundle.value, shared.value, in_set, parts, threads, options),
                    "name string, value double",
                ).toPandas()
            return per_shard.groupby("name")["value"].sum().to_dict()

        yield run


def main(argv: list[str] | None = None) -> int:
    return stage_main("evaluate", run, argv)


if __name__ == "__main__":
    sys.exit(main())
