"""Training-free calibration baselines (DESIGN §5): popularity and item-transition counts.

They read the same split as the model (only the training portions of the sequences) and
are scored with the same metric code on the same users, so a trained model that does not
beat them is visibly not worth serving. The 3-item transition count is the promotion
gate's floor.

Transition counts: for each of the user's last items (most recent first, weights 1, 0.5,
0.25, ...) add how often each item followed it in the training portions; ties and users
with no transition evidence fall back to popularity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from liger_core.retrieval.retrieval_metrics import add_sums, finish
from liger_core.data.sequences import Examples, Split

BASELINES = {"popularity": (), "transition1": (1.0,), "transition3": (1.0, 0.5, 0.25)}
FLOOR = "transition3"  # the promotion gate's baseline


@dataclass(frozen=True)
class TransitionCounts:
    """CSR counts of (item, next item) pairs plus item popularity, from training portions."""

    ptr: np.ndarray  # [N + 1]
    following: np.ndarray  # [pairs] next item
    counts: np.ndarray  # [pairs] how often
    popularity: np.ndarray  # [N]

    @classmethod
    def from_split(cls, split: Split) -> TransitionCounts:
        train, n = split.train, split.n_items
        start = train.offsets[train.users]
        before, after = train.items[start + train.positions - 1], train.targets
        pairs, counts = np.unique(before * n + after, return_counts=True)
        source, following = np.divmod(pairs, n)
        ptr = np.concatenate([[0], np.cumsum(np.bincount(source, minlength=n))])
        firsts = train.items[train.offsets[np.unique(train.users)]]
        popularity = np.bincount(np.concatenate([firsts, after]), minlength=n).astype(np.float64)
        return cls(ptr, following, counts.astype(np.float64), popularity)

    def scores(self, history: np.ndarray, weights: Sequence[float]) -> np.ndarray:
        """[B, N] transition score plus a popularity tie-break smaller than any count step.

        ``history``: [B, W] right-aligned item_idx, -1 padding."""
        users = len(history)
        tie_break = self.popularity / (self.popularity.max() + 1.0) * min(weights, default=1.0) * 0.5
        out = np.tile(tie_break, (users, 1))
        for lag, weight in enumerate(weights, start=1):
            if lag > history.shape[1]:
                break
            item = history[:, -lag]
            live = item >= 0
            lo, hi = self.ptr[item.clip(0)], self.ptr[item.clip(0) + 1]
            length = np.where(live, hi - lo, 0)
            row = np.repeat(np.arange(users), length)
            edge = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length) + np.repeat(lo, length)
            np.add.at(out, (row, self.following[edge]), weight * self.counts[edge])
        return out

    def topk(self, history: np.ndarray, k: int, weights: Sequence[float], exclude_history: bool = False) -> np.ndarray:
        """[B, k] item_idx, best first."""
        scores = self.scores(history, weights)
        if exclude_history:
            rows = np.repeat(np.arange(len(history)), history.shape[1])
            cols = history.ravel()
            scores[rows[cols >= 0], cols[cols >= 0]] = -np.inf
        return torch.from_numpy(scores).topk(min(k, scores.shape[1]), dim=1).indices.numpy()


def evaluate_baselines(
    split: Split,
    examples: Examples,
    max_history: int,
    *,
    split_name: str,
    ks: Sequence[int] = (5, 10),
    exclude_history: bool = False,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Mean Recall/NDCG@k of every baseline on ``examples``, named like model metrics
    (``{split_name}_transition3_ndcg@10_inset`` ...; ``..._served`` with history excluded)."""
    counts = TransitionCounts.from_split(split)
    sums: dict[str, float] = {}
    for start in range(0, len(examples), batch_size):
        rows = np.arange(start, min(start + batch_size, len(examples)))
        history, targets = examples.batch(rows, max_history)
        suffix = "_served" if exclude_history else ""
        top = {name + suffix: counts.topk(history, max(ks), weights, exclude_history) for name, weights in BASELINES.items()}
        add_sums(sums, top, targets, examples.is_cold[rows], ks, split_name)
    return finish(sums, split_name)


def floor_metric(metric: str) -> str:
    """The baseline metric a model metric is gated against: same split, k and segment,
    ``val_hybrid_ndcg@10`` -> ``val_transition3_ndcg@10``."""
    split, _method, rest = metric.split("_", 2)
    return f"{split}_{FLOOR}_{rest}"
