from __future__ import annotations

from pathlib import Path

import pytest

from liger_jobs.spark import spark_session
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One MLflow SQLite store for the session: its schema migration takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(scope="session")
def spark(tmp_path_factory, tracking_uri):
    settings = make_settings(tmp_path_factory.mktemp("spark-home"), Path("unused"))
    session = spark_session(settings)
    yield session
    session.stop()


@pytest.fixture
def job_settings(tmp_path, tiny_source, tracking_uri):
    return make_settings(tmp_path / "home", tiny_source, f"tracking.uri={tracking_uri}")
