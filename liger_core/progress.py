"""Progress people can see: a bar on a terminal, a log line at a steady interval elsewhere.

Airflow task logs and ``make run`` have no terminal, where tqdm (``disable=None``) would stay
silent and a 20-minute stage would look hung. Without a terminal each loop logs
``<what> done/total <unit>, rate, ETA`` (plus the loop's own fields, such as the latest
validation metric) every ``every_seconds``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from tqdm.auto import tqdm

EVERY_SECONDS = 30.0
log = logging.getLogger("liger.progress")
# A training loop's metrics callback, ``log(metrics, step)``: the recommender's steps, the
# RQ-VAE's epochs (MLflow's ``log_metrics(metrics, step=...)`` fits it as is).
LogFn = Callable[[dict[str, float], int], None]


class Progress:
    def __init__(
        self,
        what: str,
        total: int,
        unit: str,
        *,
        initial: int = 0,
        enabled: bool = True,
        budget_seconds: float = 0.0,
        every_seconds: float = EVERY_SECONDS,
    ) -> None:
        """``budget_seconds`` caps the ETA when a time budget, not ``total``, ends the loop."""
        self.what, self.total, self.unit, self.initial = what, total, unit, initial
        self.enabled, self.budget, self.every = enabled, budget_seconds, every_seconds
        self.bar = tqdm(total=total, initial=initial, desc=what, unit=unit, disable=not (enabled and sys.stderr.isatty()))
        self.started = self.last = time.perf_counter()
        self.fields: dict[str, float | str | None] = {}

    def update(self, done: int, **fields: float | str | None) -> None:
        """``done`` so far; ``fields`` go into the log line, each keeping its last known value."""
        self.bar.update(done - self.bar.n)
        self.fields.update({k: v for k, v in fields.items() if v is not None or k not in self.fields})
        now = time.perf_counter()
        if not self.enabled or not self.bar.disable or now - self.last < self.every:
            return
        rate = (done - self.initial) / max(now - self.started, 1e-9)
        eta = (self.total - done) / rate if rate else float("inf")
        if self.budget:
            eta = min(eta, max(0.0, self.budget - (now - self.started)))
        extra = "".join(f", {name.replace('_', ' ')} {_fmt(value)}" for name, value in self.fields.items())
        log.info("%s %d/%d %ss, %.1f %ss/s, ETA %.0f s%s", self.what, done, self.total, self.unit, rate, self.unit, eta, extra)
        self.last = now

    def close(self) -> None:
        self.bar.close()


def _fmt(value: float | str | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
