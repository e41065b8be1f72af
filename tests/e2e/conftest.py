"""Shared by the end-to-end tests: a throwaway Airflow metadata database on the local
PostgreSQL, and one trained champion on the tiny catalog for the tests that only serve."""

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from liger_jobs import build_sequences, embed_items, evaluate, ingest, semantic_ids, train
from liger_jobs.spark import spark_session
from liger_core.config import Settings
from liger_core.platform.model_registry import CHAMPION, RECOMMENDER_MODEL, resolve_version
from tests.conftest import SMALL_RQVAE, TINY_MODEL, make_settings, settings_overrides, write_trainable_source

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


@dataclass(frozen=True)
class Served:
    """A home whose registry holds champion models trained for ``trained_ds``."""

    settings: Settings
    overrides: list[str]  # the same settings as --set overrides, for spark-submit / Airflow
    champion: str
    trained_ds: str = "2026-02-01"


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Served:
    """One retrain's worth of stages, in-process on local Spark, shared by the serving tests
    (each writes its own nightly ds into this home)."""
    home, source = tmp_path_factory.mktemp("served-home"), write_trainable_source(tmp_path_factory.mktemp("src"))
    extra = [*SMALL_RQVAE, *TINY_MODEL]
    settings = make_settings(home, source, *extra)
    spark = spark_session(settings)
    for stage in (ingest.run, embed_items.run, semantic_ids.run_train, build_sequences.run, train.run, evaluate.run):
        stage(settings, Served.trained_ds, spark)
    return Served(settings, settings_overrides(home, source, *extra), resolve_version(RECOMMENDER_MODEL, CHAMPION))
