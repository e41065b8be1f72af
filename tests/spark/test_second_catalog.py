"""A second, differently shaped catalog through the whole pipeline by configuration alone:
RecBole's atomic files (``.inter`` / ``.item``, tab-separated, ``name:type`` headers, float
timestamps), with other column names for the item text."""

import pytest

from liger_jobs import build_sequences, embed_items, evaluate, ingest, recommend, semantic_ids, train
from liger_jobs.warehouse import Warehouse
from tests.conftest import ITEMS, SEQUENCES, SMALL_RQVAE, TINY_MODEL, make_settings

pytestmark = pytest.mark.spark
DS = "2026-04-01"
SKU = {f"A{n}": f"sku-{100 + n}" for n in range(1, 6)}


def write_recbole(folder):
    folder.mkdir()
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user, items in SEQUENCES.items():
        inter += [f"shopper-{user}\t{SKU[item]}\t5.0\t{1300000000 + 86400 * n}.0" for n, item in enumerate(items.split())]
    (folder / "shop.inter").write_text("\n".join(inter) + "\n")
    item = ["item_id:token\tproduct_name:token_seq\tshelf:token_seq\tmaker:token"]
    item += [f"{SKU[i]}\t{title}\t{categories}\t{brand}" for i, title, brand, categories, _ in ITEMS[1:]]
    (folder / "shop.item").write_text("\n".join(item) + "\n")
    return folder


def test_a_recbole_catalog_runs_end_to_end_with_no_file_rewritten(spark, tmp_path, tracking_uri):
    source = write_recbole(tmp_path / "recbole")
    settings = make_settings(
        tmp_path / "home",
        source,
        *SMALL_RQVAE,
        *TINY_MODEL,
        f"tracking.uri={tracking_uri}",
        "source.events_file=shop.inter",
        "source.items_file=shop.item",
        "source.file_format=delimited",
        "source.delimiter=tab",
        'source.event_columns={user_id: "user_id:token", item_id: "item_id:token", timestamp: "timestamp:float"}',
        'source.item_columns={item_id: "item_id:token", title: "product_name:token_seq", '
        'categories: "shelf:token_seq", brand: "maker:token"}',
    )
    stats = ingest.run(settings, DS, spark)
    assert (stats["items"], stats["interactions"], stats["users"]) == (5, 20, 4)
    assert stats["quarantined_items"] == stats["quarantined_interactions"] == 0
    embed_items.run(settings, DS, spark)
    semantic_ids.run(settings, DS, spark, mode="train")
    build_sequences.run(settings, DS, spark)
    train.run(settings, DS, spark)
    assert evaluate.run(settings, DS, spark)["promoted"]
    recommend.run(settings, DS, spark)

    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    items = warehouse.read("items", DS).toPandas().set_index("item_id")
    assert items.loc["sku-104", "title"] == "Hair Spray Extra Hold" and items.loc["sku-104", "brand"] == "Aqua"
    assert "Beauty > Hair Care" in items.loc["sku-104", "text"]
    recs = warehouse.read("recommendations", DS).toPandas()
    assert set(recs["user_id"]) <= {f"shopper-{u}" for u in SEQUENCES} and len(recs)
    assert set(recs["item_id"]) <= set(SKU.values())
