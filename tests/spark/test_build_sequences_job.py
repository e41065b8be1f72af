import pytest

from liger_jobs import build_sequences, ingest
from liger_jobs.warehouse import Warehouse
from liger_core.errors import DataError

pytestmark = pytest.mark.spark
DS = "2026-01-01"


def test_sequences_keep_source_order_for_ties(spark, job_settings):
    ingest.run(job_settings, DS, spark)
    stats = build_sequences.run(job_settings, DS, spark)
    assert stats == {**stats, "users": 3, "events": 9, "length_min": 3, "length_max": 3}
    warehouse = Warehouse(spark, job_settings.paths.warehouse_uri)
    idx = dict(warehouse.read("items", DS).select("item_id", "item_idx").toPandas().values)
    rows = warehouse.read("user_sequences", DS).toPandas().set_index("user_id")
    # u3 saw A4 and A1 in the same second, A4 first in the source: that order is kept.
    assert list(rows.loc["u3", "items"]) == [idx["A4"], idx["A1"], idx["A5"]]
    assert list(rows.loc["u1", "items"]) == [idx["A1"], idx["A2"], idx["A4"]]
    assert sorted(rows["user_idx"]) == [0, 1, 2] and rows.loc["u1", "user_idx"] == 0
    assert all(len(r["items"]) == len(r["ts"]) for _, r in rows.iterrows())


def test_sequences_need_ingest_first(spark, job_settings):
    with pytest.raises(DataError, match="no interactions partition for ds=2026-01-01"):
        build_sequences.run(job_settings, DS, spark)


def test_user_idx_follows_each_users_first_event_across_partitions(spark):
    """Dense 0..n-1 in order of each user's first event, whatever the user ids and however the
    events are partitioned; each user's items stay in (ts, event_seq) order."""
    rows = [  # (user_id, item_idx, ts, event_seq)
        ("zed", 7, 100, 0),
        ("amy", 3, 50, 1),
        ("zed", 8, 90, 2),
        ("bob", 1, 10, 3),
        ("amy", 4, 50, 4),
        ("bob", 2, 5, 5),
    ]
    events = spark.createDataFrame(rows, "user_id string, item_idx long, ts long, event_seq long").repartition(3)
    out = build_sequences.user_sequences(events).toPandas().set_index("user_id")
    assert out["user_idx"].to_dict() == {"zed": 0, "amy": 1, "bob": 2}
    assert {user: list(items) for user, items in out["items"].items()} == {"zed": [8, 7], "amy": [3, 4], "bob": [2, 1]}
