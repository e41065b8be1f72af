"""The main job end to end on the tiny catalog, as a user would call it:
`liger run` runs the retrain and nightly DAGs through `airflow dags test`."""

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from liger_jobs.in_process import IN_PROCESS_ENV
from liger_jobs.pipeline import airflow_env
from tests.conftest import SMALL_RQVAE, TINY_MODEL, make_settings

NIGHTLY_TABLES = ("items", "interactions", "item_embeddings", "semantic_ids", "user_sequences", "recommendations")

pytestmark = pytest.mark.e2e
DS = "2026-02-01"


def snapshot(warehouse: Path) -> dict[str, pd.DataFrame]:
    """Every nightly table for DS, in a canonical row order, without the wall-clock column."""
    tables = {}
    for name in NIGHTLY_TABLES:
        # semantic_ids holds one folder per RQ-VAE version; the files carry the version column
        frame = pd.read_parquet(warehouse / name / f"ds={DS}", partitioning=None)
        frame = frame.drop(columns=["generated_at"], errors="ignore")
        for column in frame.columns:  # list columns (codes, embedding, items, ts) compare as tuples
            if (
                frame[column].dtype == object
                and len(frame)
                and hasattr(frame[column].iloc[0], "__len__")
                and not isinstance(frame[column].iloc[0], str)
            ):
                frame[column] = frame[column].map(tuple)
        key = [c for c in ("user_id", "rank", "item_idx", "event_seq") if c in frame.columns]
        tables[name] = frame.sort_values(key, ignore_index=True)
    return tables


def test_main_job_runs_both_dags_and_reports(tmp_path, trainable_source):
    home = tmp_path / "home"
    overrides = [
        f"paths.home={home}",
        f"source.path={trainable_source}",
        "source.format=tabular",
        "source.events_file=events.tsv",
        "source.items_file=items.tsv",
        "source.item_columns={}",
        *SMALL_RQVAE,
        *TINY_MODEL,
    ]
    args = [sys.executable, "-m", "liger_jobs.cli", "run", "--ds", DS]
    for override in overrides:
        args += ["--set", override]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "liger_retrain succeeded" in out and "liger_nightly succeeded" in out
    # each task's start and end stream to the terminal while the DAG runs
    streamed = out[out.index("running liger_retrain") : out.index("liger_retrain succeeded")]
    assert f"  ingest started for ds={DS}" in streamed and re.search(r"  train done in \d+ s", streamed)
    for stage in (
        "ingest",
        "embed_items",
        "rqvae_train",
        "build_sequences",
        "train",
        "evaluate",
        "semantic_ids_assign",
        "recommend",
        "publish",
    ):
        assert f"  {stage} " in out, stage
    # the evaluation table, with the training-free baselines beside the model
    assert re.search(r"cold-start\s+hybrid\s", out) and re.search(r"in-set\s+transition3\s", out)
    assert "Example query (sql/queries/source_mix.sql, DuckDB)" in out
    # the report points at every stage's run page and at the plots
    assert "Where to look:" in out and "/#/experiments/" in out
    assert f"Great Expectations Data Docs: {home}/var/gx/uncommitted/data_docs/local_site/index.html" in out
    assert {p for p in ("training_curve.png", "hybrid_vs_K.png", "code_usage.png") if f"/plots/{p}" in out} == {
        "training_curve.png",
        "hybrid_vs_K.png",
        "code_usage.png",
    }
    print(out)  # the report, for the CI log

    warehouse = home / "var" / "warehouse"
    recs = pd.read_parquet(warehouse / "recommendations" / f"ds={DS}")
    # u1 has already seen the whole catalog, so (history excluded) nothing is left for u1.
    assert set(recs["user_id"]) == {"u2", "u3", "u4"}
    assert (recs.groupby("user_id")["rank"].max() <= 2).all()
    _assert_retrain_metadata(home / "var" / "airflow" / "airflow.db")

    # Idempotency: the nightly DAG run again for the same date leaves identical tables, and
    # it runs its stages the other way (spark-submit per task, where `liger run` ran them in
    # the dags test process), so both launches must write the same rows.
    before = snapshot(warehouse)
    env = airflow_env(make_settings(home, trainable_source, *SMALL_RQVAE, *TINY_MODEL), overrides)
    env[IN_PROCESS_ENV] = "0"
    airflow = str(Path(sys.executable).with_name("airflow"))
    again = subprocess.run([airflow, "dags", "test", "liger_nightly", DS], env=env, capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0, again.stdout[-3000:]
    submitted = "Spark-Submit cmd"  # the provider's log line for each spark-submit
    assert (
        submitted not in (home / "var" / "logs" / f"liger_nightly-{DS}.log").read_text()
        and submitted in again.stdout + again.stderr
    )
    after = snapshot(warehouse)
    for name in NIGHTLY_TABLES:
        pd.testing.assert_frame_equal(before[name], after[name], check_exact=False, rtol=1e-6, obj=name)


def _assert_retrain_metadata(airflow_db: Path) -> None:
    """What the retrain left in Airflow's metastore: task states, pools, the promotion's asset
    event. (test_scheduler runs the same metadata schema on PostgreSQL.)"""
    with sqlite3.connect(airflow_db) as conn:
        runs = conn.execute("SELECT state FROM dag_run WHERE dag_id = 'liger_retrain'").fetchall()
        tasks = conn.execute("SELECT task_id, state, pool FROM task_instance WHERE dag_id = 'liger_retrain'").fetchall()
        pools = conn.execute("SELECT pool, slots FROM slot_pool WHERE pool = 'liger_warehouse'").fetchall()
        events = conn.execute("SELECT extra FROM asset_event").fetchall()
    assert runs == [("success",)]
    writers = {"ingest", "embed_items", "semantic_ids", "build_sequences"}
    assert sorted(tasks) == sorted(
        (task, "success", "liger_warehouse" if task in writers else "default_pool")
        for task in ("ingest", "embed_items", "semantic_ids", "build_sequences", "train", "evaluate", "announce_promotion")
    )
    assert pools == [("liger_warehouse", 1)]
    # the first version is promoted (no champion yet, floor off for tiny data): one event, naming it
    assert [json.loads(extra) for (extra,) in events] == [{"version": "1"}]


def test_liger_reports_bad_config_in_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "liger_jobs.cli", "ingest", "--set", "source.nope=1"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: invalid configuration (cpu.yaml): source.nope: unknown key"
