"""Scaling with catalog size on synthetic catalogs (random unit text embeddings).

Per size: semantic-ID assignment (RQ-VAE encoding + collision codes, the production
functions), index build (prefix index over the in-set items + dense vectors of every item),
and time per user of the production hybrid path, next to dense full-catalog scoring and
the naive hybrid (unconstrained beam, codes mapped by scanning every item), whose work
grows with the catalog.

Costs do not depend on what the weights learned, so the RQ-VAE is trained briefly, once,
on a 12k-row sample, and the recommender is a seeded, untrained model of the profile's
size (so invalid-ID rates are measured on the trained model, in inference_speed.py, not
here). The cold-start set is a fixed number of the newest items (a nightly catalog adds a
bounded number of items; the dense head scores each of them exactly).
Writes benchmarks/results/scaling_synthetic.json.

    python -m benchmarks.scaling --sizes 12000 100000 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial

import numpy as np
import torch

from benchmarks import retrieval_paths as paths
from benchmarks.machine import machine_info, write_result
from liger_core.config import load_settings
from liger_core.model.network import Items, LigerModel
from liger_core.ids.rqvae import quality_metrics, train_rqvae
from liger_core.ids.semantic_ids import assign_semantic_ids
from liger_core.data.training_data import code_sizes

TEXT_DIM = 384  # all-MiniLM-L6-v2's width


def unit_embeddings(n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, TEXT_DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[12_000, 100_000, 1_000_000])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--rqvae-epochs", type=int, default=20)
    parser.add_argument("--cold", type=int, default=1000, help="cold-start (newest) items per catalog")
    parser.add_argument("--users", type=int, default=1024, help="users timed on the production path")
    parser.add_argument("--slow-users", type=int, default=256, help="users timed on the naive and dense paths")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    # One model serves every catalog size, so no per-item ID table (an embedding lookup per item).
    settings = load_settings(
        args.profile, [f"rqvae.epochs={args.rqvae_epochs}", "model.mode=liger", "model.item_ids=false", *args.overrides]
    )
    rng = np.random.default_rng(settings.train.seed)
    beams, sizes = settings.recommend.beams, code_sizes(settings.rqvae, settings.semantic_ids)

    started = time.perf_counter()
    rqvae = train_rqvae(unit_embeddings(12_000, rng), settings.rqvae).model
    rqvae_train_seconds = time.perf_counter() - started
    torch.manual_seed(settings.train.seed)
    model = LigerModel(settings.model, sizes, TEXT_DIM).eval()

    rows = []
    for n in args.sizes:
        text = unit_embeddings(n, rng)
        started = time.perf_counter()
        codes = rqvae.encode_codes(torch.from_numpy(text)).numpy()
        ids = assign_semantic_ids(np.arange(n), codes, None, settings.semantic_ids.max_collisions)
        assign_seconds = time.perf_counter() - started
        sid = np.array(ids["codes"].tolist(), dtype=np.int64)
        in_set = np.ones(n, dtype=bool)
        in_set[n - min(args.cold, n - 1) :] = False
        catalogue, build = paths.Catalogue.build(model, Items(torch.from_numpy(sid), torch.from_numpy(text)), in_set)

        history = rng.choice(np.flatnonzero(in_set), size=(args.users, settings.model.max_history))
        batches = list(torch.from_numpy(history).split(args.batch))
        slow = list(torch.from_numpy(history[: args.slow_users]).split(args.batch))
        prod_s, _ = paths.timed(batches, partial(paths.production, catalogue, k=args.k, beams=beams))
        dense_s, _ = paths.timed(slow, partial(paths.dense, catalogue, k=args.k))
        naive_s, _ = paths.timed(slow, partial(paths.naive, catalogue, k=args.k, beams=beams))
        row = {
            "items": n,
            "cold_items": int((~in_set).sum()),
            "assign_seconds": round(assign_seconds, 2),
            "prefix_index_seconds": round(build["prefix_index_seconds"], 2),
            "item_vectors_seconds": round(build["item_vectors_seconds"], 2),
            "collision_share": round(quality_metrics(codes, settings.rqvae.codebook_size, 0.0)["collision_share"], 4),
            "max_collision_code": int(sid[:, -1].max()),
            "production_ms_per_user": round(1000 * prod_s / args.users, 3),
            "dense_ms_per_user": round(1000 * dense_s / len(history[: args.slow_users]), 3),
            "naive_ms_per_user": round(1000 * naive_s / len(history[: args.slow_users]), 3),
        }
        rows.append(row)
        print(row, flush=True)
        del catalogue, text

    print(f"\n{'items':>10}{'assign s':>10}{'index s':>9}{'vectors s':>10}{'prod ms/u':>11}{'dense ms/u':>11}{'naive ms/u':>11}")
    for r in rows:
        print(
            f"{r['items']:>10}{r['assign_seconds']:>10}{r['prefix_index_seconds']:>9}{r['item_vectors_seconds']:>10}"
            f"{r['production_ms_per_user']:>11}{r['dense_ms_per_user']:>11}{r['naive_ms_per_user']:>11}"
        )
    path = write_result(
        "scaling_synthetic",
        {
            **machine_info(),
            "profile": settings.profile,
            "overrides": args.overrides,
            "rqvae_epochs": args.rqvae_epochs,
            "rqvae_train_seconds_12k": round(rqvae_train_seconds, 1),
            "beams": beams,
            "k": args.k,
            "batch_users": args.batch,
            "torch_threads": torch.get_num_threads(),
            "model": settings.model.model_dump(),
            "sizes": rows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
