"""MLflow plumbing: one run per stage execution, with the resolved config as params.

Defaults to a SQLite store and a local artifact folder under the state directory, so a
fresh machine needs no tracking server; a server URI in config switches it over.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from liger_core.config import Settings

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
import mlflow  # noqa: E402

logging.getLogger("alembic").setLevel(logging.WARNING)
MAX_PARAM_CHARS = 6000
PARENT_RUN_ENV = "LIGER_PARENT_RUN_ID"


def configure(settings: Settings) -> str:
    """Point MLflow at the configured store and make sure the experiment exists."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    name = settings.tracking.experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        artifacts = None
        if uri.startswith("sqlite:"):
            artifacts = Path(settings.paths.state_dir, "mlartifacts").as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextmanager
def stage_run(settings: Settings, stage: str, ds: str) -> Iterator[mlflow.ActiveRun]:
    """Open the stage's MLflow run; nested under ``$LIGER_PARENT_RUN_ID`` when a DAG run set it."""
    configure(settings)
    tags = {"stage": stage, "ds": ds, "profile": settings.profile}
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent:
        tags["mlflow.parentRunId"] = parent
    started = time.perf_counter()
    with mlflow.start_run(run_name=f"{stage} {ds}", tags=tags) as run:
        log_params(settings.flat())
        yield run
        mlflow.log_metric("stage_seconds", time.perf_counter() - started)


def log_params(params: Mapping[str, object]) -> None:
    clean = {k: str(v)[:MAX_PARAM_CHARS] for k, v in params.items()}
    items = sorted(clean.items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start:start + 100]))


def metric_key(name: str) -> str:
    """MLflow refuses '@' in metric names: ``val_hybrid_ndcg@10`` is logged as ``val_hybrid_ndcg_at_10``."""
    return name.replace("@", "_at_")


def log_metrics(metrics: Mapping[str, float], step: int | None = None, run_id: str | None = None) -> None:
    """Log to the active run, or to ``run_id`` (from a training worker process)."""
    clean = {metric_key(k): float(v) for k, v in metrics.items()}
    if run_id is None:
        mlflow.log_metrics(clean, step=step)
    else:
        mlflow.log_metrics(clean, step=step, run_id=run_id)


def log_figure(figure, artifact_path: str) -> None:
    """Save a matplotlib figure as a run artifact and free it."""
    import matplotlib.pyplot as plt

    mlflow.log_figure(figure, artifact_path)
    plt.close(figure)


def log_table(frame, artifact_file: str) -> None:
    """A small result table as a JSON run artifact (MLflow renders it in the UI)."""
    mlflow.log_table(frame, artifact_file)
