"""The closing report points at each stage's MLflow run page and its plots."""

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from liger_core.platform import tracking  # noqa: E402
from liger_core.config import load_settings  # noqa: E402
from liger_core.platform.report import stage_runs, where_to_look  # noqa: E402


def test_report_links_every_stage_run_and_its_plots(tmp_path, monkeypatch):
    monkeypatch.delenv(tracking.PARENT_RUN_ENV, raising=False)
    settings = load_settings("cpu", [f"paths.home={tmp_path}", f"tracking.uri=sqlite:///{tmp_path}/m.db"], environ={})
    with tracking.stage_run(settings, "ingest", "2026-02-03"):
        pass
    with tracking.stage_run(settings, "train", "2026-02-03") as run:
        tracking.log_figure(plt.figure(), "plots/training_curve.png")
    lines = where_to_look(settings, stage_runs(settings, "2026-02-03", since_ms=0))
    assert lines[2] == f"  MLflow UI: .venv/bin/mlflow ui --backend-store-uri sqlite:///{tmp_path}/m.db  (then the links)"
    train_line = next(i for i, line in enumerate(lines) if line.lstrip().startswith("train "))
    assert lines[train_line].endswith(f"/runs/{run.info.run_id}") and "http://127.0.0.1:5000/#/experiments/" in lines[train_line]
    assert lines[train_line + 1].startswith("    plot: ") and lines[train_line + 1].endswith("/plots/training_curve.png")
    assert sum(line.startswith("    plot: ") for line in lines) == 1  # ingest has none


def test_a_run_that_promoted_nothing_says_why_no_recommendations_exist(tmp_path, monkeypatch):
    from liger_core.platform import report
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "home", tmp_path / "source")
    runs = pd.DataFrame(
        {
            "stage": ["train", "evaluate"],
            "seconds": [10.0, 2.0],
            "status": ["FINISHED"] * 2,
            "params.gate_reason": [
                None,
                "val_hybrid_ndcg@10 0.0568 does not beat the transition-count baseline 0.0576 on the same users",
            ],
        }
    )
    monkeypatch.setattr(report, "where_to_look", lambda settings, runs: [])
    text = report.render_report(settings, "2026-01-01", runs, [20])
    assert "none: no recommender has been promoted, so the nightly run served nothing." in text
    assert "Last promotion gate: val_hybrid_ndcg@10 0.0568 does not beat the transition-count baseline" in text
    assert report.gate_reason(runs.iloc[:1]) is None
