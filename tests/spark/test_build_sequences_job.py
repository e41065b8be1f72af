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
