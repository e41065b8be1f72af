"""The main job end to end on the tiny catalog, as a user would call it:
`liger run` runs the retrain and nightly DAGs through `airflow dags test`."""

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import SMALL_RQVAE, TINY_MODEL

pytestmark = pytest.mark.e2e
DS = "2026-02-01"


def test_main_job_runs_both_dags_and_reports(tmp_path, trainable_source):
    home = tmp_path / "home"
    args = [sys.executable, "-m", "jobs.cli", "run", "--ds", DS,
            "--set", f"paths.home={home}", "--set", f"source.path={trainable_source}",
            "--set", "source.format=tabular", "--set", "source.events_file=events.tsv",
            "--set", "source.items_file=items.tsv", "--set", "source.item_columns={}"]
    for override in (*SMALL_RQVAE, *TINY_MODEL):
        args += ["--set", override]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "liger_retrain succeeded" in out and "liger_nightly succeeded" in out
    for stage in ("ingest", "embed_items", "rqvae_train", "build_sequences", "train", "evaluate",
                  "semantic_ids_assign", "recommend", "publish"):
        assert f"  {stage} " in out, stage
    assert "cold-start     hybrid" in out  # the evaluation table
    assert "Example query (sql/queries/source_mix.sql, DuckDB)" in out
    print(out)  # the report, for the CI log

    warehouse = home / "var" / "warehouse"
    recs = pd.read_parquet(warehouse / "recommendations" / f"ds={DS}")
    # u1 has already seen the whole catalog, so (history excluded) nothing is left for u1.
    assert set(recs["user_id"]) == {"u2", "u3", "u4"}
    assert (recs.groupby("user_id")["rank"].max() <= 2).all()
    assert (home / "var" / "airflow" / "airflow.db").is_file()


def test_liger_reports_bad_config_in_one_line():
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "ingest", "--set", "source.nope=1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: invalid configuration (cpu.yaml): source.nope: unknown key"
