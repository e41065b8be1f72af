import pytest

from liger_jobs import embed_items, ingest, semantic_ids
from liger_jobs.warehouse import Warehouse
from liger_core.errors import ConfigError
from tests.conftest import ITEMS, SMALL_RQVAE, make_settings, write_tsv

pytestmark = pytest.mark.spark
DS1, DS2, DS3, DS4 = "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"


@pytest.fixture
def settings(tmp_path, tiny_source):
    # Own registry: the 'champion' alias must not leak between tests.
    return make_settings(tmp_path / "home", tiny_source, *SMALL_RQVAE)


def ids(spark, settings, ds, version):
    frame = Warehouse(spark, settings.paths.warehouse_uri).read("semantic_ids", ds, version).toPandas()
    return frame, {int(i): tuple(c) for i, c in zip(frame["item_idx"], frame["codes"])}


def test_train_then_assign_keeps_ids_and_extends_for_new_items(spark, settings, tiny_source):
    ingest.run(settings, DS1, spark)
    embed_items.run(settings, DS1, spark)
    trained = semantic_ids.run_train(settings, DS1, spark)
    assert trained["items"] == 5 and trained["new_items"] == 5
    frame, first = ids(spark, settings, DS1, trained["rqvae_version"])
    assert len(set(first.values())) == 5  # unique IDs
    assert all(len(codes) == 3 for codes in first.values())  # 2 levels + collision code
    assert set(frame["rqvae_version"]) == {trained["rqvae_version"]}

    write_tsv(tiny_source / "items.tsv", ITEMS + [("A6", "Nail Polish Remover", "OPI", "Beauty > Makeup > Nails", "4")])
    ingest.run(settings, DS2, spark)
    embed_items.run(settings, DS2, spark)
    assigned = semantic_ids.run_assign(settings, DS2, spark)
    assert (assigned["items"], assigned["new_items"]) == (6, 1)
    assert assigned["rqvae_version"] == trained["rqvae_version"]
    frame, second = ids(spark, settings, DS2, trained["rqvae_version"])
    assert {i: second[i] for i in first} == first  # known items keep their exact ID
    assert len(set(second.values())) == 6
    assigned_ds = dict(zip(frame["item_idx"], frame["assigned_ds"]))
    assert assigned_ds[5] == DS2 and assigned_ds[0] == DS1


def twin(item_id: str, of: str) -> tuple:
    """A new item with the text of ``of``: same embedding, same RQ-VAE prefix, so only the
    collision code can tell their IDs apart."""
    return (item_id, *next(row for row in ITEMS if row[0] == of)[1:])


def test_backfills_and_retired_items_never_reuse_an_index_or_an_id(spark, settings, tiny_source):
    catalog = {"A6": twin("A6", "A1"), "A7": twin("A7", "A1"), "A8": twin("A8", "A2")}
    # A retired item's events become unknown_item; here that is the point, not a defect rate.
    settings = make_settings(settings.paths.home, tiny_source, *SMALL_RQVAE, "source.max_quarantine_rate=1")

    def nightly(ds, *extra, retired=()):
        write_tsv(tiny_source / "items.tsv", [r for r in ITEMS if r[0] not in retired] + [catalog[i] for i in extra])
        ingest.run(settings, ds, spark)
        embed_items.run(settings, ds, spark)
        return semantic_ids.run_assign(settings, ds, spark) if ds != DS1 else semantic_ids.run_train(settings, ds, spark)

    version = nightly(DS1)["rqvae_version"]
    nightly(DS3, "A6", retired={"A2"})  # A2 leaves the catalog
    nightly(DS2, "A7")  # backfill, after DS3 exists
    nightly(DS4, "A6", "A7", "A8", retired={"A2"})  # A8 has the retired A2's text

    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    index, semantic = {}, {}
    for ds in (DS1, DS2, DS3, DS4):
        items = warehouse.read("items", ds).toPandas()
        for item_id, idx in zip(items["item_id"], items["item_idx"]):
            assert index.setdefault(item_id, idx) == idx  # an item keeps its index on every ds
        for idx, codes in ids(spark, settings, ds, version)[1].items():
            assert semantic.setdefault(idx, codes) == codes  # and its ID
    assert [index[i] for i in ("A6", "A7", "A8")] == [5, 6, 7]
    assert len(set(index.values())) == len(index) == 8
    assert len(set(semantic.values())) == len(semantic) == 8  # no ID ever given to two items
    by_prefix = {idx: codes[:-1] for idx, codes in semantic.items()}
    assert by_prefix[index["A6"]] == by_prefix[index["A7"]] == by_prefix[index["A1"]]
    assert by_prefix[index["A8"]] == by_prefix[index["A2"]]


def test_assign_with_unknown_model_version_is_a_clear_error(spark, settings):
    ingest.run(settings, DS1, spark)
    embed_items.run(settings, DS1, spark)
    bad = make_settings(settings.paths.home, settings.source.path, *SMALL_RQVAE, "semantic_ids.rqvae_model=99")
    with pytest.raises(ConfigError, match="model 'rqvae' has no version or alias '99'"):
        semantic_ids.run_assign(bad, DS1, spark)
