"""Production shape: the same DAGs with Airflow's metadata on PostgreSQL, by configuration only."""

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from jobs import airflow_objects
from jobs.pipeline import airflow_env
from tests.conftest import SMALL_RQVAE, TINY_MODEL, make_settings

pytestmark = pytest.mark.e2e


def test_retrain_dag_runs_with_postgres_metadata(tmp_path, trainable_source, metadata_db):
    overrides = [f"source.path={trainable_source}", "source.format=tabular", "source.events_file=events.tsv",
                 "source.items_file=items.tsv", "source.item_columns={}", *SMALL_RQVAE, *TINY_MODEL]
    settings = make_settings(tmp_path / "home", trainable_source, *SMALL_RQVAE, *TINY_MODEL)
    env = airflow_env(settings, overrides)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_db.replace("postgresql://", "postgresql+psycopg://")
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    run = airflow_objects.airflow_runner(env)
    assert airflow_objects.ensure(run) == ["connection liger_spark"]
    assert airflow_objects.ensure(run) == []  # idempotent: the second setup creates nothing
    done = subprocess.run([airflow, "dags", "test", "liger_retrain", "2026-03-01"], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with psycopg.connect(metadata_db) as conn:
        runs = conn.execute("SELECT state FROM dag_run WHERE dag_id = 'liger_retrain'").fetchall()
        tasks = conn.execute("SELECT task_id, state, pool FROM task_instance WHERE dag_id = 'liger_retrain'").fetchall()
        pools = conn.execute("SELECT pool, slots FROM slot_pool WHERE pool = 'liger_warehouse'").fetchall()
        events = conn.execute("SELECT extra FROM asset_event").fetchall()
    assert runs == [("success",)]
    writers = {"ingest", "embed_items", "semantic_ids", "build_sequences"}
    assert sorted(tasks) == sorted((task, "success", "liger_warehouse" if task in writers else "default_pool")
                                   for task in ("ingest", "embed_items", "semantic_ids", "build_sequences",
                                                "train", "evaluate", "announce_promotion"))
    assert pools == [("liger_warehouse", 1)]
    # the first version is promoted (no champion yet, floor off for tiny data): one event, naming it
    assert [extra for (extra,) in events] == [{"version": "1"}]
