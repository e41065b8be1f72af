import numpy as np
import pytest
import torch

from liger_core.config import ModelConfig
from liger_core.errors import ConfigError, DataError
from liger_core.model.network import Batch, Items, LigerModel


pytestmark = pytest.mark.usefixtures("one_thread")


CODE_SIZES = (5, 4, 3, 2)
N_ITEMS, TEXT_DIM, D_MODEL = 30, 12, 16


def make_items(seed: int = 0) -> Items:
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in CODE_SIZES], indexing="ij"), -1).reshape(-1, 4)
    sid = grid[rng.permutation(len(grid))[:N_ITEMS]]
    return Items(torch.from_numpy(sid), torch.from_numpy(rng.normal(size=(N_ITEMS, TEXT_DIM)).astype(np.float32)))


def make_model(mode: str, **kwargs) -> LigerModel:
    torch.manual_seed(0)
    options = dict(d_model=D_MODEL, heads=2, encoder_layers=2, decoder_layers=2, ff_dim=32, dropout=0.0, max_history=6)
    options.update(kwargs)
    return LigerModel(ModelConfig(mode=mode, **options), CODE_SIZES, TEXT_DIM)


HISTORY = torch.tensor([[3, 4, 5], [-1, 7, 8], [-1, -1, 9], [0, 1, 2]])
LAST_TARGET = torch.tensor([16, 19, 20, 13])


def prefix_target(last: torch.Tensor = LAST_TARGET) -> torch.Tensor:
    target = torch.full(HISTORY.shape, -1)
    target[:, -1] = last
    return target


def make_batch(items: Items, target: torch.Tensor | None = None, history: torch.Tensor = HISTORY) -> Batch:
    target = prefix_target() if target is None else target
    candidates = torch.arange(10, N_ITEMS).flip(0)  # the in-set items, in any order
    position = torch.full((N_ITEMS,), -1)
    position[candidates] = torch.arange(len(candidates))
    return Batch(history, target, items, candidates, torch.where(target >= 0, position[target.clamp_min(0)], -1))


@pytest.mark.parametrize(
    "mode, keys", [("tiger", {"sid", "total"}), ("dense", {"dense", "total"}), ("liger", {"sid", "dense", "total"})]
)
def test_each_mode_trains_its_own_losses(mode, keys):
    losses = make_model(mode, w_sid=0.5, w_dense=2.0)(make_batch(make_items()))
    assert set(losses) == keys
    expected = 0.5 * losses.get("sid", 0) + 2.0 * losses.get("dense", 0)
    assert torch.allclose(losses["total"], torch.as_tensor(expected))
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())


def test_text_changes_liger_and_dense_outputs_but_not_tiger():
    items, batch = make_items(0), make_batch(make_items(0))
    other_text = batch.items._replace(text=make_items(1).text)
    other = Batch(batch.history, batch.target, other_text, batch.candidates, batch.candidate_target)  # noqa: E501
    for mode in ("tiger", "dense", "liger"):
        model = make_model(mode).eval()
        same = torch.allclose(model(batch)["total"], model(other)["total"])
        memory_same = torch.allclose(model.encode(batch.history, items).memory, model.encode(batch.history, other_text).memory)
        assert same == memory_same == (mode == "tiger"), mode
    tiger = make_model("tiger")
    assert all(TEXT_DIM not in p.shape for p in tiger.parameters())  # nothing reads text


def test_shapes_and_unit_norms():
    items, batch = make_items(), make_batch(make_items())
    model = make_model("liger").eval()
    enc = model.encode(batch.history, items)
    assert enc.memory.shape == (4, 3 * len(CODE_SIZES), D_MODEL)
    assert enc.padding.shape == (4, 12) and enc.padding[2].tolist() == [True] * 8 + [False] * 4
    assert torch.allclose(enc.query.norm(dim=-1), torch.ones(4))
    memory = model.decoder_memory(enc)
    for level, size in enumerate(CODE_SIZES):
        prefix = items.sid[LAST_TARGET][:, :level]
        assert model.next_code_logits(memory, prefix).shape == (4, size)
    vectors = model.item_vectors(items.text)
    assert vectors.shape == (N_ITEMS, D_MODEL)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(N_ITEMS))
    assert model.encode(batch.history, items).query is not None
    assert make_model("tiger").encode(batch.history, items).query is None


def test_padding_is_masked_out():
    """Extra padding columns change nothing: the latest item keeps its position."""
    items, model = make_items(), make_model("liger").eval()
    short = model.encode(torch.tensor([[7, 8]]), items)
    padded = model.encode(torch.tensor([[-1, -1, 7, 8]]), items)
    assert torch.allclose(short.query, padded.query, atol=1e-5)
    assert torch.allclose(short.memory, padded.memory[:, 8:], atol=1e-5)


@pytest.mark.parametrize("mode", ["tiger", "dense", "liger"])
def test_every_parameter_gets_a_gradient(mode):
    model = make_model(mode, dropout=0.1)
    model(make_batch(make_items()))["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_decoder_prediction_depends_on_the_prefix():
    items, model = make_items(), make_model("tiger").eval()
    memory = model.decoder_memory(model.encode(torch.tensor([[1, 2]]), items))
    a = model.next_code_logits(memory, torch.tensor([[0, 0]]))
    b = model.next_code_logits(memory, torch.tensor([[1, 3]]))
    assert not torch.allclose(a, b)


def test_beams_sharing_one_memory_match_one_memory_per_row():
    """Folding G prefixes of a user onto one memory is the same as copying the memory."""
    items, model = make_items(), make_model("liger").eval()
    history = torch.tensor([[1, 2, 3], [-1, 4, 5]])
    prefixes = torch.tensor([[0, 1], [2, 0], [1, 1], [3, 2], [0, 0], [4, 3]])  # 3 per user
    enc = model.encode(history, items)
    shared = model.next_code_logits(model.decoder_memory(enc), prefixes)
    copied = enc._replace(memory=enc.memory.repeat_interleave(3, 0), padding=enc.padding.repeat_interleave(3, 0))
    assert torch.allclose(shared, model.next_code_logits(model.decoder_memory(copied), prefixes), atol=1e-5)


def test_model_reads_its_config_and_rejects_invalid_settings():
    model = LigerModel(
        ModelConfig(d_model=16, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=32, mode="dense"), CODE_SIZES, TEXT_DIM
    )
    assert model.mode == "dense" and not hasattr(model, "decoder") and model.max_history == 20
    with pytest.raises(ConfigError, match="divisible"):
        make_model("liger", heads=3)
    with pytest.raises(ValueError, match="mode"):
        make_model("gpt")
    with pytest.raises(ConfigError, match="no dense head"):
        make_model("tiger").item_vectors(make_items().text)
    with pytest.raises(DataError, match="at most 6"):
        make_model("liger").encode(torch.zeros(1, 7, dtype=torch.long), make_items())


@pytest.mark.parametrize("mode", ["tiger", "dense", "liger"])
def test_causal_batch_loss_equals_the_loss_of_all_its_prefixes(mode):
    """One pass over whole sequences trains exactly what one example per prefix would."""
    items, model = make_items(), make_model(mode).eval()
    sequences = [[3, 14, 15, 16], [7, 18, 19], [9, 20], [0, 11, 12, 13]]  # targets in-set (>= 10)
    width = max(len(s) for s in sequences) - 1
    history = torch.full((len(sequences), width), -1)
    target = torch.full((len(sequences), width), -1)
    prefixes, lasts = [], []
    for row, seq in enumerate(sequences):
        history[row, width - len(seq) + 1 :] = torch.tensor(seq[:-1])
        target[row, width - len(seq) + 1 :] = torch.tensor(seq[1:])
        for t in range(1, len(seq)):
            prefixes.append([-1] * (width - t) + seq[:t])
            lasts.append(seq[t])
    causal = model(make_batch(items, target, history))
    prefix_history = torch.tensor(prefixes)
    last = torch.full(prefix_history.shape, -1)
    last[:, -1] = torch.tensor(lasts)
    per_prefix = model(make_batch(items, last, prefix_history))
    for name in causal:
        assert torch.allclose(causal[name], per_prefix[name], atol=1e-5), name


def test_encoder_state_at_a_slot_ignores_later_items():
    items, model = make_items(), make_model("liger").eval()
    a = model._encode_tokens(torch.tensor([[3, 4, 5]]), items)[0]
    b = model._encode_tokens(torch.tensor([[3, 4, 9]]), items)[0]
    n_codes = len(CODE_SIZES)
    assert torch.allclose(a[:, : 2 * n_codes], b[:, : 2 * n_codes], atol=1e-6)
    assert not torch.allclose(a[:, 2 * n_codes :], b[:, 2 * n_codes :])


def test_cached_decoding_equals_decoding_the_whole_prefix():
    """decode_step with its key/value cache, rows reordered between levels as a beam search
    reorders them, gives next_code_logits' logits at every level."""
    items, model = make_items(), make_model("liger", decoder_layers=3).eval()
    memory = model.decoder_memory(model.encode(torch.tensor([[1, 2, 3], [-1, 4, 5]]), items))
    users, per_user = 2, 3
    prefix = torch.zeros(users * per_user, 0, dtype=torch.long)
    logits, cache = model.decode_step(memory, 0, None, None)  # one BOS row per user
    cache = cache.select(users, torch.zeros(users, per_user, dtype=torch.long))
    assert torch.allclose(logits, model.next_code_logits(memory, prefix[::per_user]), atol=1e-5)
    generator = torch.Generator().manual_seed(0)
    for level in range(1, len(CODE_SIZES)):
        codes = torch.randint(0, CODE_SIZES[level - 1], (users * per_user,), generator=generator)
        prefix = torch.cat([prefix, codes[:, None]], 1)
        logits, cache = model.decode_step(memory, level, codes, cache)
        assert torch.allclose(logits, model.next_code_logits(memory, prefix), atol=1e-5)
        parents = torch.tensor([[2, 0, 0], [1, 1, 2]])  # each user's rows continue these rows
        cache = cache.select(users, parents)
        prefix = prefix.view(users, per_user, -1)[torch.arange(users)[:, None], parents].flatten(0, 1)
