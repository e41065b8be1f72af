import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from liger_core.retrieval.calibration import (
    COLD_OFFSETS,
    COLD_SLOT_CAPS,
    GENERATIVE_WEIGHTS,
    BlendQuality,
    blend_objective,
    choose_blend,
    measure_blends,
    pick_blend,
)
from liger_core.config import EvaluateConfig, ModelConfig, TrainConfig
from liger_core.model.network import Items
from liger_core.serving.evaluation import evaluate_recommender
from liger_core.serving.recommender import Recommender
from liger_core.retrieval.retrieval_metrics import evaluate
from liger_core.retrieval.search import Blend, Ranked, RetrievalIndex, all_item_vectors, hybrid_rank, hybrid_topk, side_pool
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
    index = RetrievalIndex.from_catalog(catalog, split.in_set)
    assert len(index.cold)  # the synthetic catalog has items no training sequence holds
    best, measured = choose_blend(model, split.valid, index, beams=8, cold_candidates=64, cold_weight=0.5)
    qualities = measured.blends
    assert {b.cold_offset for b in qualities} == set(COLD_OFFSETS)
    assert {b.generative_weight for b in qualities} == set(GENERATIVE_WEIGHTS)
    assert {b.cold_candidates for b in qualities if math.isfinite(b.cold_offset)} == {*COLD_SLOT_CAPS, 64}
    assert {b.cold_candidates for b in qualities if not math.isfinite(b.cold_offset)} == {64}
    # synthetic validation targets are all in-set, so no cold item can help there and the
    # cold weight has nothing to weigh: the in-set NDCG alone decides
    assert not split.valid.is_cold.any() and all(math.isnan(q.ndcg_cold) for q in qualities.values())
    assert qualities[best].ndcg == max(q.ndcg for q in qualities.values())
    assert set(BlendQuality._fields) - set(qualities[best].finite()) == {"ndcg_cold", "recall_cold"}
    assert max(q.ndcg for b, q in qualities.items() if b.cold_offset == -math.inf) == qualities[best].ndcg
    assert qualities[Blend(-math.inf, cold_candidates=64)].cold_share == 0.0
    assert qualities[Blend(max(COLD_OFFSETS), cold_candidates=64)].cold_share > 0


def test_calibration_ranks_at_the_precision_it_is_given_as_evaluation_does(trained):
    """The train stage calibrates at serving's precision (recommend.precision): the blocks
    run under that autocast, and each blend scores what evaluation at it reports."""
    catalog, split, model = trained
    index = RetrievalIndex.from_catalog(catalog, split.in_set)
    blend = Blend(0.05, 0.01, 8, 1)
    block_outputs = []  # of a linear layer inside the first encoder block
    hook = model.encoder[0].attn.q.register_forward_hook(lambda module, inputs, output: block_outputs.append(output.dtype))
    try:
        measured = measure_blends(model, split.test, index, [blend], beams=8, block_dtype=torch.bfloat16)
    finally:
        hook.remove()
    assert set(block_outputs) == {torch.bfloat16} and model.block_dtype is None
    reported = evaluate(model, split.test, index, split="test", blend=blend, beams=8, ks=(10,), block_dtype=torch.bfloat16)
    assert measured.blends[blend].ndcg == pytest.approx(reported["test_hybrid_ndcg@10"])


def test_calibration_scores_what_evaluation_measures(trained):
    """A blend's calibration quality is the hybrid metric evaluation reports with that blend."""
    catalog, split, model = trained
    index = RetrievalIndex.from_catalog(catalog, split.in_set)
    blends = [Blend(0.05, 0.01, 8, 1), Blend(-0.1, 0.0, 0, 64)]
    measured = measure_blends(model, split.test, index, blends, beams=8)
    for blend in blends:
        reported = evaluate(model, split.test, index, split="test", blend=blend, beams=8, ks=(10,))
        assert measured.blends[blend].ndcg == pytest.approx(reported["test_hybrid_ndcg@10"])
        assert measured.blends[blend].ndcg_inset == pytest.approx(reported["test_hybrid_ndcg@10_inset"])
        assert measured.blends[blend].recall_inset == pytest.approx(reported["test_hybrid_recall@10_inset"])
    # each head alone, the floor of the in-set pick, is what evaluation reports for that method
    assert set(measured.heads) == {"generative", "dense"}
    for head, quality in measured.heads.items():
        assert quality.ndcg_inset == pytest.approx(reported[f"test_{head}_ndcg@10_inset"])
        assert quality.recall_inset == pytest.approx(reported[f"test_{head}_recall@10_inset"])
    assert measured.heads["generative"].cold_share == 0.0  # the beam holds in-set items only


def _quality(inset: float, cold: float, share: float, cold_users: float = 0.005) -> BlendQuality:
    return BlendQuality((1 - cold_users) * inset + cold_users * cold, inset, cold, inset, cold, share, cold_users)


def test_cold_slots_are_earned_per_segment():
    generous, careful, closed = Blend(0.0, cold_candidates=2), Blend(-0.2, cold_candidates=1), Blend(-math.inf)
    qualities = {generous: _quality(0.040, 0.12, 0.15), careful: _quality(0.044, 0.10, 0.03), closed: _quality(0.045, 0.0, 0.0)}
    # by users, 0.5 % cold: the in-set segment decides
    assert pick_blend(qualities, None) == closed
    assert blend_objective(qualities[closed], None) == pytest.approx(qualities[closed].ndcg)
    # a weight never counts cold-start users for less than they are: 30 % of users outweigh w = 0.1
    common = {blend: _quality(q.ndcg_inset, q.ndcg_cold, q.cold_share, cold_users=0.3) for blend, q in qualities.items()}
    assert pick_blend(common, 0.1) == pick_blend(common, None) == generous
    assert blend_objective(common[careful], 0.1) == pytest.approx(0.7 * 0.044 + 0.3 * 0.10)
    # cold weighted: a cold hit is worth in-set slots, up to the weight
    assert pick_blend(qualities, 0.1) == careful  # 0.0496 against 0.0405 (closed) and 0.048
    assert pick_blend(qualities, 0.5) == generous
    assert blend_objective(qualities[careful], 0.1) == pytest.approx(0.9 * 0.044 + 0.1 * 0.10)
    # cold items that never hit on validation earn nothing, whatever the weight
    no_hits = {blend: q._replace(ndcg_cold=0.0, recall_cold=0.0) for blend, q in qualities.items()}
    assert pick_blend(no_hits, 0.5) == closed
    # cold slots that cost nothing in-set (a tie) are given, at the paper's offset, as few as tie
    capped = Blend(0.0, cold_candidates=1)
    free = {blend: q._replace(ndcg_cold=0.0, ndcg_inset=0.045, ndcg=0.045) for blend, q in qualities.items()}
    free[capped] = free[generous]._replace(cold_share=0.05)
    assert pick_blend(free, 0.5) == pick_blend(free, None) == capped
    # no cold-start users on validation: the cold term does not exist, in-set alone decides
    no_users = {blend: q._replace(ndcg_cold=math.nan) for blend, q in qualities.items()}
    assert pick_blend(no_users, 0.5) == pick_blend(no_users, None) == closed
    assert blend_objective(no_users[careful], 0.5) == no_users[careful].ndcg


def test_a_blend_caps_the_cold_slots_of_a_wide_pool():
    """Calibration builds one pool at the widest cap; each blend takes only its nearest cold items."""
    vectors = torch.nn.functional.normalize(torch.randn(30, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    cold = torch.arange(20, 30)
    query = vectors[[21, 3]]
    generated = Ranked(torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]]), torch.full((2, 4), -1.0))
    pool = side_pool(query, vectors, cold, cold_cap=10)
    for cap in (1, 2, 10):
        blend = Blend(10.0, cold_candidates=cap)  # a boost that puts every cold item it may take first
        ranked = hybrid_rank(query, vectors, generated, pool, 8, blend=blend)
        assert ranked.source is not None
        assert (ranked.source[:, : min(cap, 8)] == 1).all() and (ranked.source[:, min(cap, 8) :] == 0).all()
        assert torch.equal(ranked.items[:, : min(cap, 8)], pool.cold.items[:, : min(cap, 8)])
        assert torch.equal(ranked.items, hybrid_topk(query, vectors, generated, cold, 8, blend=blend).items)


def _bundle(trained, meta: dict) -> Recommender:
    """The trained fixture as a serving bundle over an identity item space, with ``meta``."""
    catalog, split, model = trained
    ids = np.array([f"i{i}" for i in range(catalog.n_items)])
    return Recommender(model, MODEL, catalog, ItemSpace(np.arange(catalog.n_items)), split.in_set, ids, meta)


def test_serving_takes_the_stored_cold_offset_and_cap(trained):
    split = trained[1]
    bundle = _bundle(trained, {"cold_offset": -math.inf})
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
    split = trained[1]
    bundle = _bundle(trained, {"cold_offset": -math.inf})
    histories = [split.sequence(u)[:-1].tolist() for u in range(20)]
    top = bundle.recommend(histories, 10, beams=2)
    assert (top.groupby("row").size() == 10).all()
    assert not any(set(group["item_idx"]) & set(histories[row]) for row, group in top.groupby("row"))


def test_standardisation_statistics_round_trip_through_the_bundle(trained, tmp_path):
    catalog, split, model = trained
    tower = model.text
    text = torch.from_numpy(catalog.text)
    assert torch.allclose(tower.mean, text.mean(0)) and torch.allclose(tower.std, text.std(0, unbiased=False))
    bundle = _bundle(trained, {"cold_offset": -0.1, "generative_weight": 0.02})
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
    model = train(cfg, TrainConfig(batch_size=64, max_steps=5, lr=3e-3, eval_every=5, beams=4), catalog, split, tmp_path).model
    table = model.text.item_id.weight.detach()
    assert table[split.in_set].abs().sum() > 0 and table[~split.in_set].abs().sum() == 0
    space = ItemSpace(np.arange(catalog.n_items) * 10)  # item_idx 0, 10, 20, ...
    bundle = Recommender(model, cfg, catalog, space, split.in_set, np.array([f"i{i}" for i in range(catalog.n_items)]), {})
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


def test_the_gate_reads_validation_at_the_serving_width_and_test_at_the_paper_width(trained):
    """evaluate_recommender searches validation (the gate's split) as wide as serving does and
    the test split at ``beam_width``: each split's figures are exactly those two searches'."""
    catalog, split, model = trained
    bundle = _bundle(trained, {})
    index = RetrievalIndex.from_catalog(catalog, split.in_set)
    cfg = EvaluateConfig(beam_width=16, beam_sweep=[4, 16])
    metrics = evaluate_recommender(bundle, split, cfg, gate_beams=4)
    at_serving = evaluate(model, split.valid, index, split="val", beams=4, blend=bundle.blend)
    at_paper = evaluate(model, split.test, index, split="test", beams=16, candidates=4, blend=bundle.blend)
    for name in ("val_hybrid_ndcg@10", "val_generative_recall@10", "val_dense_ndcg@10"):
        assert metrics[name] == pytest.approx(at_serving[name])
    for name in ("test_hybrid_ndcg@10", "test_generative_recall@10"):
        assert metrics[name] == pytest.approx(at_paper[name])
    # a 4-wide search cannot find what the 16-wide one ranks 5th to 10th
    wide = evaluate(model, split.valid, index, split="val", beams=16, candidates=4, blend=bundle.blend)
    assert metrics["val_generative_recall@10"] < wide["val_generative_recall@10"]
