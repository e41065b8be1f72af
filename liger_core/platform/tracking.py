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

import mlflow

from liger_core.config import Settings

MAX_PARAM_CHARS = 6000
PARENT_RUN_ENV = "LIGER_PARENT_RUN_ID"


def configure(settings: Settings) -> str:
    """Point MLflow at the configured store and make sure the experiment exists. Also quiets
    what a batch job does not want: artifact progress bars and the SQLite store's migration log."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    name = settings.tracking.experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = mlflow.create_experiment(name, artifact_location=artifact_location(settings))
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


SERVER_SCHEMES = ("http:", "https:", "databricks")


def artifact_location(settings: Settings) -> str | None:
    """Where a new experiment stores artifacts: the configured root, else one folder under the
    state directory for a database store, so that no stage or worker writes into its working
    directory; None for an MLflow server, whose own default applies."""
    if settings.tracking.artifact_root is not None:
        return settings.tracking.artifact_root
    if settings.tracking_uri.startswith(SERVER_SCHEMES):
        return None
    return Path(settings.paths.state_dir, "mlartifacts").as_uri()


def use_store(uri: str) -> None:
    """In a worker process (DDP training): log to the store the driver configured."""
    mlflow.set_tracking_uri(uri)


# Set by Airflow's task runner in the environment every spark-submit inherits.
AIRFLOW_CONTEXT = {
    "airflow.dag_id": "AIRFLOW_CTX_DAG_ID",
    "airflow.run_id": "AIRFLOW_CTX_DAG_RUN_ID",
    "airflow.task_id": "AIRFLOW_CTX_TASK_ID",
    "airflow.try_number": "AIRFLOW_CTX_TRY_NUMBER",
}
DAG_RUN_STAGE = "dag_run"


def airflow_tags() -> dict[str, str]:
    """dag_id, run_id, task_id and try_number of the Airflow task running this stage, if any."""
    return {tag: os.environ[var] for tag, var in AIRFLOW_CONTEXT.items() if os.environ.get(var)}


def _airflow_filter(stage: str, dag_id: str, run_id: str) -> str:
    return f"tags.stage = '{stage}' and tags.`airflow.dag_id` = '{dag_id}' and tags.`airflow.run_id` = '{run_id}'"


def dag_run_parent(experiment_id: str, dag_id: str, run_id: str, ds: str) -> str:
    """The id of the one parent run of an Airflow DAG run, created by its first stage (the
    tasks of one DAG run are sequential, so two never race to create it)."""
    found = mlflow.search_runs(
        [experiment_id], _airflow_filter(DAG_RUN_STAGE, dag_id, run_id), max_results=1, output_format="list"
    )
    if found:
        return found[0].info.run_id
    tags = {"stage": DAG_RUN_STAGE, "ds": ds, "airflow.dag_id": dag_id, "airflow.run_id": run_id}
    return mlflow.MlflowClient().create_run(experiment_id, tags=tags, run_name=f"{dag_id} {run_id}").info.run_id


# Stages that run for minutes on real data: their runs sample CPU, memory and GPU (system/*).
LONG_STAGES = frozenset({"embed_items", "rqvae_train", "train", "evaluate", "recommend"})


@contextmanager
def stage_run(settings: Settings, stage: str, ds: str) -> Iterator[mlflow.ActiveRun]:
    """Open the stage's MLflow run, tagged with its Airflow task when a DAG runs it and nested
    under ``$LIGER_PARENT_RUN_ID`` (``liger run``) or else under its DAG run's parent run."""
    experiment_id = configure(settings)
    tags = {"stage": stage, "ds": ds, "profile": settings.profile, **airflow_tags()}
    parent = os.environ.get(PARENT_RUN_ENV)
    if not parent and "airflow.run_id" in tags and "airflow.dag_id" in tags:
        parent = dag_run_parent(experiment_id, tags["airflow.dag_id"], tags["airflow.run_id"], ds)
    if parent:
        tags["mlflow.parentRunId"] = parent
    started = time.perf_counter()
    with mlflow.start_run(run_name=f"{stage} {ds}", tags=tags, log_system_metrics=stage in LONG_STAGES) as run:
        log_params(settings.flat())
        yield run
        mlflow.log_metric("stage_seconds", time.perf_counter() - started)


@contextmanager
def pipeline_run(settings: Settings, ds: str) -> Iterator[str]:
    """The parent run of one ``liger run`` (every stage run nests under it); yields its id."""
    configure(settings)
    with mlflow.start_run(run_name=f"pipeline {ds}", tags={"stage": "pipeline", "ds": ds}) as parent:
        yield parent.info.run_id


def log_table_input(frame, path: str, name: str, context: str) -> None:
    """Record a Spark DataFrame the active run read as an MLflow dataset input (lineage).
    The digest is Spark's plan hash, so no data is read; Spark is never imported here."""
    from mlflow.data.spark_dataset import from_spark

    mlflow.log_input(from_spark(frame, path=path, name=name), context=context)


def stage_run_of(settings: Settings, dag_id: str, run_id: str, stage: str) -> mlflow.entities.Run | None:
    """The newest ``stage`` run an Airflow DAG run produced (its last try), if any."""
    found = mlflow.search_runs(
        [configure(settings)],
        _airflow_filter(stage, dag_id, run_id),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return found[0] if found else None


def log_params(params: Mapping[str, object]) -> None:
    clean = {k: str(v)[:MAX_PARAM_CHARS] for k, v in params.items()}
    items = sorted(clean.items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start : start + 100]))


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
    """Save a matplotlib figure (``plots`` makes them without pyplot, so nothing to close)."""
    mlflow.log_figure(figure, artifact_path)


def log_table(frame, artifact_file: str) -> None:
    """A small result table as a JSON run artifact (MLflow renders it in the UI)."""
    mlflow.log_table(frame, artifact_file)
