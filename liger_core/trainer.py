"""Training loop for LigerModel: AdamW, warmup + cosine schedule, periodic validation with
early stopping, atomic checkpoints with exact resume, and optional DistributedDataParallel.

Resume is exact on one CPU process: the learning rate is a function of the step, the data
order a function of (seed, epoch), and the RNG states are saved, so a run killed after a
checkpoint and restarted ends with the same weights as one that never stopped.

The time budget covers the whole run across resumes; the evaluation after the last step
may run past it.

Distributed: when the caller has initialised torch.distributed (gloo on CPU, nccl on GPUs;
under TorchDistributor the launched function calls init_process_group), ``batch_size`` is
the global batch split evenly over ranks, each rank trains on its own shard of examples and
evaluates its own shard of validation users, metric sums are all-reduced, and only rank 0
logs and writes checkpoints (``checkpoint_dir`` must be shared storage for every rank to
resume from it).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from liger_core.catalog import Catalog
from liger_core.config import ModelConfig, TrainConfig, ranking_metric
from liger_core.errors import ConfigError, DataError
from liger_core.model import Batch, Items, LigerModel
from liger_core.retrieval import PrefixIndex, evaluate_sums, finish, metric_names
from liger_core.sequences import Examples, Split

CHECKPOINT = "last.pt"
LogFn = Callable[[dict[str, float], int], None]


@dataclass
class TrainResult:
    model: LigerModel  # best weights by the early-stop metric, on the CPU, in eval mode
    step: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]]  # one entry per evaluation, with its "step"
    samples_per_second: float  # training examples per second, all ranks, evaluation excluded
    stopped_reason: str  # "max_steps" | "early_stop" | "time_budget"
    seconds: float  # wall-clock over all runs, resumes included
    start_step: int  # 0, or the step this run resumed from


@dataclass
class _State:
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


def lr_factor(step: int, warmup: int, max_steps: int) -> float:
    """Linear warmup to 1 over ``warmup`` steps, then cosine decay to 0 at ``max_steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, max_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class ExampleLoader:
    """Padded batches of training examples in a shuffled order per epoch.

    The permutation of epoch e comes from (seed, e) alone, so any (epoch, batch) position
    can be recreated on resume without saving a sampler. Rank r takes every world-th
    example of the permutation, cut so that all ranks run the same number of batches.
    """

    def __init__(self, examples: Examples, batch_size: int, max_history: int, seed: int,
                 rank: int = 0, world: int = 1) -> None:
        if len(examples) < world:
            raise DataError(
                f"{len(examples)} training examples cannot be shared by {world} workers")
        self.examples, self.max_history, self.seed = examples, max_history, seed
        self.rank, self.world = rank, world
        self.batch_size = max(1, batch_size // world)
        self.per_rank = len(examples) // world
        self.batches = math.ceil(self.per_rank / self.batch_size)
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def get(self, epoch: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        if epoch != self._epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.examples))
            self._epoch, self._order = epoch, perm[self.rank :: self.world][: self.per_rank]
        rows = self._order[batch * self.batch_size : (batch + 1) * self.batch_size]
        return self.examples.batch(rows, self.max_history)


def _dist() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device(name: str, world: int) -> torch.device:
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r} but CUDA is not available on this machine; "
                              "use the cpu profile or --set train.device=cpu")
        if world > 1:  # one GPU per process, as torchrun / TorchDistributor set it up
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)  # NCCL object collectives use the current device
            return device
    return torch.device(name)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """Weight decay on matrices (linear and embedding weights) only, as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
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


def _validate(model_cfg: ModelConfig, train_cfg: TrainConfig, catalog: Catalog, split: Split,
              model: LigerModel) -> None:
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
            f"train.early_stop_metric={watched!r} is not reported in "
            f"model.mode={model_cfg.mode!r}; choose one of {available}")


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    catalog: Catalog,
    split: Split,
    checkpoint_dir: Path,
    log: LogFn | None = None,
) -> TrainResult:
    """Train until ``max_steps``, early stopping or the time budget, resuming from
    ``checkpoint_dir/last.pt`` when it exists. ``log(metrics, step)`` (rank 0 only) gets
    training losses every ``log_every`` steps and validation metrics every ``eval_every``."""
    rank, world = _dist()
    device = _device(train_cfg.device, world)
    torch.manual_seed(train_cfg.seed)  # same initial weights on every rank
    model = LigerModel.from_config(model_cfg, catalog.code_sizes, catalog.text_dim).to(device)
    _validate(model_cfg, train_cfg, catalog, split, model)
    watched = ranking_metric(model_cfg.mode, train_cfg.early_stop_metric)
    optimizer = _optimizer(model, train_cfg)
    state = _State()
    checkpoint_dir = Path(checkpoint_dir)
    path = checkpoint_dir / CHECKPOINT
    best_weights: dict[str, torch.Tensor] | None = None
    if path.exists():
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        same_model = ckpt["model_config"] == model_cfg.model_dump()
        if not same_model or tuple(ckpt["code_sizes"]) != catalog.code_sizes:
            raise ConfigError(f"{path} was written for another model config or catalog; "
                              "remove it or use another checkpoint directory")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = _State(**ckpt["state"])
        best_weights = ckpt["best_weights"]
        rng = ckpt["rng"]
        _set_rng_state(rng[rank] if rank < len(rng) else rng[0], device)
    else:
        torch.manual_seed(train_cfg.seed + rank)  # dropout masks differ between ranks
    start_step = state.step

    items = Items.from_catalog(catalog, device)
    in_set = np.flatnonzero(split.in_set)
    candidates = torch.from_numpy(in_set).to(device)
    position = np.full(catalog.n_items, -1, dtype=np.int64)
    position[in_set] = np.arange(len(in_set))
    position_t = torch.from_numpy(position).to(device)
    index = PrefixIndex(catalog.sid, in_set, catalog.code_sizes).to(device)
    cold = torch.from_numpy(np.flatnonzero(~split.in_set)).to(device)
    valid = split.valid
    if train_cfg.eval_users and len(valid) > train_cfg.eval_users:
        rng = np.random.default_rng(train_cfg.seed)
        rows = rng.choice(len(valid), train_cfg.eval_users, replace=False)
        valid = valid.subset(np.sort(rows))
    valid = valid.subset(np.arange(rank, len(valid), world))
    loader = ExampleLoader(split.train, train_cfg.batch_size, model_cfg.max_history,
                           train_cfg.seed, rank, world)

    net: nn.Module = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=device_ids)
    use_bf16 = device.type == "cuda" and train_cfg.mixed_precision

    def evaluate() -> dict[str, float]:
        sums = evaluate_sums(model, valid, items, index, cold, beams=train_cfg.beams,
                             cold_cap=train_cfg.cold_candidates,
                             batch_size=train_cfg.eval_batch_size)
        if world > 1:
            values = torch.tensor(list(sums.values()), dtype=torch.float64, device=device)
            dist.all_reduce(values)
            sums = dict(zip(sums, values.tolist()))
        return finish(sums)

    def checkpoint() -> None:
        rng = [_rng_state(device)]
        if world > 1:
            rng = [None] * world  # type: ignore[list-item]
            dist.all_gather_object(rng, _rng_state(device))
        if rank == 0:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            save_atomic({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "state": asdict(state), "best_weights": best_weights, "rng": rng,
                "model_config": model_cfg.model_dump(), "code_sizes": list(catalog.code_sizes),
            }, path)

    def stop_reason() -> str | None:
        if state.bad_evals >= train_cfg.patience:
            return "early_stop"
        if state.step >= train_cfg.max_steps:
            return "max_steps"
        budget = train_cfg.time_budget_minutes * 60
        elapsed = seconds_before + time.perf_counter() - started
        out_of_time = float(bool(budget) and elapsed >= budget)
        if world > 1 and budget:  # clocks differ; stop together or DDP would hang
            flag = torch.tensor([out_of_time], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            out_of_time = flag.item()
        return "time_budget" if out_of_time else None

    started = time.perf_counter()
    seconds_before = state.seconds
    running: dict[str, torch.Tensor | float] = {}
    running_steps = 0
    model.train()
    progress = tqdm(total=train_cfg.max_steps, initial=state.step, desc="train", unit="step",
                    disable=None if rank == 0 else True)
    with progress:
        while (reason := stop_reason()) is None:
            tick = time.perf_counter()
            history, target = loader.get(state.epoch, state.batch)
            history_t = torch.from_numpy(history).to(device)
            target_t = torch.from_numpy(target).to(device)
            batch = Batch(history_t, target_t, items, candidates, position_t[target_t])
            for group in optimizer.param_groups:
                group["lr"] = train_cfg.lr * lr_factor(state.step, train_cfg.warmup_steps,
                                                       train_cfg.max_steps)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                losses = net(batch)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
            optimizer.step()

            state.step += 1
            state.batch += 1
            if state.batch == loader.batches:
                state.epoch, state.batch = state.epoch + 1, 0
            state.samples += len(target) * world
            state.train_seconds += time.perf_counter() - tick
            for name, value in losses.items():
                running[name] = running.get(name, 0.0) + value.detach()
            running_steps += 1
            progress.update()

            metrics: dict[str, float] = {}
            if state.step % train_cfg.log_every == 0 or state.step == train_cfg.max_steps:
                metrics = {f"train_{name}_loss": float(v) / running_steps
                           for name, v in running.items()}
                metrics["lr"] = optimizer.param_groups[0]["lr"]
                metrics["samples_per_second"] = state.samples / max(state.train_seconds, 1e-9)
                progress.set_postfix(loss=f"{metrics['train_total_loss']:.4f}")
                running, running_steps = {}, 0
            if state.step % train_cfg.eval_every == 0 or state.step == train_cfg.max_steps:
                best_weights = _record_eval(evaluate(), state, watched, model, best_weights)
                metrics.update(state.history[-1])
                metrics.pop("step")
            state.seconds = seconds_before + time.perf_counter() - started
            if metrics and rank == 0 and log is not None:
                log(metrics, state.step)
            if state.step % train_cfg.checkpoint_every == 0:
                checkpoint()

    if not state.history or state.history[-1]["step"] != state.step:
        best_weights = _record_eval(evaluate(), state, watched, model, best_weights)
        if rank == 0 and log is not None:
            log({k: v for k, v in state.history[-1].items() if k != "step"}, state.step)
    state.seconds = seconds_before + time.perf_counter() - started
    checkpoint()
    if best_weights is not None:
        model.load_state_dict(best_weights)
    return TrainResult(
        model=model.cpu().eval(), step=state.step, best_metrics=state.best_metrics,
        history=state.history, samples_per_second=state.samples / max(state.train_seconds, 1e-9),
        stopped_reason=reason, seconds=state.seconds, start_step=start_step,
    )


def _record_eval(metrics: dict[str, float], state: _State, name: str, model: LigerModel,
                 best_weights: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    """Append to history; on improvement keep a CPU copy of the ``name`` metric's best weights."""
    if name not in metrics:
        raise DataError(f"validation produced no {name!r} (no users in that segment?); "
                        "choose another train.early_stop_metric")
    state.history.append({"step": float(state.step), **metrics})
    if metrics[name] > state.best:
        state.best, state.best_metrics, state.bad_evals = metrics[name], dict(metrics), 0
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    state.bad_evals += 1
    return best_weights
