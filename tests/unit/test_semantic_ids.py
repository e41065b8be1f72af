"""Semantic ID assignment: collision codes, stability across runs, and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liger_core.errors import DataError
from liger_core.ids.semantic_ids import assign_semantic_ids, codes_for_catalog, first_assigned


def ids(frame: pd.DataFrame) -> dict[int, list[int]]:
    return dict(zip(frame["item_idx"].tolist(), frame["codes"].tolist()))


def test_collision_codes_count_up_per_prefix_in_item_order():
    out = assign_semantic_ids(
        item_idx=np.array([7, 3, 9, 1, 4]),
        codes=np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 2, 3], [1, 2, 4]]),
        previous=None,
        max_collisions=8,
    )
    assert out["item_idx"].tolist() == [1, 3, 4, 7, 9]
    assert ids(out) == {
        1: [1, 2, 3, 0],
        3: [1, 2, 3, 1],
        4: [1, 2, 4, 0],
        7: [1, 2, 3, 2],
        9: [0, 0, 0, 0],
    }
    assert out["is_new"].all()
    assert out["item_idx"].dtype == np.int64 and out["is_new"].dtype == bool
    assert all(type(c) is int for row in out["codes"] for c in row)


def test_result_does_not_depend_on_input_order():
    items = np.arange(200, dtype=np.int64)
    codes = np.random.default_rng(0).integers(0, 3, (200, 2))
    perm = np.random.default_rng(1).permutation(200)
    a = assign_semantic_ids(items, codes, None, 256)
    b = assign_semantic_ids(items[perm], codes[perm], None, 256)
    pd.testing.assert_frame_equal(a, b)


def test_known_items_keep_their_ids_and_new_items_take_the_next_code():
    first = assign_semantic_ids(np.array([1, 2, 3]), np.array([[5, 5], [5, 5], [6, 6]]), None, 8)
    # Item 2 now encodes elsewhere; 10 and 11 are new, 10 shares prefix (5, 5).
    out = assign_semantic_ids(
        np.array([1, 2, 3, 10, 11]),
        np.array([[5, 5], [9, 9], [6, 6], [5, 5], [6, 6]]),
        previous=first,
        max_collisions=8,
    )
    assert ids(out) == {
        1: [5, 5, 0],
        2: [5, 5, 1],  # unchanged despite its new codes
        3: [6, 6, 0],
        10: [5, 5, 2],
        11: [6, 6, 1],
    }
    assert out.set_index("item_idx")["is_new"].to_dict() == {
        1: False,
        2: False,
        3: False,
        10: True,
        11: True,
    }


def test_freed_collision_codes_are_never_reused():
    previous = pd.DataFrame(
        {
            "item_idx": [1, 2, 3],
            "codes": [[4, 4, 0], [4, 4, 2], [4, 4, 1]],  # item 3 is retired below
        }
    )
    out = assign_semantic_ids(np.array([1, 2, 8, 9]), np.array([[4, 4]] * 4), previous, 8)
    assert ids(out) == {1: [4, 4, 0], 2: [4, 4, 2], 8: [4, 4, 3], 9: [4, 4, 4]}
    assert 3 not in ids(out)  # only catalog items are returned


def test_previous_may_be_empty_or_parquet_shaped():
    empty = pd.DataFrame({"item_idx": pd.Series([], dtype="int64"), "codes": []})
    out = assign_semantic_ids(np.array([2, 1]), np.array([[0], [0]]), empty, 4)
    assert ids(out) == {1: [0, 0], 2: [0, 1]}
    # pyarrow reads list columns back as numpy arrays, not lists
    as_arrays = out.assign(codes=[np.array(c) for c in out["codes"]])
    again = assign_semantic_ids(np.array([1, 2, 3]), np.array([[0], [0], [0]]), as_arrays, 4)
    assert ids(again) == {1: [0, 0], 2: [0, 1], 3: [0, 2]}


def test_large_catalog_ids_are_unique_and_dense_per_prefix():
    rng = np.random.default_rng(0)
    items = rng.permutation(200_000)[:50_000].astype(np.int64)
    codes = rng.integers(0, 8, (50_000, 3))
    out = assign_semantic_ids(items, codes, None, 256)
    table = np.array(out["codes"].tolist())
    assert len(np.unique(table, axis=0)) == 50_000
    frame = pd.DataFrame(table, columns=["a", "b", "c", "k"])
    per_prefix = frame.groupby(["a", "b", "c"])["k"].agg(["min", "max", "count"])
    assert (per_prefix["min"] == 0).all()
    assert (per_prefix["max"] == per_prefix["count"] - 1).all()


# --- refusals ----------------------------------------------------------------------------


def test_empty_catalog_is_refused():
    with pytest.raises(DataError, match="empty catalog"):
        assign_semantic_ids(np.array([], np.int64), np.zeros((0, 3), np.int64), None, 256)


def test_duplicate_item_idx_is_refused():
    with pytest.raises(DataError, match="duplicate item_idx in catalog: 1 repeats, first 7"):
        assign_semantic_ids(np.array([7, 3, 7]), np.zeros((3, 2), np.int64), None, 256)


def test_codes_must_match_items():
    with pytest.raises(DataError, match="one row per item"):
        assign_semantic_ids(np.array([1, 2]), np.zeros((3, 2), np.int64), None, 256)


def test_id_space_overflow_names_the_prefix():
    with pytest.raises(
        DataError,
        match=r"prefix \(1, 2\) needs collision code 3 but "
        r"max_collisions is 3 \(4 new and 0 existing items have it\): "
        "catalog larger than the ID space",
    ):
        assign_semantic_ids(np.arange(5), np.array([[1, 2]] * 4 + [[0, 0]]), None, 3)


def test_id_space_overflow_counts_existing_items():
    previous = pd.DataFrame({"item_idx": [1, 2], "codes": [[1, 2, 0], [1, 2, 1]]})
    assign_semantic_ids(np.array([1, 2, 3]), np.array([[1, 2]] * 3), previous, 3)  # fits
    with pytest.raises(
        DataError,
        match=r"prefix \(1, 2\) needs collision code 3 .*"
        r"\(2 new and 2 existing",
    ):
        assign_semantic_ids(np.array([1, 2, 3, 4]), np.array([[1, 2]] * 4), previous, 3)


def test_corrupt_previous_with_shared_ids_is_refused():
    previous = pd.DataFrame({"item_idx": [1, 2], "codes": [[3, 3, 0], [3, 3, 0]]})
    with pytest.raises(DataError, match=r"2 items share a semantic ID .*corrupt"):
        assign_semantic_ids(np.array([1, 2]), np.array([[3, 3], [3, 3]]), previous, 256)


def test_previous_from_another_rqvae_shape_is_refused():
    previous = pd.DataFrame({"item_idx": [1], "codes": [[3, 3, 3, 0]]})
    with pytest.raises(DataError, match="must each have 3 codes"):
        assign_semantic_ids(np.array([1]), np.array([[3, 3]]), previous, 256)


def test_previous_with_duplicate_items_is_refused():
    previous = pd.DataFrame({"item_idx": [1, 1], "codes": [[3, 3, 0], [3, 3, 1]]})
    with pytest.raises(DataError, match="previous semantic IDs list item_idx 1 more than once"):
        assign_semantic_ids(np.array([1]), np.array([[3, 3]]), previous, 256)


def test_previous_missing_columns_is_refused():
    with pytest.raises(DataError, match=r"lack column\(s\) \['codes'\]"):
        assign_semantic_ids(np.array([1]), np.array([[3, 3]]), pd.DataFrame({"item_idx": [1]}), 8)


def test_a_known_item_keeps_its_prefix_whatever_it_encodes_to_now():
    previous = pd.DataFrame({"item_idx": [3, 7], "codes": [[1, 2, 0], [4, 5, 1]], "assigned_ds": ["2026-11-01", "2026-11-02"]})
    encoded = pd.DataFrame({"item_idx": [9, 3], "codes": [[6, 6], [0, 0]]})  # 3 re-encoded differently
    item_idx, codes = codes_for_catalog([9, 3, 7], encoded, previous, levels=2)
    assert item_idx.tolist() == [3, 7, 9]
    assert codes.tolist() == [[1, 2], [4, 5], [6, 6]]
    assert first_assigned(item_idx, previous, "2026-12-03") == ["2026-11-01", "2026-11-02", "2026-12-03"]
    assert first_assigned(item_idx, None, "2026-12-03") == ["2026-12-03"] * 3


def test_an_item_with_neither_an_id_nor_codes_is_named():
    encoded = pd.DataFrame({"item_idx": [1], "codes": [[0, 0]]})
    with pytest.raises(DataError, match=r"1 catalog item\(s\) have neither an ID nor fresh RQ-VAE codes \(first item_idx 2\)"):
        codes_for_catalog([1, 2], encoded, None, levels=2)
