"""The pure policies of the training loop: where the run stands, the learning-rate schedule
over it and when it stops. Kept apart from the Trainer so each rule is a function of plain
values, unit-tested without a model (RecBole's early-stopping helper has the same shape).

The schedule follows whichever ends first, the step budget (``max_steps``, capped by
``max_epochs``) or the time budget: progress is the
larger of the step and time fractions, warmup takes ``warmup_fraction`` of it and the cosine
decay reaches 0 at progress 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from liger_core.config import TrainConfig


@dataclass
class LoopState:
    """Everything besides weights and optimizer that a resumed run needs."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch within the epoch
    best: float = -math.inf
    best_metrics: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds: float = 0.0
    samples: int = 0


def lr_factor(progress: float, warmup_fraction: float) -> float:
    """Linear warmup over the first ``warmup_fraction`` of training, then cosine decay to 0
    at ``progress`` 1 (progress: fraction of the run done, by steps or by time)."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup_fraction:
        return progress / warmup_fraction
    rest = (progress - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction)
    return 0.5 * (1.0 + math.cos(math.pi * rest))


def progress(step: int, max_steps: int, elapsed: float, budget_seconds: float) -> float:
    """Fraction of the run done after ``step`` steps: whichever of steps or time ends first."""
    done = (step + 1) / max_steps
    return max(done, elapsed / budget_seconds) if budget_seconds else done


def step_budget(cfg: TrainConfig, targets_per_epoch: int) -> int:
    """The steps a run may take: ``max_steps``, or fewer when ``max_epochs`` caps the passes
    over the training targets (a step trains ``batch_size`` of them). An epoch cap makes the
    schedule anneal where the model stops improving on any machine, which a time budget
    cannot: a faster machine fits more epochs into the same minutes and its best checkpoint
    is then one taken before the learning rate came down."""
    if not cfg.max_epochs:
        return cfg.max_steps
    return max(1, min(cfg.max_steps, math.ceil(cfg.max_epochs * targets_per_epoch / cfg.batch_size)))


def stop_reason(state: LoopState, cfg: TrainConfig, elapsed: float, max_steps: int) -> str | None:
    """Pure stop policy: patience, then the step budget, then the time budget."""
    if state.bad_evals >= cfg.patience:
        return "early_stop"
    if state.step >= max_steps:
        return "max_steps"
    budget = cfg.time_budget_minutes * 60
    return "time_budget" if budget and elapsed >= budget else None
