"""A stage's job run inside the Airflow task's own process, on a local master.

``liger run`` (the main job) runs each DAG with ``airflow dags test``, which executes every
task in that one process. A ``spark-submit`` per task there starts a JVM, a Python driver
that imports torch, MLflow and GX again, and a Spark context: about ten seconds a task,
before and after the stage's own work. With ``LIGER_SPARK_IN_PROCESS=1`` (what ``liger run``
sets) and a local master, ``LigerStage`` calls the job's ``main`` in the task's process
instead, and ``spark_session`` returns the session an earlier task made: a DAG's stages
share one JVM, its Python workers and the libraries already loaded. Under a scheduler every
task is a process of its own, so nothing would be shared; it stays off there, and a
cluster connection always goes through ``spark-submit``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Mapping, Sequence

from liger_jobs.common import setup_logging

IN_PROCESS_ENV = "LIGER_SPARK_IN_PROCESS"
MAIN_JOB_DEFAULT = "1"  # what ``liger run`` sets when the environment does not say


def main_job_in_process(environ: Mapping[str, str]) -> bool:
    """Whether ``liger run`` under ``environ`` runs its stages in process."""
    return environ.get(IN_PROCESS_ENV, MAIN_JOB_DEFAULT) == "1"


def in_process(master: str, environ: Mapping[str, str]) -> bool:
    """Whether a stage on ``master`` runs in the task's process."""
    return master.startswith("local") and environ.get(IN_PROCESS_ENV) == "1"


def job_argv(args: Sequence[str], master: str, driver_memory: str) -> list[str]:
    """The job's arguments, plus the master and driver memory that ``spark-submit`` would have
    been given (``--set`` outranks the profile and the environment)."""
    return [*args, "--set", f"spark.master={master}", "--set", f"spark.driver_memory={driver_memory}"]


def run_job(application: str, args: Sequence[str], env: Mapping[str, str]) -> int:
    """``main(args)`` of the job ``application`` (``jobs/<stage>.py``) in this process, with
    ``env`` added to its environment as ``spark-submit``'s would be (the Python workers
    Spark starts inherit it); its exit status: 0, or 2 for a config or data error, including
    arguments argparse rejects (its ``SystemExit`` must not end the Airflow process)."""
    os.environ.update(env)
    setup_logging()  # before the import: GX logs at INFO while it loads
    job = importlib.import_module(f"liger_jobs.{Path(application).stem}")
    try:
        return job.main(list(args))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
