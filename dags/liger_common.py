"""Shared construction for the LIGER DAGs: orchestration only, no data logic.

Every stage is one Spark application, ``jobs/<stage>.py``, submitted by a
``SparkSubmitOperator`` with ``--ds {{ ds }} --profile {{ params.profile }} [--set k=v ...]``.
Jobs write the partition of the run's logical date, so a rerun or backfill of the same run
replaces that partition instead of adding to it. The schedules are cron presets, which in
Airflow 3 give a run the logical date of the moment it fires (``@daily`` at 00:00 UTC on
2026-11-23 has ``ds`` 2026-11-23): ``ds`` names the snapshot the run takes.

Spark connection ``liger_spark``
    Airflow looks connections up in environment variables before its metastore. Unless the
    environment already defines ``AIRFLOW_CONN_LIGER_SPARK`` (the compose file points it at
    ``spark://spark-master:7077``), importing this module sets it to a local-mode connection
    (master ``local[*]``, client deploy mode), so the DAGs run on one machine with nothing to
    create first. To manage the connection in the UI / metastore instead, set
    ``LIGER_DEFAULT_SPARK_CONN=0`` in the Airflow environment (an environment connection,
    default or not, would otherwise shadow it).

    The jobs also read ``spark.master`` from their own configuration (``LIGER__SPARK__MASTER``)
    and the session builder applies it, so keep the two in agreement when leaving local mode.

Task environment
    ``spark-submit`` is the one installed next to the Python running Airflow (the venv's, from
    the pyspark wheel), ``PYSPARK_PYTHON`` / ``PYSPARK_DRIVER_PYTHON`` are that Python unless
    already set (the pip ``spark-submit`` script also needs them to find its Spark home), ``SPARK_LOCAL_IP`` is
    127.0.0.1 in local mode, and ``PYTHONPATH`` starts with the project root so the jobs import
    the same tree their script comes from.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, Param

log = logging.getLogger("liger.airflow")

PROJECT_ROOT = Path(os.environ.get("LIGER_HOME") or Path(__file__).resolve().parents[1])
JOBS_DIR = PROJECT_ROOT / "jobs"

SPARK_CONN_ID = "liger_spark"
SPARK_CONN_ENV = "AIRFLOW_CONN_LIGER_SPARK"
LOCAL_SPARK_CONN = json.dumps({"conn_type": "spark", "host": "local[*]", "extra": {"deploy-mode": "client"}})

# Emitted when the retrain DAG's evaluate task succeeds (a new version was evaluated and,
# if the gate passed, promoted to alias "champion"). Nightly reads "champion" by name.
RECOMMENDER_ASSET = Asset("liger://models/recommender")

# Config keys the DAG params are passed to (``--set key=value``).
RQVAE_MODEL_KEY = "semantic_ids.rqvae_model"
RECOMMEND_K_KEY = "recommend.k"
RECOMMENDER_MODEL_KEY = "recommend.model"

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
# The run's logical date. Airflow 3 lets a manual run have no logical date (CLI/API trigger
# without one): then ``ds`` is absent from the context and the run's ``run_after`` date is used.
DS = "{{ ds if ds is defined else dag_run.run_after | ds }}"
DS_ARGS = ("--ds", DS, "--profile", "{{ params.profile }}")


def _default_spark_connection() -> None:
    if os.environ.get("LIGER_DEFAULT_SPARK_CONN", "1").strip().lower() in {"0", "false", "no", "off"}:
        return
    os.environ.setdefault(SPARK_CONN_ENV, LOCAL_SPARK_CONN)


_default_spark_connection()


def spark_master_from_env() -> str | None:
    """Master URL of the environment connection (JSON or URI form); None if not set there."""
    value = os.environ.get(SPARK_CONN_ENV, "").strip()
    if not value:
        return None
    if value.startswith("{"):
        conn = json.loads(value)
        conn_type, host, port = conn.get("conn_type", ""), conn.get("host") or "", conn.get("port")
    else:
        parts = urlsplit(value)
        conn_type, host, port = parts.scheme, parts.hostname or "", parts.port
    # the provider's rule (SparkSubmitHook._resolve_connection, 5.x)
    master = host if conn_type == "spark" and host and ("://" in host or not port) else f"{conn_type}://{host}"
    return f"{master}:{port}" if port else master


def spark_submit_binary() -> str:
    """The ``spark-submit`` beside the interpreter running Airflow, else the one on PATH."""
    candidate = Path(sys.executable).with_name("spark-submit")
    return str(candidate) if candidate.is_file() else "spark-submit"


def task_env() -> dict[str, str]:
    """Environment added to the Airflow process's own for every ``spark-submit``."""
    python = os.environ.get("PYSPARK_PYTHON") or sys.executable
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON") or python,
        "PYTHONPATH": pythonpath,
        "LIGER_PROFILE": "{{ params.profile }}",
    }
    master = spark_master_from_env()
    if os.environ.get("SPARK_LOCAL_IP"):
        env["SPARK_LOCAL_IP"] = os.environ["SPARK_LOCAL_IP"]
    elif master is not None and master.startswith("local"):
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


def log_task_failure(context: Mapping[str, Any]) -> str:
    """``on_failure_callback``: one line naming dag, task, ds, try and log URL; returns it."""
    ti = context.get("task_instance") or context.get("ti")
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", "?")
    try:
        log_url = getattr(ti, "log_url", None) or "?"
    except Exception:  # a URL is a convenience; never let it hide the failure line
        log_url = "?"
    ds = context.get("ds")
    if not ds:  # a manual run without a logical date: the date it ran for (see DS)
        run_after = getattr(context.get("dag_run"), "run_after", None)
        ds = run_after.strftime("%Y-%m-%d") if run_after else "?"
    message = (f"LIGER task failed: dag={dag_id} task={task_id} ds={ds} "
               f"try={getattr(ti, 'try_number', '?')} log={log_url}")
    error = context.get("exception")
    if error is not None:
        detail = " ".join(str(error).split())[:300]
        message += f" error={type(error).__name__}: {detail}" if detail else f" error={type(error).__name__}"
    log.error(message)
    return message


def default_args() -> dict[str, Any]:
    return {
        "owner": "liger",
        "depends_on_past": False,
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,  # Airflow 3: a multiplier (0 = constant delay)
        "max_retry_delay": timedelta(hours=1),
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": log_task_failure,
    }


def common_params(**extra: Param) -> dict[str, Param]:
    return {
        "profile": Param("cpu", type="string", minLength=1,
                         description="config profile: a name in configs/ (cpu, gpu) or a YAML path"),
        **extra,
    }


def liger_dag(dag_id: str, *, schedule: str, description: str, doc_md: str,
              params: Mapping[str, Param], dagrun_timeout: timedelta) -> DAG:
    return DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dagrun_timeout,
        default_args=default_args(),
        params=dict(params),
        tags=["liger"],
    )


def spark_stage(task_id: str, job: str, *, timeout: timedelta, args: Sequence[str] = (),
                **kwargs: Any) -> SparkSubmitOperator:
    """One ``jobs/<job>.py`` run for the DAG run's ``ds``; extra ``args`` follow the common ones."""
    return SparkSubmitOperator(
        task_id=task_id,
        application=str(JOBS_DIR / f"{job}.py"),
        conn_id=SPARK_CONN_ID,
        spark_binary=spark_submit_binary(),
        application_args=[*DS_ARGS, *args],
        env_vars=task_env(),
        name=f"{{{{ dag.dag_id }}}}.{task_id}",  # Spark application name
        execution_timeout=timeout,
        **kwargs,
    )


def override(key: str, template: str) -> list[str]:
    """``--set key=<template>`` as two application arguments."""
    return ["--set", f"{key}={template}"]
