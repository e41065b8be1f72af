"""liger_retrain and liger_nightly for the same ds, their stages interleaved as two
schedulers could run them: nightly keeps serving in the champion's ID space while the
retrain trains, evaluates and is (not) promoted in its own, and nothing fails."""

import pytest

from liger_jobs import build_sequences, embed_items, evaluate, ingest, recommend, semantic_ids, train
from liger_jobs.warehouse import Warehouse
from liger_core.platform.model_registry import CHAMPION, RECOMMENDER_MODEL, RQVAE_MODEL, resolve_version, tag_metric
from tests.conftest import SMALL_RQVAE, TINY_MODEL, make_settings

pytestmark = pytest.mark.spark
FIRST, SUNDAY = "2026-01-04", "2026-01-11"


def test_interleaved_dags_for_one_ds_stay_in_their_own_id_spaces(tmp_path, trainable_source, spark):
    settings = make_settings(tmp_path / "home", trainable_source, *SMALL_RQVAE, *TINY_MODEL)
    for stage in (
        ingest.run,
        embed_items.run,
        semantic_ids.run_train,
        build_sequences.run,
        train.run,
        evaluate.run,
    ):  # a first retrain makes the champions
        stage(settings, FIRST, spark)
    champion_rqvae = resolve_version(RQVAE_MODEL, CHAMPION)
    champion = resolve_version(RECOMMENDER_MODEL, CHAMPION)
    # The candidate must not win the gate here: a champion that scored perfectly.
    tag_metric(RECOMMENDER_MODEL, champion, "val_hybrid_ndcg@10", 1.0)

    # Sunday: both DAGs, interleaved stage by stage for the same ds.
    ingest.run(settings, SUNDAY, spark)  # retrain
    ingest.run(settings, SUNDAY, spark)  # nightly
    embed_items.run(settings, SUNDAY, spark)  # nightly
    embed_items.run(settings, SUNDAY, spark)  # retrain
    candidate = semantic_ids.run_train(settings, SUNDAY, spark)  # retrain: a new RQ-VAE
    served_ids = semantic_ids.run_assign(settings, SUNDAY, spark)  # nightly: the champion's
    build_sequences.run(settings, SUNDAY, spark)  # retrain
    trained = train.run(settings, SUNDAY, spark)  # retrain
    build_sequences.run(settings, SUNDAY, spark)  # nightly
    served = recommend.run(settings, SUNDAY, spark)  # nightly
    gate = evaluate.run(settings, SUNDAY, spark)  # retrain

    assert candidate["rqvae_version"] != champion_rqvae == served_ids["rqvae_version"]
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    assert warehouse.versions("semantic_ids", SUNDAY) == sorted([champion_rqvae, candidate["rqvae_version"]])
    assert trained["rqvae_version"] == candidate["rqvae_version"]  # the retrain trains on its own IDs
    assert served["recommender_version"] == champion
    rows = warehouse.read("recommendations", SUNDAY).toPandas()
    assert set(rows["model_version"]) == {champion} and len(rows) > 0
    assert gate["recommender_version"] == trained["recommender_version"] and not gate["promoted"]
    # nothing moved: nightly keeps serving the champion pair
    assert (resolve_version(RQVAE_MODEL, CHAMPION), resolve_version(RECOMMENDER_MODEL, CHAMPION)) == (champion_rqvae, champion)
    # and after the candidate's IDs exist, tonight's IDs for the champion are still the champion's
    ids = warehouse.read("semantic_ids", SUNDAY, champion_rqvae).toPandas()
    assert set(ids["rqvae_version"]) == {champion_rqvae}
