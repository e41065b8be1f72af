"""Validation and test metrics of every retrieval method a model has (generative, dense,
hybrid and the hybrid K sweep), per segment of users (all, cold-start targets, in-set
targets), summed over batches so that ranks of a DDP run can all-reduce them. Each mean
comes with its standard error over users (``<metric>_se``), from the sum of squares summed
alongside: two models' figures on one split are only told apart by more than about two of them."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from liger_core.errors import DataError
from liger_core.retrieval.metrics import metric_name, ndcg_at_k, recall_at_k
from liger_core.model.network import Encoded, LigerModel
from liger_core.progress import Progress
from liger_core.retrieval.search import (
    BEAMS,
    Blend,
    Ranked,
    RetrievalIndex,
    dense_topk,
    drop_excluded,
    eval_mode,
    generative_topk,
    hybrid_topk,
)
from liger_core.data.sequences import Examples


SEGMENTS = (None, "cold", "inset")  # all targets, cold-start targets, in-set targets
METRICS = (("recall", recall_at_k), ("ndcg", ndcg_at_k))
SQUARES = "_squares"  # suffix of a metric's sum of squared per-user values in the sums
STANDARD_ERROR = "_se"  # suffix of a mean's standard error in ``finish``'s output
CANCELLATION = 1e-12  # relative size under which sum of squares - n * mean^2 is rounding


def methods(model: LigerModel) -> list[str]:
    """Retrieval methods the model's mode supports."""
    return ["generative"] * model.generative + ["dense"] * model.dense + ["hybrid"] * (model.generative and model.dense)


def metric_names(model: LigerModel, ks: Sequence[int] = (5, 10), split: str = "val") -> list[str]:
    """Every metric ``evaluate`` can report for this model (segments may be absent)."""
    return [
        metric_name(split, method, metric, k, segment)
        for method in methods(model)
        for metric, _ in METRICS
        for k in ks
        for segment in SEGMENTS
    ]


def _users(split: str, segment: str | None) -> str:
    return f"{split}_users" + (f"_{segment}" if segment else "")


@torch.no_grad()
def evaluate_sums(
    model: LigerModel,
    examples: Examples,
    index: RetrievalIndex,
    *,
    beams: int = BEAMS,
    candidates: int | None = None,
    sweep: Sequence[int] = (),
    blend: Blend = Blend(),
    ks: Sequence[int] = (5, 10),
    batch_size: int = 256,
    split: str = "val",
    served: bool = False,
    block_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Per-user metric sums (not means) by name, plus user counts ``{split}_users[_cold|_inset]``.

    One beam search of width ``beams`` per user serves every method: generative ranks its
    beams, hybrid reranks the best ``candidates`` of them (default all) plus the cold items,
    and ``hybrid_K{K}`` does the same with the best K for each K of ``sweep``. As the paper
    reports it, nothing is excluded; ``served`` adds ``<method>_served`` metrics with the
    user's history excluded, as serving returns them. Sums add up across data-parallel
    workers; ``finish`` turns them into means. Methods the mode lacks are skipped. The
    Transformer blocks run under ``block_dtype`` autocast when one is given, as serving runs them.
    """
    device = index.items.sid.device
    all_idx = torch.arange(len(index.items.sid), device=device)
    widths = {"hybrid": candidates or beams, **{f"hybrid_K{k}": k for k in sweep}}
    if any(width > beams for width in widths.values()):
        raise DataError(f"hybrid candidates {sorted(widths.values())} exceed the beam width {beams}")
    # Every key exists even for an empty shard, so workers can sum them position by position.
    names = [m for m in methods(model) if m != "hybrid"] + (list(widths) if "hybrid" in methods(model) else [])
    names += [f"{m}_served" for m in names] if served else []
    metrics = [metric_name(split, m, metric, k, seg) for m in names for metric, _ in METRICS for k in ks for seg in SEGMENTS]
    sums = dict.fromkeys([_users(split, s) for s in SEGMENTS] + metrics + [name + SQUARES for name in metrics], 0.0)
    progress = Progress(f"evaluate {split}", len(examples), "user")
    with eval_mode(model, block_dtype):
        vectors = index.item_vectors(model)
        for start in range(0, len(examples), batch_size):
            rows = np.arange(start, min(start + batch_size, len(examples)))
            history, targets = examples.batch(rows, model.max_history)
            history_t = torch.from_numpy(history).to(device)
            encoded = model.encode(history_t, index.items)
            generated = generative_topk(model, encoded, index.prefixes, beams) if model.generative else None
            ranked = _rank_all(model, encoded, generated, index.cold, vectors, all_idx, widths, blend, max(ks), None)
            if served:
                excluded = _rank_all(model, encoded, generated, index.cold, vectors, all_idx, widths, blend, max(ks), history_t)
                ranked.update({f"{m}_served": r for m, r in excluded.items()})
            add_sums(
                sums, {method: r.items.cpu().numpy() for method, r in ranked.items()}, targets, examples.is_cold[rows], ks, split
            )
            progress.update(int(rows[-1]) + 1)
    progress.close()
    return sums


def add_sums(
    sums: dict[str, float], top: dict[str, np.ndarray], targets: np.ndarray, cold: np.ndarray, ks: Sequence[int], split: str
) -> None:
    """Add one batch of users to ``sums``: user counts per segment, and for each method's
    ranked item_idx [B, >=max(ks)] the Recall/NDCG@k sums and sums of squares per segment."""
    masks = dict(zip(SEGMENTS, (np.ones_like(cold), cold, ~cold)))
    for segment, mask in masks.items():
        sums[_users(split, segment)] = sums.get(_users(split, segment), 0.0) + float(mask.sum())
    for method, ranked in top.items():
        for k in ks:
            for metric, fn in METRICS:
                values = fn(ranked, targets, k)
                for segment, mask in masks.items():
                    name, picked = metric_name(split, method, metric, k, segment), values[mask]
                    sums[name] = sums.get(name, 0.0) + float(picked.sum())
                    sums[name + SQUARES] = sums.get(name + SQUARES, 0.0) + float(np.square(picked).sum())


def _rank_all(
    model: LigerModel,
    encoded: Encoded,
    generated: Ranked | None,
    cold_items: Tensor,
    vectors: Tensor | None,
    all_idx: Tensor,
    hybrid_widths: dict[str, int],
    blend: Blend,
    k: int,
    exclude: Tensor | None,
) -> dict[str, Ranked]:
    """Every method the mode supports, from one encoding and one beam search (``vectors``
    is None exactly when the mode has no dense head)."""
    ranked: dict[str, Ranked] = {}
    if generated is not None:
        ranked["generative"] = generated if exclude is None else drop_excluded(generated, exclude)
    if vectors is not None:
        ranked["dense"] = dense_topk(encoded.dense_query, vectors, all_idx, k, exclude)
    if generated is not None and vectors is not None:
        beam = ranked["generative"]
        for name, width in hybrid_widths.items():
            best = Ranked(beam.items[:, :width], beam.scores[:, :width])
            ranked[name] = hybrid_topk(encoded.dense_query, vectors, best, cold_items, k, exclude, blend)
    return ranked


def finish(sums: dict[str, float], split: str = "val") -> dict[str, float]:
    """Means from ``evaluate_sums`` (summed over workers), and for each its standard error
    over users, sqrt(sample variance / users); segments without users are left out, and
    standard errors of segments with one user."""
    out: dict[str, float] = {}
    for name, total in sums.items():
        if name.startswith(f"{split}_users"):
            out[name] = total
            continue
        if name.endswith(SQUARES):
            continue
        segment = name.rsplit("_", 1)[1] if name.endswith(("_cold", "_inset")) else None
        users = sums[_users(split, segment)]
        if users > 0:
            out[name] = mean = total / users
        if users > 1 and name + SQUARES in sums:
            squares = sums[name + SQUARES]
            spread = squares - users * mean * mean
            # Below float64 rounding of the squares, the difference is cancellation, not spread
            # (e.g. every user scoring the same), and shards summing in another order must agree.
            spread = spread if spread > CANCELLATION * squares else 0.0
            out[name + STANDARD_ERROR] = math.sqrt(spread / (users - 1) / users)
    return out


def evaluate(
    model: LigerModel, examples: Examples, index: RetrievalIndex, *, split: str = "val", **options: Any
) -> dict[str, float]:
    """Mean Recall/NDCG@k per method over all, cold-start and in-set targets, in one process
    (options as for ``evaluate_sums``)."""
    return finish(evaluate_sums(model, examples, index, split=split, **options), split)
