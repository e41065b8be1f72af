"""Production shape: the same DAGs with Airflow's metadata on PostgreSQL, by configuration only."""

import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from jobs.pipeline import airflow_env
from tests.conftest import SMALL_RQVAE, TINY_MODEL, make_settings

pytestmark = pytest.mark.e2e
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def metadata_db():
    """A throwaway database on the local PostgreSQL server."""
    name = f"liger_airflow_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_retrain_dag_runs_with_postgres_metadata(tmp_path, trainable_source, metadata_db):
    overrides = [f"source.path={trainable_source}", "source.format=tabular", "source.events_file=events.tsv",
                 "source.items_file=items.tsv", "source.item_columns={}", *SMALL_RQVAE, *TINY_MODEL]
    settings = make_settings(tmp_path / "home", trainable_source, *SMALL_RQVAE, *TINY_MODEL)
    env = airflow_env(settings, overrides)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_db.replace("postgresql://", "postgresql+psycopg://")
    airflow = str(Path(sys.executable).with_name("airflow"))
    for args in (["db", "migrate"], ["dags", "test", "liger_retrain", "2026-03-01"]):
        done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with psycopg.connect(metadata_db) as conn:
        runs = conn.execute("SELECT state FROM dag_run WHERE dag_id = 'liger_retrain'").fetchall()
        tasks = conn.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'liger_retrain'").fetchall()
    assert runs == [("success",)]
    assert sorted(tasks) == sorted((task, "success") for task in
                                   ("ingest", "embed_items", "semantic_ids", "build_sequences", "train", "evaluate"))
