"""Stage runs under Airflow: tagged with their task, nested under one parent run per DAG run."""

from __future__ import annotations

import mlflow

from liger_core.platform import tracking
from liger_core.config import load_settings

CONTEXT = {
    "AIRFLOW_CTX_DAG_ID": "liger_nightly",
    "AIRFLOW_CTX_DAG_RUN_ID": "scheduled__2026-02-03",
    "AIRFLOW_CTX_TASK_ID": "recommend",
    "AIRFLOW_CTX_TRY_NUMBER": "2",
}


def test_stage_runs_carry_their_task_and_share_one_parent_per_dag_run(tmp_path, monkeypatch):
    settings = load_settings("cpu", [f"paths.home={tmp_path}", f"tracking.uri=sqlite:///{tmp_path}/m.db"], environ={})
    monkeypatch.delenv(tracking.PARENT_RUN_ENV, raising=False)
    for name, value in CONTEXT.items():
        monkeypatch.setenv(name, value)
    runs = []
    for stage in ("ingest", "recommend"):
        with tracking.stage_run(settings, stage, "2026-02-03") as run:
            runs.append(run.info.run_id)
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__other")
    with tracking.stage_run(settings, "ingest", "2026-02-03") as run:
        runs.append(run.info.run_id)

    client = mlflow.MlflowClient()
    first, second, other = (client.get_run(r) for r in runs)
    assert first.data.tags["airflow.dag_id"] == "liger_nightly"
    assert (first.data.tags["airflow.task_id"], first.data.tags["airflow.try_number"]) == ("recommend", "2")
    parent = first.data.tags["mlflow.parentRunId"]
    assert second.data.tags["mlflow.parentRunId"] == parent != other.data.tags["mlflow.parentRunId"]
    assert client.get_run(parent).data.tags["airflow.run_id"] == "scheduled__2026-02-03"
    found = tracking.stage_run_of(settings, "liger_nightly", "scheduled__2026-02-03", "recommend")
    assert found is not None and found.info.run_id == runs[1]
    assert tracking.stage_run_of(settings, "liger_nightly", "scheduled__2026-02-03", "evaluate") is None


def test_without_airflow_a_stage_run_has_no_airflow_tags(tmp_path, monkeypatch):
    settings = load_settings("cpu", [f"paths.home={tmp_path}", f"tracking.uri=sqlite:///{tmp_path}/m.db"], environ={})
    for name in (*CONTEXT, tracking.PARENT_RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    with tracking.stage_run(settings, "ingest", "2026-02-03") as run:
        run_id = run.info.run_id
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    assert not [t for t in tags if t.startswith("airflow.")] and "mlflow.parentRunId" not in tags


def test_a_database_store_keeps_artifacts_under_the_state_folder_and_a_server_keeps_its_own(tmp_path):
    def location(*overrides: str) -> str | None:
        return tracking.artifact_location(load_settings("cpu", [f"paths.home={tmp_path}", *overrides], environ={}))

    under_state = (tmp_path / "var" / "mlartifacts").as_uri()
    assert location() == under_state
    assert location("tracking.uri=postgresql://ml@db.example.com/mlflow") == under_state  # MLflow's default: ./mlruns
    assert location("tracking.uri=https://mlflow.example.com") is None
    assert location("tracking.uri=https://mlflow.example.com", "tracking.artifact_root=s3://bucket/ml") == "s3://bucket/ml"
