"""Offline evaluation (DESIGN §5 protocol) and the promotion gate (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from liger_core.retrieval.baselines import BASELINES, evaluate_baselines
from liger_core.config import EvaluateConfig
from liger_core.retrieval.metrics import metric_name
from liger_core.serving.recommender import Recommender
from liger_core.retrieval.search import BEAMS, RetrievalIndex
from liger_core.retrieval.retrieval_metrics import STANDARD_ERROR, evaluate_sums, finish
from liger_core.data.sequences import Examples, Split

SEGMENT_LABELS = {"inset": "in-set", "cold": "cold-start"}
TABLE_METRICS = (("recall", 5), ("recall", 10), ("ndcg", 5), ("ndcg", 10))
TABLE_ERRORS = (("recall", 10), ("ndcg", 10))  # metrics whose standard error the table shows
# Model methods, then the baselines; each as published (nothing excluded) and as served.
TABLE_METHODS = [name + served for served in ("", "_served") for name in ("generative", "dense", "hybrid", *BASELINES)]


# (examples, **evaluate_sums options) -> metric sums, wherever they are computed.
SumsRunner = Callable[..., dict[str, float]]


def evaluate_recommender(
    recommender: Recommender,
    split: Split,
    cfg: EvaluateConfig,
    seed: int = 0,
    gate_beams: int = BEAMS,
    block_dtype: torch.dtype | None = None,
    sums: SumsRunner | None = None,
) -> dict[str, float]:
    """Test metrics of every method and of the training-free baselines, as the paper reports
    them and (``*_served``) with history excluded as serving returns them; hybrid for every
    K of ``cfg.beam_sweep`` (``test_hybrid_K{K}_...``); validation metrics and baselines for
    the gate. One beam search of ``cfg.beam_width`` (at least the widest K) per test user
    feeds every K: generative ranks its top beams, hybrid reranks the best K of them. The
    validation pass searches ``gate_beams`` wide (the width serving uses, ``recommend.beams``),
    so the gate judges the lists the recommender would serve, not a wider search than
    serving pays for; both passes run the Transformer blocks at serving's ``block_dtype``.
    ``sums`` computes a pass's ``evaluate_sums`` (default: in this process; the evaluate
    job shards it over Spark tasks with ``evaluation_frames``)."""
    model = recommender.model.eval()
    index = RetrievalIndex.from_catalog(recommender.catalog, split.in_set)
    run = sums or (lambda examples, **options: evaluate_sums(model, examples, index, **options))
    test, valid = split.test, split.valid
    if cfg.users and len(test) > cfg.users:
        rows = np.sort(np.random.default_rng(seed).choice(len(test), cfg.users, replace=False))
        test = test.subset(rows)
    width = max(cfg.beam_width, *cfg.beam_sweep)
    history = recommender.model_config.max_history
    common = {"blend": recommender.blend, "block_dtype": block_dtype}
    test_sums = run(test, split="test", beams=width, candidates=cfg.beam_sweep[0], sweep=cfg.beam_sweep, served=True, **common)
    results = finish(test_sums, "test")
    results.update(finish(run(valid, split="val", beams=gate_beams, **common), "val"))
    for examples, name in ((test, "test"), (valid, "val")):
        results.update(evaluate_baselines(split, examples, history, split_name=name))
    results.update(evaluate_baselines(split, test, history, split_name="test", exclude_history=True))
    return results


def evaluation_frames(
    shards: Iterable[pd.DataFrame],
    bundle: dict[str, bytes],
    examples: Examples,
    in_set: np.ndarray,
    parts: int,
    threads: int,
    options: dict[str, Any],
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: for each ``shard`` number s in the frames, ``evaluate_sums`` over
    every ``parts``-th example from s, as (name, value) rows. Users are scored
    independently and sums add up, so the shards' sums total one process's."""
    if threads > 0:
        torch.set_num_threads(threads)
    recommender = Recommender.from_bytes(bundle)
    model = recommender.model.eval()
    index = RetrievalIndex.from_catalog(recommender.catalog, in_set)
    for frame in shards:
        for shard in frame["shard"]:
            rows = np.arange(int(shard), len(examples), parts)
            sums = evaluate_sums(model, examples.subset(rows), index, **options)
            yield pd.DataFrame({"name": list(sums), "value": list(sums.values())})


def results_table(metrics: dict[str, float]) -> pd.DataFrame:
    """Rows: (segment, method); columns: R@5, R@10, N@5, N@10 on the test split, then the
    standard errors of R@10 and N@10 over the segment's users."""
    rows = []
    for segment, label in SEGMENT_LABELS.items():
        for method in TABLE_METHODS:
            values = {
                f"{'R' if m == 'recall' else 'N'}@{k}": metrics.get(metric_name("test", method, m, k, segment))
                for m, k in TABLE_METRICS
            }
            errors = {
                f"{'R' if m == 'recall' else 'N'}@{k} SE": metrics.get(
                    metric_name("test", method, m, k, segment) + STANDARD_ERROR
                )
                for m, k in TABLE_ERRORS
            }
            if any(v is not None for v in values.values()):
                rows.append({"segment": label, "method": method, **values, **errors})
    return pd.DataFrame(rows)


def hybrid_sweep_table(metrics: dict[str, float], beam_sweep: Sequence[int]) -> pd.DataFrame:
    rows = []
    for beams in beam_sweep:
        for segment, label in SEGMENT_LABELS.items():
            key = f"test_hybrid_K{beams}_{{}}@10_{segment}"
            if key.format("recall") in metrics:
                rows.append(
                    {"K": beams, "segment": label, "R@10": metrics[key.format("recall")], "N@10": metrics[key.format("ndcg")]}
                )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def promotion_gate(
    candidate: float, champion: float | None, tolerance: float, metric: str, floor: float | None = None
) -> GateDecision:
    """Promote only a finite metric that beats the training-free ``floor`` (the 3-item
    transition count on the same users) and is not worse than the champion by more than
    ``tolerance``. A champion without a finite record (none yet, another metric, a NaN tag)
    does not block."""
    if not np.isfinite(candidate):
        return GateDecision(False, f"{metric} is not finite ({candidate}); not promoted")
    if floor is not None and not candidate > floor:
        return GateDecision(
            False,
            f"{metric} {candidate:.4f} does not beat the transition-count baseline {floor:.4f} on the same users; not promoted",
        )
    beats = f" > baseline {floor:.4f}" if floor is not None else ""
    if champion is None or not np.isfinite(champion):
        return GateDecision(
            True,
            f"{metric} {candidate:.4f}{beats}; champion has no finite record (none yet, or gated on another metric): promoted",
        )
    if candidate >= champion - tolerance:
        return GateDecision(
            True, f"{metric} {candidate:.4f}{beats} and >= champion {champion:.4f} - tolerance {tolerance}: promoted"
        )
    return GateDecision(False, f"{metric} {candidate:.4f} < champion {champion:.4f} - tolerance {tolerance}; kept the champion")
