"""A real scheduler: ``airflow scheduler``, ``dag-processor`` and ``api-server`` as processes,
PostgreSQL metadata and the LocalExecutor, ``liger_nightly`` triggered for one ds through
``airflow dags trigger`` on the tiny catalog, waited for within a bound, its task states
read from the metastore, every process stopped afterwards. The champion models come from
in-process stages first (``served``: nightly only serves). The wall time is printed for the notes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from liger_jobs import airflow_objects
from liger_jobs.pipeline import airflow_env
from liger_jobs.spark import spark_session
from tests.e2e.test_spark_cluster import free_port

pytestmark = pytest.mark.e2e
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
TONIGHT = "2026-02-03"  # not the cluster test's ds: both write into the shared served home
NIGHTLY_TASKS = ("champion_ready", "ingest", "embed_items", "semantic_ids", "build_sequences", "recommend", "publish")
BOUND_SECONDS = 900


def _scheduler_env(settings, overrides: list[str], metadata_db: str) -> dict[str, str]:
    port = free_port()
    return {
        **airflow_env(settings, overrides),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db.replace("postgresql://", "postgresql+psycopg://"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the triggered run, no cron runs
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),  # shared by the three processes
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def _cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _wait(condition, what: str, logs: Path, deadline: float) -> None:
    while not condition():
        if time.monotonic() > deadline:
            tails = {p.name: p.read_text(errors="replace")[-1500:] for p in logs.glob("*.log")}
            pytest.fail(f"timed out waiting for {what}: {tails}")
        time.sleep(2)


def test_scheduler_runs_a_triggered_nightly(tmp_path, served, metadata_db):
    settings = served.settings
    env = _scheduler_env(settings, served.overrides, metadata_db)
    _cli(["db", "migrate"], env)
    assert airflow_objects.ensure(airflow_objects.airflow_runner(env)) == ["connection liger_spark"]
    logs = tmp_path / "airflow-logs"
    logs.mkdir()
    processes = [
        subprocess.Popen(
            [AIRFLOW, *command],
            env=env,
            stdout=(logs / f"{command[0]}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for command in (["api-server", "--port", env["AIRFLOW__API__PORT"], "--workers", "1"], ["dag-processor"], ["scheduler"])
    ]
    db = psycopg.connect(metadata_db, autocommit=True)
    started = time.monotonic()
    try:
        deadline = started + BOUND_SECONDS
        _wait(
            lambda: db.execute("SELECT 1 FROM dag WHERE dag_id = 'liger_nightly'").fetchone(),
            "the dag-processor to parse liger_nightly",
            logs,
            deadline,
        )
        _cli(["dags", "unpause", "liger_nightly"], env)
        _cli(
            ["dags", "trigger", "liger_nightly", "--logical-date", f"{TONIGHT}T00:00:00+00:00", "--run-id", "scheduler_test"], env
        )

        def finished() -> bool:
            state = db.execute("SELECT state FROM dag_run WHERE run_id = 'scheduler_test'").fetchone()[0]
            return state in ("success", "failed")

        _wait(finished, "liger_nightly to finish", logs, deadline)
        seconds = time.monotonic() - started
        tasks = dict(db.execute("SELECT task_id, state FROM task_instance WHERE run_id = 'scheduler_test'").fetchall())
        pooled = db.execute(
            "SELECT count(*) FROM task_instance WHERE run_id = 'scheduler_test' AND pool = 'liger_warehouse'"
        ).fetchone()[0]
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        db.close()
    print(f"scheduler-triggered liger_nightly: {seconds:.0f} s from process start to success")
    assert tasks == {task: "success" for task in NIGHTLY_TASKS}, tasks
    assert pooled == 5  # every warehouse writer took the shared pool
    assert all(process.returncode is not None for process in processes)  # nothing left running
    rows = spark_session(settings).read.parquet(f"{settings.paths.warehouse_uri}/recommendations/ds={TONIGHT}")
    # u1 has seen every in-set item and history is excluded: only the others get rows
    assert {r.user_id for r in rows.collect()} == {"u2", "u3", "u4"}
    assert {r.model_version for r in rows.collect()} == {served.champion}
