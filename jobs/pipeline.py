"""The main job: both Airflow DAGs once for one ds through ``airflow dags test``.

Embedded defaults: Airflow metadata in SQLite under the state folder (with the ``liger_spark``
connection and ``liger_warehouse`` pool created in it), Spark ``local[*]``,
MLflow in SQLite, a local warehouse. ``--set`` overrides reach every Spark task as
``LIGER__SECTION__KEY`` environment variables, so the DAG run uses the same configuration.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from liger_jobs import airflow_objects
from liger_jobs.in_process import IN_PROCESS_ENV, MAIN_JOB_DEFAULT
from liger_core.config import PROJECT_ROOT, Settings, env_name
from liger_core.errors import LigerError
from liger_core.data.ingest import ensure_source
from liger_core.platform.report import render_report, stage_runs
from liger_core.platform.tracking import PARENT_RUN_ENV, log_metrics, pipeline_run

DAGS = ("liger_retrain", "liger_nightly")


def airflow_env(settings: Settings, overrides: Sequence[str]) -> dict[str, str]:
    state = Path(settings.paths.state_dir)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(state / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "LIGER_PROFILE": settings.profile,
            "LIGER__PATHS__HOME": settings.paths.home,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    for item in overrides:
        key, value = item.split("=", 1)
        env[env_name(key)] = value
    return env


# The project's own log lines inside Airflow's output (stage start/end and progress): relayed
# from a spark-submit's output, or logged in the task's process through Airflow's formatter.
SUBMITTED_LINE = re.compile(r"\b(?:INFO|WARNING|ERROR) liger(?:\.\w+)*: (.*?)(?: \[airflow\.[^\]]*\].*)?$")
IN_PROCESS_LINE = re.compile(r"\[(?:info|warning|error) *\] (.*?) +\[liger(?:\.\w+)*\] loc=")
ECHO_CHARS = 160


def own_message(line: str) -> str | None:
    """The message of one of the project's log lines, else None."""
    found = SUBMITTED_LINE.search(line) or IN_PROCESS_LINE.search(line)
    return found.group(1) if found else None


def _airflow(args: list[str], env: dict[str, str], log_path: Path, echo: bool = False) -> None:
    """Run an Airflow command into ``log_path``; with ``echo``, the project's own log lines
    (each stage's start, end and duration, and progress) also stream to the terminal."""
    binary = str(Path(sys.executable).with_name("airflow"))
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [binary, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as done,
    ):
        for line in done.stdout:
            log.write(line)
            own = own_message(line) if echo else None
            if own:
                message = own.split(": {", 1)[0]  # a stage's stats stay in the log
                print(f"  {message[:ECHO_CHARS]}{' ...' if len(message) > ECHO_CHARS else ''}", flush=True)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise LigerError(f"`airflow {' '.join(args)}` failed (exit {done.returncode}); full log: {log_path}\n" + "\n".join(tail))


def dag_done_line(dag: str, seconds: float) -> str:
    """What ``liger run`` prints when a DAG succeeds (``bench-stages --main-job`` reads it)."""
    return f"{dag} succeeded in {seconds:.0f} s"


def run_pipeline(settings: Settings, ds: str, overrides: Sequence[str]) -> str:
    """Migrate the Airflow DB, run retrain then nightly for ``ds``; returns the report."""
    print(f"input: {ensure_source(settings.source, settings.paths)}", flush=True)
    env = airflow_env(settings, overrides)
    env.setdefault(IN_PROCESS_ENV, MAIN_JOB_DEFAULT)  # `dags test` runs every task in one process: one Spark session per DAG
    logs = Path(settings.paths.state_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    since_ms = int(time.time() * 1000)
    _airflow(["db", "migrate"], env, logs / "airflow-db-migrate.log")
    airflow_objects.ensure(airflow_objects.airflow_runner(env))  # the Spark connection and the pool
    with pipeline_run(settings, ds) as parent_run_id:
        env[PARENT_RUN_ENV] = parent_run_id  # every stage run nests under this one
        for dag in DAGS:
            started = time.perf_counter()
            print(f"running {dag} for ds={ds} (log: {logs / f'{dag}-{ds}.log'}) ...", flush=True)
            _airflow(
                ["dags", "test", dag, ds, "--conf", json.dumps({"profile": settings.profile})],
                env,
                logs / f"{dag}-{ds}.log",
                echo=True,
            )
            seconds = time.perf_counter() - started
            log_metrics({f"{dag}_seconds": seconds})
            print(dag_done_line(dag, seconds), flush=True)
    return render_report(settings, ds, stage_runs(settings, ds, since_ms), settings.evaluate.beam_sweep)
