"""The Spark SQL views in sql/spark/ and the example queries, run unchanged on Spark.

The same tiny warehouse as the DuckDB tests; every example query must give DuckDB's answer.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from liger_jobs import publish
from liger_core.platform.sql_catalog import TABLES, query, register_duckdb_views, view_ddl
from tests.conftest import make_settings
from tests.unit.test_sql_queries import CODES, DS, RECS, items_table, recommendations_table, semantic_ids_table, write_partition

pytestmark = pytest.mark.spark
QUERIES = {"user_top_k": {"user_id": "u2"}, "source_mix": {}, "cold_start_coverage": {}, "semantic_id_collisions": {}}


def rounded(rows) -> list[tuple]:
    """Rows as plain tuples, floats rounded: the engines may differ in the last bits."""
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    root = tmp_path / "home" / "var" / "warehouse"
    write_partition(root, "items", DS, items_table())
    write_partition(root, "semantic_ids", DS, semantic_ids_table(CODES))
    write_partition(root, "recommendations", DS, recommendations_table(RECS))
    return root


def test_queries_give_the_same_answers_on_spark_and_duckdb(spark, warehouse: Path) -> None:
    for table in TABLES:
        spark.sql(view_ddl("spark", table, f"file:{warehouse}", DS))
    assert spark.table("recommendations").select("ds").distinct().collect()[0].ds == date(2026, 11, 23)
    with duckdb.connect() as con:
        register_duckdb_views(con, str(warehouse), DS)
        for name, params in QUERIES.items():
            expected = rounded(con.execute(query(name, **params)).fetchall())
            got = rounded(spark.sql(query(name, dialect="spark", **params)).collect())
            assert got == expected, name


def test_publish_through_spark(spark, warehouse: Path) -> None:
    settings = make_settings(warehouse.parents[1], Path("unused"))
    stats = publish._publish_spark(settings, DS, None, spark)
    assert stats == {
        "views": list(TABLES),
        "rows": 9,
        "rows_cold_start": 3,
        "share_cold_start": pytest.approx(1 / 3),
        "rows_generative": 6,
        "share_generative": pytest.approx(2 / 3),
    }
