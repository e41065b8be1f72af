"""The DAGs' in-process checks and the Airflow objects created at setup (no Airflow needed)."""

from __future__ import annotations

import json
import subprocess

from liger_jobs import airflow_objects, preflight


def test_nightly_without_champions_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGER__PATHS__HOME", str(tmp_path))
    monkeypatch.setenv("LIGER__TRACKING__URI", f"sqlite:///{tmp_path}/m.db")
    versions, reason = preflight.serving_models("cpu", "champion")
    assert versions is None
    assert reason.startswith("no 'champion' version of rqvae or recommender in the MLflow registry")
    assert "run `airflow dags trigger liger_retrain` (or `liger run`)" in reason
    assert preflight.promoted_version("cpu", "liger_retrain", "manual__x") is None  # no evaluate run


def test_setup_creates_the_connection_once_and_always_sets_the_pool():
    calls = []
    existing = set()

    def airflow(args):
        calls.append(args)
        if args[:2] == ["connections", "get"]:
            return subprocess.CompletedProcess(args, 0 if args[2] in existing else 1, "", "not found")
        if args[:2] == ["connections", "add"]:
            existing.add(args[2])
        return subprocess.CompletedProcess(args, 0, "", "")

    assert airflow_objects.ensure(airflow) == ["connection liger_spark"]
    add = next(c for c in calls if c[:2] == ["connections", "add"])
    assert json.loads(add[add.index("--conn-json") + 1]) == airflow_objects.LOCAL_SPARK_CONN
    assert ["pools", "set", "liger_warehouse", "1"] == calls[-1][:4]
    calls.clear()
    assert airflow_objects.ensure(airflow) == []  # an existing connection is kept
    assert [c[:2] for c in calls] == [["connections", "get"], ["pools", "set"]]
