"""Shared construction for the LIGER DAGs: orchestration only, no data logic.

Every stage is one Spark application, ``jobs/<stage>.py``, submitted by ``LigerStage`` (a
``SparkSubmitOperator``) with ``--ds {{ ds }} --profile {{ params.profile }} [--set k=v ...]``.
In ``liger run``'s ``airflow dags test`` on a local master, the job runs in the task's own
process instead, so a DAG's stages share one Spark session (``liger_jobs.in_process``).
Jobs write the partition of the run's logical date, so a rerun or backfill of the same run
replaces that partition instead of adding to it. The schedules are cron expressions, which
in Airflow 3 give a run the logical date of the moment it fires: ``ds`` names the snapshot.

Spark connection ``liger_spark`` and pool ``liger_warehouse``
    Both live in the metastore, created at setup (``liger_jobs.airflow_objects``: ``liger run``, the
    UI script, compose's ``airflow-init``), never as a side effect of parsing. A deployment may
    instead define ``AIRFLOW_CONN_LIGER_SPARK``. The connection alone decides the master and
    deploy mode: spark-submit passes them to the job, whose session builder then leaves them
    alone (``liger_jobs.spark``). Every task that writes the warehouse takes the pool's one slot, so
    the nightly and retrain DAGs never commit partitions at the same time.

Task environment, decided when the task runs (the connection is only known then)
    ``spark-submit`` is the one beside the Python running Airflow (the venv's, from the
    pyspark wheel); ``PYSPARK_PYTHON`` / ``PYSPARK_DRIVER_PYTHON`` are that Python unless
    already set; ``PYTHONPATH`` starts with the project root. For a local master
    ``SPARK_LOCAL_IP`` defaults to 127.0.0.1; for any other master it is left unset (the
    driver must advertise an address executors can reach) and the project's packages go to
    the executors as an ``--archives`` zip, so a cluster needs no shared image of the code.

Failures
    A job exits 2 for a config or data error, which no retry can fix: the task fails at
    once (``NO_RETRY_ON_INPUT_ERRORS``). Any other failure keeps its retries.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, BaseHook, Param
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.exceptions import AirflowException

from liger_jobs.airflow_objects import SPARK_CONN_ID, WAREHOUSE_POOL
from liger_jobs.in_process import in_process, job_argv, run_job
from liger_jobs.spark_env import driver_address_env

log = logging.getLogger("liger.airflow")

PROJECT_ROOT = Path(os.environ.get("LIGER_HOME") or Path(__file__).resolve().parents[1])
JOBS_DIR = PROJECT_ROOT / "jobs"
# What executors need of the project: package name -> its folder (jobs/ installs as liger_jobs).
CODE_PACKAGES = {"liger_jobs": "jobs", "liger_core": "liger_core"}
# Executors unpack the code archive under this name in their working directory and import
# from it. Not --py-files: that would also put the archive first on the driver's path, and
# the driver must import the installed tree (its configs/ and var/ sit beside it).
CODE_ALIAS = "liger_code"
EXIT_INPUT_ERROR = 2  # liger_jobs.common.stage_main: a config or data error

# Updated by liger_retrain's ``announce_promotion`` only when evaluate promoted a version
# (its extra names the version). Nightly reads the registry alias "champion" by name.
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


class StageInputError(AirflowException):
    """The job exited 2: its config or its input data is wrong, so retrying cannot pass."""


NO_RETRY_ON_INPUT_ERRORS = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=StageInputError,
            action=RetryAction.FAIL,
            reason="config or data error (exit 2): fix the input or the config, then clear the task",
        )
    ]
)


def connection_master(conn_type: str, host: str | None, port: int | None) -> str:
    """Master URL spark-submit gets from a connection (the provider's rule, 5.x)."""
    host = host or ""
    master = host if conn_type == "spark" and host and ("://" in host or not port) else f"{conn_type}://{host}"
    return f"{master}:{port}" if port else master


def code_archive(root: Path = PROJECT_ROOT) -> Path:
    """A zip of the project's packages for ``--archives``, laid out by package name and named
    by its content, so one build serves every task of the same code and a changed tree gets
    a new archive."""
    members = sorted(
        (Path(package, *path.relative_to(root / folder).parts).as_posix(), path)
        for package, folder in CODE_PACKAGES.items()
        for path in (root / folder).rglob("*.py")
    )
    digest = hashlib.sha256()
    for name, path in members:
        digest.update(name.encode() + b"\0" + path.read_bytes())
    archive = Path(tempfile.gettempdir()) / f"liger-code-{digest.hexdigest()[:16]}.zip"
    if not archive.exists():
        partial = archive.with_suffix(f".{os.getpid()}.part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
            for name, path in members:
                bundle.write(path, name)
        partial.replace(archive)  # atomic: a concurrent task never ships half a zip
    return archive


def executor_code_options() -> tuple[str, dict[str, str]]:
    """spark-submit's ``--archives`` value and the conf that puts the unpacked project code
    on the executors' Python path."""
    return f"{code_archive()}#{CODE_ALIAS}", {"spark.executorEnv.PYTHONPATH": CODE_ALIAS}


class LigerStage(SparkSubmitOperator):
    """spark-submit of one job, with what depends on the connection decided at run time, and
    exit 2 turned into ``StageInputError`` so the retry policy fails it at once. In the main
    job on a local master the job runs in the task's process instead (``liger_jobs.in_process``)."""

    def execute(self, context: Any) -> None:
        conn = BaseHook.get_connection(self._conn_id)
        master = connection_master(conn.conn_type, conn.host, conn.port)
        self.env_vars = {**(self.env_vars or {}), **driver_address_env(master, os.environ)}
        if in_process(master, os.environ):
            argv = job_argv(self.application_args or [], master, (self.conf or {})["spark.driver.memory"])
            if run_job(self.application, argv, self.env_vars) == EXIT_INPUT_ERROR:
                raise StageInputError(f"{self.task_id}: the job rejected its config or input (exit 2); see the error line above")
            return
        if not master.startswith("local") and not self._archives:
            self._archives, code_conf = executor_code_options()
            self.conf = {**(self.conf or {}), **code_conf}
        try:
            super().execute(context)
        except AirflowException as error:
            process = getattr(self._hook, "_submit_sp", None)
            if getattr(process, "returncode", None) == EXIT_INPUT_ERROR:
                raise StageInputError(
                    f"{self.task_id}: the job rejected its config or input (exit 2); see the task log above for the reason"
                ) from error
            raise


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
    if os.environ.get("SPARK_LOCAL_IP"):
        env["SPARK_LOCAL_IP"] = os.environ["SPARK_LOCAL_IP"]
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
    message = f"LIGER task failed: dag={dag_id} task={task_id} ds={ds} try={getattr(ti, 'try_number', '?')} log={log_url}"
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
        "retry_policy": NO_RETRY_ON_INPUT_ERRORS,
    }


def common_params(**extra: Param) -> dict[str, Param]:
    return {
        "profile": Param(
            "cpu", type="string", minLength=1, description="config profile: a name in configs/ (cpu, gpu) or a YAML path"
        ),
        "driver_memory": Param(
            "4g", type="string", pattern="^[0-9]+[kmgt]$", description="spark-submit --driver-memory of every stage"
        ),
        **extra,
    }


def liger_dag(
    dag_id: str, *, schedule: str, description: str, doc_md: str, params: Mapping[str, Param], dagrun_timeout: timedelta
) -> DAG:
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


def spark_stage(
    task_id: str, job: str, *, timeout: timedelta, args: Sequence[str] = (), writes_warehouse: bool = True, **kwargs: Any
) -> LigerStage:
    """One ``jobs/<job>.py`` run for the DAG run's ``ds``; extra ``args`` follow the common ones.
    A stage that writes warehouse tables takes the shared pool's slot."""
    return LigerStage(
        task_id=task_id,
        application=str(JOBS_DIR / f"{job}.py"),
        conn_id=SPARK_CONN_ID,
        spark_binary=spark_submit_binary(),
        application_args=[*DS_ARGS, *args],
        env_vars=task_env(),
        conf={"spark.driver.extraJavaOptions": "-Duser.timezone=UTC", "spark.driver.memory": "{{ params.driver_memory }}"},
        name=f"{{{{ dag.dag_id }}}}.{task_id}",  # Spark application name
        execution_timeout=timeout,
        **({"pool": WAREHOUSE_POOL} if writes_warehouse else {}),
        **kwargs,
    )


def override(key: str, template: str) -> list[str]:
    """``--set key=<template>`` as two application arguments."""
    return ["--set", f"{key}={template}"]
