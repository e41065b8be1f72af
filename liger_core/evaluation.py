"""Offline evaluation (DESIGN §5 protocol) and the promotion gate (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from liger_core.metrics import metric_name
from liger_core.model import Items
from liger_core.recommender import Recommender
from liger_core.retrieval import PrefixIndex, evaluate, methods
from liger_core.sequences import Split

SEGMENT_LABELS = {"inset": "in-set", "cold": "cold-start"}
TABLE_METRICS = (("recall", 5), ("recall", 10), ("ndcg", 5), ("ndcg", 10))


def evaluate_recommender(recommender: Recommender, split: Split, beam_sweep: Sequence[int],
                         users: int = 0, seed: int = 0, cold_cap: int = 512) -> dict[str, float]:
    """Test metrics for every method at the first K of ``beam_sweep``, hybrid metrics at every
    K (as ``test_hybrid_K{K}_...``), and validation metrics (for the gate) at the first K."""
    model = recommender.model.eval()
    catalog = recommender.catalog
    items = Items.from_catalog(catalog)
    in_set = np.flatnonzero(split.in_set)
    index = PrefixIndex(catalog.sid, in_set, catalog.code_sizes)
    cold = torch.from_numpy(np.flatnonzero(~split.in_set))
    test, valid = split.test, split.valid
    if users and len(test) > users:
        rows = np.sort(np.random.default_rng(seed).choice(len(test), users, replace=False))
        test = test.subset(rows)
    first, *rest = beam_sweep
    results = evaluate(model, test, items, index, cold, split="test", beams=first, cold_cap=cold_cap)
    results.update(evaluate(model, valid, items, index, cold, split="val", beams=first, cold_cap=cold_cap))
    if "hybrid" in methods(model):
        results.update(_hybrid_k(results, first))
        for beams in rest:
            results.update(_hybrid_k(evaluate(model, test, items, index, cold, split="test", beams=beams,
                                                    cold_cap=cold_cap), beams))
    return results


def _hybrid_k(metrics: dict[str, float], beams: int) -> dict[str, float]:
    prefix = "test_hybrid_"
    return {f"test_hybrid_K{beams}_{name[len(prefix):]}": value
            for name, value in metrics.items() if name.startswith(prefix)}


def results_table(metrics: dict[str, float]) -> pd.DataFrame:
    """Rows: (segment, method); columns: R@5, R@10, N@5, N@10 on the test split."""
    rows = []
    for segment, label in SEGMENT_LABELS.items():
        for method in ("generative", "dense", "hybrid"):
            values = {f"{'R' if m == 'recall' else 'N'}@{k}": metrics.get(metric_name("test", method, m, k, segment))
                      for m, k in TABLE_METRICS}
            if any(v is not None for v in values.values()):
                rows.append({"segment": label, "method": method, **values})
    return pd.DataFrame(rows)


def hybrid_sweep_table(metrics: dict[str, float], beam_sweep: Sequence[int]) -> pd.DataFrame:
    rows = []
    for beams in beam_sweep:
        for segment, label in SEGMENT_LABELS.items():
            key = f"test_hybrid_K{beams}_{{}}@10_{segment}"
            if key.format("recall") in metrics:
                rows.append({"K": beams, "segment": label, "R@10": metrics[key.format("recall")],
                             "N@10": metrics[key.format("ndcg")]})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def promotion_gate(candidate: float, champion: float | None, tolerance: float, metric: str) -> GateDecision:
    """Promote unless the candidate is worse than the champion by more than ``tolerance``."""
    if champion is None:
        # No champion, or one gated on another metric (e.g. a model of another mode).
        return GateDecision(True, f"champion has no recorded {metric} (none yet, or gated on another "
                                  f"metric): promoted ({metric}={candidate:.4f})")
    if not np.isfinite(candidate):
        return GateDecision(False, f"{metric} is not finite ({candidate}); kept the champion")
    if candidate >= champion - tolerance:
        return GateDecision(True, f"{metric} {candidate:.4f} >= champion {champion:.4f} - tolerance {tolerance}")
    return GateDecision(False, f"{metric} {candidate:.4f} < champion {champion:.4f} - tolerance {tolerance}; "
                               "kept the champion")
