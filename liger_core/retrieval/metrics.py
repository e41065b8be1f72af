"""Ranking metrics for one relevant item per user (leave-one-out evaluation).

Functions return one value per user, so callers can average over any segment (all users,
in-set targets, cold-start targets) and sum across distributed workers before dividing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def metric_name(split: str, method: str, metric: str, k: int, segment: str | None = None) -> str:
    """E.g. ``val_hybrid_ndcg@10`` or ``test_dense_recall@5_cold``; one spelling everywhere."""
    name = f"{split}_{method}_{metric}@{k}"
    return f"{name}_{segment}" if segment else name


def target_rank(ranked: npt.ArrayLike, targets: npt.ArrayLike) -> np.ndarray:
    """0-based position of each target in its row of ``ranked`` [B, K]; -1 when absent.
    Padding (-1) in ``ranked`` never matches because targets are item_idx >= 0."""
    ranked, targets = np.asarray(ranked), np.asarray(targets)
    hits = ranked == targets[:, None]
    return np.where(hits.any(1), hits.argmax(1), -1)


def recall_at_k(ranked: npt.ArrayLike, targets: npt.ArrayLike, k: int) -> np.ndarray:
    """Per user: 1.0 if the target is among the first ``k`` items, else 0.0."""
    rank = target_rank(ranked, targets)
    return ((rank >= 0) & (rank < k)).astype(np.float64)


def ndcg_at_k(ranked: npt.ArrayLike, targets: npt.ArrayLike, k: int) -> np.ndarray:
    """Per user: 1 / log2(rank + 2) if the target's 0-based rank is below ``k``, else 0.0
    (with a single relevant item the ideal DCG is 1)."""
    rank = target_rank(ranked, targets)
    hit = (rank >= 0) & (rank < k)
    return np.where(hit, 1.0 / np.log2(np.maximum(rank, 0) + 2.0), 0.0)
