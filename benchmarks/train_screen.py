"""Short training screens on the real catalog: each configuration trains for the same
wall-clock budget from scratch, gets its hybrid blend chosen on validation as the train stage
does, and is scored on the full test split, so settings (objective,
learning rate, batch, width, sampled negatives, item-ID term, ...) compare at equal cost.

Each ``--config`` is a comma-separated list of ``section.key=value`` overrides on top of the
profile; the first is usually the baseline. Evaluation uses ``train.beams`` beams (20) to keep
screens short; the quality benchmark uses the paper's 100. Nothing is registered in MLflow.
Writes benchmarks/results/train_screen_<profile>.json, or ``train_screen_<profile>_<name>.json``
with ``--name``, so that a new screen does not overwrite a committed one.

    python -m benchmarks.train_screen --ds 2026-12-02 --minutes 8 \\
        --config "" --config "train.objective=prefix"
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import machine_info, write_result
from liger_jobs.common import today
from liger_jobs.inputs import load_model_inputs
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.retrieval.calibration import choose_blend
from liger_core.config import load_settings
from liger_core.retrieval.search import RetrievalIndex
from liger_core.retrieval.retrieval_metrics import evaluate
from liger_core.data.sequences import build_split
from liger_core.training.trainer import train
from liger_core.data.training_data import sequences_in_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--config", action="append", default=[], help="comma-separated overrides")
    parser.add_argument(
        "--name", default="", help="result file suffix: train_screen_<profile>_<name>.json (keeps earlier screens)"
    )
    args = parser.parse_args(argv)
    base = load_settings(args.profile)
    inputs = load_model_inputs(Warehouse(spark_session(base), base.paths.warehouse_uri), base, args.ds)
    sequences = sequences_in_space(inputs.sequences["items"], inputs.space)
    catalog = inputs.catalog
    results = []
    for config in args.config or [""]:
        overrides = [item for item in config.split(",") if item]
        settings = load_settings(args.profile, [*overrides, f"train.time_budget_minutes={args.minutes}"])
        split = build_split(sequences, settings.model.max_history, n_items=catalog.n_items)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            trained = train(settings.model, settings.train, catalog, split, Path(folder))
        train_seconds = time.perf_counter() - started
        index = RetrievalIndex.from_catalog(catalog, split.in_set)
        blend, _ = choose_blend(
            trained.model.eval(),
            split.valid,
            index,
            beams=settings.train.beams,
            cold_candidates=settings.train.cold_candidates,
            cold_weight=settings.train.cold_weight,
        )  # as the train stage does
        metrics = evaluate(trained.model, split.test, index, split="test", blend=blend, beams=settings.train.beams)
        row = {
            "overrides": overrides,
            "train_seconds": round(train_seconds, 1),
            "steps": trained.step,
            "epochs": round(trained.epochs, 2),
            "samples_per_second": round(trained.samples_per_second, 1),
            "blend": {key: str(value) for key, value in blend._asdict().items()},
            "validation_curve": [
                {"step": int(h["step"]), **{k: round(v, 5) for k, v in h.items() if k.endswith("ndcg@10")}}
                for h in trained.history
            ],
            **{k: round(v, 5) for k, v in metrics.items() if "@10" in k or k.endswith("users_cold")},
        }
        results.append(row)
        print(
            f"[{config or 'profile defaults'}] {trained.step} steps, {row['epochs']} epochs: "
            + ", ".join(
                f"{m} R@10 {metrics.get(f'test_{m}_recall@10_inset', float('nan')):.4f}"
                for m in ("generative", "dense", "hybrid")
            ),
            flush=True,
        )
    path = write_result(
        "_".join(filter(None, ["train_screen", base.profile, args.name])),
        {**machine_info(), "profile": base.profile, "ds": args.ds, "minutes": args.minutes, "results": results},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
