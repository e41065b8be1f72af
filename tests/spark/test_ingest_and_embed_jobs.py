import numpy as np
import pytest

from liger_jobs import embed_items, ingest
from liger_jobs.warehouse import Warehouse
from liger_core.errors import DataError
from tests.conftest import EVENTS, ITEMS, write_tsv

pytestmark = pytest.mark.spark
DS1, DS2 = "2026-01-01", "2026-01-02"


def table(spark, settings, name, ds):
    return Warehouse(spark, settings.paths.warehouse_uri).read(name, ds).toPandas()


def test_ingest_writes_contract_tables_and_is_idempotent(spark, job_settings, tiny_source):
    write_tsv(tiny_source / "events.tsv", EVENTS + [("u9", "NOPE", "1300000000")])
    stats = ingest.run(job_settings, DS1, spark)
    assert stats["items"] == 5 and stats["interactions"] == 9 and stats["users"] == 3
    assert stats["quarantined_interactions"] == 1
    items = table(spark, job_settings, "items", DS1)
    assert set(items.columns) >= {
        "item_id",
        "item_idx",
        "title",
        "brand",
        "categories",
        "price",
        "description",
        "text",
        "text_hash",
        "first_seen_ds",
    }
    assert sorted(items["item_idx"]) == [0, 1, 2, 3, 4]
    quarantine = table(spark, job_settings, "quarantine/interactions", DS1)
    assert quarantine[["line_no", "reason"]].values.tolist() == [[11, "unknown_item"]]
    events = table(spark, job_settings, "interactions", DS1)
    assert str(events["ts"].dtype).startswith("datetime64") and len(events) == 9

    ingest.run(job_settings, DS1, spark)  # rerun: same partition, same rows, no duplicates
    again = table(spark, job_settings, "interactions", DS1)
    assert len(again) == 9
    assert again.sort_values("event_seq").equals(events.sort_values("event_seq"))


def test_new_items_get_new_indexes_and_only_changed_text_is_embedded(spark, job_settings, tiny_source):
    ingest.run(job_settings, DS1, spark)
    first = embed_items.run(job_settings, DS1, spark)
    assert first == {**first, "items": 5, "embedded": 5, "reused": 0, "dimension": 384}

    # Next day: A2's title changes and A6 joins the catalog.
    changed = [row if row[0] != "A2" else ("A2", "Blue Nail Polish Glitter", *row[2:]) for row in ITEMS]
    write_tsv(tiny_source / "items.tsv", changed + [("A6", "Eyeliner Pencil", "Blinc", "Beauty > Makeup > Eyes", "7")])
    ingest.run(job_settings, DS2, spark)
    second = embed_items.run(job_settings, DS2, spark)
    assert (second["embedded"], second["reused"], second["items"]) == (2, 4, 6)

    items = table(spark, job_settings, "items", DS2).set_index("item_id")
    assert items.loc["A6", "item_idx"] == 5 and items.loc["A6", "first_seen_ds"] == DS2
    assert items.loc["A1", "item_idx"] == 0 and items.loc["A1", "first_seen_ds"] == DS1

    old = table(spark, job_settings, "item_embeddings", DS1).set_index("item_idx")["embedding"]
    new = table(spark, job_settings, "item_embeddings", DS2).set_index("item_idx")["embedding"]
    a1, a2 = items.loc["A1", "item_idx"], items.loc["A2", "item_idx"]
    np.testing.assert_array_equal(old[a1], new[a1])  # reused bit for bit
    assert not np.allclose(old[a2], new[a2])  # re-embedded for the new text
    np.testing.assert_allclose([np.linalg.norm(v) for v in new], 1.0, atol=1e-5)


def test_embed_without_ingest_is_a_clear_error(spark, job_settings):
    with pytest.raises(DataError, match="no items partition for ds=2026-01-01; run `liger ingest --ds 2026-01-01` first"):
        embed_items.run(job_settings, DS1, spark)
