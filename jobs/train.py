"""Stage 5: user_sequences + semantic_ids + item_embeddings -> MLflow model ``recommender``.

Training runs on the driver, or under torch DDP on ``train.processes`` processes launched
by Spark's TorchDistributor (gloo on CPU, nccl on GPUs). Checkpoints live under the state
folder per ds, so a killed task resumes where it stopped when Airflow retries it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from liger_jobs.common import stage_main
from liger_jobs.inputs import load_model_inputs, log_model_inputs
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.platform import tracking
from liger_core.retrieval.calibration import choose_blend
from liger_core.data.catalog import Catalog
from liger_core.config import Settings, ranking_metric
from liger_core.model.network import LigerModel
from liger_core.platform.model_registry import register_recommender
from liger_core.platform.plots import training_curve_figure
from liger_core.precision import autocast_dtype
from liger_core.serving.recommender import Recommender
from liger_core.retrieval.search import Blend, RetrievalIndex
from liger_core.data.sequences import Split, build_split
from liger_core.training.trainer import TrainResult, train
from liger_core.data.training_data import sequences_in_space

log = logging.getLogger("liger.train")


def checkpoint_dir(settings: Settings, ds: str, rqvae_version: str) -> Path:
    """Per ds and ID space: a retry resumes, a retrain on new semantic IDs starts afresh."""
    return Path(settings.paths.state_dir) / "checkpoints" / "recommender" / f"ds={ds}" / f"rqvae={rqvae_version}"


def _train_worker(settings: Settings, catalog: Catalog, split: Split, folder: str, tracking_uri: str, run_id: str) -> dict:
    """Runs in each DDP process: join the group, train, hand rank 0's result back."""
    import torch.distributed as dist

    backend = "nccl" if settings.train.device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    try:
        tracking.use_store(tracking_uri)
        result = train(
            settings.model,
            settings.train,
            catalog,
            split,
            Path(folder),
            log=lambda metrics, step: tracking.log_metrics(metrics, step, run_id=run_id),
        )
        return {"state": result.model.state_dict(), **_summary(result)}
    finally:
        dist.destroy_process_group()


def _summary(result: TrainResult) -> dict:
    return {
        "step": result.step,
        "best_metrics": result.best_metrics,
        "stopped_reason": result.stopped_reason,
        "samples_per_second": result.samples_per_second,
        "seconds": result.seconds,
        "start_step": result.start_step,
        "epochs": result.epochs,
        "history": result.history,
    }


def _fit(settings: Settings, catalog: Catalog, split: Split, folder: Path, run_id: str) -> tuple[LigerModel, dict]:
    """Train in this process, or on ``train.processes`` DDP ranks via TorchDistributor."""
    if settings.train.processes == 1:
        result = train(
            settings.model, settings.train, catalog, split, folder, log=lambda metrics, step: tracking.log_metrics(metrics, step)
        )
        return result.model, _summary(result)
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(
        num_processes=settings.train.processes, local_mode=True, use_gpu=settings.train.device.startswith("cuda")
    )
    outcome = distributor.run(_train_worker, settings, catalog, split, str(folder), settings.tracking_uri, run_id)
    model = LigerModel(settings.model, catalog.code_sizes, catalog.text_dim, catalog.n_items)
    model.load_state_dict(outcome.pop("state"))
    return model, outcome


def _curve(history: list[dict], settings: Settings) -> list[dict]:
    """(step, watched validation metric) at every evaluation, for reports and benchmarks."""
    watched = ranking_metric(settings.model.mode, settings.train.early_stop_metric)
    return [{"step": int(h["step"]), watched: round(h[watched], 5)} for h in history if watched in h]


def _calibrate(settings: Settings, model: LigerModel, split: Split, index: RetrievalIndex) -> tuple[Blend, dict]:
    """The hybrid blend chosen on validation, ranked at serving's precision, and its
    validation metrics as stage stats."""
    device = index.items.sid.device.type
    blend, measured = choose_blend(
        model.eval(),
        split.valid,
        index,
        beams=settings.train.beams,
        cold_candidates=settings.train.cold_candidates,
        cold_weight=settings.train.cold_weight,
        block_dtype=autocast_dtype(settings.recommend.precision, device, "recommend.precision"),
    )
    chosen = {f"blend_val_{key}": value for key, value in measured.blends[blend].finite().items()} if measured.blends else {}
    heads = {
        f"head_val_{head}_{key}": value
        for head, quality in measured.heads.items()
        for key, value in quality.finite().items()
        if key.endswith("_inset")
    }
    log.info(
        "hybrid blend %s chosen on validation out of %d (its hybrid@10 there: %s; the heads alone: %s)",
        blend._asdict(),
        len(measured.blends),
        chosen,
        heads,
    )
    return blend, {**chosen, **heads}


def run(settings: Settings, ds: str, spark: SparkSession | None = None) -> dict:
    spark = spark or spark_session(settings)
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    inputs = load_model_inputs(warehouse, settings, ds)
    with tracking.stage_run(settings, "train", ds) as active:
        log_model_inputs(warehouse, ds, inputs.rqvae_version, "training")
        sequences = sequences_in_space(inputs.sequences["items"], inputs.space)
        split = build_split(sequences, settings.model.max_history, n_items=inputs.catalog.n_items)
        model, summary = _fit(
            settings, inputs.catalog, split, checkpoint_dir(settings, ds, inputs.rqvae_version), active.info.run_id
        )
        index = RetrievalIndex.from_catalog(inputs.catalog, split.in_set)
        blend, chosen = _calibrate(settings, model, split, index)
        recommender = Recommender(
            model.eval(),
            settings.model,
            inputs.catalog,
            inputs.space,
            split.in_set,
            inputs.item_ids,
            {"rqvae_version": inputs.rqvae_version, "trained_ds": ds, "mode": settings.model.mode, **blend._asdict()},
        )
        version = register_recommender(recommender)
        tracking.log_params(
            {"rqvae_version": inputs.rqvae_version, "recommender_version": version, "stopped_reason": summary["stopped_reason"]}
        )
        stats = {
            "recommender_version": version,
            "rqvae_version": inputs.rqvae_version,
            "train_examples": len(split.train),
            "in_set_items": int(split.in_set.sum()),
            "cold_items": int((~split.in_set).sum()),
            "steps": summary["step"],
            "resumed_from_step": summary["start_step"],
            "stopped_reason": summary["stopped_reason"],
            "samples_per_second": round(summary["samples_per_second"], 1),
            "train_seconds": round(summary["seconds"], 1),
            "epochs": round(summary["epochs"], 2),
            "cold_offset": str(blend.cold_offset),
            "generative_weight": blend.generative_weight,
            "dense_candidates": blend.dense_candidates,
            "cold_slot_cap": blend.cold_candidates,
            **chosen,
            "validation_curve": _curve(summary["history"], settings),
            **{tracking.metric_key(f"best_{k}"): v for k, v in summary["best_metrics"].items()},
        }
        tracking.log_metrics({k: v for k, v in stats.items() if isinstance(v, (int, float))})
        curve = stats["validation_curve"]
        if curve:
            watched = next(key for key in curve[0] if key != "step")  # the metric _curve recorded
            tracking.log_figure(training_curve_figure(curve, watched), "plots/training_curve.png")
    return stats


def main(argv: list[str] | None = None) -> int:
    return stage_main("train", run, argv)


if __name__ == "__main__":
    sys.exit(main())
