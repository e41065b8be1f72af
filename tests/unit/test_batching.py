import numpy as np
import pytest

from liger_core.training.batching import BucketedLoader, bucketed_batches
from liger_core.errors import DataError
from liger_core.data.sequences import build_split


def split_of(n_users: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(0, 50, size=rng.integers(2, 25)) for _ in range(n_users)]
    return build_split(sequences, max_len=20, n_items=50)


def test_every_unit_is_in_exactly_one_batch_and_batches_respect_the_budget():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 18, size=1000)
    batches = bucketed_batches(lengths, lengths, batch_targets=64, seed=3, epoch=0)
    units = np.concatenate(batches)
    assert np.array_equal(np.sort(units), np.arange(1000))
    assert all(lengths[b].sum() <= 64 or len(b) == 1 for b in batches)


def test_batches_group_similar_lengths_so_padding_is_small():
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 18, size=5000)
    batches = bucketed_batches(lengths, np.ones_like(lengths), batch_targets=128, seed=0, epoch=0)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert lengths.sum() / padded > 0.9  # unbucketed random batches of 128 waste about half


def test_order_is_a_function_of_seed_and_epoch():
    lengths = np.arange(1, 400) % 17 + 1
    same = bucketed_batches(lengths, lengths, 50, seed=5, epoch=2)
    again = bucketed_batches(lengths, lengths, 50, seed=5, epoch=2)
    other = bucketed_batches(lengths, lengths, 50, seed=5, epoch=3)
    assert all(np.array_equal(a, b) for a, b in zip(same, again)) and len(same) == len(again)
    assert not all(np.array_equal(a, b) for a, b in zip(same, other))


def test_causal_units_yield_every_training_example_exactly_once_per_epoch():
    split = split_of()
    train = split.train
    units = train.last_rows()
    loader = BucketedLoader(train.positions[units], train.positions[units], 64, seed=0)
    for epoch in (0, 1):
        seen = []
        for batch in range(loader.batches_in(epoch)):
            rows = units[loader.get(epoch, batch)]
            history, targets = train.causal_batch(rows, 20)
            users = np.repeat(train.users[rows], (targets >= 0).sum(1))
            # slot j's target is the item at the position after the slot's item
            seen.extend(zip(users, targets[targets >= 0]))
            assert ((history >= 0) == (targets >= 0)).all()
        expected = sorted(zip(train.users, train.targets))
        assert sorted(seen) == expected


def test_ranks_share_an_epoch_without_overlap():
    lengths = np.random.default_rng(4).integers(1, 18, size=600)
    ranks = [BucketedLoader(lengths, lengths, 64, seed=1, rank=r, world=2) for r in (0, 1)]
    assert ranks[0].batches_in(0) == ranks[1].batches_in(0)
    units = [np.concatenate([loader.get(0, b) for b in range(loader.batches_in(0))]) for loader in ranks]
    assert not set(units[0]) & set(units[1])
    with pytest.raises(DataError, match="cannot be shared"):
        BucketedLoader(lengths[:1], lengths[:1], 64, seed=1, world=2)
