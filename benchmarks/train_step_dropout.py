"""Training step time with the project's CPU dropout (``liger_core.model.dropout``) against
``nn.Dropout``, on the real catalog, in one run: per mode, each variant trains a fresh
Trainer from the same seed for ``--steps`` timed steps after ``--warmup`` untimed ones,
alternating variants ``--rounds`` times so that machine noise hits both alike. Writes
benchmarks/results/train_step_dropout.json with seconds per step and the speed-up.

    python -m benchmarks.train_step_dropout --ds 2026-12-07
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from torch import nn

from benchmarks.machine import machine_info, write_result
from liger_core.config import load_settings
from liger_core.data.sequences import build_split
from liger_core.data.training_data import sequences_in_space
from liger_core.model.dropout import Dropout
from liger_core.training.trainer import Trainer
from liger_jobs.common import today
from liger_jobs.inputs import load_model_inputs
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse


def use_torch_dropout(model: nn.Module) -> int:
    """Swap every project Dropout for ``nn.Dropout`` of the same p; returns how many."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, nn.Dropout(child.p))
                swapped += 1
    return swapped


def seconds_per_step(trainer: Trainer, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        trainer.step()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return (time.perf_counter() - started) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--modes", nargs="+", default=["liger", "tiger"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    base = load_settings(args.profile)
    inputs = load_model_inputs(Warehouse(spark_session(base), base.paths.warehouse_uri), base, args.ds)
    sequences = sequences_in_space(inputs.sequences["items"], inputs.space)
    modes = {}
    for mode in args.modes:
        settings = load_settings(args.profile, [f"model.mode={mode}"])
        split = build_split(sequences, settings.model.max_history, n_items=inputs.catalog.n_items)
        timings: dict[str, list[float]] = {"torch": [], "project": []}
        for _ in range(args.rounds):
            for variant, seconds in timings.items():
                with tempfile.TemporaryDirectory() as folder:
                    trainer = Trainer(settings.model, settings.train, inputs.catalog, split, Path(folder))
                    if variant == "torch" and not use_torch_dropout(trainer.model):
                        raise SystemExit("the model has no project Dropout to swap: nothing to compare")
                    seconds.append(seconds_per_step(trainer, args.warmup, args.steps))
        torch_s, project_s = (statistics.median(timings[v]) for v in ("torch", "project"))
        modes[mode] = {
            "seconds_per_step_nn_dropout": round(torch_s, 4),
            "seconds_per_step_project_dropout": round(project_s, 4),
            "speedup": round(torch_s / project_s, 3),
            "rounds": {v: [round(s, 4) for s in timings[v]] for v in timings},
        }
        print(f"{mode}: nn.Dropout {torch_s:.3f} s/step, project Dropout {project_s:.3f} s/step", flush=True)
    path = write_result(
        "train_step_dropout",
        {
            **machine_info(),
            "profile": base.profile,
            "ds": args.ds,
            "batch_size": base.train.batch_size,
            "warmup_steps": args.warmup,
            "timed_steps": args.steps,
            "modes": modes,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
