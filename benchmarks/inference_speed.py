"""Inference speed on the real catalog: the production hybrid path against the naive
hybrid (unconstrained beam, codes mapped to items by scanning every item) and dense
full-catalog scoring, same trained model, same machine, one process, one run.

Also reports the invalid-ID rate of both beams (finished beams whose codes are no item's
ID) and Recall@10 of each path on the same test users, so speed is read next to what it
returns. Needs a liger-mode recommender version and the tables of --ds.
Writes benchmarks/results/inference_speed_beauty.json.

    python -m benchmarks.inference_speed --ds 2026-11-23 --model champion
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from benchmarks import retrieval_paths as paths
from benchmarks.machine import machine_info, write_result
from liger_jobs.common import today
from liger_jobs.inputs import load_model_inputs
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.platform import tracking
from liger_core.config import load_settings
from liger_core.errors import ConfigError
from liger_core.retrieval.metrics import recall_at_k
from liger_core.model.network import Items
from liger_core.platform.model_registry import load_recommender
from liger_core.retrieval.search import Ranked
from liger_core.data.sequences import build_split
from liger_core.data.training_data import sequences_in_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default=None)
    parser.add_argument("--model", default="champion", help="recommender version or alias")
    parser.add_argument("--users", type=int, default=2048, help="seeded sample of test users")
    parser.add_argument("--batch", type=int, default=256, help="users per forward pass")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    settings = load_settings(args.profile, args.overrides)
    beams = settings.recommend.beams
    inputs = load_model_inputs(Warehouse(spark_session(settings), settings.paths.warehouse_uri), settings, args.ds)
    tracking.configure(settings)
    recommender, version = load_recommender(args.model)
    if recommender.model_config.mode != "liger":
        raise ConfigError(
            f"recommender v{version} is a {recommender.model_config.mode} model; the hybrid paths need a liger-mode version"
        )
    recommender = recommender.with_catalog(inputs.catalog, inputs.space, inputs.item_ids)
    catalogue, build = paths.Catalogue.build(recommender.model, Items.from_catalog(inputs.catalog), recommender.in_set)

    max_history = recommender.model_config.max_history
    test = build_split(
        sequences_in_space(inputs.sequences["items"], inputs.space), max_history, n_items=inputs.catalog.n_items
    ).test
    rows = np.sort(np.random.default_rng(settings.train.seed).choice(len(test), min(args.users, len(test)), replace=False))
    batches, targets = [], []
    for start in range(0, len(rows), args.batch):
        history, target = test.batch(rows[start : start + args.batch], max_history)
        batches.append(torch.from_numpy(history))
        targets.append(target)
    targets = np.concatenate(targets)

    runs = {
        "production_hybrid": lambda h: paths.production(catalogue, h, args.k, beams),
        "naive_hybrid": lambda h: paths.naive(catalogue, h, args.k, beams),
        "dense_full_catalog": lambda h: paths.dense(catalogue, h, args.k),
    }
    figures: dict[str, dict] = {}
    for name, path in runs.items():
        seconds, outputs = paths.timed(batches, path)
        ranked = [out if isinstance(out, Ranked) else out[0] for out in outputs]  # naive: (Ranked, beam items)
        top = torch.cat([r.items for r in ranked]).numpy()
        figures[name] = {
            "seconds": round(seconds, 3),
            "users_per_second": round(len(rows) / seconds, 1),
            "ms_per_user": round(1000 * seconds / len(rows), 3),
            f"recall@{args.k}": round(float(recall_at_k(top, targets, args.k).mean()), 4),
        }
        if name == "naive_hybrid":
            figures[name]["invalid_id_rate"] = round(paths.invalid_rate(torch.cat([o[1] for o in outputs])), 4)
    with torch.no_grad():
        constrained = torch.cat([paths.constrained_candidates(catalogue, h, beams) for h in batches])
    figures["production_hybrid"]["invalid_id_rate"] = round(paths.invalid_rate(constrained), 4)

    base = figures["production_hybrid"]["users_per_second"]
    print(
        f"recommender v{version}, {len(rows)} test users, top-{args.k}, {beams} beams, "
        f"{inputs.catalog.n_items} items ({len(catalogue.index.cold)} cold), {torch.get_num_threads()} torch threads"
    )
    print(f"{'path':<22}{'users/s':>10}{'ms/user':>10}{'vs prod':>9}{f'R@{args.k}':>8}{'invalid IDs':>13}")
    for name, fig in figures.items():
        invalid = f"{fig['invalid_id_rate']:.2%}" if "invalid_id_rate" in fig else "-"
        print(
            f"{name:<22}{fig['users_per_second']:>10}{fig['ms_per_user']:>10}"
            f"{fig['users_per_second'] / base:>8.2f}x{fig[f'recall@{args.k}']:>8.4f}{invalid:>13}"
        )
    path = write_result(
        "inference_speed_beauty",
        {
            **machine_info(),
            "ds": args.ds,
            "recommender_version": version,
            "users": len(rows),
            "k": args.k,
            "beams": beams,
            "batch_users": args.batch,
            "torch_threads": torch.get_num_threads(),
            "items": inputs.catalog.n_items,
            "cold_items": len(catalogue.index.cold),
            "index_build_seconds": {key: round(value, 3) for key, value in build.items()},
            "paths": figures,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
