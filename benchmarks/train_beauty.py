"""Train + evaluate + serve on the real catalog with one profile (default cpu), and record
wall times, training samples/s, the evaluation table and hybrid inference users/s.

Needs the tables of the earlier stages for --ds (run `liger run` or the stages first).
``--version N`` skips training and reports recommender version N, reading its training
figures from the MLflow run that registered it. Writes benchmarks/results/train_<mode>_<profile>.json.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks.machine import machine_info, write_result
from jobs import evaluate, recommend, train
from jobs.common import today
from jobs.spark import spark_session
from liger_core import tracking
from liger_core.config import load_settings
from liger_core.model_registry import RECOMMENDER_MODEL

PAPER = {"liger": {"in-set": {"R@10": 0.0745, "N@10": 0.0402}, "cold-start": {"R@10": 0.1008, "N@10": 0.0380}},
         "tiger": {"in-set": {"R@10": 0.0648, "N@10": 0.0384}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--version", default=None, help="report this recommender version instead of training")
    args = parser.parse_args(argv)
    settings = load_settings(args.profile, args.overrides)
    spark = spark_session(settings)

    if args.version:
        trained = _logged_training(settings, args.version)
    else:
        started = time.perf_counter()
        trained = train.run(settings, args.ds, spark)
        trained["wall_seconds"] = time.perf_counter() - started
    version = trained["recommender_version"]
    # Full test set for the reported figures (the cpu profile samples users to keep runs short).
    pinned = load_settings(args.profile, ["evaluate.users=0", *args.overrides, f"evaluate.model={version}",
                                          f"recommend.model={version}"])
    started = time.perf_counter()
    evaluated = evaluate.run(pinned, args.ds, spark)
    eval_wall = time.perf_counter() - started
    served = recommend.run(pinned, args.ds, spark)

    figures = {
        "mode": settings.model.mode, "recommender_version": version,
        "train_wall_seconds": round(trained["wall_seconds"], 1), "train_steps": trained["steps"],
        "train_samples_per_second": trained["samples_per_second"], "stopped_reason": trained["stopped_reason"],
        "train_examples": trained["train_examples"], "cold_items": trained["cold_items"],
        "evaluate_wall_seconds": round(eval_wall, 1), "test_table": evaluated["table"],
        "hybrid_sweep": evaluated["sweep"], "promoted": evaluated["promoted"],
        "recommend_users": served["users"], "recommend_seconds": served["seconds"],
        "recommend_users_per_second": served["users_per_second"], "k": served["k"],
    }
    print(f"train: {figures['train_steps']} steps in {figures['train_wall_seconds']} s "
          f"({figures['train_samples_per_second']} samples/s, stopped: {figures['stopped_reason']})")
    print(f"recommend: {figures['recommend_users']} users in {figures['recommend_seconds']} s "
          f"({figures['recommend_users_per_second']} users/s, top-{figures['k']})")
    path = write_result(f"train_{settings.model.mode}_{settings.profile}",
                        {**machine_info(), "profile": settings.profile, "ds": args.ds,
                         "paper_k20": PAPER.get(settings.model.mode), "figures": figures})
    print(f"wrote {path}")
    return 0


def _logged_training(settings, version: str) -> dict:
    """Training figures of an existing version, from the MLflow run that registered it."""
    import mlflow

    tracking.configure(settings)
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(client.get_model_version(RECOMMENDER_MODEL, version).run_id)
    metrics = run.data.metrics
    return {"recommender_version": version, "wall_seconds": metrics["stage_seconds"],
            "steps": int(metrics["steps"]), "samples_per_second": metrics["samples_per_second"],
            "stopped_reason": run.data.params.get("stopped_reason", "see MLflow run " + run.info.run_id),
            "train_examples": int(metrics["train_examples"]), "cold_items": int(metrics["cold_items"])}


if __name__ == "__main__":
    sys.exit(main())
