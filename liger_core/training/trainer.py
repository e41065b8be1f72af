"""Training loop for LigerModel: AdamW, warmup + cosine schedule, periodic validation with
early stopping, atomic checkpoints with exact resume, and optional DistributedDataParallel.

Objective ``causal`` (default) feeds one user's training sequence per row and trains a
prediction at every position (the encoder is causal), so an epoch costs one pass per user;
``prefix`` feeds one (history, next item) example per row. Either way batches are bucketed
by length (``liger_core.training.batching``) so that little compute goes to padding.

The schedule and the stop rules are pure functions in ``liger_core.training.schedule``.
Without a time budget, resume is exact on one CPU process: the learning rate is a function
of the step, the data order a function of (seed, epoch), and the RNG states are saved, so a run killed after a checkpoint and
restarted ends with the same weights as one that never stopped. The time budget covers
the whole run across resumes; the evaluation after the last step may run past it.

Distributed: when the caller has initialised torch.distributed (gloo on CPU, nccl on GPUs;
under TorchDistributor the launched function calls init_process_group), ``batch_size`` is
the global batch split evenly over ranks, each rank trains on its own shard of examples and
evaluates its own shard of validation users, metric sums are all-reduced, and only rank 0
logs and writes checkpoints (``checkpoint_dir`` must be shared storage for every rank to
resume from it).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from liger_core.training.batching import BucketedLoader
from liger_core.training.schedule import LoopState, lr_factor, progress, step_budget, stop_reason
from liger_core.data.catalog import Catalog
from liger_core.config import ModelConfig, TrainConfig, ranking_metric
from liger_core.errors import ConfigError, DataError
from liger_core.model.network import Batch, LigerModel
from liger_core.progress import LogFn, Progress
from liger_core.retrieval.search import Blend, RetrievalIndex
from liger_core.retrieval.retrieval_metrics import evaluate_sums, finish, metric_names
from liger_core.data.sequences import Split

CHECKPOINT = "last.pt"
logger = logging.getLogger("liger.train")


@dataclass
class TrainResult:
    model: LigerModel  # best weights by the early-stop metric, on the CPU, in eval mode
    step: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]]  # one entry per evaluation, with its "step"
    samples_per_second: float  # training targets per second, all ranks, evaluation excluded
    stopped_reason: str  # "max_steps" | "early_stop" | "time_budget"
    seconds: float  # wall-clock over all runs, resumes included
    start_step: int  # 0, or the step this run resumed from
    epochs: float = 0.0  # passes over the training examples


def _dist() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device(name: str, world: int) -> torch.device:
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device={name!r} but CUDA is not available on this machine; use the cpu profile or --set train.device=cpu"
            )
        if world > 1:  # one GPU per process, as torchrun / TorchDistributor set it up
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)  # NCCL object collectives use the current device
            return device
    return torch.device(name)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """Weight decay on matrices (linear and embedding weights) only, as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write to a temporary file, flush to disk, then rename over ``path``: a crash leaves
    either the old or the new checkpoint, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _validate(model_cfg: ModelConfig, train_cfg: TrainConfig, catalog: Catalog, split: Split, model: LigerModel) -> None:
    if split.n_items != catalog.n_items:
        raise DataError(f"split covers {split.n_items} items but the catalog has {catalog.n_items}")
    if len(split.train) == 0:
        raise DataError("no training examples: every user needs at least 2 items before validation")
    if len(split.valid) == 0:
        raise DataError("no validation users: early stopping needs users with at least 3 items")
    available = metric_names(model)
    watched = ranking_metric(model_cfg.mode, train_cfg.early_stop_metric)
    if watched not in available:
        raise ConfigError(
            f"train.early_stop_metric={watched!r} is not reported in model.mode={model_cfg.mode!r}; choose one of {available}"
        )


class Trainer:
    """One training run: ``fit`` drives ``step``, ``evaluate`` and ``save`` until the stop
    policy says so; a checkpoint in ``checkpoint_dir`` is restored at construction."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        catalog: Catalog,
        split: Split,
        checkpoint_dir: Path,
        log: LogFn | None = None,
    ) -> None:
        self.model_cfg, self.cfg, self.log = model_cfg, train_cfg, log
        self.rank, self.world = _dist()
        self.device = _device(train_cfg.device, self.world)
        torch.manual_seed(train_cfg.seed)  # same initial weights on every rank
        self.model = LigerModel(model_cfg, catalog.code_sizes, catalog.text_dim, catalog.n_items).to(self.device)
        _validate(model_cfg, train_cfg, catalog, split, self.model)
        self.code_sizes = catalog.code_sizes
        self.watched = ranking_metric(model_cfg.mode, train_cfg.early_stop_metric)
        self.optimizer = _optimizer(self.model, train_cfg)
        self.state = LoopState()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.path = Path(checkpoint_dir) / CHECKPOINT
        self.index = RetrievalIndex.from_catalog(catalog, split.in_set, self.device)
        if self.model.text is not None:
            self.model.text.fit_statistics(self.index.items.text)
        self._data(split)
        self._restore()
        self.start_step = self.state.step
        self.net: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.bf16 = self.device.type == "cuda" and train_cfg.mixed_precision

    def _data(self, split: Split) -> None:
        """Validation users and the batch loader of this rank."""
        cfg = self.cfg
        valid = split.valid
        if cfg.eval_users and len(valid) > cfg.eval_users:
            rows = np.random.default_rng(cfg.seed).choice(len(valid), cfg.eval_users, replace=False)
            valid = valid.subset(np.sort(rows))
        self.valid = valid.subset(np.arange(self.rank, len(valid), self.world))
        self.train_examples = split.train
        self.max_steps = step_budget(cfg, len(split.train))
        if cfg.objective == "causal":  # one unit per user: its last example names the sequence
            self.units = split.train.last_rows()
            lengths = targets = split.train.positions[self.units]
        else:
            self.units = np.arange(len(split.train))
            lengths, targets = split.train.positions, np.ones(len(split.train), dtype=np.int64)
        self.loader = BucketedLoader(
            np.minimum(lengths, self.model_cfg.max_history), targets, cfg.batch_size, cfg.seed, self.rank, self.world
        )

    def _restore(self) -> None:
        if not self.path.exists():
            torch.manual_seed(self.cfg.seed + self.rank)  # dropout masks differ between ranks
            return
        ckpt = torch.load(self.path, map_location="cpu", weights_only=True)
        same_model = ckpt["model_config"] == self.model_cfg.model_dump()
        if not same_model or tuple(ckpt["code_sizes"]) != self.code_sizes:
            raise ConfigError(
                f"{self.path} was written for another model config or catalog; remove it or use another checkpoint directory"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.state, self.best_weights = LoopState(**ckpt["state"]), ckpt["best_weights"]
        rng = ckpt["rng"]
        _set_rng_state(rng[self.rank] if self.rank < len(rng) else rng[0], self.device)

    def save(self) -> None:
        rng = [_rng_state(self.device)]
        if self.world > 1:
            rng = [None] * self.world  # type: ignore[list-item]
            dist.all_gather_object(rng, _rng_state(self.device))
        if self.rank == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_atomic(
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "state": asdict(self.state),
                    "best_weights": self.best_weights,
                    "rng": rng,
                    "model_config": self.model_cfg.model_dump(),
                    "code_sizes": list(self.code_sizes),
                },
                self.path,
            )

    def _batch(self) -> Batch:
        rows = self.units[self.loader.get(self.state.epoch, self.state.batch)]
        examples, width = self.train_examples, self.model_cfg.max_history
        if self.cfg.objective == "causal":
            history, target = examples.causal_batch(rows, width)
        else:
            history, last = examples.batch(rows, width)
            target = np.full_like(history, -1)
            target[:, -1] = last
        history_t = torch.from_numpy(history).to(self.device)
        target_t = torch.from_numpy(target).to(self.device)
        candidates = self._dense_candidates(target_t)
        position = torch.full((len(self.index.items.sid),), -1, dtype=torch.long, device=self.device)
        position[candidates] = torch.arange(len(candidates), device=self.device)
        return Batch(
            history_t, target_t, self.index.items, candidates, torch.where(target_t >= 0, position[target_t.clamp_min(0)], -1)
        )

    def _dense_candidates(self, target: torch.Tensor) -> torch.Tensor:
        """Items the dense loss ranks: every in-set item, or (``dense_negatives`` > 0) the
        batch's targets plus that many in-set items drawn uniformly, which cuts the item
        tower's work per step from the whole catalog to a few thousand rows."""
        in_set = self.index.in_set
        if not self.cfg.dense_negatives or self.cfg.dense_negatives >= len(in_set):
            return in_set
        drawn = torch.randint(len(in_set), (self.cfg.dense_negatives,), device=self.device)
        return torch.unique(torch.cat([target[target >= 0], in_set[drawn]]))

    def step(self) -> dict[str, torch.Tensor]:
        """One optimisation step on the next batch; returns its losses."""
        tick = time.perf_counter()
        batch = self._batch()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            losses = self.net(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        state = self.state
        state.step, state.batch = state.step + 1, state.batch + 1
        if state.batch == self.loader.batches_in(state.epoch):
            state.epoch, state.batch = state.epoch + 1, 0
        state.samples += int((batch.target >= 0).sum()) * self.world
        state.train_seconds += time.perf_counter() - tick
        return {name: value.detach() for name, value in losses.items()}

    def evaluate(self) -> dict[str, float]:
        """Validation metrics of the current weights, summed over ranks."""
        sums = evaluate_sums(
            self.model,
            self.valid,
            self.index,
            beams=self.cfg.beams,
            blend=Blend(cold_candidates=self.cfg.cold_candidates),
            batch_size=self.cfg.eval_batch_size,
        )
        if self.world > 1:
            values = torch.tensor(list(sums.values()), dtype=torch.float64, device=self.device)
            dist.all_reduce(values)
            sums = dict(zip(sums, values.tolist()))
        return finish(sums)

    def _elapsed(self) -> float:
        """Run seconds so far, the same on every rank (clocks differ; DDP must agree)."""
        elapsed = self._seconds_before + time.perf_counter() - self._started
        if self.world > 1 and self.cfg.time_budget_minutes:
            value = torch.tensor([elapsed], dtype=torch.float64, device=self.device)
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
            elapsed = float(value.item())
        return elapsed

    def _set_lr(self, elapsed: float) -> float:
        done = progress(self.state.step, self.max_steps, elapsed, self.cfg.time_budget_minutes * 60)
        lr = self.cfg.lr * lr_factor(done, self.cfg.warmup_fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _record_eval(self) -> dict[str, float]:
        """Evaluate, append to history, keep a CPU copy of the best weights; returns metrics."""
        metrics, state = self.evaluate(), self.state
        if self.watched not in metrics:
            raise DataError(
                f"validation produced no {self.watched!r} (no users in that segment?); choose another train.early_stop_metric"
            )
        state.history.append({"step": float(state.step), **metrics})
        if metrics[self.watched] > state.best:
            state.best, state.best_metrics, state.bad_evals = metrics[self.watched], dict(metrics), 0
            self.best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        else:
            state.bad_evals += 1
        return metrics

    def fit(self) -> TrainResult:
        """lr -> step -> log -> evaluate -> checkpoint, until the stop policy ends the run."""
        cfg, state = self.cfg, self.state
        self._started, self._seconds_before = time.perf_counter(), state.seconds
        running: dict[str, torch.Tensor] = {}
        running_steps = 0
        meter = Progress(
            "train",
            self.max_steps,
            "step",
            initial=state.step,
            enabled=self.rank == 0,
            budget_seconds=max(0.0, cfg.time_budget_minutes * 60 - state.seconds),
        )
        self.model.train()
        while (reason := stop_reason(state, cfg, elapsed := self._elapsed(), self.max_steps)) is None:
            lr = self._set_lr(elapsed)
            for name, value in self.step().items():
                running[name] = running.get(name, 0.0) + value
            running_steps += 1
            metrics: dict[str, float] = {}
            if state.step % cfg.log_every == 0 or state.step == self.max_steps:
                metrics = {f"train_{name}_loss": float(v) / running_steps for name, v in running.items()}
                metrics.update(
                    lr=lr,
                    samples_per_second=state.samples / max(state.train_seconds, 1e-9),
                    epoch=state.epoch + state.batch / self.loader.batches_in(state.epoch),
                )
                running, running_steps = {}, 0
            if state.step % cfg.eval_every == 0 or state.step == self.max_steps:
                metrics.update(self._record_eval())
            state.seconds = self._seconds_before + time.perf_counter() - self._started
            meter.update(state.step, loss=metrics.get("train_total_loss"), latest_validation=metrics.get(self.watched))
            if metrics and self.rank == 0 and self.log is not None:
                self.log(metrics, state.step)
            if state.step % cfg.checkpoint_every == 0:
                self.save()
        meter.close()
        return self._finish(reason)

    def _finish(self, reason: str) -> TrainResult:
        state = self.state
        if not state.history or state.history[-1]["step"] != state.step:
            metrics = self._record_eval()
            if self.rank == 0 and self.log is not None:
                self.log(metrics, state.step)
        state.seconds = self._seconds_before + time.perf_counter() - self._started
        self.save()
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        epochs = state.samples / max(1, len(self.train_examples))
        return TrainResult(
            model=self.model.cpu().eval(),
            step=state.step,
            best_metrics=state.best_metrics,
            history=state.history,
            samples_per_second=state.samples / max(state.train_seconds, 1e-9),
            stopped_reason=reason,
            seconds=state.seconds,
            start_step=self.start_step,
            epochs=epochs,
        )


def train(
    model_cfg: ModelConfig, train_cfg: TrainConfig, catalog: Catalog, split: Split, checkpoint_dir: Path, log: LogFn | None = None
) -> TrainResult:
    """Train until the step budget (``max_steps``, ``max_epochs``), early stopping or the time budget, resuming from
    ``checkpoint_dir/last.pt`` when it exists. ``log(metrics, step)`` (rank 0 only) gets
    training losses every ``log_every`` steps and validation metrics every ``eval_every``."""
    return Trainer(model_cfg, train_cfg, catalog, split, checkpoint_dir, log).fit()
