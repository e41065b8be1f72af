"""The README tables of a quality result, rendered from its JSON so that the two cannot drift.

    python -m benchmarks.quality_tables [benchmarks/results/quality_beauty_cpu.json]

Prints two Markdown tables: every mode's test rows next to the baselines (R@5, R@10, N@5,
N@10 per method and segment, with the standard error over users where the run recorded it),
then one row per mode with its training and serving figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("R@5", "R@10", "N@5", "N@10")
RUN_COLUMNS = (
    ("run (UTC)", "date"),
    ("training wall s", "train_wall_seconds"),
    ("steps", "train_steps"),
    ("epochs", "train_epochs"),
    ("samples/s", "train_samples_per_second"),
    ("stopped", "stopped_reason"),
    ("eval s", "evaluate_wall_seconds"),
    ("serving users/s", "recommend_users_per_second"),
    ("cold-start share of served rows", "served_cold_start_share"),
    ("promoted", "promoted"),
)


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _cell(row: dict, metric: str) -> str:
    """``0.0821 ± 0.0018`` where the row carries the metric's standard error over users."""
    error = row.get(f"{metric} SE")
    return f"{row[metric]:.4f}" + (f" ± {error:.4f}" if error is not None else "")


def metric_table(result: dict) -> str:
    """Modes' rows, in-set before cold-start, then the baselines'."""
    lines = [_row(["mode", "method", "targets", *METRICS]), _row(["---"] * (3 + len(METRICS)))]
    groups = [(mode, run["test_table"]) for mode, run in result["modes"].items()] + [("baseline", result["baselines"])]
    for mode, rows in groups:
        for segment in ("in-set", "cold-start"):
            for row in (r for r in rows if r["segment"] == segment):
                lines.append(_row([mode, row["method"], segment, *(_cell(row, m) for m in METRICS)]))
    return "\n".join(lines)


def run_table(result: dict) -> str:
    """One row per mode: training cost, the blend chosen on validation and serving figures."""
    header = ["mode", *(name for name, _ in RUN_COLUMNS), "blend (cold offset / cold cap / log-prob weight / dense candidates)"]
    lines = [_row(header), _row(["---"] * len(header))]
    for mode, run in result["modes"].items():
        blend = " / ".join(str(run.get(k)) for k in ("cold_offset", "cold_slot_cap", "generative_weight", "dense_candidates"))
        lines.append(_row([mode, *(run.get(key) for _, key in RUN_COLUMNS), blend]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else RESULTS / "quality_beauty_cpu.json"
    result = json.loads(path.read_text())
    print(metric_table(result), run_table(result), sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
