import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liger_core.data.catalog import Catalog
from liger_core.errors import DataError
from liger_core.data.sequences import PAD, build_split, pad_histories

# max_len=4 truncates user 0 to [1, 2, 3, 4]; user 1 (2 items) only trains; user 2 (1 item)
# contributes nothing; user 3 (3 items) has val/test but no training example; item 11 and
# item 0 (truncated away) never occur.
SEQUENCES = [
    np.array([0, 1, 2, 3, 4]),
    np.array([5, 6]),
    np.array([7]),
    np.array([3, 8, 9]),
    np.array([1, 2, 5, 6]),
]


@pytest.fixture
def split():
    return build_split(SEQUENCES, max_len=4, n_items=12)


def histories(examples):
    return [examples.history(i).tolist() for i in range(len(examples))]


def test_training_examples_are_every_position_before_validation(split):
    assert split.train.users.tolist() == [0, 1, 4]
    assert histories(split.train) == [[1], [5], [1]]
    assert split.train.targets.tolist() == [2, 6, 2]
    assert not split.train.is_cold.any()


def test_validation_is_second_last_and_test_is_last(split):
    assert split.valid.users.tolist() == split.test.users.tolist() == [0, 3, 4]
    assert split.valid.targets.tolist() == [3, 8, 5]
    assert histories(split.valid) == [[1, 2], [3], [1, 2]]
    assert split.test.targets.tolist() == [4, 9, 6]
    assert histories(split.test) == [[1, 2, 3], [3, 8], [1, 2, 5]]


def test_in_set_is_items_of_training_examples_and_cold_flags_follow(split):
    assert np.flatnonzero(split.in_set).tolist() == [1, 2, 5, 6]
    assert split.n_items == 12 and split.n_users == 5
    assert split.valid.is_cold.tolist() == [True, True, False]
    assert split.test.is_cold.tolist() == [True, True, False]


def test_sequences_are_truncated_to_max_len(split):
    assert split.sequence(0).tolist() == [1, 2, 3, 4]
    assert split.sequence(2).tolist() == [7]


def test_batches_are_right_aligned_and_cut_to_max_history(split):
    history, target = split.test.batch(np.arange(3), max_history=5)
    assert history.tolist() == [[1, 2, 3], [PAD, 3, 8], [1, 2, 5]]
    assert target.tolist() == [4, 9, 6]
    history, _ = split.test.batch(np.array([0, 1]), max_history=2)
    assert history.tolist() == [[2, 3], [3, 8]]


def test_pad_histories():
    assert pad_histories([np.array([1, 2, 3]), np.array([4])], 5).tolist() == [[1, 2, 3], [PAD, PAD, 4]]
    assert pad_histories([np.array([1, 2, 3])], 2).tolist() == [[2, 3]]
    with pytest.raises(DataError, match="empty history"):
        pad_histories([np.array([], dtype=np.int64)], 5)


def test_bad_input_is_rejected():
    with pytest.raises(DataError, match="n_items"):
        build_split(SEQUENCES, n_items=5)
    with pytest.raises(DataError, match=">= 0"):
        build_split([np.array([1, -2, 3])])
    with pytest.raises(DataError, match="user 1"):
        build_split([np.array([1, 2]), np.zeros((2, 2), dtype=int)])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=0, max_size=12), max_size=15), st.integers(3, 8))
def test_split_matches_a_direct_reading_of_the_protocol(raw, max_len):
    split = build_split([np.array(s, dtype=np.int64) for s in raw], max_len=max_len, n_items=31)
    expected_train, expected_valid, expected_test = [], [], []
    for u, seq in enumerate(raw):
        seq = seq[-max_len:]
        end = len(seq) - 2 if len(seq) >= 3 else len(seq)
        expected_train += [(u, seq[:t], seq[t]) for t in range(1, end)]
        if len(seq) >= 3:
            expected_valid.append((u, seq[:-2], seq[-2]))
            expected_test.append((u, seq[:-1], seq[-1]))
    for examples, expected in [(split.train, expected_train), (split.valid, expected_valid), (split.test, expected_test)]:
        got = [(int(u), examples.history(i).tolist(), int(t)) for i, (u, t) in enumerate(zip(examples.users, examples.targets))]
        assert got == expected
    in_set = {i for _, h, t in expected_train for i in [*h, t]}
    assert set(np.flatnonzero(split.in_set).tolist()) == in_set
    assert split.test.is_cold.tolist() == [t not in in_set for _, _, t in expected_test]


def catalog_arrays():
    sid = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0]])
    return sid, np.eye(3, 4, dtype=np.float32)


def test_catalog_accepts_valid_input_and_normalises_dtypes():
    sid, text = catalog_arrays()
    catalog = Catalog(sid.astype(np.int32), text.astype(np.float64), [3, 2, 2])
    assert catalog.sid.dtype == np.int64 and catalog.text.dtype == np.float32
    assert (catalog.n_items, catalog.n_codes, catalog.text_dim) == (3, 3, 4)
    assert catalog.code_sizes == (3, 2, 2)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sid, text, sizes: (sid, text[:2], sizes), "text must be"),
        (lambda sid, text, sizes: (sid, text, (3, 2)), "one positive size per sid column"),
        (lambda sid, text, sizes: (sid, np.where(text == 1, np.nan, text), sizes), "NaN/inf"),
        (lambda sid, text, sizes: (sid, text, (3, 1, 2)), r"column 1 must be in \[0, 1\)"),
        (lambda sid, text, sizes: (np.array([[0, 1, 0], [0, 1, 0], [2, 0, 0]]), text, sizes), "unique"),
        (lambda sid, text, sizes: (sid.astype(float), text, sizes), "integers"),
    ],
)
def test_catalog_rejects_bad_input_with_a_clear_message(change, message):
    sid, text = catalog_arrays()
    with pytest.raises(DataError, match=message):
        Catalog(*change(sid, text, (3, 2, 2)))
