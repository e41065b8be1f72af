"""Serving speed at paper size next to its peer: the production hybrid path against Hugging
Face ``T5ForConditionalGeneration.generate`` with beam search on a T5 of the same size (the
path the official LIGER code takes), one process, one run, same users.

Speed does not depend on what the weights learned, so both models are seeded and
untrained, and the catalog is synthetic with Beauty's shape: 12,101 items with random unit
text vectors and random 3-level semantic IDs plus collision codes, the newest 44 cold.
Per batch size it times the encoder alone, the constrained beam search alone (on encoded
histories), the production hybrid (``retrieval.recommend``) and, at ``--hf-batch``, HF
T5 generate (beam 20, 4 new tokens), at the profile's head width and at the official
code's (64-wide heads). Each path runs in float32 and, where the CPU multiplies bfloat16
natively (``recommend.precision=auto``), again with its Transformer under bfloat16 autocast
(HF: the whole model; production: the blocks, scores stay float32). With ``--profile-ops``
it records the production path's top ops. Writes benchmarks/results/serving_peer.json.

    python -m benchmarks.serving_peer --profile gpu --set model.item_ids=false
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from typing import Callable

import numpy as np
import torch

from benchmarks import retrieval_paths as paths
from benchmarks.machine import machine_info, write_result
from benchmarks.scaling import TEXT_DIM, unit_embeddings
from liger_core.config import load_settings
from liger_core.precision import native_bfloat16
from liger_core.model.network import Items, LigerModel
from liger_core.retrieval.search import eval_mode, generative_topk
from liger_core.ids.semantic_ids import assign_semantic_ids
from liger_core.data.training_data import code_sizes


def synthetic_catalogue(
    model: LigerModel, n_items: int, n_cold: int, rng: np.random.Generator, codebook: int, levels: int, max_collisions: int
) -> paths.Catalogue:
    text = unit_embeddings(n_items, rng)
    codes = rng.integers(0, codebook, size=(n_items, levels))
    ids = assign_semantic_ids(np.arange(n_items), codes, None, max_collisions)
    sid = np.array(ids["codes"].tolist(), dtype=np.int64)
    in_set = np.ones(n_items, dtype=bool)
    in_set[n_items - n_cold :] = False
    catalogue, _ = paths.Catalogue.build(model, Items(torch.from_numpy(sid), torch.from_numpy(text)), in_set)
    return catalogue


def hf_t5(vocab: int, d_model: int, heads: int, d_kv: int, ff_dim: int, encoder_layers: int, decoder_layers: int, seed: int):
    """A seeded T5 whose token vocabulary is every (level, code) pair plus pad and eos."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=vocab + 2,
        d_model=d_model,
        d_kv=d_kv,
        d_ff=ff_dim,
        num_layers=encoder_layers,
        num_decoder_layers=decoder_layers,
        num_heads=heads,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return T5ForConditionalGeneration(config).eval()


def t5_generate(model, tokens: torch.Tensor, beams: int, levels: int) -> torch.Tensor:
    return model.generate(
        input_ids=tokens,
        attention_mask=torch.ones_like(tokens),
        num_beams=beams,
        num_return_sequences=beams,
        max_new_tokens=levels,
        min_new_tokens=levels,
        do_sample=False,
    )


def rate(inputs: list, path: Callable[[object], object], users: int) -> dict[str, float]:
    """Users per second of ``path`` over every input, after one warm-up call."""
    with torch.no_grad():
        path(inputs[0])
        started = time.perf_counter()
        for one in inputs:
            path(one)
        seconds = time.perf_counter() - started
    return {"users_per_second": round(users / seconds, 1), "ms_per_user": round(1000 * seconds / users, 3)}


def top_ops(path: Callable[[], object], rows: int = 12) -> list[dict]:
    """The ops with the most self CPU time over one call of ``path``."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        path()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    return [
        {
            "op": e.key,
            "calls": e.count,
            "self_ms": round(e.self_cpu_time_total / 1000, 2),
            "share": round(e.self_cpu_time_total / total, 4),
        }
        for e in events
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="gpu", help="profile whose model size is measured (gpu: paper size)")
    parser.add_argument("--items", type=int, default=12_101)
    parser.add_argument("--cold", type=int, default=44)
    parser.add_argument("--users", type=int, default=512, help="users timed per path and batch size")
    parser.add_argument("--hf-users", type=int, default=128, help="users timed on HF T5 generate")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 256])
    parser.add_argument("--hf-batch", type=int, default=32, help="users per HF generate call (one of --batches)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--profile-ops", action="store_true", help="record the production path's top ops")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    settings = load_settings(args.profile, ["model.mode=liger", *args.overrides])
    cfg, rng = settings.model, np.random.default_rng(settings.train.seed)
    beams, sizes = settings.recommend.beams, code_sizes(settings.rqvae, settings.semantic_ids)
    torch.manual_seed(settings.train.seed)
    model = LigerModel(cfg, sizes, TEXT_DIM, n_items=args.items).eval()
    catalogue = synthetic_catalogue(
        model,
        args.items,
        args.cold,
        rng,
        settings.rqvae.codebook_size,
        settings.rqvae.levels,
        settings.semantic_ids.max_collisions,
    )
    in_set = catalogue.index.in_set.numpy()
    history = torch.from_numpy(rng.choice(in_set, size=(args.users, cfg.max_history)))

    # "" is float32; "_bfloat16" the same path under recommend.precision=auto on this CPU.
    precisions = {"": None, **({"_bfloat16": torch.bfloat16} if native_bfloat16("cpu") else {})}
    figures: dict[str, dict] = {}
    for batch in args.batches:
        batches = list(history.split(batch))
        figures[f"batch_{batch}"] = {}
        for suffix, dtype in precisions.items():
            with eval_mode(model, dtype), torch.no_grad():
                encoded = [model.encode(h, catalogue.index.items) for h in batches]
                figures[f"batch_{batch}"].update(
                    {
                        f"encoder{suffix}": rate(batches, lambda h: model.encode(h, catalogue.index.items), args.users),
                        f"constrained_beam{suffix}": rate(
                            encoded, lambda e: generative_topk(model, e, catalogue.index.prefixes, beams), args.users
                        ),
                    }
                )
            figures[f"batch_{batch}"][f"production_hybrid{suffix}"] = rate(
                batches, lambda h: paths.production(catalogue, h, args.k, beams, dtype), args.users
            )
        print(f"batch {batch}: {figures[f'batch_{batch}']}", flush=True)

    # The same token stream for T5: item-major, level-minor, one token per (level, code).
    offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)
    tokens = (catalogue.index.items.sid[history[: args.hf_users]] + offsets + 2).flatten(1)
    hf_batch = args.hf_batch
    hf_batches = list(tokens.split(hf_batch))
    widths = {"hf_t5_same_size": (cfg.heads, cfg.d_model // cfg.heads), "hf_t5_official_width": (6, 64)}
    for name, (heads, d_kv) in widths.items():
        t5 = hf_t5(
            int(sum(sizes)), cfg.d_model, heads, d_kv, cfg.ff_dim, cfg.encoder_layers, cfg.decoder_layers, settings.train.seed
        )
        for suffix, dtype in precisions.items():
            with torch.autocast("cpu", dtype=dtype) if dtype else nullcontext():
                figures[f"batch_{hf_batch}"][name + suffix] = rate(
                    hf_batches, lambda t: t5_generate(t5, t, beams, len(sizes)), len(tokens)
                )
        print(f"{name} (batch {hf_batch}, {heads} x {d_kv}-wide heads): {figures[f'batch_{hf_batch}'][name]}", flush=True)

    small = figures[f"batch_{hf_batch}"]
    ratios = {
        f"production{suffix}_vs_hf_t5_same_size{suffix}": round(
            small[f"production_hybrid{suffix}"]["users_per_second"] / small[f"hf_t5_same_size{suffix}"]["users_per_second"], 2
        )
        for suffix in precisions
    }
    ratio = ratios["production_vs_hf_t5_same_size"]
    served = list(precisions)[-1]  # what recommend.precision=auto runs here
    best = max(figures, key=lambda key: figures[key][f"production_hybrid{served}"]["users_per_second"])
    beam_share = {
        f"{key}{suffix}": round(f[f"encoder{suffix}"]["users_per_second"] / f[f"constrained_beam{suffix}"]["users_per_second"], 3)
        for key, f in figures.items()
        for suffix in precisions
    }
    dtype = precisions[served]
    ops = top_ops(lambda: paths.production(catalogue, history[:hf_batch], args.k, beams, dtype)) if args.profile_ops else []
    print(
        f"production / HF T5 same size at batch {hf_batch}: {ratios}; best batch (recommend.precision=auto) {best}; "
        f"beam time / encoder time per batch: {beam_share}"
    )
    for op in ops:
        print(f"  {op['op']:<40}{op['calls']:>8}{op['self_ms']:>10}{op['share']:>8.1%}")
    path = write_result(
        "serving_peer",
        {
            **machine_info(),
            "profile": settings.profile,
            "overrides": args.overrides,
            "model": cfg.model_dump(),
            "code_sizes": list(sizes),
            "items": args.items,
            "cold_items": args.cold,
            "users": args.users,
            "hf_users": args.hf_users,
            "beams": beams,
            "k": args.k,
            "torch_threads": torch.get_num_threads(),
            "paths": figures,
            "bfloat16_native": bool(len(precisions) > 1),
            "production_vs_hf_t5_same_size": ratio,
            "ratios": ratios,
            "fastest_batch": best,
            "beam_over_encoder_time": beam_share,
            "production_top_ops": ops,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
