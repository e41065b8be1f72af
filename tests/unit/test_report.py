"""The closing report points at each stage's MLflow run page and its plots."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from liger_core import tracking  # noqa: E402
from liger_core.config import load_settings  # noqa: E402
from liger_core.report import stage_runs, where_to_look  # noqa: E402


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
