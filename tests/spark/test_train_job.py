import numpy as np
import pytest

from jobs import build_sequences, embed_items, ingest, semantic_ids, train
from liger_core.model_registry import load_recommender
from tests.conftest import EVENTS, SMALL_RQVAE, make_settings, write_tsv

pytestmark = pytest.mark.spark
DS = "2026-01-01"
TINY_MODEL = ["model.d_model=16", "model.heads=2", "model.encoder_layers=1", "model.decoder_layers=1",
              "model.ff_dim=32", "train.batch_size=4", "train.max_steps=6", "train.warmup_steps=2",
              "train.eval_every=3", "train.checkpoint_every=3", "train.beams=4", "train.time_budget_minutes=0"]


# Five events per user, so every user has training examples; A3 and A5 occur only as
# validation/test targets, which makes them cold-start items.
SEQUENCES = {"u1": "A1 A2 A4 A5 A3", "u2": "A2 A4 A1 A2 A5", "u3": "A4 A1 A2 A4 A5", "u4": "A1 A4 A2 A1 A4"}


@pytest.fixture
def prepared(tmp_path, tiny_source, spark):
    rows = [(user, item, str(1300000000 + 86400 * n)) for user, items in SEQUENCES.items()
            for n, item in enumerate(items.split())]
    write_tsv(tiny_source / "events.tsv", [EVENTS[0], *rows])
    settings = make_settings(tmp_path / "home", tiny_source, *SMALL_RQVAE, *TINY_MODEL)
    ingest.run(settings, DS, spark)
    embed_items.run(settings, DS, spark)
    semantic_ids.run_train(settings, DS, spark)
    build_sequences.run(settings, DS, spark)
    return settings


def test_train_registers_a_self_contained_recommender(spark, prepared):
    stats = train.run(prepared, DS, spark)
    assert stats["steps"] == 6 and stats["resumed_from_step"] == 0
    assert (stats["in_set_items"], stats["cold_items"]) == (3, 2)
    assert (train.checkpoint_dir(prepared, DS) / "last.pt").is_file()

    recommender, version = load_recommender(stats["recommender_version"])
    assert version == stats["recommender_version"]
    assert recommender.meta["rqvae_version"] == stats["rqvae_version"]
    top = recommender.recommend([[0, 1]], k=3)
    assert top["rank"].tolist() == [1, 2, 3]
    assert not set(top["item_idx"]) & {0, 1}  # history excluded by default
    assert np.all(np.diff(top["score"]) <= 0)

    again = train.run(prepared, DS, spark)  # a retried task resumes from the checkpoint
    assert again["resumed_from_step"] == 6 and again["steps"] == 6
