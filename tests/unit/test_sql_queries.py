"""The DuckDB views and example queries in sql/, on a tiny warehouse written with pyarrow."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liger_core.platform import sql_catalog
from liger_core.platform.sql_catalog import SqlError, query, register_duckdb_views, render

DS = "2026-11-23"
TITLES = {
    "A1": "Red Nail Polish",
    "A2": "Blue Nail Polish",
    "A3": "Face Cream",
    "A4": "Hair Spray Extra Hold",
    "A5": "Mascara Black",
}
ITEM_IDX = {item_id: idx for idx, item_id in enumerate(TITLES)}
# A1 and A2 share the prefix [1, 2, 3] and differ only in the collision code.
CODES = {"A1": [1, 2, 3, 0], "A2": [1, 2, 3, 1], "A3": [1, 2, 4, 0], "A4": [5, 6, 7, 0], "A5": [5, 6, 8, 0]}
# (user, [(item, source, shared_prefix)] in rank order); A3 and A5 are cold-start items.
RECS = [
    ("u1", [("A2", "generative", 3), ("A5", "cold_start", 0), ("A4", "generative", 2)]),
    ("u2", [("A1", "generative", 3), ("A3", "cold_start", 2), ("A5", "cold_start", 0)]),
    ("u3", [("A4", "generative", 4), ("A1", "generative", 1), ("A2", "generative", 1)]),
]
GENERATED_AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)


def write_partition(root: Path, table: str, ds: str, data: pa.Table) -> Path:
    """One Parquet file plus the _SUCCESS marker Spark leaves, which the views must ignore;
    semantic_ids under its rqvae_version sub-partition, as liger_jobs.warehouse lays it out."""
    folder = root / table / f"ds={ds}"
    if table == "semantic_ids":
        folder = folder / f"rqvae_version={data['rqvae_version'][0]}"
    folder.mkdir(parents=True)
    pq.write_table(data, folder / "part-00000.snappy.parquet")
    (folder / "_SUCCESS").write_text("")
    return folder


def items_table() -> pa.Table:
    ids = list(TITLES)
    return pa.table(
        {
            "item_id": ids,
            "item_idx": pa.array([ITEM_IDX[i] for i in ids], pa.int64()),
            "title": [TITLES[i] for i in ids],
            "brand": ["OPI", "OPI", None, "Aqua", "Blinc"],
            "categories": ["Beauty"] * 5,
            "price": ["5.99", "6.49", None, "3.10", "12.00"],
            "description": [None] * 5,
            "text": [f"This item is called '{TITLES[i]}'." for i in ids],
            "text_hash": [f"h{i}" for i in ids],
            "first_seen_ds": ["2026-11-01"] * 3 + [DS] * 2,
        },
        schema=pa.schema(
            [
                ("item_id", pa.string()),
                ("item_idx", pa.int64()),
                *[
                    (c, pa.string())
                    for c in ("title", "brand", "categories", "price", "description", "text", "text_hash", "first_seen_ds")
                ],
            ]
        ),
    )


def semantic_ids_table(codes: dict[str, list[int]], version: str = "3") -> pa.Table:
    return pa.table(
        {
            "item_idx": pa.array([ITEM_IDX[i] for i in codes], pa.int64()),
            "codes": pa.array(list(codes.values()), pa.list_(pa.int32())),
            "rqvae_version": [version] * len(codes),
            "assigned_ds": [DS] * len(codes),
        }
    )


def recommendations_table(recs: list[tuple[str, list[tuple[str, str, int]]]]) -> pa.Table:
    rows = [(user, rank, item, source, prefix) for user, items in recs for rank, (item, source, prefix) in enumerate(items, 1)]
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "rank": pa.array([r[1] for r in rows], pa.int32()),
            "item_id": [r[2] for r in rows],
            "item_idx": pa.array([ITEM_IDX[r[2]] for r in rows], pa.int64()),
            "score": [10.0 - r[1] for r in rows],
            "source": [r[3] for r in rows],
            "shared_prefix": pa.array([r[4] for r in rows], pa.int32()),
            "model_name": ["recommender"] * len(rows),
            "model_version": ["7"] * len(rows),
            "generated_at": pa.array([GENERATED_AT] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    root = tmp_path / "warehouse"
    write_partition(root, "items", DS, items_table())
    write_partition(root, "semantic_ids", DS, semantic_ids_table(CODES))
    write_partition(root, "recommendations", DS, recommendations_table(RECS))
    return root


@pytest.fixture
def con(warehouse: Path):
    with duckdb.connect() as connection:
        assert register_duckdb_views(connection, str(warehouse), DS) == list(sql_catalog.TABLES)
        yield connection


def rows(con, name: str, **params: object) -> list[dict]:
    cursor = con.execute(query(name, **params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_user_top_k_lists_titles_in_rank_order(con) -> None:
    top = rows(con, "user_top_k", user_id="u1")
    assert [r["rank"] for r in top] == [1, 2, 3]
    assert [r["title"] for r in top] == ["Blue Nail Polish", "Mascara Black", "Hair Spray Extra Hold"]
    assert [r["source"] for r in top] == ["generative", "cold_start", "generative"]
    assert [r["score"] for r in top] == [9.0, 8.0, 7.0]


def test_user_top_k_quotes_the_user_id(con) -> None:
    assert rows(con, "user_top_k", user_id="u1' OR '1'='1") == []
    assert rows(con, "user_top_k", user_id="nobody") == []


def test_source_mix_counts_rows_shares_and_users(con) -> None:
    mix = rows(con, "source_mix")
    assert [(r["source"], r["n_rows"], r["n_users"]) for r in mix] == [("cold_start", 3, 2), ("generative", 6, 3)]
    assert [r["row_share"] for r in mix] == pytest.approx([1 / 3, 2 / 3])


def test_cold_start_coverage(con) -> None:
    [cov] = rows(con, "cold_start_coverage")
    assert (cov["n_rows"], cov["cold_rows"], cov["n_items"], cov["cold_items"]) == (9, 3, 5, 2)
    assert cov["cold_row_share"] == pytest.approx(1 / 3)
    assert cov["cold_item_share"] == pytest.approx(2 / 5)
    assert (cov["n_users"], cov["users_with_cold"]) == (3, 2)
    assert cov["user_cold_share"] == pytest.approx(2 / 3)


def test_semantic_id_collision_summary(con) -> None:
    [summary] = rows(con, "semantic_id_collisions")
    assert summary == {
        "rqvae_version": "3",
        "n_items": 5,
        "levels": 4,
        "n_prefixes": 4,
        "colliding_prefixes": 1,
        "colliding_items": 2,
        "collision_rate": pytest.approx(0.4),
        "max_group_size": 2,
        "duplicate_ids": 0,
    }


def test_collision_summary_reports_duplicate_full_ids(tmp_path: Path) -> None:
    codes = {**CODES, "A5": [5, 6, 7, 0]}  # A5 now has exactly A4's semantic ID
    write_partition(tmp_path, "semantic_ids", DS, semantic_ids_table(codes))
    write_partition(tmp_path, "semantic_ids", DS, semantic_ids_table(CODES, version="4"))  # a retrain's
    with duckdb.connect() as connection:
        register_duckdb_views(connection, str(tmp_path), DS, ["semantic_ids"])
        broken, healthy = rows(connection, "semantic_id_collisions")
    assert (broken["rqvae_version"], broken["duplicate_ids"]) == ("3", 1)
    assert (broken["colliding_prefixes"], broken["max_group_size"]) == (2, 2)
    assert (healthy["rqvae_version"], healthy["duplicate_ids"], healthy["n_items"]) == ("4", 0, 5)


def test_views_add_ds_as_a_date_column(con) -> None:
    for table in sql_catalog.TABLES:
        assert con.execute(f"SELECT DISTINCT ds FROM {table}").fetchall() == [(date(2026, 11, 23),)]
    columns = [d[0] for d in con.execute("SELECT * FROM recommendations LIMIT 0").description]
    assert "shared_prefix" in columns and columns[-1] == "ds"


def test_missing_partition_names_the_table(warehouse: Path) -> None:
    with duckdb.connect() as connection, pytest.raises(SqlError, match="recommendations/ds=2026-11-24"):
        register_duckdb_views(connection, str(warehouse), "2026-11-24", ["recommendations"])


def test_render_fills_and_escapes_placeholders() -> None:
    text = "SELECT '${a}' AS a, '${b}' AS b"
    assert render(text, a="x", b="o'brien", unused=1) == "SELECT 'x' AS a, 'o''brien' AS b"
    assert render(text, dialect="spark", a="x", b="o'b\\n") == "SELECT 'x' AS a, 'o\\'b\\\\n' AS b"


def test_render_rejects_unknown_and_malformed_placeholders() -> None:
    with pytest.raises(SqlError, match=r"'\$\{user_id\}' has no value \(given: ds\)"):
        render("SELECT '${user_id}'", ds=DS)
    with pytest.raises(SqlError, match="malformed"):
        render("SELECT '${user id}'", user_id="u1")


def test_every_query_renders_for_both_dialects() -> None:
    names = sorted(p.stem for p in (sql_catalog.sql_dir() / "queries").glob("*.sql"))
    assert names == ["cold_start_coverage", "semantic_id_collisions", "source_mix", "user_top_k"]
    for name in names:
        for dialect in ("standard", "spark"):
            text = query(name, dialect=dialect, user_id="u1")
            assert "${" not in text and not text.endswith(";")
    with pytest.raises(SqlError, match="no SQL file"):
        query("no_such_query")
