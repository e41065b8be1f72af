"""How the hybrid blends its heads, chosen on the validation split.

Three numbers decide a hybrid list (``retrieval.Blend``). The dense head is trained to rank
in-set items only, so a cold item's cosine is not on the same scale as an in-set
candidate's: on one catalog cold items deserve a boost, on another they flood the lists
with items nobody bought (an item whose whole text is "unknown" is still close to
something). The beam's log-prob carries what the generative head learnt, which a
dense-only rerank of its candidates throws away. And the beam may miss items the dense head
ranks highly, which the dense head can add to the pool. All three are earned on validation:
the combination of ``COLD_OFFSETS`` x ``GENERATIVE_WEIGHTS`` x (no dense candidates, as many
as beams) with the best validation hybrid NDCG@10 over all users, in-set and cold alike, is
stored with the model and used by evaluation and serving. ``-inf`` (no cold items at all)
and the paper's hybrid (weight 0, no dense candidates) are valid outcomes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from liger_core.retrieval.metrics import ndcg_at_k
from liger_core.model.network import LigerModel
from liger_core.retrieval.search import (Blend, RetrievalIndex, all_item_vectors, eval_mode, generative_topk,
                                         hybrid_rank, side_pool)
from liger_core.data.sequences import Examples

COLD_OFFSETS = (-math.inf, -0.3, -0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1)
GENERATIVE_WEIGHTS = (0.0, 0.005, 0.01, 0.02, 0.04, 0.08)  # cosine per nat of log-prob
METRIC_K = 10


@torch.no_grad()
def choose_blend(model: LigerModel, valid: Examples, index: RetrievalIndex, *, beams: int, cold_candidates: int,
                 batch_size: int = 256) -> tuple[Blend, dict[Blend, float]]:
    """(best blend, validation hybrid NDCG@10 per blend) over every user of ``valid``. Ties
    go to the blend nearest the paper's (no dense candidates, offset 0, weight 0); without a
    hybrid model it is the paper's. Without cold items the offset stays 0."""
    if not (model.generative and model.dense) or len(valid) == 0:
        return Blend(cold_candidates=cold_candidates), {}
    offsets = COLD_OFFSETS if len(index.cold) else (0.0,)
    grid = itertools.product(offsets, GENERATIVE_WEIGHTS, (0, beams), (cold_candidates,))
    totals = dict.fromkeys(itertools.starmap(Blend, grid), 0.0)
    with eval_mode(model):
        _add_ndcg(totals, model, valid, index, beams, cold_candidates, batch_size)
    scores = {blend: total / len(valid) for blend, total in totals.items()}
    best = max(scores, key=lambda b: (scores[b], -b.dense_candidates, -abs(b.cold_offset), -b.generative_weight))
    return best, scores


def _add_ndcg(totals: dict[Blend, float], model: LigerModel, valid: Examples, index: RetrievalIndex,
              beams: int, cold_candidates: int, batch_size: int) -> None:
    """Sum of validation hybrid NDCG@10 per blend, from one beam search and one side pool
    per batch."""
    vectors = all_item_vectors(model, index.items.text)  # a hybrid model: it has a dense head
    device = index.items.sid.device
    widest = max(blend.dense_candidates for blend in totals)
    for start in range(0, len(valid), batch_size):
        rows = np.arange(start, min(start + batch_size, len(valid)))
        history, targets = valid.batch(rows, model.max_history)
        encoded = model.encode(torch.from_numpy(history).to(device), index.items)
        generated = generative_topk(model, encoded, index.prefixes, beams)
        pool = side_pool(encoded.dense_query, vectors, index.cold, cold_cap=cold_candidates, dense_candidates=widest)
        for blend in totals:
            ranked = hybrid_rank(encoded.dense_query, vectors, generated, pool, METRIC_K, blend=blend)
            totals[blend] += float(ndcg_at_k(ranked.items.cpu().numpy(), targets, METRIC_K).sum())
