"""Quality on the real catalog: tiger, dense and liger modes trained side by side with the
same data, seed and wall-clock budget, each evaluated on the test split (DESIGN §5
protocol: hybrid = the best 20 of a 100-beam search plus cold items, ranked by the dense
head; ``*_served`` rows exclude history as serving does) and served once, next to the
training-free baselines (popularity, transition counts from the last item and the last 3)
computed by the same code on the same users, and the published Beauty figures.

Needs the tables of the earlier stages for --ds (``liger run`` or the stages up to
``sequences``). Every mode trains for ``--minutes`` of wall-clock time (the profile's
``max_steps`` and ``max_epochs`` still cap it), the schedule annealing to 0 at the end of whichever binds.
``--versions tiger=3 ...`` reports already-trained versions instead, reading their training
figures from MLflow. The last mode evaluated wins the promotion gate if it beats the
champion, so liger runs last. Writes benchmarks/results/quality_beauty_<profile>.json; with
``--keep-other-modes`` the modes not run keep their blocks from that file, each block
stamped with the date and machine of the run that produced it (the baselines are this run's).

    python -m benchmarks.quality_beauty --ds 2026-12-02 --minutes 20 [--mode-set tiger:train.max_epochs=60]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from benchmarks.machine import machine_info, previous_result, write_result
from liger_jobs import evaluate, recommend, train
from liger_jobs.common import today
from liger_jobs.spark import spark_session
from liger_core.platform import tracking
from liger_core.config import load_settings
from liger_core.platform.model_registry import RECOMMENDER_MODEL

MODES = ("tiger", "dense", "liger")
PAPER_BEAM_WIDTH = 100  # the paper ranks the best 20 of a 100-beam search
BASELINE_PREFIXES = ("popularity", "transition")
# Published test figures on Beauty (LIGER paper, K=20 beams; TIGER as reported there).
PAPER = {
    "liger": {"in-set": {"R@10": 0.0745, "N@10": 0.0402}, "cold-start": {"R@10": 0.1008, "N@10": 0.0380}},
    "tiger": {"in-set": {"R@10": 0.0648, "N@10": 0.0384}},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default=None)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall-clock budget of every mode")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--mode-set",
        action="append",
        default=[],
        metavar="MODE:KEY=VALUE",
        help="override for one mode only, after --set (e.g. tiger:train.max_epochs=60); recorded in the result",
    )
    parser.add_argument(
        "--versions",
        nargs="*",
        default=[],
        metavar="MODE=VERSION",
        help="report these trained versions instead of training the mode",
    )
    parser.add_argument(
        "--keep-other-modes",
        action="store_true",
        help="keep the result file's blocks of the modes not run here (same profile and ds only)",
    )
    args = parser.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.versions)
    per_mode = _mode_overrides(args.mode_set)
    budget = [f"train.time_budget_minutes={args.minutes}"]
    base = load_settings(args.profile, args.overrides)
    spark = spark_session(base)

    results = {}
    for mode in args.modes:
        stamp = machine_info()
        overrides = [*args.overrides, *per_mode.get(mode, []), f"model.mode={mode}"]
        settings = load_settings(args.profile, [*budget, *overrides])
        if mode in given:
            trained = _logged_training(settings, given[mode])
        else:
            # From scratch: the train stage would otherwise resume the ds's last checkpoint
            # (the parent folder holds those of every RQ-VAE version).
            shutil.rmtree(train.checkpoint_dir(settings, args.ds, "any").parent, ignore_errors=True)
            started = time.perf_counter()
            trained = train.run(settings, args.ds, spark)
            trained["wall_seconds"] = time.perf_counter() - started
        version = trained["recommender_version"]
        # One K (the serving default) on every test user: the K sweep is the evaluate stage's job.
        pinned = load_settings(
            args.profile,
            [
                *budget,
                "evaluate.users=0",
                *overrides,
                f"evaluate.beam_sweep=[{settings.recommend.beams}]",
                f"evaluate.beam_width={max(PAPER_BEAM_WIDTH, settings.recommend.beams)}",
                f"evaluate.model={version}",
                f"recommend.model={version}",
            ],
        )
        started = time.perf_counter()
        evaluated = evaluate.run(pinned, args.ds, spark)
        eval_wall = time.perf_counter() - started
        served = recommend.run(pinned, args.ds, spark)
        results[mode] = {
            "date": stamp["date"],
            "machine": stamp["machine"],
            "recommender_version": version,
            "mode_overrides": per_mode.get(mode, []),
            "train_wall_seconds": round(trained["wall_seconds"], 1),
            "train_steps": trained["steps"],
            "train_samples_per_second": trained["samples_per_second"],
            "stopped_reason": trained["stopped_reason"],
            "train_examples": trained["train_examples"],
            "train_epochs": trained.get("epochs"),
            "cold_offset": trained.get("cold_offset"),
            "generative_weight": trained.get("generative_weight"),
            "dense_candidates": trained.get("dense_candidates"),
            "cold_slot_cap": trained.get("cold_slot_cap"),
            "blend_validation": {k.removeprefix("blend_val_"): v for k, v in trained.items() if k.startswith("blend_val_")},
            "heads_validation": {k.removeprefix("head_val_"): v for k, v in trained.items() if k.startswith("head_val_")},
            "validation_curve": trained.get("validation_curve"),
            "cold_items": trained["cold_items"],
            "evaluate_wall_seconds": round(eval_wall, 1),
            "beams": pinned.evaluate.beam_sweep[0],
            "test_table": evaluated["table"],
            "promoted": evaluated["promoted"],
            "gate_reason": evaluated["gate_reason"],
            "recommend_users": served["users"],
            "recommend_seconds": served["seconds"],
            "recommend_users_per_second": served["users_per_second"],
            "recommend_k": served["k"],
            "served_rows": served["rows"],
            "served_cold_start_share": round(served["cold_start_rows"] / max(1, served["rows"]), 4),
        }
        baselines = [row for row in evaluated["table"] if row["method"].startswith(BASELINE_PREFIXES)]
        print(
            f"{mode}: v{version}, {trained['steps']} steps in {trained['wall_seconds']:.0f} s "
            f"({trained['samples_per_second']} samples/s); serving {served['users_per_second']} users/s",
            flush=True,
        )

    for result in results.values():  # baselines are reported once, beside the modes
        result["test_table"] = [row for row in result["test_table"] if not row["method"].startswith(BASELINE_PREFIXES)]
    name = f"quality_beauty_{base.profile}"
    if args.keep_other_modes:
        results = _with_kept_modes(results, previous_result(name), args.ds)
    _print_side_by_side(results, baselines)
    path = write_result(
        name,
        {
            **machine_info(),
            "profile": base.profile,
            "ds": args.ds,
            "train_minutes": args.minutes,
            "overrides": args.overrides,
            "seed": base.train.seed,
            "paper_k20": PAPER,
            "baselines": baselines,
            "modes": results,
        },
    )
    print(f"wrote {path}")
    return 0


def _with_kept_modes(results: dict[str, dict], previous: dict, ds: str) -> dict[str, dict]:
    """``results`` plus the previous file's blocks of the other modes, in MODES order, if
    that file measured the same ds (so the same split and users); a block from before
    blocks carried their own date and machine gets its file's."""
    if previous.get("ds") != ds:
        raise SystemExit(f"--keep-other-modes: the result file holds ds {previous.get('ds')}, not {ds}")
    kept = {
        mode: {"date": previous["date"], "machine": previous["machine"], **block}
        for mode, block in previous["modes"].items()
        if mode not in results
    }
    merged = {**kept, **results}
    return {mode: merged[mode] for mode in MODES if mode in merged}


def _mode_overrides(items: list[str]) -> dict[str, list[str]]:
    """``MODE:section.key=value`` items -> overrides per mode, in the order given."""
    per_mode: dict[str, list[str]] = {}
    for item in items:
        mode, _, override = item.partition(":")
        if mode not in MODES or "=" not in override:
            raise SystemExit(f"--mode-set {item!r}: expected MODE:section.key=value with MODE one of {MODES}")
        per_mode.setdefault(mode, []).append(override)
    return per_mode


def _print_side_by_side(results: dict[str, dict], baselines: list[dict]) -> None:
    print(f"\n{'mode':<10}{'method':<20}{'segment':<12}{'R@5':>8}{'R@10':>8}{'N@5':>8}{'N@10':>8}")
    rows = [(mode, row) for mode, result in results.items() for row in result["test_table"]]
    for mode, row in rows + [("baseline", row) for row in baselines]:
        print(
            f"{mode:<10}{row['method']:<20}{row['segment']:<12}"
            + "".join(f"{row.get(col, float('nan')):>8.4f}" for col in ("R@5", "R@10", "N@5", "N@10"))
        )


def _logged_training(settings, version: str) -> dict:
    """Training figures of an existing version, from the MLflow run that registered it."""
    import mlflow

    tracking.configure(settings)
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(client.get_model_version(RECOMMENDER_MODEL, version).run_id)
    metrics = run.data.metrics
    return {
        "recommender_version": version,
        "wall_seconds": metrics["stage_seconds"],
        "steps": int(metrics["steps"]),
        "samples_per_second": metrics["samples_per_second"],
        "stopped_reason": run.data.params.get("stopped_reason", "see MLflow run " + run.info.run_id),
        "train_examples": int(metrics["train_examples"]),
        "cold_items": int(metrics["cold_items"]),
    }


if __name__ == "__main__":
    sys.exit(main())
