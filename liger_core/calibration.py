"""How much the hybrid should trust cold-start items, chosen on the validation split.

The dense head is trained to rank in-set items only, so a cold item's cosine is not on
the same scale as an in-set candidate's: on one catalog cold items may deserve a boost, on
another they flood the lists with items nobody bought (an item whose whole text is
"unknown" is still close to something). The offset added to cold scores is therefore
earned on validation: the value of ``COLD_OFFSETS`` with the best validation hybrid
NDCG@10 over all users, in-set and cold alike, is stored with the model and used by
evaluation and serving. ``-inf`` (no cold items at all) is a valid outcome.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from liger_core.catalog import Catalog
from liger_core.metrics import ndcg_at_k
from liger_core.model import Items, LigerModel
from liger_core.retrieval import (PrefixIndex, _eval_mode, all_item_vectors, generative_topk,
                                  hybrid_topk)
from liger_core.sequences import Examples, Split

COLD_OFFSETS = (-math.inf, -0.3, -0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1)
METRIC_K = 10


@torch.no_grad()
def choose_cold_offset(model: LigerModel, split: Split, catalog: Catalog, *, beams: int,
                       cold_cap: int, batch_size: int = 256) -> tuple[float, dict[float, float]]:
    """(best offset, validation hybrid NDCG@10 per offset) over every validation user. Ties
    go to the offset nearest 0; without cold items or a hybrid model it is 0."""
    valid, cold_items = split.valid, torch.from_numpy(np.flatnonzero(~split.in_set))
    if not (model.generative and model.dense) or len(cold_items) == 0 or len(valid) == 0:
        return 0.0, {}
    items = Items.from_catalog(catalog)
    index = PrefixIndex(catalog.sid, np.flatnonzero(split.in_set), catalog.code_sizes)
    totals = dict.fromkeys(COLD_OFFSETS, 0.0)
    with _eval_mode(model):
        _add_ndcg(totals, model, valid, items, index, cold_items, beams, cold_cap, batch_size)
    scores = {offset: total / len(valid) for offset, total in totals.items()}
    best = max(scores, key=lambda offset: (scores[offset], -abs(offset)))
    return best, scores


def _add_ndcg(totals: dict[float, float], model: LigerModel, valid: Examples, items: Items, index: PrefixIndex,
              cold_items: torch.Tensor, beams: int, cold_cap: int, batch_size: int) -> None:
    """Sum of validation hybrid NDCG@10 per offset, from one beam search per batch."""
    vectors = all_item_vectors(model, items.text)
    for start in range(0, len(valid), batch_size):
        rows = np.arange(start, min(start + batch_size, len(valid)))
        history, targets = valid.batch(rows, model.max_history)
        encoded = model.encode(torch.from_numpy(history), items)
        beam = generative_topk(model, encoded, index, beams).items
        for offset in COLD_OFFSETS:
            ranked = hybrid_topk(encoded.query, vectors, beam, cold_items, METRIC_K, cold_cap,
                                 cold_offset=offset)
            totals[offset] += float(ndcg_at_k(ranked.items.cpu().numpy(), targets, METRIC_K).sum())
