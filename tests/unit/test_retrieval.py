import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from liger_core.config import ModelConfig
from liger_core.errors import DataError
from liger_core.model.network import Items, LigerModel
from liger_core.retrieval.search import (
    SOURCES,
    Blend,
    PrefixIndex,
    Ranked,
    RetrievalIndex,
    dense_topk,
    generative_topk,
    hybrid_topk,
    recommend,
)
from liger_core.retrieval.retrieval_metrics import STANDARD_ERROR, evaluate, metric_names
from liger_core.data.sequences import build_split


pytestmark = pytest.mark.usefixtures("one_thread")


CODE_SIZES = (4, 3, 3, 2)
TEXT_DIM = 8


def all_ids(code_sizes=CODE_SIZES) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(s) for s in code_sizes], indexing="ij"), -1).reshape(-1, len(code_sizes))


def make_model(mode="liger", seed=0, code_sizes=CODE_SIZES) -> LigerModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(mode=mode, d_model=16, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=32, dropout=0.0, max_history=5)
    return LigerModel(cfg, code_sizes, TEXT_DIM).eval()


def make_items(n: int, seed: int = 0, code_sizes=CODE_SIZES) -> Items:
    rng = np.random.default_rng(seed)
    ids = all_ids(code_sizes)
    sid = ids[rng.permutation(len(ids))[:n]]
    return Items(torch.from_numpy(sid), torch.from_numpy(rng.normal(size=(n, TEXT_DIM)).astype(np.float32)))


def test_prefix_index_children_match_a_dict_of_prefixes():
    items = make_items(40)
    subset = np.arange(0, 40, 3)
    index = PrefixIndex(items.sid.numpy(), subset, CODE_SIZES)
    sid = {tuple(items.sid[i].tolist()): int(i) for i in subset}
    # Walk every prefix: children(level, node) must allow exactly the codes some item continues with.
    frontier = {(): 0}
    for level in range(len(CODE_SIZES)):
        nodes = torch.tensor(list(frontier.values()))
        children = index.children(level, nodes)
        next_frontier = {}
        for row, prefix in enumerate(frontier):
            allowed = {full[level] for full in sid if full[:level] == prefix}
            assert {c for c in range(CODE_SIZES[level]) if children[row, c] >= 0} == allowed
            for code in allowed:
                next_frontier[prefix + (code,)] = int(children[row, code])
        frontier = next_frontier
    assert frontier == sid  # a full path ends at its item_idx
    assert (index.children(0, torch.tensor([-1])) == -1).all()  # dead beams have no children


def test_prefix_index_rejects_duplicates_and_empty_subsets():
    sid = np.array([[0, 1], [0, 1]])
    with pytest.raises(DataError, match="share"):
        PrefixIndex(sid, np.array([0, 1]), (2, 2))
    with pytest.raises(DataError, match="empty"):
        PrefixIndex(sid, np.array([], dtype=np.int64), (2, 2))


@settings(max_examples=60, deadline=None)
@given(n_items=st.integers(1, 60), seed=st.integers(0, 10_000), beams=st.integers(1, 25), share=st.floats(0.05, 1.0))
def test_constrained_beam_yields_only_distinct_valid_items(n_items, seed, beams, share):
    items = make_items(n_items, seed)
    rng = np.random.default_rng(seed)
    subset = np.flatnonzero(rng.random(n_items) < share)
    if len(subset) == 0:
        subset = np.array([0])
    index = PrefixIndex(items.sid.numpy(), subset, CODE_SIZES)
    model = make_model(seed=seed % 3)
    history = torch.from_numpy(rng.integers(-1, n_items, size=(3, 4)))
    history[:, -1] = torch.from_numpy(rng.integers(0, n_items, size=3))
    ranked = generative_topk(model, model.encode(history, items), index, beams)
    assert ranked.items.shape == (3, beams)
    for row, scores in zip(ranked.items.tolist(), ranked.scores):
        found = [i for i in row if i >= 0]
        assert len(found) == min(beams, len(subset))  # every valid item fits when beams allow
        assert len(set(found)) == len(found) and set(found) <= set(subset.tolist())
        assert row[len(found) :] == [-1] * (beams - len(found))  # padding only at the end
        assert torch.all(scores[:-1] >= scores[1:])


def test_wide_beam_scores_equal_exact_sequence_log_probs():
    items = make_items(30)
    subset = np.arange(0, 30, 2)
    index = PrefixIndex(items.sid.numpy(), subset, CODE_SIZES)
    model = make_model()
    enc = model.encode(torch.tensor([[3, 4, 5]]), items)
    ranked = generative_topk(model, enc, index, beams=len(subset))
    codes = items.sid[torch.from_numpy(subset)]
    per_item = model.decoder_memory(
        enc._replace(memory=enc.memory.expand(len(subset), -1, -1), padding=enc.padding.expand(len(subset), -1))
    )
    exact = sum(
        model.next_code_logits(per_item, codes[:, :level]).log_softmax(-1).gather(1, codes[:, level : level + 1]).squeeze(1)
        for level in range(len(CODE_SIZES))
    )
    order = exact.argsort(descending=True)
    assert ranked.items[0].tolist() == subset[order.numpy()].tolist()
    assert torch.allclose(ranked.scores[0], exact[order], atol=1e-5)


def test_generative_exclusion_drops_history_items():
    items = make_items(30)
    index = PrefixIndex(items.sid.numpy(), np.arange(30), CODE_SIZES)
    model = make_model()
    enc = model.encode(torch.tensor([[3, 4, 5]]), items)
    full = generative_topk(model, enc, index, 5)
    banned = full.items[:, :2]
    kept = generative_topk(model, enc, index, 5, exclude=banned)
    assert kept.items[0].tolist() == full.items[0, 2:].tolist() + [-1, -1]


def brute_force(query, vectors, candidates, k, exclude):
    scores = query @ vectors.T
    out = []
    for b in range(len(query)):
        ranked = sorted(range(len(candidates)), key=lambda j: -float(scores[b, j]))
        ranked = [int(candidates[j]) for j in ranked if int(candidates[j]) not in exclude[b].tolist()]
        out.append((ranked + [-1] * k)[:k])
    return out


@pytest.mark.parametrize("k", [1, 5, 40])
def test_dense_topk_matches_brute_force(k):
    gen = torch.Generator().manual_seed(k)
    query = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=1)
    vectors = torch.nn.functional.normalize(torch.randn(25, 8, generator=gen), dim=1)
    candidates = torch.randperm(100, generator=gen)[:25]
    exclude = torch.stack([candidates[torch.randperm(25, generator=gen)[:3]] for _ in range(6)])
    exclude[0, 0] = -1  # padding is ignored
    exclude[1, 0] = 999  # so are unknown items
    ranked = dense_topk(query, vectors, candidates, k, exclude)
    assert ranked.items.tolist() == brute_force(query, vectors, candidates, k, exclude)
    expected = [
        (query[b] @ vectors[(candidates == i).nonzero()[0, 0]]).item() if i >= 0 else -np.inf
        for b in range(6)
        for i in ranked.items[b].tolist()
    ]
    assert np.allclose(ranked.scores.flatten().numpy(), expected, atol=1e-6)


def test_hybrid_adds_a_cold_item_the_beam_cannot_produce():
    items = make_items(30)
    model = make_model()
    vectors = model.item_vectors(items.text)
    in_set, cold = np.arange(0, 25), torch.arange(25, 30)
    index = PrefixIndex(items.sid.numpy(), in_set, CODE_SIZES)
    history = torch.tensor([[1, 2, 3]])
    enc = model.encode(history, items)
    generated = generative_topk(model, enc, index, 25)  # every in-set item, never a cold one
    assert not set(generated.items[0].tolist()) & set(cold.tolist())
    query = vectors[27:28]  # a user whose dense query is exactly cold item 27
    for cap in (5, 1):  # all cold items, or only the nearest one
        ranked = hybrid_topk(query, vectors, generated, cold, k=10, blend=Blend(cold_candidates=cap))
        assert ranked.items[0, 0] == 27 and SOURCES[ranked.source[0, 0]] == "cold_start"
        assert torch.isclose(ranked.scores[0, 0], torch.tensor(1.0))
        assert ranked.source[0].tolist() == [int(i >= 25) for i in ranked.items[0].tolist()]
        assert len(set(ranked.items[0].tolist())) == 10
        assert torch.all(ranked.scores[0, :-1] >= ranked.scores[0, 1:])


def test_hybrid_excludes_history_deduplicates_and_pads():
    vectors = torch.nn.functional.normalize(torch.randn(10, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    generated = Ranked(torch.tensor([[0, 1, 2, -1]]), torch.tensor([[-1.0, -2.0, -3.0, -torch.inf]]))
    cold = torch.tensor([2, 7, 8])  # 2 is also generated: it must appear once
    ranked = hybrid_topk(vectors[7:8], vectors, generated, cold, k=8, exclude=torch.tensor([[8, -1]]))
    found = [i for i in ranked.items[0].tolist() if i >= 0]
    assert ranked.items[0, 0] == 7 and sorted(found) == [0, 1, 2, 7]
    assert ranked.items[0, 4:].tolist() == [-1] * 4 and torch.isinf(ranked.scores[0, 4:]).all()


def test_blend_weighs_the_beam_log_prob_and_leaves_cold_items_to_their_offset():
    vectors = torch.eye(4)
    query = torch.nn.functional.normalize(torch.tensor([[1.0, 0.9, 0.0, 0.8]]), dim=1)
    # by cosine: 0 > 1 > 3 (cold); the beam prefers item 1 by 2 nats, item 2 trails by 5
    generated = Ranked(torch.tensor([[1, 0, 2]]), torch.tensor([[-1.0, -3.0, -6.0]]))
    cold = torch.tensor([3])
    dense_only = hybrid_topk(query, vectors, generated, cold, k=4)
    assert dense_only.items[0].tolist() == [0, 1, 3, 2]
    assert torch.allclose(dense_only.scores[0, :3], query[0, [0, 1, 3]])
    weight = 0.05  # 0.05 x 2 nats outweigh item 0's cosine lead of 0.064
    blended = hybrid_topk(query, vectors, generated, cold, k=4, blend=Blend(0.0, weight))
    assert blended.items[0].tolist()[:2] == [1, 0]
    # a cold item cannot be in the beam: no log-prob term, only its cosine (offset 0 here)
    assert torch.isclose(blended.scores[0, blended.items[0].tolist().index(3)], query[0, 3])
    lowered = hybrid_topk(query, vectors, generated, cold, k=4, blend=Blend(-0.2, weight))
    assert torch.isclose(lowered.scores[0, lowered.items[0].tolist().index(3)], query[0, 3] - 0.2)
    shut_out = hybrid_topk(query, vectors, generated, cold, k=4, blend=Blend(-torch.inf, weight))
    assert 3 not in shut_out.items[0].tolist() and shut_out.items[0, 3] == -1


def test_dense_candidates_join_the_pool_the_beam_missed():
    vectors = torch.eye(12)
    weights = torch.zeros(12)
    weights[[5, 9, 2, 10]] = torch.tensor([1.0, 0.8, 0.5, 0.4])
    query = torch.nn.functional.normalize(weights[None], dim=1)  # nearest in-set: 5, 9, 2; cold 10
    cold = torch.tensor([10, 11])
    generated = Ranked(torch.tensor([[0, 1, 5]]), torch.tensor([[-1.0, -2.0, -4.0]]))  # the beam lacks 9
    paper = hybrid_topk(query, vectors, generated, cold, k=6)
    assert 9 not in paper.items[0].tolist()
    joined = hybrid_topk(query, vectors, generated, cold, k=6, blend=Blend(dense_candidates=3))
    assert joined.items[0, :2].tolist() == [5, 9]
    everything = torch.arange(12)
    full_dense = dense_topk(query, vectors, everything[:10], 3)
    assert set(joined.items[0].tolist()) >= set(full_dense.items[0].tolist())  # the dense head's top 3
    assert len(set(joined.items[0].tolist())) == 6  # 5 is in both pools: listed once
    assert [SOURCES[s] for s in joined.source[0].tolist()].count("cold_start") == sum(
        i in (10, 11) for i in joined.items[0].tolist()
    )
    # a dense candidate without a beam scores as the weakest beam would: 3 nats behind the best
    weighted = hybrid_topk(query, vectors, generated, cold, k=12, blend=Blend(0.0, 0.1, 3))
    position = weighted.items[0].tolist().index(9)
    assert torch.isclose(weighted.scores[0, position], (query[0] @ vectors[9]) + 0.1 * (-4.0 - -1.0))


@pytest.mark.parametrize("mode", ["tiger", "dense", "liger"])
def test_evaluate_and_recommend_per_mode(mode):
    items = make_items(30)
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 25, size=6) for _ in range(12)]
    sequences[0][-2] = 27  # a cold validation target
    split = build_split(sequences, max_len=5, n_items=30)
    index = RetrievalIndex.build(items, split.in_set, CODE_SIZES)
    model = make_model(mode)
    metrics = evaluate(model, split.valid, index, beams=6, batch_size=5)
    assert metrics["val_users"] == 12
    assert metrics["val_users_cold"] == split.valid.is_cold.sum() >= 1
    assert metrics["val_users_inset"] == 12 - metrics["val_users_cold"]
    produced = {m for m in metrics if "@" in m and not m.endswith(STANDARD_ERROR)}
    assert produced == set(metric_names(model))
    assert all(0 <= metrics[m] <= 1 for m in produced)
    # Every mean has its standard error, but a segment of one user has none.
    errors = {m for m in metrics if m.endswith(STANDARD_ERROR)}
    with_spread = {m for m in produced if not m.endswith("_cold") or metrics["val_users_cold"] > 1}
    assert errors == {m + STANDARD_ERROR for m in with_spread}
    assert all(0 <= metrics[m] <= 0.5 for m in errors)
    assert {m.split("_")[1] for m in produced} == {
        "tiger": {"generative"},
        "dense": {"dense"},
        "liger": {"generative", "dense", "hybrid"},
    }[mode]
    vectors = index.item_vectors(model)
    assert (vectors is None) == (mode == "tiger")
    history = torch.tensor([[1, 2, 3], [-1, 4, 5]])
    top = recommend(model, history, index, vectors, k=4, beams=6)
    assert top.items.shape == top.source.shape == (2, 4)
    assert not (top.items[:, :, None] == history[:, None, :]).any()  # history is excluded


def test_retrieval_index_partitions_the_catalog_into_in_set_and_cold_items():
    items = make_items(30)
    mask = np.zeros(30, dtype=bool)
    mask[[0, 3, 4, 10, 29]] = True
    index = RetrievalIndex.build(items, mask, CODE_SIZES)
    assert index.in_set.tolist() == [0, 3, 4, 10, 29]
    assert index.cold.tolist() == sorted(set(range(30)) - {0, 3, 4, 10, 29})
    assert index.prefixes.n_items == 5 and index.items is items
    model = make_model()
    beam = generative_topk(model, model.encode(torch.tensor([[1, 2]]), items), index.prefixes, beams=8)
    assert set(beam.items[0].tolist()) == {0, 3, 4, 10, 29, -1}  # the beam reaches in-set items only
    torch.testing.assert_close(index.item_vectors(model), model.item_vectors(items.text))
    with pytest.raises(DataError, match="in-set mask has shape \\(29,\\); the catalog has 30 items"):
        RetrievalIndex.build(items, mask[:29], CODE_SIZES)
