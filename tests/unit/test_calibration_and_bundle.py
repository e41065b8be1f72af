import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from liger_core.retrieval.calibration import COLD_OFFSETS, GENERATIVE_WEIGHTS, choose_blend
from liger_core.config import ModelConfig, TrainConfig
from liger_core.model.network import Items
from liger_core.serving.recommender import Recommender
from liger_core.retrieval.search import Blend, RetrievalIndex, all_item_vectors
from liger_core.data.sequences import build_split
from liger_core.data.synthetic import make_synthetic
from liger_core.training.trainer import train
from liger_core.data.training_data import ItemSpace

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = ModelConfig(d_model=16, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=32, dropout=0.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    catalog, sequences = make_synthetic(n_users=200, seed=2)
    split = build_split(sequences, n_items=catalog.n_items)
    cfg = TrainConfig(batch_size=64, max_steps=20, lr=3e-3, eval_every=20, beams=8, eval_users=0)
    model = train(MODEL, cfg, catalog, split, tmp_path_factory.mktemp("ck")).model
    return catalog, split, model


def test_blend_is_the_validation_best_and_cold_items_can_be_switched_off(trained):
    catalog, split, model = trained
    best, scores = choose_blend(model, split.valid, RetrievalIndex.from_catalog(catalog, split.in_set), beams=8,
                                cold_candidates=64)
    assert {b.cold_offset for b in scores} == set(COLD_OFFSETS)
    assert {b.generative_weight for b in scores} == set(GENERATIVE_WEIGHTS)
    assert {b.cold_candidates for b in scores} == {64} and best.cold_candidates == 64
    assert scores[best] == max(scores.values())
    # synthetic validation targets are all in-set, so no cold item can help there
    assert not split.valid.is_cold.any()
    assert max(v for b, v in scores.items() if b.cold_offset == -math.inf) == max(scores.values())
    bundle = Recommender(model, MODEL, catalog, ItemSpace(np.arange(catalog.n_items)), split.in_set,
                         np.array([f"i{i}" for i in range(catalog.n_items)]), {"cold_offset": -math.inf})
    histories = [split.sequence(u)[:-1].tolist() for u in range(20)]
    assert not (bundle.recommend(histories, 10)["source"] == "cold_start").any()
    boosted = replace(bundle, meta={"cold_offset": 10.0})
    served = boosted.recommend(histories, 10)
    assert (served.groupby("row")["source"].first() == "cold_start").all()
    # Serving takes as many cold items per user as the model was chosen with, no more.
    assert boosted.blend.cold_candidates == 512  # a bundle from before the cap was stored
    capped = replace(bundle, meta={"cold_offset": 10.0, "cold_candidates": 1})
    assert capped.blend.cold_candidates == 1
    rows = capped.recommend(histories, 10)
    assert ((rows["source"] == "cold_start").groupby(rows["row"]).sum() == 1).all()
    assert (served["source"] == "cold_start").groupby(served["row"]).sum().max() > 1


def test_excluded_history_never_costs_a_user_the_k_items(trained):
    """The beam widens by the history window, so a narrow beam full of history items still
    leaves k items (no cold items here, so only the beam can supply them)."""
    catalog, split, model = trained
    bundle = Recommender(model, MODEL, catalog, ItemSpace(np.arange(catalog.n_items)), split.in_set,
                         np.array([f"i{i}" for i in range(catalog.n_items)]), {"cold_offset": -math.inf})
    histories = [split.sequence(u)[:-1].tolist() for u in range(20)]
    top = bundle.recommend(histories, 10, beams=2)
    assert (top.groupby("row").size() == 10).all()
    assert not any(set(group["item_idx"]) & set(histories[row]) for row, group in top.groupby("row"))


def test_standardisation_statistics_round_trip_through_the_bundle(trained, tmp_path):
    catalog, split, model = trained
    tower = model.text
    text = torch.from_numpy(catalog.text)
    assert torch.allclose(tower.mean, text.mean(0)) and torch.allclose(tower.std, text.std(0, unbiased=False))
    bundle = Recommender(model, MODEL, catalog, ItemSpace(np.arange(catalog.n_items)), split.in_set,
                         np.array([f"i{i}" for i in range(catalog.n_items)]), {"cold_offset": -0.1, "generative_weight": 0.02})
    loaded = Recommender.load(bundle.save(tmp_path / "bundle"))
    assert torch.equal(loaded.model.text.mean, tower.mean) and torch.equal(loaded.model.text.std, tower.std)
    assert loaded.blend == Blend(-0.1, 0.02)
    items = Items.from_catalog(catalog)
    assert torch.equal(all_item_vectors(loaded.model, items.text), all_item_vectors(model, items.text))
    # a cold item added after training is standardised with the training statistics
    shifted = torch.from_numpy(catalog.text[:1] + 5.0)
    expected = torch.nn.functional.normalize(tower(shifted), dim=-1)
    assert torch.allclose(loaded.model.item_vectors(shifted), expected)


def test_item_vectors_follow_their_items_into_a_new_catalog(tmp_path):
    catalog, sequences = make_synthetic(n_users=120, seed=3)
    split = build_split(sequences, n_items=catalog.n_items)
    cfg = MODEL.model_copy(update=dict(item_ids=True))
    model = train(cfg, TrainConfig(batch_size=64, max_steps=5, lr=3e-3, eval_every=5, beams=4),
                  catalog, split, tmp_path).model
    table = model.text.item_id.weight.detach()
    assert table[split.in_set].abs().sum() > 0 and table[~split.in_set].abs().sum() == 0
    space = ItemSpace(np.arange(catalog.n_items) * 10)  # item_idx 0, 10, 20, ...
    bundle = Recommender(model, cfg, catalog, space, split.in_set,
                         np.array([f"i{i}" for i in range(catalog.n_items)]), {})
    serving = bundle._serving_on("cpu")
    bundle.recommend([[0, 20, 30]], 5)
    assert bundle._serving_on("cpu") is serving  # built once, reused by every later batch
    # tonight: item_idx 10 left, a new item 5 arrived (row 0), the rest shifted by one row
    keep = np.r_[0, np.arange(2, catalog.n_items)]
    new_sid = np.r_[[catalog.sid.max(0)], catalog.sid[keep]]
    from liger_core.data.catalog import Catalog
    tonight = Catalog(new_sid, np.r_[catalog.text[:1], catalog.text[keep]], catalog.code_sizes)
    moved = bundle.with_catalog(tonight, ItemSpace(np.r_[5, space.item_idx[keep]]), np.arange(len(keep) + 1))
    new_table = moved.model.text.item_id.weight
    assert new_table.shape[0] == len(keep) + 1 and new_table[0].abs().sum() == 0
    assert torch.equal(new_table[1:], table[keep])
    assert model.text.item_id.weight.shape[0] == catalog.n_items  # the original is untouched
    # the new catalog is served from its own index and vectors, not the old bundle's
    assert moved._serving_on("cpu").vectors.shape[0] == len(keep) + 1
    assert set(moved.recommend([[0, 20, 30]], 5, exclude_history=False)["item_idx"]) <= set(moved.space.item_idx)
