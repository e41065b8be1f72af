"""RQ-VAE training + semantic-ID assignment on the real catalog (issue target: < 5 min on 2 cores).

Uses the warehouse's item_embeddings for --ds (runs ingest + embed first when missing), times
``semantic_ids --mode train`` (training, registration, distributed encoding, assignment and
validation), and writes benchmarks/results/semantic_ids_beauty.json.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks.machine import machine_info, write_result
from liger_jobs import embed_items, ingest, semantic_ids
from liger_jobs.common import today
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.config import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    settings = load_settings(args.profile, args.overrides)
    spark = spark_session(settings)
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    if not warehouse.exists("item_embeddings", args.ds):
        ingest.run(settings, args.ds, spark)
        embed_items.run(settings, args.ds, spark)
    started = time.perf_counter()
    stats = semantic_ids.run_train(settings, args.ds, spark)
    seconds = time.perf_counter() - started
    frame = warehouse.read("semantic_ids", args.ds, stats["rqvae_version"]).toPandas()
    unique_ids = frame["codes"].map(tuple).nunique()
    levels = settings.rqvae.levels
    figures = {
        "items": len(frame),
        "unique_ids": int(unique_ids),
        "total_seconds": round(seconds, 1),
        "train_seconds": stats["train_seconds"],
        "epochs": settings.rqvae.epochs,
        **{f"usage_l{i}": round(stats[f"usage_l{i}"], 4) for i in range(1, levels + 1)},
        **{f"perplexity_l{i}": round(stats[f"perplexity_l{i}"], 1) for i in range(1, levels + 1)},
        "collision_share": round(stats["collision_share"], 4),
        "max_collision_group": int(stats["max_collision_group"]),
        "recon_mse": round(stats["final_recon_mse"], 4),
        "rqvae_version": stats["rqvae_version"],
    }
    print(f"{'figure':<22}{'value':>12}")
    for key, value in figures.items():
        print(f"{key:<22}{value!s:>12}")
    path = write_result("semantic_ids_beauty", {**machine_info(), "profile": settings.profile, "figures": figures})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
