import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from liger_jobs import build_sequences, embed_items, evaluate, ingest, recommend, semantic_ids, train
from liger_jobs.inputs import load_registered
from liger_jobs.warehouse import Warehouse
from liger_core.data.sequences import build_split
from liger_core.data.training_data import sequences_in_space
from liger_core.errors import ConfigError
from liger_core.serving.evaluation import evaluate_recommender
from liger_core.platform.tracking import metric_key
from liger_core.platform.model_registry import RECOMMENDER_MODEL, load_recommender, resolve_version, tag_metric
from tests.conftest import ITEMS, SEQUENCES, SMALL_RQVAE, TINY_MODEL, make_settings, write_tsv

pytestmark = pytest.mark.spark
DS, NEXT_DS = "2026-01-01", "2026-01-02"


@pytest.fixture
def prepared(tmp_path, trainable_source, spark):
    settings = make_settings(tmp_path / "home", trainable_source, *SMALL_RQVAE, *TINY_MODEL)
    ingest.run(settings, DS, spark)
    embed_items.run(settings, DS, spark)
    semantic_ids.run_train(settings, DS, spark)
    build_sequences.run(settings, DS, spark)
    return settings


def test_train_registers_a_self_contained_recommender(spark, prepared):
    stats = train.run(prepared, DS, spark)
    assert stats["steps"] == 6 and stats["resumed_from_step"] == 0
    assert (stats["in_set_items"], stats["cold_items"]) == (3, 2)
    assert (train.checkpoint_dir(prepared, DS, stats["rqvae_version"]) / "last.pt").is_file()

    recommender, version = load_recommender(stats["recommender_version"])
    assert version == stats["recommender_version"]
    assert recommender.meta["rqvae_version"] == stats["rqvae_version"]
    top = recommender.recommend([[0, 1]], k=3)
    assert top["rank"].tolist() == [1, 2, 3]
    assert not set(top["item_idx"]) & {0, 1}  # history excluded by default
    assert np.all(np.diff(top["score"]) <= 0)

    again = train.run(prepared, DS, spark)  # a retried task resumes from the checkpoint
    assert again["resumed_from_step"] == 6 and again["steps"] == 6

    run = mlflow.get_run(MlflowClient().get_model_version(RECOMMENDER_MODEL, version).run_id)
    inputs = {d.dataset.name: d.tags[0].value for d in run.inputs.dataset_inputs}  # lineage: tables read
    assert inputs == {
        f"user_sequences/ds={DS}": "training",
        f"items/ds={DS}": "training",
        f"item_embeddings/ds={DS}": "training",
        f"semantic_ids/ds={DS}/rqvae_version={stats['rqvae_version']}": "training",
    }
    assert [a.path for a in MlflowClient().list_artifacts(run.info.run_id, "plots")] == ["plots/training_curve.png"]
    # the heads alone on validation are logged beside the chosen blend
    floor = {f"head_val_{head}_{metric}_inset" for head in ("generative", "dense") for metric in ("ndcg", "recall")}
    assert floor <= set(stats) and floor <= set(run.data.metrics)


def test_evaluate_promotes_first_version_and_gate_refuses_a_worse_one(spark, prepared):
    first = train.run(prepared, DS, spark)
    # On a toy catalog counting transitions is near perfect: with the floor on (the default),
    # even a first version is not promoted when it does not beat the 3-item transition count.
    floored = prepared.model_copy(update={"evaluate": prepared.evaluate.model_copy(update={"baseline_floor": True})})
    refused_first = evaluate.run(floored, DS, spark)
    assert not refused_first["promoted"] and "does not beat the transition-count baseline" in refused_first["gate_reason"]
    with pytest.raises(ConfigError, match="no version or alias 'champion'"):
        resolve_version(RECOMMENDER_MODEL, "champion")
    report = evaluate.run(prepared, DS, spark)
    assert report["promoted"] and "champion has no finite record" in report["gate_reason"]
    assert resolve_version(RECOMMENDER_MODEL, "champion") == first["recommender_version"]
    methods = {(row["segment"], row["method"]) for row in report["table"]}
    model_methods = ("generative", "dense", "hybrid", "popularity", "transition1", "transition3")
    assert methods == {(s, m + served) for s in ("in-set", "cold-start") for m in model_methods for served in ("", "_served")}
    assert {row["K"] for row in report["sweep"]} == {4, 5}
    for row in report["table"]:
        assert 0.0 <= row["R@5"] <= row["R@10"] <= 1.0
    # Generative retrieval can never return a cold item: its cold-start recall is exactly zero.
    cold_generative = next(r for r in report["table"] if r == {**r, "segment": "cold-start", "method": "generative"})
    assert cold_generative["R@10"] == 0.0

    # Pretend the champion scored perfectly: a newly trained version must not replace it.
    tag_metric(RECOMMENDER_MODEL, first["recommender_version"], "val_hybrid_ndcg@10", 1.0)
    fresh = prepared.model_copy(update={"train": prepared.train.model_copy(update={"seed": 7})})
    train.checkpoint_dir(prepared, DS, first["rqvae_version"]).joinpath("last.pt").unlink()
    second = train.run(fresh, DS, spark)
    refused = evaluate.run(fresh, DS, spark)
    assert refused["recommender_version"] == second["recommender_version"] != first["recommender_version"]
    assert not refused["promoted"] and "kept the champion" in refused["gate_reason"]
    assert resolve_version(RECOMMENDER_MODEL, "champion") == first["recommender_version"]


def _registered(spark, settings, version: str):
    """The recommender ``version`` and the split the evaluate job builds for it."""
    recommender, _, inputs = load_registered(Warehouse(spark, settings.paths.warehouse_uri), settings, DS, version)
    split = build_split(
        sequences_in_space(inputs.sequences["items"], inputs.space),
        recommender.model_config.max_history,
        n_items=inputs.catalog.n_items,
    )
    return recommender, split


def test_evaluation_sharded_over_spark_tasks_equals_one_process(spark, prepared):
    trained = train.run(prepared, DS, spark)
    recommender, split = _registered(spark, prepared, trained["recommender_version"])
    assert spark.sparkContext.defaultParallelism == 2 and len(split.test) > 2  # two shards, both with users
    here = evaluate_recommender(recommender, split, prepared.evaluate, gate_beams=4)
    with evaluate.sharded_sums(spark, recommender, split.in_set) as sums:
        sharded = evaluate_recommender(recommender, split, prepared.evaluate, gate_beams=4, sums=sums)
    assert sharded.keys() == here.keys()
    assert sharded == pytest.approx(here, abs=1e-12)
    assert here["test_users"] == len(split.test) and 0 < here["test_hybrid_recall@10"]


def test_evaluate_job_ranks_at_the_precision_recommend_names(spark, prepared):
    """recommend.precision=float32 ranks as a float32 pass in one process, to the last bit,
    on any CPU (``auto`` would take bfloat16 where the CPU has it); bfloat16 forces it."""
    trained = train.run(prepared, DS, spark)

    def at(precision: str):
        return prepared.model_copy(update={"recommend": prepared.recommend.model_copy(update={"precision": precision})})

    report = evaluate.run(at("float32"), DS, spark)
    recommender, split = _registered(spark, prepared, trained["recommender_version"])
    here = evaluate_recommender(recommender, split, prepared.evaluate, prepared.train.seed, prepared.recommend.beams)
    assert report["ranking_dtype"] == "float32"
    assert {name: report[metric_key(name)] for name in here} == pytest.approx(here, abs=1e-12)
    assert evaluate.run(at("bfloat16"), DS, spark)["ranking_dtype"] == "bfloat16"


def test_nightly_recommendations_include_items_added_after_training(spark, prepared, tiny_source):
    trained = train.run(prepared, DS, spark)
    evaluate.run(prepared, DS, spark)
    # Next night: A6 joins the catalog; it gets an ID from the champion RQ-VAE, not a retrain.
    write_tsv(tiny_source / "items.tsv", ITEMS + [("A6", "Nail Polish Remover", "OPI", "Beauty > Makeup > Nails", "4")])
    ingest.run(prepared, NEXT_DS, spark)
    embed_items.run(prepared, NEXT_DS, spark)
    semantic_ids.run_assign(prepared, NEXT_DS, spark)
    build_sequences.run(prepared, NEXT_DS, spark)
    settings = prepared.model_copy(update={"recommend": prepared.recommend.model_copy(update={"k": 2})})
    stats = recommend.run(settings, NEXT_DS, spark)
    assert stats["recommender_version"] == trained["recommender_version"]

    rows = Warehouse(spark, prepared.paths.warehouse_uri).read("recommendations", NEXT_DS).toPandas()
    # u1 has seen every old item: with history excluded only A6 (cold, never trained on) is left.
    u1 = rows[rows["user_id"] == "u1"]
    assert u1[["rank", "item_id", "source"]].values.tolist() == [[1, "A6", "cold_start"]]
    for user, group in rows.groupby("user_id"):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["item_id"].is_unique and (group["score"].diff().dropna() <= 1e-9).all()
        history = set(SEQUENCES[user].split())
        assert not set(group["item_id"]) & history
    assert set(rows["source"]) <= {"generative", "cold_start"}
    assert set(rows["model_version"]) == {trained["recommender_version"]}
    assert rows["shared_prefix"].between(0, 3).all()
    assert (rows[rows["item_id"] == "A6"]["source"] == "cold_start").all()

    recommend.run(settings, NEXT_DS, spark)  # nightly rerun of the same ds: same table, no duplicates
    again = Warehouse(spark, prepared.paths.warehouse_uri).read("recommendations", NEXT_DS).toPandas()
    columns = ["user_id", "rank", "item_id", "score", "source", "shared_prefix", "model_version"]
    key = ["user_id", "rank"]
    first = rows[columns].sort_values(key, ignore_index=True)
    second = again[columns].sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(first.drop(columns="score"), second.drop(columns="score"))
    np.testing.assert_allclose(first["score"], second["score"], rtol=1e-6)


def test_ddp_training_through_torch_distributor(spark, prepared):
    """Two gloo ranks launched by Spark's TorchDistributor train one model and register it."""
    ddp = prepared.model_copy(update={"train": prepared.train.model_copy(update={"processes": 2})})
    stats = train.run(ddp, DS, spark)
    assert stats["steps"] == 6 and stats["resumed_from_step"] == 0
    recommender, _ = load_recommender(stats["recommender_version"])
    top = recommender.recommend([[0, 1]], k=2)
    assert len(top) == 2 and top["score"].is_monotonic_decreasing
