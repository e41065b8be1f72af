"""recommend.precision: the Transformer blocks may rank under bfloat16 autocast, while item
vectors and every score stay float32 and the beam still yields only valid items."""

import numpy as np
import pytest
import torch

from liger_core.config import ModelConfig
from liger_core.model.network import LigerModel
from liger_core.retrieval.search import RetrievalIndex, eval_mode, generative_topk, recommend
from tests.unit.test_retrieval import CODE_SIZES, TEXT_DIM, make_items

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ranked_both_ways():
    torch.manual_seed(3)
    cfg = ModelConfig(d_model=32, heads=2, encoder_layers=2, decoder_layers=2, ff_dim=64, dropout=0.0, max_history=5)
    model = LigerModel(cfg, CODE_SIZES, TEXT_DIM).eval()
    items = make_items(60, seed=3)
    in_set = np.arange(60) < 55
    index = RetrievalIndex.build(items, in_set, CODE_SIZES)
    history = torch.from_numpy(np.random.default_rng(3).integers(0, 55, size=(16, 5)))
    out = {}
    for name, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
        with eval_mode(model, dtype):
            encoded = model.encode(history, items)
            vectors = index.item_vectors(model)
            beam = generative_topk(model, encoded, index.prefixes, beams=8)
        top = recommend(model, history, index, vectors, k=6, beams=8, block_dtype=dtype)
        out[name] = (encoded, vectors, beam, top)
    return model, index, out


def test_bfloat16_ranks_with_the_same_float32_item_vectors_and_scores(ranked_both_ways):
    model, _, out = ranked_both_ways
    (exact, exact_vectors, _, _), (fast, fast_vectors, fast_beam, top) = out["float32"], out["bfloat16"]
    assert torch.equal(exact_vectors, fast_vectors)  # the item tower is outside the blocks
    for tensor in (fast.memory, fast.query, fast_beam.scores, top.scores):
        assert tensor.dtype == torch.float32
    assert not torch.equal(exact.query, fast.query)  # the blocks did run in bfloat16
    assert (exact.query * fast.query).sum(-1).min() > 0.99
    assert model.block_dtype is None  # eval_mode put the caller's setting back


def test_bfloat16_beam_yields_only_valid_items_close_to_float32(ranked_both_ways):
    _, index, out = ranked_both_ways
    exact_beam, fast_beam = out["float32"][2], out["bfloat16"][2]
    in_set = set(index.in_set.tolist())
    for row in fast_beam.items.tolist():
        live = [i for i in row if i >= 0]
        assert len(live) == len(set(live)) and set(live) <= in_set
    assert torch.allclose(exact_beam.scores[:, :1], fast_beam.scores[:, :1], atol=0.05)
    shared = [len(set(a) & set(b)) / len(a) for a, b in zip(exact_beam.items.tolist(), fast_beam.items.tolist())]
    assert np.mean(shared) > 0.8
