import pytest

from jobs import embed_items, ingest, semantic_ids
from jobs.warehouse import Warehouse
from liger_core.errors import ConfigError
from tests.conftest import ITEMS, SMALL_RQVAE, make_settings, write_tsv

pytestmark = pytest.mark.spark
DS1, DS2 = "2026-01-01", "2026-01-02"


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


def test_assign_with_unknown_model_version_is_a_clear_error(spark, settings):
    ingest.run(settings, DS1, spark)
    embed_items.run(settings, DS1, spark)
    bad = make_settings(settings.paths.home, settings.source.path, *SMALL_RQVAE, "semantic_ids.rqvae_model=99")
    with pytest.raises(ConfigError, match="model 'rqvae' has no version or alias '99'"):
        semantic_ids.run_assign(bad, DS1, spark)
