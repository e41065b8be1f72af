"""How the hybrid's blend trades in-set against cold-start quality on the real catalog.

Trains the profile once for a wall-clock budget (or resumes a finished run from
``--checkpoint-dir``), scores every blend calibration considers on the validation and the
test split, and for each ``--cold-weight`` reports the blend calibration picks on validation
and what it scores on test, per segment, next to each head alone (their in-set quality on
validation is reported, not enforced, as in the train stage), the paper's blend (offset 0, no weight, no
dense candidates, every cold item) and the in-set-only one (no cold items). The test grid
is the honest upper bound of each segment: no blend picked on validation can do better.
Writes benchmarks/results/blend_sweep_<profile>.json.

    python -m benchmarks.blend_sweep --ds 2026-12-04 --minutes 7 --checkpoint-dir var/blend_sweep

The committed result ran exactly that (default cold weights: users, 0.01, 0.02, 0.03, 0.05,
0.1, 0.5), on tables built by ingest -> build_sequences for that ds.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import machine_info, write_result
from liger_jobs.common import today
from liger_jobs.inputs import load_model_inputs
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.config import load_settings
from liger_core.data.sequences import build_split
from liger_core.data.training_data import sequences_in_space
from liger_core.retrieval.calibration import BlendQuality, blend_grid, measure_blends, pick_blend
from liger_core.retrieval.search import Blend, RetrievalIndex
from liger_core.training.trainer import train


def _weight(text: str) -> float | None:
    return None if text == "users" else float(text)


def _row(blend: Blend, on_valid: BlendQuality, on_test: BlendQuality) -> dict:
    return {
        "blend": {key: str(value) for key, value in blend._asdict().items()},
        "valid": on_valid.finite(),
        "test": on_test.finite(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--minutes", type=float, default=7.0)
    parser.add_argument("--checkpoint-dir", type=Path, help="resume a finished run here (default: a temp dir)")
    parser.add_argument(
        "--cold-weight",
        action="append",
        type=_weight,
        help="'users' (objective over all users) or a weight in [0, 1]; repeatable",
    )
    args = parser.parse_args(argv)
    settings = load_settings(args.profile, [f"train.time_budget_minutes={args.minutes}"])
    inputs = load_model_inputs(Warehouse(spark_session(settings), settings.paths.warehouse_uri), settings, args.ds)
    catalog = inputs.catalog
    split = build_split(
        sequences_in_space(inputs.sequences["items"], inputs.space), settings.model.max_history, n_items=catalog.n_items
    )
    with tempfile.TemporaryDirectory() as scratch:
        trained = train(settings.model, settings.train, catalog, split, args.checkpoint_dir or Path(scratch))
    index = RetrievalIndex.from_catalog(catalog, split.in_set)
    beams, cap = settings.train.beams, settings.train.cold_candidates
    grid = blend_grid(beams, cap, len(index.cold) > 0)
    on_valid = measure_blends(trained.model, split.valid, index, grid, beams=beams)
    on_test = measure_blends(trained.model, split.test, index, grid, beams=beams)
    valid, test = on_valid.blends, on_test.blends
    picked = {
        str(weight): _row(blend, valid[blend], test[blend])
        for weight in args.cold_weight or [None, 0.01, 0.02, 0.03, 0.05, 0.1, 0.5]
        for blend in [pick_blend(valid, weight)]  # the train stage's policy (choose_blend)
    }
    references = {"paper": Blend(cold_candidates=cap), "no_cold_items": Blend(-math.inf, cold_candidates=cap)}
    for name, row in picked.items():
        print(f"cold weight {name}: {row['blend']} -> test {row['test']}", flush=True)
    path = write_result(
        f"blend_sweep_{settings.profile}",
        {
            **machine_info(),
            "profile": settings.profile,
            "ds": args.ds,
            "minutes": args.minutes,
            "steps": trained.step,
            "beams": beams,
            "blends_scored": len(grid),
            "test_users": len(split.test),
            "test_users_cold": int(split.test.is_cold.sum()),
            "valid_users_cold": int(split.valid.is_cold.sum()),
            "heads": {
                head: {"valid": on_valid.heads[head].finite(), "test": on_test.heads[head].finite()} for head in on_valid.heads
            },
            "picked_on_validation": picked,
            "references": {name: _row(blend, valid[blend], test[blend]) for name, blend in references.items() if blend in valid},
            "test_best": {
                metric: _row(best, valid[best], test[best])
                for metric in ("ndcg_inset", "ndcg_cold", "recall_cold")
                for best in [max(test, key=lambda b: getattr(test[b], metric))]
            },
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
