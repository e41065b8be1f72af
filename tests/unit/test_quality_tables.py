"""The README's quality tables come from the result JSON by ``benchmarks.quality_tables``."""

from __future__ import annotations

from benchmarks.quality_tables import metric_table, run_table


def _row(segment: str, method: str, value: float) -> dict:
    return {"segment": segment, "method": method, "R@5": value, "R@10": 2 * value, "N@5": value / 2, "N@10": value}


RESULT = {
    "modes": {
        "liger": {
            "date": "2026-12-07T04:20:00+00:00",
            "test_table": [_row("cold-start", "hybrid", 0.1), _row("in-set", "hybrid", 0.04)],
            "train_wall_seconds": 900.5,
            "train_steps": 2229,
            "promoted": True,
            "cold_offset": "0.05",
            "cold_slot_cap": 2,
            "generative_weight": 0.04,
            "dense_candidates": 20,
        }
    },
    "baselines": [_row("in-set", "transition3", 0.045)],
}


def test_metric_rows_list_in_set_first_then_baselines_with_four_decimals():
    lines = metric_table(RESULT).splitlines()
    assert lines[0] == "| mode | method | targets | R@5 | R@10 | N@5 | N@10 |"
    assert lines[2:] == [
        "| liger | hybrid | in-set | 0.0400 | 0.0800 | 0.0200 | 0.0400 |",
        "| liger | hybrid | cold-start | 0.1000 | 0.2000 | 0.0500 | 0.1000 |",
        "| baseline | transition3 | in-set | 0.0450 | 0.0900 | 0.0225 | 0.0450 |",
    ]


def test_run_rows_carry_the_training_figures_and_the_blend():
    row = run_table(RESULT).splitlines()[2]
    assert row.startswith("| liger | 2026-12-07T04:20:00+00:00 | 900.5 | 2229 | None |")
    assert row.endswith("| True | 0.05 / 2 / 0.04 / 20 |")


def test_a_recorded_standard_error_follows_its_figure():
    row = {**_row("in-set", "hybrid", 0.04), "R@10 SE": 0.0018, "N@10 SE": 0.00091}
    result = {"modes": {"liger": {"test_table": [row]}}, "baselines": []}
    assert (
        metric_table(result).splitlines()[2]
        == "| liger | hybrid | in-set | 0.0400 | 0.0800 ± 0.0018 | 0.0200 | 0.0400 ± 0.0009 |"
    )
