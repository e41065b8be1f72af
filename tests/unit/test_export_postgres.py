"""Export of recommendations to PostgreSQL, and the publish stage that drives it.

Runs against the local server (127.0.0.1:5432, database ``test``) in a schema of its own,
dropped afterwards, so concurrent runs do not collide; skipped when no server answers.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg.conninfo import make_conninfo

from liger_jobs import publish
from liger_core.config import load_settings
from liger_core.errors import DataError
from liger_core.platform.export_postgres import ExportError, export_partition, export_table

PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test"}
DS1, DS2 = "2026-11-23", "2026-11-24"
AT = datetime(2026, 11, 23, 2, 30, 15, 123456, tzinfo=timezone.utc)


def recommendations(users: list[str], k: int, version: str = "7", cold_every: int = 0) -> pa.Table:
    rows = [(u, r) for u in users for r in range(1, k + 1)]
    return pa.table(
        {
            "user_id": [u for u, _ in rows],
            "rank": pa.array([r for _, r in rows], pa.int32()),
            "item_id": [f"I{r}" for _, r in rows],
            "item_idx": pa.array([r for _, r in rows], pa.int64()),
            "score": [1.0 / r for _, r in rows],
            "source": ["cold_start" if cold_every and r % cold_every == 0 else "generative" for _, r in rows],
            "shared_prefix": pa.array([r % 4 for _, r in rows], pa.int32()),
            "model_name": ["recommender"] * len(rows),
            "model_version": [version] * len(rows),
            "generated_at": pa.array([AT] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )


def write_partition(root: Path, ds: str, table: pa.Table) -> Path:
    folder = root / "recommendations" / f"ds={ds}"
    folder.mkdir(parents=True)
    half = table.num_rows // 2  # two files, as Spark writes them
    pq.write_table(table.slice(0, half), folder / "part-00000.snappy.parquet")
    pq.write_table(table.slice(half), folder / "part-00001.snappy.parquet")
    (folder / "_SUCCESS").write_text("")
    return folder


@pytest.fixture(scope="module")
def server_dsn() -> str:
    errors = []
    for user in ("postgres", "root"):
        dsn = make_conninfo(**PG, user=user, connect_timeout=3)
        try:
            psycopg.connect(dsn).close()
            return dsn
        except psycopg.Error as exc:
            errors.append(f"{user}: {str(exc).strip().splitlines()[0]}")
    pytest.skip(f"no PostgreSQL at {PG['host']}:{PG['port']}/{PG['dbname']}: {'; '.join(errors)}")


@pytest.fixture
def dsn(server_dsn: str):
    """A DSN whose search_path is a fresh schema, so the table is private to this test."""
    schema = f"liger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield make_conninfo(server_dsn, options=f"-csearch_path={schema}")
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def fetch(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def test_export_writes_the_partition(dsn: str, tmp_path: Path) -> None:
    folder = write_partition(tmp_path, DS1, recommendations(["u1", "o'brien"], 3, cold_every=3))
    assert export_partition(dsn, folder, DS1) == 6
    got = fetch(dsn, "SELECT * FROM liger_recommendations ORDER BY user_id DESC, rank")
    assert got[:3] == [
        (date(2026, 11, 23), "u1", 1, "I1", 1, 1.0, "generative", 1, "recommender", "7", AT),
        (date(2026, 11, 23), "u1", 2, "I2", 2, 0.5, "generative", 2, "recommender", "7", AT),
        (date(2026, 11, 23), "u1", 3, "I3", 3, 1 / 3, "cold_start", 3, "recommender", "7", AT),
    ]
    assert [row[1] for row in got[3:]] == ["o'brien"] * 3


def test_rerun_replaces_the_ds_and_keeps_other_ds(dsn: str, tmp_path: Path) -> None:
    export_partition(dsn, write_partition(tmp_path / "a", DS1, recommendations(["u1", "u2"], 5)), DS1)
    export_partition(dsn, write_partition(tmp_path / "a", DS2, recommendations(["u9"], 2)), DS2)
    rerun = write_partition(tmp_path / "b", DS1, recommendations(["u1", "u3"], 4, version="8"))
    assert export_partition(dsn, rerun, DS1) == 8
    assert export_partition(dsn, rerun, DS1) == 8  # idempotent
    per_ds = fetch(
        dsn,
        "SELECT ds, COUNT(*), COUNT(DISTINCT (user_id, rank)), MIN(model_version)"
        " FROM liger_recommendations GROUP BY ds ORDER BY ds",
    )
    assert per_ds == [(date(2026, 11, 23), 8, 8, "8"), (date(2026, 11, 24), 2, 2, "7")]
    assert fetch(dsn, f"SELECT DISTINCT user_id FROM liger_recommendations WHERE ds = '{DS1}' ORDER BY 1") == [("u1",), ("u3",)]


def test_failed_export_changes_nothing(dsn: str, tmp_path: Path) -> None:
    export_table(dsn, recommendations(["u1"], 2), DS1)
    bad = recommendations(["u2"], 2).set_column(0, "user_id", pa.array(["u2", None]))
    with pytest.raises(ExportError, match="nothing was changed"):
        export_table(dsn, bad, DS1)
    assert fetch(dsn, "SELECT user_id, rank FROM liger_recommendations ORDER BY rank") == [("u1", 1), ("u1", 2)]


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    folder = write_partition(tmp_path, DS1, recommendations(["u1"], 1))
    dsn = make_conninfo(host="127.0.0.1", port=1, dbname="test", user="postgres", password="secret")
    with pytest.raises(ExportError, match="cannot connect to PostgreSQL at 127.0.0.1:1/test") as info:
        export_partition(dsn, folder, DS1)
    assert "secret" not in str(info.value)


def test_missing_partition_and_bad_shape_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no recommendations partition"):
        export_partition("host=127.0.0.1 port=1", tmp_path / "recommendations" / f"ds={DS1}", DS1)
    no_prefix = recommendations(["u1"], 1).drop_columns("shared_prefix")
    with pytest.raises(DataError, match=r"lack column\(s\) \['shared_prefix'\]"):
        export_table("host=127.0.0.1 port=1", no_prefix, DS1)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """One MLflow store for the module: creating its schema takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def publish_settings(home: Path, tracking_uri: str, *extra: str):
    return load_settings("cpu", [f"paths.home={home}", f"tracking.uri={tracking_uri}", *extra], environ={})


def test_publish_smoke_checks_then_exports(dsn: str, tmp_path: Path, tracking_uri: str) -> None:
    write_partition(tmp_path / "var" / "warehouse", DS1, recommendations(["u1", "u2"], 4, cold_every=4))
    stats = publish.run(publish_settings(tmp_path, tracking_uri, f"publish.postgres_dsn={dsn}"), DS1)
    assert stats == {
        "views": ["recommendations"],
        "rows": 8,
        "rows_cold_start": 2,
        "share_cold_start": 0.25,
        "rows_generative": 6,
        "share_generative": 0.75,
        "exported_rows": 8,
    }
    assert fetch(dsn, "SELECT COUNT(*) FROM liger_recommendations") == [(8,)]


def test_publish_without_dsn_only_checks(tmp_path: Path, tracking_uri: str) -> None:
    settings = publish_settings(tmp_path, tracking_uri)
    with pytest.raises(DataError, match="no recommendations partition for ds=2026-11-23"):
        publish.run(settings, DS1)
    write_partition(tmp_path / "var" / "warehouse", DS1, recommendations(["u1"], 2))
    stats = publish.run(settings, DS1)
    assert (stats["rows"], stats["rows_generative"], "exported_rows" in stats) == (2, 2, False)
