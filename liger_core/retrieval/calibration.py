"""How the hybrid blends its heads, chosen on the validation split.

Four numbers decide a hybrid list (``retrieval.Blend``). The dense head is trained to rank
in-set items only, so a cold item's cosine is not on the same scale as an in-set
candidate's: on one catalog cold items deserve a boost, on another they flood the lists
with items nobody bought (an item whose whole text is "unknown" is still close to
something). So cold items get an offset on their cosine and a cap on the slots they may
take per user. The beam's log-prob carries what the generative head learnt, which a
dense-only rerank of its candidates throws away. And the beam may miss items the dense head
ranks highly, which the dense head can add to the pool. All four are earned on validation:
every combination of ``COLD_OFFSETS`` x ``GENERATIVE_WEIGHTS`` x (no dense candidates, as
many as beams) x ``COLD_SLOT_CAPS`` is scored per segment of users, and the one with the
best ``blend_objective`` is stored with the model and used by evaluation and serving.

Cold-start targets are rare in a validation split (under 1 % of Beauty's users), so an
objective over all users sells every cold slot for the smallest in-set gain, although
recommending new items is half of what the hybrid is for. ``train.cold_weight`` says how
much the cold segment counts at least: NDCG@10 = (1 - w) x in-set + w x cold, with w never
below the cold segment's share of users (on a catalog where cold-start targets are common,
they count as many as they are). A cold slot still has to earn its place: when cold items
never hit on validation, the cold term is 0 for every blend and the in-set term alone
decides, so a cold slot that costs an in-set hit loses. ``-inf`` (no cold items at all) and
the paper's hybrid (weight 0, no dense candidates, offset 0) are valid outcomes.

Calibration also measures each of the model's own heads alone on the same users in the same
pass (the beam's order, and the dense head's cosine over the whole catalog); the train stage
logs them beside the chosen blend, so a run shows whether the hybrid ranks in-set items at
least as well as either head. They are not a constraint on the pick: on a catalog where cold
items are all a user has not seen, holding the hybrid to them switched cold items off and
served nobody anything.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import torch

from liger_core.data.sequences import Examples
from liger_core.model.network import LigerModel
from liger_core.retrieval.metrics import metric_name
from liger_core.retrieval.retrieval_metrics import add_sums, finish
from liger_core.retrieval.search import (
    Blend,
    RetrievalIndex,
    all_item_vectors,
    dense_topk,
    eval_mode,
    generative_topk,
    hybrid_rank,
    side_pool,
)

COLD_OFFSETS = (-math.inf, -0.3, -0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1)
GENERATIVE_WEIGHTS = (0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)  # cosine per nat of log-prob (geometric)
COLD_SLOT_CAPS = (1, 2)  # at most this many cold items per user, besides train.cold_candidates
METRIC_K = 10
HEADS = ("generative", "dense")


class BlendQuality(NamedTuple):
    """One ranking's metrics@10 on a split (a blend's hybrid list, or a head's alone), per
    segment of users (NaN for a segment without users), the share of its served slots that
    cold items take, and the share of the split's users whose target is a cold-start item."""

    ndcg: float
    ndcg_inset: float
    ndcg_cold: float
    recall_inset: float
    recall_cold: float
    cold_share: float
    cold_users: float

    def finite(self, digits: int = 5) -> dict[str, float]:
        """The measured fields, rounded, for stats and result files (absent segments left out)."""
        return {key: round(value, digits) for key, value in self._asdict().items() if math.isfinite(value)}


def blend_objective(quality: BlendQuality, cold_weight: float | None) -> float:
    """What calibration maximises: the segments' NDCG@10 weighted (1 - w) in-set and w
    cold-start, where w is ``cold_weight`` or the cold-start share of users if that is larger
    (``cold_weight`` None: that share alone, i.e. NDCG@10 over all users). A split without
    cold-start targets has only its in-set term."""
    if math.isnan(quality.ndcg_cold):
        return quality.ndcg
    weight = max(cold_weight or 0.0, quality.cold_users)
    return (1 - weight) * quality.ndcg_inset + weight * quality.ndcg_cold


class Calibration(NamedTuple):
    """Validation quality of every blend scored, and of each of the model's heads alone
    (``HEADS``) on the same users, logged beside the chosen blend."""

    blends: dict[Blend, BlendQuality]
    heads: dict[str, BlendQuality]


def pick_blend(qualities: dict[Blend, BlendQuality], cold_weight: float | None) -> Blend:
    """The blend with the best objective. Ties go to the blend nearest the paper's (no dense
    candidates, offset 0, weight 0), then to fewer cold slots: a tie means the cold slots cost
    nothing in-set (a user who has seen every in-set item gets cold items rather than nothing),
    but need not be more of them than that."""
    return max(
        qualities,
        key=lambda b: (
            blend_objective(qualities[b], cold_weight),
            -b.dense_candidates,
            -abs(b.cold_offset),
            -b.generative_weight,
            -qualities[b].cold_share,
        ),
    )


def blend_grid(beams: int, cold_candidates: int, has_cold: bool) -> list[Blend]:
    """Every blend calibration scores. Without cold items the offset stays 0; with cold
    items switched off (-inf) the cap means nothing, so it is listed once."""
    caps = sorted({cap for cap in COLD_SLOT_CAPS if cap < cold_candidates} | {cold_candidates})
    blends = []
    for offset, weight, dense in itertools.product(COLD_OFFSETS if has_cold else (0.0,), GENERATIVE_WEIGHTS, (0, beams)):
        for cap in caps if math.isfinite(offset) and has_cold else (cold_candidates,):
            blends.append(Blend(offset, weight, dense, cap))
    return blends


@torch.no_grad()
def choose_blend(
    model: LigerModel,
    valid: Examples,
    index: RetrievalIndex,
    *,
    beams: int,
    cold_candidates: int,
    cold_weight: float | None,
    batch_size: int = 256,
    block_dtype: torch.dtype | None = None,
) -> tuple[Blend, Calibration]:
    """(best blend, validation quality per blend and per head) over every user of ``valid``
    (see ``pick_blend``); without a hybrid model it is the paper's. The heads alone are
    measured and reported, not a floor (module docstring; tests/spark/test_second_catalog.py
    is the catalog where a floor served nobody anything). ``block_dtype``: the precision
    serving ranks at (``recommend.precision``), so the blend is chosen on the lists serving
    would build."""
    if not (model.generative and model.dense) or len(valid) == 0:
        return Blend(cold_candidates=cold_candidates), Calibration({}, {})
    measured = measure_blends(
        model,
        valid,
        index,
        blend_grid(beams, cold_candidates, len(index.cold) > 0),
        beams=beams,
        batch_size=batch_size,
        block_dtype=block_dtype,
    )
    return pick_blend(measured.blends, cold_weight), measured


@torch.no_grad()
def measure_blends(
    model: LigerModel,
    examples: Examples,
    index: RetrievalIndex,
    blends: list[Blend],
    *,
    beams: int,
    batch_size: int = 256,
    block_dtype: torch.dtype | None = None,
) -> Calibration:
    """Hybrid quality of every blend on ``examples``, and of each head alone, from one beam
    search and one side pool per batch of users (the widest the blends ask for, which each
    blend slices), the Transformer blocks under ``block_dtype`` autocast when one is given."""
    vectors = all_item_vectors(model, index.items.text)  # a hybrid model: it has a dense head
    device = index.items.sid.device
    all_items = torch.arange(len(vectors), device=device)
    cold_item = torch.zeros(len(vectors), dtype=torch.bool, device=device)
    cold_item[index.cold] = True
    widest_dense = max(blend.dense_candidates for blend in blends)
    widest_cold = max(blend.cold_candidates for blend in blends)
    ranked_by = [str(at) for at in range(len(blends))] + list(HEADS)
    sums: dict[str, float] = {}
    cold_slots, slots = np.zeros(len(ranked_by)), np.zeros(len(ranked_by))
    with eval_mode(model, block_dtype):
        for start in range(0, len(examples), batch_size):
            rows = np.arange(start, min(start + batch_size, len(examples)))
            history, targets = examples.batch(rows, model.max_history)
            encoded = model.encode(torch.from_numpy(history).to(device), index.items)
            generated = generative_topk(model, encoded, index.prefixes, beams)
            pool = side_pool(encoded.dense_query, vectors, index.cold, cold_cap=widest_cold, dense_candidates=widest_dense)
            lists = [hybrid_rank(encoded.dense_query, vectors, generated, pool, METRIC_K, blend=blend).items for blend in blends]
            lists += [generated.items[:, :METRIC_K], dense_topk(encoded.dense_query, vectors, all_items, METRIC_K).items]
            top = {}
            for at, items in enumerate(lists):
                top[ranked_by[at]] = items.cpu().numpy()
                cold_slots[at] += float(cold_item[items.clamp_min(0)][items >= 0].sum())
                slots[at] += float((items >= 0).sum())
            add_sums(sums, top, targets, examples.is_cold[rows], (METRIC_K,), "calibration")
    means = finish(sums, "calibration")
    cold_users = means["calibration_users_cold"] / max(means["calibration_users"], 1.0)

    def quality(at: int) -> BlendQuality:
        def mean(metric: str, segment: str | None) -> float:
            return means.get(metric_name("calibration", ranked_by[at], metric, METRIC_K, segment), math.nan)

        return BlendQuality(
            mean("ndcg", None),
            mean("ndcg", "inset"),
            mean("ndcg", "cold"),
            mean("recall", "inset"),
            mean("recall", "cold"),
            float(cold_slots[at] / max(slots[at], 1.0)),
            cold_users,
        )

    return Calibration(
        {blend: quality(at) for at, blend in enumerate(blends)},
        {head: quality(len(blends) + at) for at, head in enumerate(HEADS)},
    )
