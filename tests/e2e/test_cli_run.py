"""The `liger run` command end to end on the tiny catalog, as a user would call it."""

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import SMALL_RQVAE

pytestmark = pytest.mark.e2e


def test_liger_run_writes_every_table_and_reports(tmp_path, tiny_source):
    home = tmp_path / "home"
    args = [sys.executable, "-m", "jobs.cli", "run", "--ds", "2026-02-01",
            "--set", f"paths.home={home}", "--set", f"source.path={tiny_source}",
            "--set", "source.format=tabular", "--set", "source.events_file=events.tsv",
            "--set", "source.items_file=items.tsv", "--set", "source.item_columns={}",
            "--set", "spark.master=local[2]", "--set", "spark.driver_memory=1g"]
    for override in SMALL_RQVAE:
        args += ["--set", override]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LIGER pipeline, ds=2026-02-01, profile=cpu" in done.stdout
    assert "items=5" in done.stdout and "embedded=5" in done.stdout

    warehouse = home / "var" / "warehouse"
    items = pd.read_parquet(warehouse / "items" / "ds=2026-02-01")
    embeddings = pd.read_parquet(warehouse / "item_embeddings" / "ds=2026-02-01")
    assert len(items) == 5 and sorted(embeddings["item_idx"]) == sorted(items["item_idx"])
    ids = pd.read_parquet(warehouse / "semantic_ids" / "ds=2026-02-01")
    assert ids["codes"].map(tuple).nunique() == 5
    sequences = pd.read_parquet(warehouse / "user_sequences" / "ds=2026-02-01")
    assert sorted(sequences["user_id"]) == ["u1", "u2", "u3"]
    assert (home / "var" / "mlflow.db").is_file()


def test_liger_reports_bad_config_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "ingest", "--set", "source.nope=1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: invalid configuration (cpu.yaml): source.nope: unknown key"
